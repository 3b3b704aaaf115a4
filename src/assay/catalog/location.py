"""Where the catalog lives, and the engine that talks to it.

A location is a path (an SQLite file) or a database URL. Unset, it is `$ASSAY_CATALOG`, else
`$XDG_DATA_HOME/assay/catalog.sqlite` (`~/.local/share/assay/catalog.sqlite`). PostgreSQL URLs
(`postgresql://`, `postgres://`, `postgresql+psycopg://`) are driven by psycopg 3.

SQLite is opened in WAL mode with a busy timeout; writers take the write lock when their
transaction begins (`BEGIN IMMEDIATE`), so two writers queue instead of failing on upgrade.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from assay.catalog.errors import CatalogError

ENV_VAR = "ASSAY_CATALOG"
BUSY_TIMEOUT_MS = 30_000
CONNECT_TIMEOUT_S = 10
WRITE = "assay_write"           # execution option: this connection's transactions write


def default_path() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "assay" / "catalog.sqlite"


def resolve(location: str | None = None) -> tuple[URL, str]:
    """The SQLAlchemy URL of a catalog and the name to show for it (no password)."""
    loc = location or os.environ.get(ENV_VAR) or ""
    default = not loc
    if default:
        loc = str(default_path())
    if "://" not in loc:
        path = Path(loc).expanduser().absolute()
        if default:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise CatalogError(str(path), f"cannot create the catalog folder: {exc.strerror or exc}") \
                    from None
        elif not path.parent.is_dir():
            raise CatalogError(str(path), f"no such folder: {path.parent}")
        return URL.create("sqlite+pysqlite", database=str(path)), str(path)
    try:
        url = make_url(loc)
    except (ArgumentError, ValueError):
        raise CatalogError(_redact(loc), "not a database URL (expected a path, sqlite:///PATH or "
                           "postgresql+psycopg://USER@HOST/DB)") from None
    if url.drivername in ("postgresql", "postgres", "postgresql+psycopg"):
        url = url.set(drivername="postgresql+psycopg")
    elif url.drivername in ("sqlite", "sqlite+pysqlite"):
        if not url.database or url.database == ":memory:":
            raise CatalogError(_redact(loc), "an SQLite catalog needs a file path (sqlite:///PATH)")
        url = url.set(drivername="sqlite+pysqlite")
    else:
        raise CatalogError(url.render_as_string(hide_password=True),
                           f"unsupported database {url.drivername!r} (SQLite or PostgreSQL)")
    shown = url.database if url.drivername.startswith("sqlite") else url.render_as_string(hide_password=True)
    return url, str(shown)


def _redact(text: str) -> str:
    """A URL-like string with anything between '://' and '@' hidden."""
    head, sep, rest = text.partition("://")
    if sep and "@" in rest:
        return f"{head}://***@{rest.split('@', 1)[1]}"
    return text


def make_engine(url: URL, shown: str) -> Engine:
    try:
        if url.drivername.startswith("sqlite"):
            engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
            _sqlite_events(engine)
            return engine
        args = {} if "connect_timeout" in url.query else {"connect_timeout": CONNECT_TIMEOUT_S}
        return create_engine(url, connect_args=args, pool_pre_ping=True)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise CatalogError(shown, f"cannot use this database: {exc}") from None


def _sqlite_events(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record) -> None:          # type: ignore[no-untyped-def]
        dbapi_conn.isolation_level = None               # we emit BEGIN ourselves (below)
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn) -> None:                           # type: ignore[no-untyped-def]
        mode = "IMMEDIATE" if conn.get_execution_options().get(WRITE) else "DEFERRED"
        conn.exec_driver_sql(f"BEGIN {mode}")

"""Bring a catalog's schema to `schema.HEAD` with the Alembic scripts shipped in `migrations/`.

A catalog already at head is recognised with one query and Alembic is not imported. Otherwise
the upgrade runs in one transaction holding the write lock (SQLite `BEGIN IMMEDIATE`, a
PostgreSQL advisory lock), so two processes opening a fresh catalog at once migrate it once.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, Engine, inspect, text

from assay.catalog import schema
from assay.catalog.errors import CatalogError
from assay.catalog.location import WRITE

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
LOCK_KEY = 0x6173_7361_7900          # "assay" + 0: the catalog's PostgreSQL advisory lock


def lock(conn: Connection) -> None:
    """Serialise writers for the rest of this transaction (SQLite: BEGIN IMMEDIATE did it)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})


def current_revision(conn: Connection) -> str | None:
    insp = inspect(conn)
    if not insp.has_table(schema.VERSION_TABLE):
        return None
    rows = conn.execute(text(f"SELECT version_num FROM {schema.VERSION_TABLE}")).scalars().all()
    return rows[0] if len(rows) == 1 else None


def alembic_config(conn: Connection):                 # type: ignore[no-untyped-def]
    from alembic.config import Config
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    return cfg


def known_revisions() -> list[str]:
    from alembic.script import ScriptDirectory
    return [s.revision for s in ScriptDirectory(str(MIGRATIONS)).walk_revisions()]


def upgrade(engine: Engine, shown: str, target: str = "head") -> None:
    """Create or upgrade the schema to `target` (tests use older targets)."""
    with engine.connect() as conn:
        rev = current_revision(conn)
        tables = set(inspect(conn).get_table_names())
        conn.rollback()
    if rev == schema.HEAD and target == "head":
        return
    if rev is None and tables and engine.dialect.name == "sqlite":
        names = ", ".join(sorted(tables)[:5])
        raise CatalogError(shown, f"not an assay catalog (an SQLite database with other tables: {names})")
    if rev is not None and rev not in known_revisions():
        raise CatalogError(shown, f"catalog schema revision {rev!r} is newer than this assay knows "
                                  f"(up to {schema.HEAD!r}); upgrade assay")
    from alembic import command
    with engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
        lock(conn)
        command.upgrade(alembic_config(conn), target)

"""Catalog tests run on both backends: an SQLite file, and a real PostgreSQL 16 server that the
session starts itself with `pgserver` (a fresh database per test). PostgreSQL tests are skipped
when pgserver is not installed."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.catalog.pg import fresh_pg_database


@pytest.fixture(scope="session")
def pg_server() -> Iterator[object]:
    """One server per test session. Its data folder is outside pytest's temporary folders:
    run as root, pgserver runs PostgreSQL as a separate system user, which must be able to
    reach the folder (pytest resets its own base folder to mode 0700 whenever a session starts)."""
    pgserver = pytest.importorskip("pgserver")
    base = tempfile.mkdtemp(prefix="assay-pg-")
    os.chmod(base, 0o755)
    os.environ.setdefault("XDG_RUNTIME_DIR", base)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server = pgserver.get_server(os.path.join(base, "data"), cleanup_mode="delete")
    # A throwaway server: no flushing to disk (transactions still commit or roll back as ever).
    server.psql("ALTER SYSTEM SET fsync = off; ALTER SYSTEM SET synchronous_commit = off; "
                "ALTER SYSTEM SET full_page_writes = off; SELECT pg_reload_conf();")
    try:
        yield server
    finally:
        # Immediate shutdown (SIGQUIT to this server's postmaster): nothing here needs keeping,
        # and a clean shutdown's checkpoint takes seconds on this shared machine.
        pid = server.get_pid()
        if pid:
            import psutil
            os.kill(pid, signal.SIGQUIT)
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).wait(20)
        server.cleanup()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A catalog location that does not exist yet, on each backend."""
    if request.param == "sqlite":
        return str(tmp_path / "catalog.sqlite")
    return fresh_pg_database(request.getfixturevalue("pg_server"))

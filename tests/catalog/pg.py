"""A fresh database per test on the session's pgserver PostgreSQL."""

from __future__ import annotations

import itertools
import os

_db_numbers = itertools.count()


def sqlalchemy_url(libpq_uri: str) -> str:
    """pgserver gives `postgresql://postgres:@/DB?host=/socket/dir`; SQLAlchemy's psycopg 3
    dialect takes the same URL under the `postgresql+psycopg` scheme."""
    assert libpq_uri.startswith("postgresql://"), libpq_uri
    return "postgresql+psycopg://" + libpq_uri[len("postgresql://"):]


def fresh_pg_database(server: object) -> str:
    name = f"catalog_{os.getpid()}_{next(_db_numbers)}"
    server.psql(f"CREATE DATABASE {name} STRATEGY = FILE_COPY;")   # type: ignore[attr-defined]
    return sqlalchemy_url(server.get_uri(name))                      # type: ignore[attr-defined]

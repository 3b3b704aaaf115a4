"""Alembic environment: runs on the connection and transaction the catalog store opened."""

from __future__ import annotations

from alembic import context

from assay.catalog.schema import VERSION_TABLE, metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, version_table=VERSION_TABLE,
                  render_as_batch=connection.dialect.name == "sqlite")
context.run_migrations()

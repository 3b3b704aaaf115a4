"""Alembic migrations of the catalog schema, applied by `assay.catalog.store` when a catalog opens.

Users need no alembic.ini: the store builds the Alembic configuration in code and hands this
environment an open connection (`config.attributes["connection"]`) inside its own transaction.
"""

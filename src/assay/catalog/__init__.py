"""The lineage catalog: many models' fingerprints in one database, searched by an LSH index.

SQLite by default (`$XDG_DATA_HOME/assay/catalog.sqlite`), PostgreSQL by URL for teams; one
schema (`schema.py`) created and upgraded by the Alembic migrations in `migrations/` when a
catalog opens. See `store.Catalog`.
"""

from assay.catalog.errors import CatalogError
from assay.catalog.store import Added, Catalog, Entry, FindResult, Link, Match, Removed

__all__ = ["Added", "Catalog", "CatalogError", "Entry", "FindResult", "Link", "Match", "Removed"]

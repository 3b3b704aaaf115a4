"""The catalog's error: one line naming the catalog and what went wrong."""

from __future__ import annotations

from assay.errors import AssayError


class CatalogError(AssayError):
    """The catalog cannot be opened, migrated, read or written (bad URL, unreadable file,
    not a catalog, a newer schema, a database error)."""

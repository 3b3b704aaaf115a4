"""Versioned documents assay writes and reads back (manifests)."""

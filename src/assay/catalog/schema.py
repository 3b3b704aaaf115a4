"""The catalog's one schema (SQLAlchemy Core), the same on SQLite and PostgreSQL.

`HEAD` must name the newest revision in `migrations/versions/` (a test pins this), so that a
catalog already at head opens without importing Alembic. Migrations create these tables; this
module is what the store reads and writes through, never `create_all`.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

HEAD = "0002"
VERSION_TABLE = "assay_catalog_version"   # not `alembic_version`: a team database may hold others

metadata = MetaData()

models = Table(
    "models", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("content_id", String(128), nullable=False),     # assay-model-v1 content identity
    Column("named_id", String(128), nullable=False),
    Column("label", Text, nullable=False),                  # what the user named when adding
    Column("format", String(64), nullable=False),
    Column("parameters", BigInteger, nullable=False),
    Column("declared", JSON, nullable=False),               # declared metadata, shown, never trusted
    Column("fp_version", String(32), nullable=False),
    Column("fingerprint", LargeBinary, nullable=False),     # lineage.fingerprint.to_bytes
    Column("added_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("content_id", name="uq_models_content_id"),
)

# The candidate index: one row per (LSH key of a model's fingerprint, model). A query looks up
# its own keys here and only the models sharing some are compared pairwise.
lsh_keys = Table(
    "lsh_keys", metadata,
    Column("key", String(128), primary_key=True),
    Column("model_id", Integer, ForeignKey("models.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_lsh_keys_model_id", "model_id"),
)

# Relations found when a model was added: parent -> child, or an undirected pair (`directed`
# false, parent the older entry).
edges = Table(
    "edges", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("parent_id", Integer, ForeignKey("models.id", ondelete="CASCADE"), nullable=False),
    Column("child_id", Integer, ForeignKey("models.id", ondelete="CASCADE"), nullable=False),
    Column("relation", String(32), nullable=False),
    Column("directed", Boolean, nullable=False),
    Column("confidence", Float, nullable=False),
    Column("summary", Text, nullable=False),
    Column("evidence", JSON, nullable=False),
    UniqueConstraint("parent_id", "child_id", name="uq_edges_pair"),
    Index("ix_edges_child_id", "child_id"),
)

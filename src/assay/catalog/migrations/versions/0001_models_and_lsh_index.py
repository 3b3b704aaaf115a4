"""Models and the LSH candidate index.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("content_id", sa.String(128), nullable=False),
        sa.Column("named_id", sa.String(128), nullable=False),
        sa.Column("label", sa.Text, nullable=False),
        sa.Column("format", sa.String(64), nullable=False),
        sa.Column("parameters", sa.BigInteger, nullable=False),
        sa.Column("declared", sa.JSON, nullable=False),
        sa.Column("fp_version", sa.String(32), nullable=False),
        sa.Column("fingerprint", sa.LargeBinary, nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("content_id", name="uq_models_content_id"),
    )
    op.create_table(
        "lsh_keys",
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id", ondelete="CASCADE"),
                  primary_key=True),
    )
    op.create_index("ix_lsh_keys_model_id", "lsh_keys", ["model_id"])


def downgrade() -> None:
    op.drop_index("ix_lsh_keys_model_id", table_name="lsh_keys")
    op.drop_table("lsh_keys")
    op.drop_table("models")

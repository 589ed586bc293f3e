"""evidence: RFC 3161 time-stamps of anchored roots (the second witness)

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-26

Each anchored batch root is also stamped by the configured Time-Stamp Authorities; one row per
batch and TSA holds the TSA's reply as it came.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "batch_timestamps",
        sa.Column("batch_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("tsa", sa.String(500), nullable=False),
        sa.Column("response", sa.LargeBinary(), nullable=False),
        sa.Column("gen_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("serial_number", sa.String(80), nullable=False),
        sa.Column("policy", sa.String(200), nullable=False),
        sa.Column("certificates", sa.JSON(), nullable=False),
        sa.Column("stamped_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["batches.id"], name=op.f("fk_batch_timestamps_batch_id_batches")
        ),
        sa.PrimaryKeyConstraint("batch_id", "tsa", name=op.f("pk_batch_timestamps")),
    )


def downgrade() -> None:
    op.drop_table("batch_timestamps")

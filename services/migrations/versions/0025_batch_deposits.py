"""evidence: judicial-chain deposits of anchored roots (the third kind of witness)

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07

Each anchored batch root's digest (SM3 by default) may also be deposited with a judicial-chain
evidence platform (Tencent Cloud BTOE); one row per batch and witness holds the bundle entry made
from the platform's answer.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "batch_deposits",
        sa.Column("batch_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("witness", sa.String(40), nullable=False),
        sa.Column("entry", sa.JSON(), nullable=False),
        sa.Column("deposited_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["batches.id"], name=op.f("fk_batch_deposits_batch_id_batches")
        ),
        sa.PrimaryKeyConstraint("batch_id", "witness", name=op.f("pk_batch_deposits")),
    )


def downgrade() -> None:
    op.drop_table("batch_deposits")

"""shared: withdrawn candidate links

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "link_revocations",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("tenant", sa.String(length=128), nullable=False),
        sa.Column("agreement_id", sa.String(length=100), nullable=False),
        sa.Column("candidate_ref", sa.String(length=200), nullable=True),
        sa.Column("purpose", sa.String(length=32), nullable=True),
        sa.Column("subject", sa.String(length=100), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("revoked_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_link_revocations")),
    )
    op.create_index("ix_link_revocations_scope", "link_revocations", ["tenant", "agreement_id"])


def downgrade() -> None:
    op.drop_index("ix_link_revocations_scope", table_name="link_revocations")
    op.drop_table("link_revocations")

"""contracts: a tenant's own choices (automatic breach, candidate uploads)

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tenant_policies",
        sa.Column("tenant", sa.String(length=128), nullable=False),
        sa.Column("auto_breach", sa.Boolean(), nullable=True),
        sa.Column("candidate_uploads", sa.String(length=16), nullable=True),
        sa.Column("updated_by", sa.String(length=32), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant", name=op.f("pk_tenant_policies")),
    )


def downgrade() -> None:
    op.drop_table("tenant_policies")

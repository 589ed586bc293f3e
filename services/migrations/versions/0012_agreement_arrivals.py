"""contracts: the candidate's arrival and the values of a milestone's evidence leaf

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-27

IntentAgreements 2.0.0 records the candidate's signed arrival (which the employer may dispute)
and computes a milestone's evidence leaf on chain from the document's [sha256, salt], so the
service keeps both.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("agreements", sa.Column("arrived_at", sa.DateTime(timezone=True)))
    op.add_column("agreements", sa.Column("arrival_disputed_at", sa.DateTime(timezone=True)))
    op.add_column("agreement_milestones", sa.Column("leaf_values", sa.JSON()))


def downgrade() -> None:
    op.drop_column("agreement_milestones", "leaf_values")
    op.drop_column("agreements", "arrival_disputed_at")
    op.drop_column("agreements", "arrived_at")

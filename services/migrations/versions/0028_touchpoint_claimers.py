"""notify: who claimed a touchpoint being sent

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-07

`touchpoints.claimed_by` names the sent-journal slot of the dispatcher that claimed the row
(`<journal folder id>.<host>/sent-N`). A dispatcher that starts takes the slots no live process
holds: the rows their dead holders claimed go back to the queue at once, instead of after the
lease (two minutes on PostgreSQL). Rows claimed before this revision keep the lease.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("touchpoints") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(80), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("touchpoints") as batch:
        batch.drop_column("claimed_by")

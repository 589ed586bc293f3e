"""contracts and notify: the breach-due alert sent once per start date, a tenant's own SMS account

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-07

`agreements.breach_due_at` records the breach date an `agreement.breach_due` message was sent for
(an amendment that moves the start date makes it due again). `notify_sms_settings` gains the
tenant's own SMS provider and its credentials, sealed with the master key (`sealed`); where a
tenant set none, the deployment's account is used.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("agreements") as batch:
        batch.add_column(sa.Column("breach_due_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("notify_sms_settings") as batch:
        batch.add_column(sa.Column("provider", sa.String(16), nullable=True))
        batch.add_column(sa.Column("sealed", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notify_sms_settings") as batch:
        batch.drop_column("sealed")
        batch.drop_column("provider")
    with op.batch_alter_table("agreements") as batch:
        batch.drop_column("breach_due_at")

"""contracts: the proof of a one-time code belongs to the browser that proved it, and binds once

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06

`candidate_codes` gains the keyed hash of the enrolment session the proof opened (the browser's
HttpOnly cookie), when the proof bound a signer (one proof binds one signer), and the keyed hash
of the offer's contact the code went to. Codes sent before this revision have none: they open no
session, so a candidate who proved a code just before the upgrade asks for a new one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("candidate_codes") as batch:
        batch.add_column(sa.Column("destination_hash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("session_hash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("used_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_candidate_codes_session_hash", ["session_hash"])


def downgrade() -> None:
    with op.batch_alter_table("candidate_codes") as batch:
        batch.drop_index("ix_candidate_codes_session_hash")
        batch.drop_column("used_at")
        batch.drop_column("session_hash")
        batch.drop_column("destination_hash")

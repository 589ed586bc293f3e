"""contracts: the candidate's portal: a candidate bound after the offer, one-time codes, the
candidate's signers (passkeys, wallets) and the journal of what they did (the signing record)

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-26

`agreements.candidate_address` becomes optional: an offer names its candidate once they have
proved control of the contact HR gave and enrolled a passkey or a wallet.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("agreements") as batch:
        batch.alter_column("candidate_address", existing_type=sa.String(42), nullable=True)
    op.create_table(
        "candidate_codes",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("agreement_id", sa.String(36), nullable=False, index=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("destination", sa.String(80), nullable=False),  # masked
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "candidate_signers",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("agreement_id", sa.String(36), nullable=False, index=True),
        sa.Column("kind", sa.String(16), nullable=False),  # passkey | wallet
        sa.Column("address", sa.String(42), nullable=False),
        sa.Column("credential_id", sa.String(400), nullable=True),
        sa.Column("public_key_x", sa.String(66), nullable=True),
        sa.Column("public_key_y", sa.String(66), nullable=True),
        sa.Column("code_id", sa.String(36), nullable=False),
        sa.Column("tx_hash", sa.String(66), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    )
    op.create_table(
        "candidate_events",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("agreement_id", sa.String(36), nullable=False, index=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.Column("ip", sa.String(64), nullable=True),
        sa.Column("user_agent", sa.String(400), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("candidate_events")
    op.drop_table("candidate_signers")
    op.drop_table("candidate_codes")
    with op.batch_alter_table("agreements") as batch:
        batch.alter_column("candidate_address", existing_type=sa.String(42), nullable=False)

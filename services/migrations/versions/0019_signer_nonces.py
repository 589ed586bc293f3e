"""shared: the next nonce of each signer on each chain, taken in the same database transaction
that stores the signed transaction (so two processes never sign two things with one nonce);
contracts: each chain operation keeps its unsigned fields (to re-sign it with a higher fee),
when and at which block it was last sent, and the hashes of the attempts it replaced

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signer_nonces",
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("signer", sa.String(42), nullable=False),
        sa.Column("next_nonce", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("chain_id", "signer", name="pk_signer_nonces"),
    )
    with op.batch_alter_table("chain_ops") as batch:
        batch.add_column(sa.Column("tx_fields", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("sent_block", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("earlier_hashes", sa.JSON(), nullable=True))
    op.create_index("ix_chain_ops_signer_nonce", "chain_ops", ["signer", "nonce"])


def downgrade() -> None:
    op.drop_index("ix_chain_ops_signer_nonce", table_name="chain_ops")
    with op.batch_alter_table("chain_ops") as batch:
        batch.drop_column("earlier_hashes")
        batch.drop_column("sent_block")
        batch.drop_column("sent_at")
        batch.drop_column("tx_fields")
    op.drop_table("signer_nonces")

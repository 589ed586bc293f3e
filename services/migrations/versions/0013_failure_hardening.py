"""shared: the chain a deployment was recorded on (genesis hash), and indexes for retention

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-26

The genesis hash tells a chain reset (another history: redeploy) from a node that is merely
behind (same history: wait). The indexes let the retention sweep find old operational rows.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("chain_deployments", sa.Column("genesis_hash", sa.String(66), nullable=True))
    op.create_index(
        "ix_outbox_sent",
        "outbox",
        ["sent_at"],
        postgresql_where=sa.text("sent_at IS NOT NULL"),
        sqlite_where=sa.text("sent_at IS NOT NULL"),
    )
    op.create_index("ix_handled_messages_handled_at", "handled_messages", ["handled_at"])
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])
    op.create_index("ix_notify_used_tokens_used_at", "notify_used_tokens", ["used_at"])


def downgrade() -> None:
    op.drop_index("ix_notify_used_tokens_used_at", table_name="notify_used_tokens")
    op.drop_index("ix_idempotency_keys_created_at", table_name="idempotency_keys")
    op.drop_index("ix_handled_messages_handled_at", table_name="handled_messages")
    op.drop_index("ix_outbox_sent", table_name="outbox")
    op.drop_column("chain_deployments", "genesis_hash")

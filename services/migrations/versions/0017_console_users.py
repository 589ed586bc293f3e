"""shared: people who sign in to the console (accounts per tenant with a role) and their
sessions; contracts: the history of each agreement's risk changes; indexes for reading one
agreement's chain operations and documents (the console's board and timeline)

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-26

Passwords are argon2id hashes; set-up links and session cookies are stored as sha256 only.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_users",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=True),
        sa.Column("setup_sha256", sa.String(64), nullable=True),
        sa.Column("setup_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_console_users"),
        sa.UniqueConstraint("email", name="uq_console_users_email"),
        sa.UniqueConstraint("setup_sha256", name="uq_console_users_setup_sha256"),
    )
    op.create_index("ix_console_users_tenant", "console_users", ["tenant"])
    op.create_table(
        "console_sessions",
        sa.Column("token_sha256", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(16), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token_sha256", name="pk_console_sessions"),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["console_users.id"],
            name="fk_console_sessions_user_id_console_users",
        ),
    )
    op.create_index("ix_console_sessions_user", "console_sessions", ["user_id"])
    op.create_table(
        "agreement_risk_changes",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("agreement_id", sa.String(36), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("previous", sa.String(8), nullable=False),
        sa.Column("level", sa.String(8), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_agreement_risk_changes"),
        sa.ForeignKeyConstraint(
            ["agreement_id"],
            ["agreements.id"],
            name="fk_agreement_risk_changes_agreement_id_agreements",
        ),
    )
    op.create_index(
        "ix_agreement_risk_changes_agreement", "agreement_risk_changes", ["agreement_id", "id"]
    )

    op.create_index("ix_chain_ops_agreement", "chain_ops", ["agreement_id", "id"])
    op.create_index("ix_documents_tenant_agreement", "documents", ["tenant", "agreement_id"])


def downgrade() -> None:
    op.drop_index("ix_documents_tenant_agreement", table_name="documents")
    op.drop_index("ix_chain_ops_agreement", table_name="chain_ops")
    op.drop_index("ix_agreement_risk_changes_agreement", table_name="agreement_risk_changes")
    op.drop_table("agreement_risk_changes")
    op.drop_index("ix_console_sessions_user", table_name="console_sessions")
    op.drop_table("console_sessions")
    op.drop_index("ix_console_users_tenant", table_name="console_users")
    op.drop_table("console_users")

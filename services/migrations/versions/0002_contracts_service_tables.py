"""contracts service tables

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agreements",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant", sa.String(length=128), nullable=False),
        sa.Column("onchain_id", sa.String(length=66), nullable=False),
        sa.Column("candidate_ref", sa.String(length=200), nullable=False),
        sa.Column("candidate_address", sa.String(length=42), nullable=False),
        sa.Column("contact", sa.JSON(), nullable=False),
        sa.Column("employer_name", sa.String(length=200), nullable=False),
        sa.Column("employer_address", sa.String(length=42), nullable=False),
        sa.Column("position", sa.String(length=200), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("monthly_salary", sa.BigInteger(), nullable=False),
        sa.Column("liquidated_damages", sa.BigInteger(), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("grace_days", sa.Integer(), nullable=False),
        sa.Column("offer_expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("terms_text", sa.Text(), nullable=False),
        sa.Column("terms_hash", sa.String(length=66), nullable=False),
        sa.Column("non_compete", sa.Boolean(), nullable=False),
        sa.Column("project_wrap_up", sa.Boolean(), nullable=False),
        sa.Column("replacement_days", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("risk_level", sa.String(length=8), nullable=False),
        sa.Column("risk_score", sa.Integer(), nullable=False),
        sa.Column("risk_reasons", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agreements")),
        sa.UniqueConstraint("onchain_id", name=op.f("uq_agreements_onchain_id")),
    )
    with op.batch_alter_table("agreements", schema=None) as batch_op:
        batch_op.create_index("ix_agreements_state", ["state"], unique=False)
        batch_op.create_index(
            "ix_agreements_tenant_risk", ["tenant", "risk_level", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_agreements_tenant_state", ["tenant", "state", "created_at"], unique=False
        )

    op.create_table(
        "agreement_milestones",
        sa.Column("agreement_id", sa.String(length=36), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("document_id", sa.String(length=36), nullable=True),
        sa.Column("leaf", sa.String(length=66), nullable=True),
        sa.Column("root", sa.String(length=66), nullable=True),
        sa.Column("proof", sa.JSON(), nullable=True),
        sa.Column("tx_hash", sa.String(length=66), nullable=True),
        sa.Column("overdue_notified", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agreement_id"],
            ["agreements.id"],
            name=op.f("fk_agreement_milestones_agreement_id_agreements"),
        ),
        sa.PrimaryKeyConstraint("agreement_id", "idx", name=op.f("pk_agreement_milestones")),
    )
    op.create_table(
        "agreement_signals",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("agreement_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("answer", sa.String(length=20), nullable=True),
        sa.Column("new_date", sa.String(length=40), nullable=True),
        sa.Column("delay_hours", sa.Float(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agreement_id"],
            ["agreements.id"],
            name=op.f("fk_agreement_signals_agreement_id_agreements"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agreement_signals")),
    )
    with op.batch_alter_table("agreement_signals", schema=None) as batch_op:
        batch_op.create_index(
            "ix_agreement_signals_agreement", ["agreement_id", "id"], unique=False
        )

    op.create_table(
        "chain_ops",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("agreement_id", sa.String(length=36), nullable=False),
        sa.Column("op", sa.String(length=32), nullable=False),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.Column("signer", sa.String(length=42), nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("raw_tx", sa.LargeBinary(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["agreement_id"], ["agreements.id"], name=op.f("fk_chain_ops_agreement_id_agreements")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chain_ops")),
    )
    with op.batch_alter_table("chain_ops", schema=None) as batch_op:
        batch_op.create_index("ix_chain_ops_state", ["state", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("chain_ops", schema=None) as batch_op:
        batch_op.drop_index("ix_chain_ops_state")

    op.drop_table("chain_ops")
    with op.batch_alter_table("agreement_signals", schema=None) as batch_op:
        batch_op.drop_index("ix_agreement_signals_agreement")

    op.drop_table("agreement_signals")
    op.drop_table("agreement_milestones")
    with op.batch_alter_table("agreements", schema=None) as batch_op:
        batch_op.drop_index("ix_agreements_tenant_state")
        batch_op.drop_index("ix_agreements_tenant_risk")
        batch_op.drop_index("ix_agreements_state")

    op.drop_table("agreements")

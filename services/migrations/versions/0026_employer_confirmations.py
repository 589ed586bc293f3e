"""notify: the issuing employer confirms a document; evidence: tenants' own witness accounts

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-07

The candidate authorises, in the portal, a request to the former employer's domain; HR's request
carries the document's fingerprints, and the answer (once) is anchored as an attestation.
A tenant may set its own judicial-chain account (BTOE), sealed under the master key.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notify_employer_consents",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("agreement_id", sa.String(36), nullable=False),
        sa.Column("candidate_ref", sa.String(200), nullable=False),
        sa.Column("employer_domain", sa.String(253), nullable=False),
        sa.Column("statement", sa.Text(), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("given_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notify_employer_consents")),
    )
    op.create_index(
        "ix_notify_employer_consents_scope",
        "notify_employer_consents",
        ["tenant", "agreement_id", "employer_domain"],
    )
    op.create_table(
        "notify_employer_confirmations",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("agreement_id", sa.String(36), nullable=False),
        sa.Column("candidate_ref", sa.String(200), nullable=False),
        sa.Column("document_id", sa.String(36), nullable=False),
        sa.Column("document_kind", sa.String(40), nullable=False),
        sa.Column("sha256", sa.String(66), nullable=False),
        sa.Column("sm3", sa.String(66), nullable=False),
        sa.Column("employer_domain", sa.String(253), nullable=False),
        sa.Column("employer_email", sa.String(320), nullable=False),
        sa.Column("consent_id", sa.String(36), nullable=False),
        sa.Column("requested_by", sa.String(32), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("message_id", sa.String(300), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("answer", sa.String(16), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_via", sa.String(8), nullable=True),
        sa.Column("reply", sa.JSON(), nullable=True),
        sa.Column("attestation_document_id", sa.String(36), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notify_employer_confirmations")),
    )
    op.create_index(
        "ux_notify_employer_confirmations_once",
        "notify_employer_confirmations",
        ["tenant", "document_id", "employer_domain"],
        unique=True,
    )
    op.create_index(
        "ix_notify_employer_confirmations_agreement",
        "notify_employer_confirmations",
        ["agreement_id"],
    )
    op.create_index(
        "ix_notify_employer_confirmations_recent",
        "notify_employer_confirmations",
        ["tenant", "requested_at"],
    )

    op.create_table(
        "evidence_witness_accounts",
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("witness", sa.String(40), nullable=False),
        sa.Column("key_version", sa.String(32), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("nonce", sa.LargeBinary(), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("secret_id_hint", sa.String(16), nullable=False),
        sa.Column("region", sa.String(40), nullable=False),
        sa.Column("hash_algorithm", sa.String(8), nullable=False),
        sa.Column("updated_by", sa.String(32), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "witness", name=op.f("pk_evidence_witness_accounts")),
    )


def downgrade() -> None:
    op.drop_table("evidence_witness_accounts")
    op.drop_table("notify_employer_confirmations")
    op.drop_table("notify_employer_consents")

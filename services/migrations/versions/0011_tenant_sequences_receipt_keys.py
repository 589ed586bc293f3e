"""evidence: per-tenant receipt sequence numbers, the history of receipt keys

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-26

Receipts used to carry one global sequence number. Existing documents keep theirs as their
tenant's sequence (their receipts are signed and never change); each tenant's counter starts
after its highest number, so numbers stay monotonic within a tenant. Every receipt key found in
stored receipts is recorded with the period it signed in; the most recently used one is left
open (the service records its configured key at start and retires the others).
"""

from __future__ import annotations

import base64

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A NOT NULL column needs a value for existing rows; every insert gives one explicitly.
    op.add_column(
        "documents",
        sa.Column("sequence", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
    )
    op.execute("UPDATE documents SET sequence = seq")
    if op.get_bind().dialect.name != "sqlite":  # SQLite cannot drop a default in place
        op.alter_column("documents", "sequence", server_default=None)
    op.create_index(
        "ix_documents_tenant_sequence", "documents", ["tenant", "sequence"], unique=True
    )
    op.drop_index("ix_documents_tenant_candidate", table_name="documents")
    op.create_index(
        "ix_documents_tenant_candidate", "documents", ["tenant", "candidate_ref", "sequence"]
    )

    op.create_table(
        "tenant_sequences",
        sa.Column("tenant", sa.String(length=128), nullable=False),
        sa.Column("last_sequence", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("tenant", name=op.f("pk_tenant_sequences")),
    )
    op.execute(
        "INSERT INTO tenant_sequences (tenant, last_sequence) "
        "SELECT tenant, MAX(sequence) FROM documents GROUP BY tenant"
    )

    receipt_keys = op.create_table(
        "receipt_keys",
        sa.Column("key_id", sa.String(length=40), nullable=False),
        sa.Column("public_key_hex", sa.String(length=64), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_receipt_keys")),
    )
    assert receipt_keys is not None
    documents = sa.table(
        "documents",
        sa.column("receipt", sa.JSON()),
        sa.column("received_at", sa.DateTime(timezone=True)),
    )
    key_id = documents.c.receipt["payload"]["key_id"].as_string()
    public_key = documents.c.receipt["public_key"].as_string()
    used = (
        op.get_bind()
        .execute(
            sa.select(
                key_id,
                public_key,
                sa.func.min(documents.c.received_at),
                sa.func.max(documents.c.received_at),
            ).group_by(key_id, public_key)
        )
        .all()
    )
    latest = max((row[3] for row in used), default=None)
    seen: set[str] = set()
    rows = []
    for kid, public, first, last in sorted(used, key=lambda r: r[3]):
        if kid is None or public is None or kid in seen:
            continue
        seen.add(kid)
        raw = base64.urlsafe_b64decode(public + "=" * (-len(public) % 4))
        rows.append(
            {
                "key_id": kid,
                "public_key_hex": raw.hex(),
                "valid_from": first,
                "valid_until": None if last == latest else last,
            }
        )
    if rows:
        op.bulk_insert(receipt_keys, rows)


def downgrade() -> None:
    op.drop_table("receipt_keys")
    op.drop_table("tenant_sequences")
    op.drop_index("ix_documents_tenant_candidate", table_name="documents")
    op.create_index(
        "ix_documents_tenant_candidate", "documents", ["tenant", "candidate_ref", "seq"]
    )
    op.drop_index("ix_documents_tenant_sequence", table_name="documents")
    with op.batch_alter_table("documents") as batch_op:
        batch_op.drop_column("sequence")

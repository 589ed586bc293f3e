"""evidence: hash-only intake stores its signed batch receipt once (`intake_batches`); each of
its documents keeps only its path into it (`documents.receipt` = {"item_proof": [...]}) and the
batch's id (`documents.intake_batch_id`)

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-26

Rows stored before this revision keep their whole receipt (no `intake_batch_id`) and are served
as before; the receipt served for a new row is rebuilt byte for byte: the batch receipt, the
document's statement (from its columns) and its path.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "intake_batches",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("receipt", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_intake_batches"),
    )
    fk = "fk_documents_intake_batch_id_intake_batches"
    if op.get_bind().dialect.name == "sqlite":  # SQLite adds a column's reference inline only
        op.execute(
            "ALTER TABLE documents ADD COLUMN intake_batch_id INTEGER "
            f"CONSTRAINT {fk} REFERENCES intake_batches (id)"
        )
    else:
        op.add_column("documents", sa.Column("intake_batch_id", sa.BigInteger(), nullable=True))
        op.create_foreign_key(fk, "documents", "intake_batches", ["intake_batch_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.drop_column("intake_batch_id")
    op.drop_table("intake_batches")

"""evidence: a tree's leaves are stored once, not a path per row, and a document's status is
its batch's. A hash-only intake batch
keeps its statements' leaves (`intake_batches.leaves`) and an anchored batch its documents'
leaves (`batches.leaves`), each as the concatenated 32-byte leaves in tree order. A new row's
`documents.receipt` and `batch_members.proof` then hold JSON `null`, and the path is rebuilt
from the stored tree and the row's own leaf when served (the same bytes as before). The two
columns stay NOT NULL: on SQLite making them nullable means copying `documents`, which rows of
`batch_members` reference, under enforced foreign keys.

`documents.status` is dropped: a document is anchored when the batch holding its current proof
is (`status_of`), so anchoring a batch no longer updates each of its documents a second time,
and `documents` goes back to full pages (0021's fill factor 50 made room for that update).

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-26

Measured with 10,000-hash requests on PostgreSQL (`python -m bench.profile_hashes`): a path
per row is about 1 KB of JSON (14 levels), most of the row; the COPY of a request's rows
spent most of its time on it. Rows written before this revision keep their paths and are
served from them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("intake_batches", sa.Column("leaves", sa.LargeBinary(), nullable=True))
    op.add_column("batches", sa.Column("leaves", sa.LargeBinary(), nullable=True))
    # A document's status is its batch's state; no index or constraint names the column, so
    # both databases drop it in place (SQLite >= 3.35) without copying the table.
    op.execute("ALTER TABLE documents DROP COLUMN status")
    if op.get_bind().dialect.name == "postgresql":
        # Half-full pages (0021) made room for that second update; without it they only
        # doubled the heap (an anchoring batch measured the same at fill factor 100).
        op.execute("ALTER TABLE documents RESET (fillfactor)")


def downgrade() -> None:
    # Rows whose path lives in a stored tree have none of their own after a downgrade.
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE documents SET (fillfactor = 50)")
    op.add_column(
        "documents",
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
    )
    op.execute(
        "UPDATE documents SET status = 'anchored' WHERE batch_id IN "
        "(SELECT id FROM batches WHERE state = 'anchored')"
    )
    with op.batch_alter_table("batches") as batch:
        batch.drop_column("leaves")
    with op.batch_alter_table("intake_batches") as batch:
        batch.drop_column("leaves")

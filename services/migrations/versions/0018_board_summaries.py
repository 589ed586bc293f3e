"""notify: the weekly reports e-mailed (`notify_weekly_reports`); web: the console board's
stored summary per agreement (`board_summaries`) and the queue of agreements whose summary is
out of date (`board_changes`), filled by triggers in the same transaction as each change to the
facts the board shows

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-26

Triggers (PostgreSQL and SQLite) on agreements, agreement_milestones, agreement_signals,
chain_ops, touchpoints and documents append the agreement's id to `board_changes`; they only
insert, so they take no lock another writer could wait on. Every agreement on the board today
is queued, so the first read (or `offerseal console rebuild-board`) builds the summaries.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")
# table -> the column naming the agreement
WATCHED = {
    "agreements": "id",
    "agreement_milestones": "agreement_id",
    "agreement_signals": "agreement_id",
    "chain_ops": "agreement_id",
    "touchpoints": "agreement_id",
    "documents": "agreement_id",
}


# The board's sorts (each ending with the primary key, so that a page is read in index order
# and never sorted), the due moments, and the filters' choices.
INDEXES = {
    "urgency": ["tenant", "urgency", "start_at", "candidate_ref", "agreement_id"],
    "start": ["tenant", "start_at", "candidate_ref", "agreement_id"],
    "score": ["tenant", "risk_score", "candidate_ref", "agreement_id"],
    "candidate": ["tenant", "candidate_key", "agreement_id"],
    "next_change": ["tenant", "next_change_at"],
    "choices": ["tenant", "position", "start_week"],
}


def upgrade() -> None:
    op.create_table(
        "board_summaries",
        sa.Column("agreement_id", sa.String(36), nullable=False),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("candidate_ref", sa.String(200), nullable=False),
        sa.Column("candidate_key", sa.String(200), nullable=False),
        sa.Column("position", sa.String(200), nullable=False),
        sa.Column("search", sa.Text(), nullable=False),
        sa.Column("risk_level", sa.String(8), nullable=False),
        sa.Column("risk_score", sa.Integer(), nullable=False),
        sa.Column("overdue", sa.Integer(), nullable=False),
        sa.Column("due_soon", sa.Integer(), nullable=False),
        sa.Column("urgency", sa.String(16), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("start_week", sa.String(10), nullable=False),
        sa.Column("next_change_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("built_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("agreement_id", name="pk_board_summaries"),
    )
    for name, columns in INDEXES.items():
        op.create_index(f"ix_board_summaries_{name}", "board_summaries", columns)
    op.create_table(
        "board_changes",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("agreement_id", sa.String(100), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_board_changes"),
    )
    op.create_table(
        "notify_weekly_reports",
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("week", sa.String(10), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("detail", sa.String(500), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "week", "recipient", name="pk_notify_weekly_reports"),
    )
    if op.get_bind().dialect.name == "postgresql":
        _postgresql_triggers()
    else:
        _sqlite_triggers()
    op.execute(
        "INSERT INTO board_changes (agreement_id) SELECT id FROM agreements"
        " WHERE state IN ('offered', 'committed')"
    )


def _postgresql_triggers() -> None:
    for column in sorted(set(WATCHED.values())):
        op.execute(
            f"""
            CREATE FUNCTION offerseal_board_change_{column}() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
              IF TG_OP <> 'DELETE' AND NEW.{column} IS NOT NULL THEN
                INSERT INTO board_changes (agreement_id) VALUES (NEW.{column});
              END IF;
              IF TG_OP <> 'INSERT' AND OLD.{column} IS NOT NULL
                 AND (TG_OP = 'DELETE' OR OLD.{column} IS DISTINCT FROM NEW.{column}) THEN
                INSERT INTO board_changes (agreement_id) VALUES (OLD.{column});
              END IF;
              RETURN NULL;
            END $$
            """
        )
    for table, column in WATCHED.items():
        op.execute(
            f"CREATE TRIGGER board_change_{table} AFTER INSERT OR UPDATE OR DELETE ON {table}"
            f" FOR EACH ROW EXECUTE FUNCTION offerseal_board_change_{column}()"
        )


def _sqlite_triggers() -> None:
    for table, column in WATCHED.items():
        op.execute(
            f"CREATE TRIGGER board_change_{table}_insert AFTER INSERT ON {table}"
            f" WHEN NEW.{column} IS NOT NULL BEGIN"
            f" INSERT INTO board_changes (agreement_id) VALUES (NEW.{column}); END"
        )
        op.execute(
            f"CREATE TRIGGER board_change_{table}_update AFTER UPDATE ON {table} BEGIN"
            f" INSERT INTO board_changes (agreement_id)"
            f" SELECT NEW.{column} WHERE NEW.{column} IS NOT NULL;"
            f" INSERT INTO board_changes (agreement_id)"
            f" SELECT OLD.{column} WHERE OLD.{column} IS NOT NULL"
            f" AND OLD.{column} IS NOT NEW.{column}; END"
        )
        op.execute(
            f"CREATE TRIGGER board_change_{table}_delete AFTER DELETE ON {table}"
            f" WHEN OLD.{column} IS NOT NULL BEGIN"
            f" INSERT INTO board_changes (agreement_id) VALUES (OLD.{column}); END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in WATCHED:
            op.execute(f"DROP TRIGGER IF EXISTS board_change_{table} ON {table}")
        for column in sorted(set(WATCHED.values())):
            op.execute(f"DROP FUNCTION IF EXISTS offerseal_board_change_{column}()")
    else:
        for table in WATCHED:
            for when in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS board_change_{table}_{when}")
    op.drop_table("notify_weekly_reports")
    op.drop_table("board_changes")
    for name in INDEXES:
        op.drop_index(f"ix_board_summaries_{name}", table_name="board_summaries")
    op.drop_table("board_summaries")

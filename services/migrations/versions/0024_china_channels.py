"""notify: SMS through Aliyun and Tencent Cloud (each message's provider answer and delivery
report, a tenant's approved sign name and templates); HR alerts in DingTalk, WeCom and Feishu

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07

`notify_sms_sends` keeps every message handed to an SMS provider with the provider's whole
answer and, later, its delivery report: the proof that a candidate was notified. Its accepted
rows are what the providers' per-number limits count. `notify_sms_settings` holds a tenant's
approved sign name and template ids. `notify_alert_hooks` keeps a tenant's chat robots (sealed
with the master key), `notify_alerts` the alerts waiting for them and `notify_alert_posts`
what each robot answered. `notify_calendars` is a tenant's switch to mainland China's holiday
calendar.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WAITING = "outcome = 'accepted' AND report_status IS NULL"


def upgrade() -> None:
    op.create_table(
        "notify_sms_sends",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("touchpoint_id", sa.String(36), nullable=False),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("phone", sa.String(20), nullable=False),
        sa.Column("sign_name", sa.String(64), nullable=False),
        sa.Column("template", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("code", sa.String(100), nullable=False),
        sa.Column("request_id", sa.String(100), nullable=False),
        sa.Column("message_ref", sa.String(100), nullable=False),
        sa.Column("answer", sa.JSON(), nullable=False),
        sa.Column("report_status", sa.String(16), nullable=True),
        sa.Column("report_code", sa.String(100), nullable=True),
        sa.Column("report_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("report", sa.JSON(), nullable=True),
    )
    op.create_index("ix_notify_sms_sends_phone", "notify_sms_sends", ["phone", "at"])
    op.create_index("ix_notify_sms_sends_touchpoint", "notify_sms_sends", ["touchpoint_id", "id"])
    op.create_index(
        "ix_notify_sms_sends_waiting",
        "notify_sms_sends",
        ["provider", "at"],
        postgresql_where=sa.text(WAITING),
        sqlite_where=sa.text(WAITING),
    )
    op.create_table(
        "notify_sms_settings",
        sa.Column("tenant", sa.String(128), primary_key=True),
        sa.Column("sign_name", sa.String(64), nullable=True),
        sa.Column("templates", sa.JSON(), nullable=False),
        sa.Column("updated_by", sa.String(32), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )

    op.create_table(
        "notify_alert_hooks",
        sa.Column("tenant", sa.String(128), primary_key=True),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column("platforms", sa.JSON(), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("updated_by", sa.String(32), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "notify_alerts",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("agreement_id", sa.String(36), nullable=False),
        sa.Column("candidate_ref", sa.String(200), nullable=False),
        sa.Column("position", sa.String(200), nullable=False),
        sa.Column("detail", sa.String(300), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("pending", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
    )
    op.create_index(
        "ix_notify_alerts_pending",
        "notify_alerts",
        ["tenant", "id"],
        postgresql_where=sa.text("state = 'pending'"),
        sqlite_where=sa.text("state = 'pending'"),
    )
    op.create_table(
        "notify_alert_posts",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("alerts", sa.JSON(), nullable=False),
        sa.Column("answer", sa.JSON(), nullable=False),
    )
    op.create_index(
        "ix_notify_alert_posts_robot", "notify_alert_posts", ["tenant", "platform", "at"]
    )

    op.create_table(
        "notify_calendars",
        sa.Column("tenant", sa.String(128), primary_key=True),
        sa.Column("calendar", sa.String(8), nullable=False),
        sa.Column("updated_by", sa.String(32), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("notify_calendars")
    op.drop_index("ix_notify_alert_posts_robot", table_name="notify_alert_posts")
    op.drop_table("notify_alert_posts")
    op.drop_index("ix_notify_alerts_pending", table_name="notify_alerts")
    op.drop_table("notify_alerts")
    op.drop_table("notify_alert_hooks")
    op.drop_table("notify_sms_settings")
    op.drop_index("ix_notify_sms_sends_waiting", table_name="notify_sms_sends")
    op.drop_index("ix_notify_sms_sends_touchpoint", table_name="notify_sms_sends")
    op.drop_index("ix_notify_sms_sends_phone", table_name="notify_sms_sends")
    op.drop_table("notify_sms_sends")

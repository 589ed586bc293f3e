"""shared: short links on the people's origin; notify: a tenant's branding of its messages

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-26

A short link (`/l/<code>`) stands for one signed candidate link, with the link's scope and
expiry so that it dies when the link is withdrawn or expires. A tenant's branding gives its
messages a display name, a logo, an accent colour and a Reply-To address.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "short_links",
        sa.Column("code", sa.String(32), primary_key=True),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("agreement_id", sa.String(100), nullable=False),
        sa.Column("candidate_ref", sa.String(200), nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_short_links_scope", "short_links", ["tenant", "agreement_id"])
    op.create_index("ix_short_links_expires_at", "short_links", ["expires_at"])
    op.create_table(
        "notify_branding",
        sa.Column("tenant", sa.String(128), primary_key=True),
        sa.Column("display_name", sa.String(100), nullable=True),
        sa.Column("logo_url", sa.String(500), nullable=True),
        sa.Column("accent_colour", sa.String(7), nullable=True),
        sa.Column("reply_to", sa.String(320), nullable=True),
        sa.Column("updated_by", sa.String(32), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("notify_branding")
    op.drop_index("ix_short_links_expires_at", table_name="short_links")
    op.drop_index("ix_short_links_scope", table_name="short_links")
    op.drop_table("short_links")

"""contracts: an employer address belongs to one tenant

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25

Before this revision any tenant could register any address that had appointed the relayer.
Where two tenants hold the same address, the one that registered it first keeps it; the
others go back to the relayer as employer (their existing agreements keep their employer).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.text("SELECT tenant, address FROM tenant_employers ORDER BY updated_at, tenant")
    ).all()
    seen: set[str] = set()
    for tenant, address in rows:
        if address in seen:
            bind.execute(sa.text("DELETE FROM tenant_employers WHERE tenant = :t"), {"t": tenant})
        seen.add(address)
    op.create_index("ix_tenant_employers_address", "tenant_employers", ["address"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_tenant_employers_address", table_name="tenant_employers")

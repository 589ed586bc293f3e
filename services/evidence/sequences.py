"""Intake numbers: the internal row number of every document, and the tenant's own sequence
that its receipts carry (gap-free and increasing within a tenant, saying nothing about others).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from .models import Document, TenantSequence


def allocate_rows(session: Session, count: int) -> list[int]:
    """Internal row numbers, allocated before signing. SQLite: the transaction holds the write
    lock, so max+1 is safe. PostgreSQL: the column's sequence."""
    if session.connection().dialect.name == "sqlite":
        start = (session.execute(select(func.max(Document.seq))).scalar() or 0) + 1
        return list(range(start, start + count))
    rows = session.execute(
        text(
            "SELECT nextval(pg_get_serial_sequence('documents', 'seq')) "
            "FROM generate_series(1, :n)"
        ),
        {"n": count},
    ).scalars()
    return list(rows)


def allocate_tenant_sequences(session: Session, tenant: str, count: int) -> list[int]:
    """The tenant's next `count` receipt sequence numbers. The counter row is upserted in the
    intake transaction: it stays locked until commit (concurrent intake of the same tenant
    waits; other tenants do not) and a rollback gives the numbers back, so none is skipped."""
    dialect = session.connection().dialect.name
    insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(TenantSequence)
        .values(tenant=tenant, last_sequence=count)
        .on_conflict_do_update(
            index_elements=[TenantSequence.tenant],
            set_={"last_sequence": TenantSequence.last_sequence + count},
        )
        .returning(TenantSequence.last_sequence)
    )
    last = int(session.execute(statement).scalar_one())
    return list(range(last - count + 1, last + 1))

"""Intake numbers: the internal row number of every document, and the tenant's own sequence
that its receipts carry (gap-free and increasing within a tenant, saying nothing about others).
"""

from __future__ import annotations

import datetime as dt
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
            "SELECT nextval(pg_get_serial_sequence('documents', 'seq')) FROM generate_series(1, :n)"
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


def allocate(
    session: Session, tenant: str, count: int, key_id: str, signed_at: dt.datetime
) -> tuple[list[int], list[int]]:
    """Everything intake numbers and notes before it signs, at once: (internal row numbers, the
    tenant's receipt sequence numbers), and the receipt key's period stretched to `signed_at`
    where it does not cover it (`receipt_keys.note_signature`). On PostgreSQL one statement, one
    round trip; the tenant's counter row is locked from here to the commit, so intake calls this
    as late as it can."""
    if session.connection().dialect.name != "postgresql":
        from .receipt_keys import note_signature

        note_signature(session, key_id, signed_at)
        return allocate_rows(session, count), allocate_tenant_sequences(session, tenant, count)
    rows = session.execute(
        text(
            "WITH k AS ("
            " UPDATE receipt_keys SET"
            "  valid_from = LEAST(valid_from, :at),"
            "  valid_until = CASE WHEN valid_until < :at THEN :at ELSE valid_until END"
            " WHERE key_id = :key_id AND (valid_from > :at OR valid_until < :at)),"
            " t AS ("
            " INSERT INTO tenant_sequences (tenant, last_sequence) VALUES (:tenant, :n)"
            " ON CONFLICT (tenant) DO UPDATE"
            " SET last_sequence = tenant_sequences.last_sequence + :n"
            " RETURNING last_sequence)"
            " SELECT nextval(pg_get_serial_sequence('documents', 'seq')),"
            " (SELECT last_sequence FROM t)"
            " FROM generate_series(1, :n)"
        ),
        {"tenant": tenant, "n": count, "key_id": key_id, "at": signed_at},
    ).all()
    last = int(rows[0][1])
    return [int(r[0]) for r in rows], list(range(last - count + 1, last + 1))


def allocate_for(
    session: Session, counts: dict[str, int], key_id: str, signed_at: dt.datetime
) -> dict[str, tuple[list[int], list[int]]]:
    """`allocate` for several tenants in one transaction (group commit): each tenant's
    (internal row numbers, receipt sequence numbers). On SQLite the row numbers come from one
    max+1 for all of them: the rows are inserted only after every number is taken. The
    tenants' counter rows are locked in one order (sorted), so that two groups in two processes
    never wait for each other's rows."""
    counts = dict(sorted(counts.items()))
    if session.connection().dialect.name == "postgresql":
        return {
            tenant: allocate(session, tenant, n, key_id, signed_at) for tenant, n in counts.items()
        }
    from .receipt_keys import note_signature

    note_signature(session, key_id, signed_at)
    rows = allocate_rows(session, sum(counts.values()))
    out: dict[str, tuple[list[int], list[int]]] = {}
    at = 0
    for tenant, n in counts.items():
        out[tenant] = (rows[at : at + n], allocate_tenant_sequences(session, tenant, n))
        at += n
    return out

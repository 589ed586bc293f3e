"""The board from stored summaries: one `board_summaries` row per agreement between offer and
first day, holding what the board shows (light, score, the nine cells, last check-in, next
touchpoint, start, exposure) and what it filters and sorts on (the urgency key, the start week,
the search text), so that the database filters, sorts and pages instead of deriving every row
per request.

A summary is rebuilt (with `queries.derive_rows`, the same derivation as before) when
- a row of `board_changes` names its agreement: triggers append one in the same transaction as
  any change to the agreement, its milestones, check-in answers, chain operations, touchpoints
  or documents (migration 0018), so no committed change can be missed;
- its `next_change_at` passed: the earliest moment a cell turns "due soon" (3 days before its
  due date) or "overdue" (at it), the only changes time makes on its own.
Every read of the board first rebuilds what is out of date for its tenant (usually nothing or a
few rows), under a lock so that two readers never write an older derivation over a newer one;
`offerseal console rebuild-board` rebuilds every summary."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.orm import Session

from ...contracts.models import Agreement
from ...shared.auth import READ_ROLES, Principal
from ...shared.db import Database, is_sqlite
from ...shared.models import BoardChange, BoardSummary, aware
from . import checkpoints as cp
from .queries import derive_rows

CHUNK = 500  # agreements derived per round of queries
DELETE_CHUNK = 5_000
# pg_advisory_xact_lock's key for rebuilding summaries (any 64-bit constant of our own).
REBUILD_LOCK = 0x0FFE55EA1B0A4D


def urgency(level: str, overdue: int, due_soon: int, score: int) -> str:
    """`checkpoints.urgency_key` up to the score as a fixed-width string that sorts the same:
    red, yellow, blue; more overdue cells first; more due soon first; the lower score."""
    return (
        f"{cp.RISK_ORDER.get(level, 3)}{9 - min(overdue, 9)}{9 - min(due_soon, 9)}"
        f"{min(max(score, 0), 999):03d}"
    )


def next_change(cells: Iterable[cp.Cell], now: dt.datetime) -> dt.datetime | None:
    """When time alone next changes a cell's status (pending -> due soon -> overdue)."""
    moments = []
    for cell in cells:
        if cell.due_at is None:
            continue
        if cell.status == cp.PENDING:
            moments.append(cell.due_at - cp.DUE_SOON_WITHIN)
        elif cell.status == cp.DUE_SOON:
            moments.append(cell.due_at)
    later = [m for m in moments if m > now]
    return min(later) if later else None


def _iso(moment: dt.datetime | None) -> str | None:
    return aware(moment).astimezone(dt.UTC).isoformat() if moment is not None else None


def _time(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def summary(row: cp.Row, now: dt.datetime) -> dict[str, Any]:
    """The `board_summaries` values of one derived row."""
    return {
        "agreement_id": row.agreement_id,
        "tenant": str(row.extra["tenant"]),
        "state": row.state,
        "candidate_ref": row.candidate_ref,
        "candidate_key": row.candidate_ref.lower()[:200],
        "position": row.position,
        "search": " ".join(
            (row.candidate_ref, row.candidate_name, row.position, row.agreement_id)
        ).casefold(),
        "risk_level": row.risk_level,
        "risk_score": row.risk_score,
        "overdue": row.overdue,
        "due_soon": row.due_soon,
        "urgency": urgency(row.risk_level, row.overdue, row.due_soon, row.risk_score),
        "start_at": row.start_at,
        "start_week": row.start_week,
        "next_change_at": next_change(row.cells, now),
        "built_at": now,
        "data": {
            "candidate_name": row.candidate_name,
            "risk_reasons": list(row.risk_reasons),
            "currency": row.currency,
            "monthly_salary": row.monthly_salary,
            "liquidated_damages": row.liquidated_damages,
            "zone": str(row.extra.get("zone") or "UTC"),
            "last_answer": row.last_answer,
            "last_answer_at": _iso(row.last_answer_at),
            "next_touchpoint": row.next_touchpoint,
            "next_touchpoint_at": _iso(row.next_touchpoint_at),
            "cells": [
                {
                    "checkpoint": c.checkpoint,
                    "status": c.status,
                    "due_at": _iso(c.due_at),
                    "done_at": _iso(c.done_at),
                    "evidence": c.evidence,
                    "received": c.received,
                }
                for c in row.cells
            ],
        },
    }


def _zone(name: str) -> dt.tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def row_of(s: Any, now: dt.datetime) -> cp.Row:
    """A stored summary (ORM object or row) as the board's row; days to the start are counted
    from today in the candidate's zone."""
    data = s.data
    start_at = aware(s.start_at)
    return cp.Row(
        agreement_id=s.agreement_id,
        candidate_ref=s.candidate_ref,
        candidate_name=data["candidate_name"],
        position=s.position,
        state=s.state,
        risk_level=s.risk_level,
        risk_score=s.risk_score,
        risk_reasons=tuple(data["risk_reasons"]),
        start_at=start_at,
        days_to_start=cp.days_between(now, start_at, _zone(data["zone"])),
        currency=data["currency"],
        monthly_salary=data["monthly_salary"],
        liquidated_damages=data["liquidated_damages"],
        cells=tuple(
            cp.Cell(
                c["checkpoint"],
                c["status"],
                _time(c["due_at"]),
                _time(c["done_at"]),
                c["evidence"],
                c["received"],
            )
            for c in data["cells"]
        ),
        last_answer=data["last_answer"],
        last_answer_at=_time(data["last_answer_at"]),
        next_touchpoint=data["next_touchpoint"],
        next_touchpoint_at=_time(data["next_touchpoint_at"]),
    )


# ---- keeping the summaries -------------------------------------------------------------------


def rebuild(session: Session, agreement_ids: Iterable[str], now: dt.datetime) -> int:
    """Derive the summaries of these agreements again (an agreement no longer between offer
    and first day, or gone, leaves the board). Returns how many are on the board."""
    ids = sorted({i for i in agreement_ids if i and len(i) <= 36})
    on_board = 0
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        rows = derive_rows(session, Agreement.id.in_(chunk), now)
        session.execute(delete(BoardSummary).where(BoardSummary.agreement_id.in_(chunk)))
        if rows:
            session.execute(insert(BoardSummary), [summary(r, now) for r in rows])
        on_board += len(rows)
    return on_board


def _lock(session: Session) -> None:
    """One rebuild at a time (SQLite's transactions already take the write lock up front)."""
    if not is_sqlite(session.get_bind()):  # type: ignore[arg-type]
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": REBUILD_LOCK})


def _pending(session: Session, tenant: str | None, now: dt.datetime) -> tuple[list[int], set[str]]:
    """The queued changes (of the tenant's agreements, or all) and the agreements to rebuild:
    those changes' and the summaries whose `next_change_at` passed."""
    changes = select(BoardChange.id, BoardChange.agreement_id)
    timed = select(BoardSummary.agreement_id).where(BoardSummary.next_change_at <= now)
    if tenant is not None:
        changes = changes.join(Agreement, Agreement.id == BoardChange.agreement_id).where(
            Agreement.tenant == tenant
        )
        timed = timed.where(BoardSummary.tenant == tenant)
    queued = session.execute(changes).all()
    ids = {r.agreement_id for r in queued} | set(session.execute(timed).scalars())
    return [r.id for r in queued], ids


def refresh(db: Database, tenant: str | None, now: dt.datetime) -> int:
    """Bring the tenant's summaries (all, with None) up to date; returns how many agreements
    were rebuilt. Cheap when nothing changed: two index look-ups, no lock."""
    with db.sessions() as session:
        _, ids = _pending(session, tenant, now)
    if not ids:
        return 0
    with db.transaction() as session:
        _lock(session)
        # Read again under the lock: the changes seen here are the ones this rebuild covers;
        # one committed later stays queued for the next read.
        seen, ids = _pending(session, tenant, now)
        rebuild(session, ids, now)
        for start in range(0, len(seen), DELETE_CHUNK):
            done = seen[start : start + DELETE_CHUNK]
            session.execute(delete(BoardChange).where(BoardChange.id.in_(done)))
        if tenant is None:
            session.execute(delete(BoardChange))  # changes naming no agreement: nothing to show
    return len(ids)


def rebuild_all(db: Database, now: dt.datetime) -> int:
    """Every summary from the facts (after a restore, or to check them): the command."""
    with db.transaction() as session:
        _lock(session)
        active = session.execute(
            select(Agreement.id).where(Agreement.state.in_(cp.ACTIVE_STATES))
        ).scalars()
        ids = set(active) | set(session.execute(select(BoardSummary.agreement_id)).scalars())
        session.execute(delete(BoardChange))
        return rebuild(session, ids, now)


# ---- reading the board -----------------------------------------------------------------------

ORDER = {
    "urgency": (BoardSummary.urgency, BoardSummary.start_at, BoardSummary.candidate_ref),
    "start": (BoardSummary.start_at, BoardSummary.candidate_ref),
    "score": (BoardSummary.risk_score, BoardSummary.candidate_ref),
    "candidate": (BoardSummary.candidate_key,),
}


@dataclass(frozen=True)
class Page:
    rows: list[cp.Row]
    matching: int
    total: int
    positions: list[str]
    weeks: list[str]
    number: int
    pages: int


def _where(tenant: str, filters: cp.Filters) -> list[Any]:
    where: list[Any] = [BoardSummary.tenant == tenant]
    if filters.risk:
        where.append(BoardSummary.risk_level == filters.risk)
    if filters.state:
        where.append(BoardSummary.state == filters.state)
    if filters.week:
        where.append(BoardSummary.start_week == filters.week)
    if filters.position:
        where.append(BoardSummary.position == filters.position)
    if filters.q:
        where.append(BoardSummary.search.contains(filters.q.casefold(), autoescape=True))
    return where


def page(
    db: Database,
    tenant: str,
    filters: cp.Filters,
    number: int,
    size: int,
    now: dt.datetime,
) -> Page:
    """One page of the tenant's board, filtered and sorted by the database. `number` past the
    last page is the last page."""
    refresh(db, tenant, now)
    where = _where(tenant, filters)
    with db.sessions() as session:
        # One pass for the filters' choices and the total (a few groups, from one index).
        groups = session.execute(
            select(BoardSummary.position, BoardSummary.start_week, func.count())
            .where(BoardSummary.tenant == tenant)
            .group_by(BoardSummary.position, BoardSummary.start_week)
        ).all()
        total = sum(n for _, _, n in groups)
        positions = sorted({position for position, _, _ in groups})
        weeks = sorted({week for _, week, _ in groups})
        matching = (
            total
            if len(where) == 1
            else session.execute(
                select(func.count()).select_from(BoardSummary).where(*where)
            ).scalar_one()
        )
        pages = max(1, -(-matching // size))
        number = min(max(number, 1), pages)
        order = (*ORDER.get(filters.sort, ORDER["urgency"]), BoardSummary.agreement_id)
        found = session.execute(
            select(BoardSummary)
            .where(*where)
            .order_by(*order)
            .limit(size)
            .offset((number - 1) * size)
        ).scalars()
        rows = [row_of(s, now) for s in found]
    return Page(rows, matching, total, positions, weeks, number, pages)


def board_rows(db: Database, principal: Principal, now: dt.datetime) -> list[cp.Row]:
    """Every candidate of the caller's tenant between offer and first day, from the stored
    summaries, brought up to date first."""
    principal.require(*READ_ROLES)
    return all_rows(db, principal.tenant, now)


def all_rows(db: Database, tenant: str, now: dt.datetime) -> list[cp.Row]:
    """Every row of the tenant's board, most urgent first (the weekly report's overdue list)."""
    refresh(db, tenant, now)
    with db.sessions() as session:
        found = session.execute(
            select(BoardSummary)
            .where(BoardSummary.tenant == tenant)
            .order_by(*ORDER["urgency"], BoardSummary.agreement_id)
        ).scalars()
        return [row_of(s, now) for s in found]

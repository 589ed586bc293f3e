"""The board's stored summaries on SQLite and PostgreSQL: the triggers queue every change to
the facts the board shows in the same transaction, the next read rebuilds exactly those rows,
time alone turns a cell due soon and then overdue, and the database's filtering, sorting and
paging give the same rows as deriving every row from the facts (`queries.derive_rows`)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any

from sqlalchemy import func, select, update

from offerseal.contracts.models import Agreement, AgreementMilestone, AgreementSignal, ChainOp
from offerseal.evidence.models import Document
from offerseal.notify.models import Touchpoint
from offerseal.shared.db import Database
from offerseal.shared.models import BoardChange, BoardSummary, aware
from offerseal.web.console import board
from offerseal.web.console import checkpoints as cp
from offerseal.web.console.queries import derive_rows

NOW = dt.datetime(2027, 3, 1, 9, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def _agreement(db: Database, tenant: str, ref: str, **changes: Any) -> str:
    aid = str(uuid.uuid4())
    values: dict[str, Any] = {
        "id": aid,
        "tenant": tenant,
        "onchain_id": "0x" + uuid.uuid4().hex * 2,
        "candidate_ref": ref,
        "candidate_address": "0x" + "1" * 40,
        "contact": {"email": f"{ref}@example.com", "timezone": "Asia/Shanghai"},
        "employer_name": "Acme Ltd",
        "employer_address": "0x" + "2" * 40,
        "position": "Firmware Engineer",
        "currency": "CNY",
        "monthly_salary": 3_000_000,
        "liquidated_damages": 900_000,
        "start_at": NOW + 20 * DAY,
        "grace_days": 3,
        "offer_expires_at": NOW - DAY,
        "language": "zh-CN",
        "terms_text": "terms",
        "terms_hash": "0x" + "0" * 64,
        "state": "committed",
        "risk_level": "blue",
        "risk_score": 100,
        "risk_reasons": ["nothing unusual"],
        "created_by": "seed",
    }
    values.update(changes)
    with db.transaction() as session:
        session.add(Agreement(**values))
        session.flush()
        session.add(
            AgreementMilestone(
                agreement_id=aid, idx=0, kind="resignation_submitted", due_at=NOW + 5 * DAY
            )
        )
    return aid


def _row(db: Database, tenant: str, aid: str, now: dt.datetime = NOW) -> cp.Row:
    found = board.page(db, tenant, cp.Filters(), 1, 500, now)
    return next(r for r in found.rows if r.agreement_id == aid)


def _cell(row: cp.Row, checkpoint: str) -> cp.Cell:
    return next(c for c in row.cells if c.checkpoint == checkpoint)


def test_every_change_to_the_facts_shows_on_the_next_read(database: Database) -> None:
    db = database
    aid = _agreement(db, "acme", "cand-a")
    other = _agreement(db, "acme", "cand-b")
    row = _row(db, "acme", aid)
    assert (row.risk_level, row.last_answer, row.next_touchpoint) == ("blue", None, None)
    assert _cell(row, "resignation_submitted").status == cp.PENDING
    with db.sessions() as session:  # the read consumed the tenant's queued changes
        assert session.execute(select(func.count()).select_from(BoardChange)).scalar_one() == 0

    # a check-in answer (notify reports it, contracts records the signal)
    with db.transaction() as session:
        session.add(
            AgreementSignal(agreement_id=aid, kind="replied", answer="delayed", occurred_at=NOW)
        )
    row = _row(db, "acme", aid)
    assert row.last_answer == "delayed" and row.last_answer_at == NOW

    # the milestone confirmed on chain
    with db.transaction() as session:
        session.execute(
            update(AgreementMilestone)
            .where(AgreementMilestone.agreement_id == aid)
            .values(confirmed_at=NOW, tx_hash="0x" + "a" * 64)
        )
    cell = _cell(_row(db, "acme", aid), "resignation_submitted")
    assert (cell.status, cell.evidence) == (cp.DONE, "0x" + "a" * 64)

    # a risk change puts the candidate first
    first = board.page(db, "acme", cp.Filters(), 1, 50, NOW).rows[0]
    assert first.agreement_id == aid  # same light, score and start: the reference
    with db.transaction() as session:
        agreement = session.get(Agreement, other)
        assert agreement is not None
        agreement.risk_level, agreement.risk_score = "red", 40
        agreement.risk_reasons = ["asked to delay the start"]
    first = board.page(db, "acme", cp.Filters(), 1, 50, NOW).rows[0]
    assert (first.agreement_id, first.risk_level, first.risk_score) == (other, "red", 40)
    assert first.risk_reasons == ("asked to delay the start",)

    # a planned touchpoint (notify), an upload (evidence), the commitment mined (contracts)
    with db.transaction() as session:
        session.add(
            Touchpoint(
                id=str(uuid.uuid4()),
                key=f"{other}:checkin:0",
                tenant="acme",
                agreement_id=other,
                candidate_ref="cand-b",
                kind="checkin",
                occurrence=0,
                essential=True,
                due_at=NOW + 2 * DAY,
                state="planned",
                attempts=0,
                data={},
                missed=False,
            )
        )
        session.add(
            Document(
                id=str(uuid.uuid4()),
                tenant="acme",
                sequence=1,
                kind="resignation_application",
                candidate_ref="cand-b",
                agreement_id=other,
                milestone="resignation_submitted",
                sha256="0x" + "1" * 64,
                salt="0x" + "2" * 64,
                leaf="0x" + "3" * 64,
                api_key_id="candidate-link",
                received_at=NOW,
                receipt={},
                has_content=False,
            )
        )
        session.add(
            ChainOp(
                agreement_id=other,
                op="commit",
                args={},
                signer="0x" + "3" * 40,
                nonce=1,
                tx_hash="0x" + "c" * 64,
                raw_tx=b"\x00",
                state="mined",
                finished_at=NOW - DAY,
            )
        )
    row = _row(db, "acme", other)
    assert (row.next_touchpoint, row.next_touchpoint_at) == ("checkin", NOW + 2 * DAY)
    assert _cell(row, "resignation_submitted").received is not None
    assert _cell(row, "intent_signed").evidence == "0x" + "c" * 64

    # leaving the board: withdrawn
    with db.transaction() as session:
        session.execute(update(Agreement).where(Agreement.id == other).values(state="withdrawn"))
    assert [r.agreement_id for r in board.page(db, "acme", cp.Filters(), 1, 50, NOW).rows] == [aid]


def test_time_alone_turns_a_cell_due_soon_then_overdue(database: Database) -> None:
    db = database
    aid = _agreement(db, "acme", "cand-t")
    assert _cell(_row(db, "acme", aid), "resignation_submitted").status == cp.PENDING
    with db.sessions() as session:
        stored = session.get(BoardSummary, aid)
        assert stored is not None and stored.next_change_at is not None
    # the due date is 5 days away: "due soon" begins 3 days before it
    assert aware(stored.next_change_at) == NOW + 2 * DAY
    # Nothing changed in the database: the summary is rebuilt because its moment passed.
    soon = NOW + 3 * DAY
    assert _cell(_row(db, "acme", aid, soon), "resignation_submitted").status == cp.DUE_SOON
    late = NOW + 6 * DAY
    assert _cell(_row(db, "acme", aid, late), "resignation_submitted").status == cp.OVERDUE
    assert board.refresh(db, "acme", late) == 0  # up to date: nothing rebuilt


def test_the_database_sorts_filters_and_pages_like_the_derivation(database: Database) -> None:
    db = database
    levels = ("red", "yellow", "blue", "blue")
    for n in range(23):
        aid = _agreement(
            db,
            "acme",
            f"cand-{n:02d}",
            risk_level=levels[n % 4],
            risk_score=90 - n,
            start_at=NOW + (10 + n % 5) * DAY,
            position=("Engineer", "Designer")[n % 2],
        )
        if n % 3 == 0:  # overdue resignation for a third of them
            with db.transaction() as session:
                session.execute(
                    update(AgreementMilestone)
                    .where(AgreementMilestone.agreement_id == aid)
                    .values(due_at=NOW - DAY)
                )
    _agreement(db, "globex", "cand-other", risk_level="red")
    with db.sessions() as session:
        derived = derive_rows(session, Agreement.tenant == "acme", NOW)
    for filters in (
        cp.Filters(),
        cp.Filters(risk="blue"),
        cp.Filters(position="Designer", sort="start"),
        cp.Filters(q="CAND-1", sort="score"),
        cp.Filters(sort="candidate"),
    ):
        expected = [r.agreement_id for r in filters.apply(derived)]
        pages = []
        for number in (1, 2, 3):
            found = board.page(db, "acme", filters, number, 10, NOW)
            assert found.matching == len(expected) and found.total == 23
            if found.number == number:
                pages.extend(r.agreement_id for r in found.rows)
        assert pages == expected, filters
    found = board.page(db, "acme", cp.Filters(), 1, 50, NOW)
    assert found.positions == ["Designer", "Engineer"]
    assert "cand-other" not in {r.candidate_ref for r in found.rows}
    by_id = {r.agreement_id: r for r in derived}
    for row in found.rows:  # every stored cell is the derived one
        assert row == dataclasses.replace(by_id[row.agreement_id], extra={})
    assert board.rebuild_all(db, NOW) == 24

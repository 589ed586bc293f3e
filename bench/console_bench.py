"""The console's reads on PostgreSQL for 1,000, 10,000 and 100,000 active agreements of a tenant
in one database that also holds another tenant's as many:
- the board: one page (50 rows, most urgent first; and a filtered page sorted by start) from the
  stored summaries, including the check that nothing is out of date;
- the same page after 50 agreements changed (their summaries rebuilt by the read);
- building every summary after the seed (what the first read after migration 0018 does);
- the naive alternative, as before the summaries: deriving every row of the tenant from the
  facts (`queries.derive_rows`), then sorting in Python;
and one candidate's timeline with 200 events. `python -m bench.console_bench` prints JSON."""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
import time
import uuid
from typing import Any

import sqlalchemy as sa

from offerseal.contracts.models import Agreement, AgreementMilestone, AgreementSignal, ChainOp
from offerseal.evidence.models import Document
from offerseal.notify.models import Touchpoint
from offerseal.shared.auth import Principal
from offerseal.shared.db import Database, insert_rows
from offerseal.web.console import board, queries
from offerseal.web.console import checkpoints as cp

NOW = dt.datetime.now(dt.UTC)
DAY = dt.timedelta(days=1)
MILESTONES = ("resignation_submitted", "handover_halfway", "social_insurance_stop")
URGENT = cp.Filters()
FILTERED = cp.Filters(risk="red", position="Engineer", sort="start")
PG_ADMIN = os.environ.get("BENCH_PG_ADMIN", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def _rows(tenant: str, start: int, count: int) -> dict[type, list[dict[str, Any]]]:
    """`count` active agreements of `tenant` with 3 milestones, 2 answers, 4 touchpoints
    (2 sent, 2 planned), a mined commitment and one document each."""
    out: dict[type, list[dict[str, Any]]] = {
        Agreement: [],
        AgreementMilestone: [],
        AgreementSignal: [],
        Touchpoint: [],
        ChainOp: [],
        Document: [],
    }
    for n in range(start, start + count):
        aid = str(uuid.uuid4())
        start_at = NOW + (5 + n % 60) * DAY
        out[Agreement].append(
            {
                "id": aid,
                "tenant": tenant,
                "onchain_id": "0x" + uuid.uuid4().hex + uuid.uuid4().hex,
                "candidate_ref": f"cand-{n}",
                "candidate_address": "0x" + "1" * 40,
                "contact": {"email": f"c{n}@example.com", "timezone": "Asia/Shanghai"},
                "employer_name": "Bench Ltd",
                "employer_address": "0x" + "2" * 40,
                "position": ("Engineer", "Designer", "Analyst")[n % 3],
                "currency": "CNY",
                "monthly_salary": 3_000_000,
                "liquidated_damages": 900_000,
                "start_at": start_at,
                "grace_days": 3,
                "offer_expires_at": NOW - 3 * DAY,
                "language": "zh-CN",
                "terms_text": "terms",
                "terms_hash": "0x" + "0" * 64,
                "non_compete": False,
                "project_wrap_up": False,
                "replacement_days": 0,
                "state": "committed",
                "risk_level": ("red", "yellow", "blue", "blue")[n % 4],
                "risk_score": 100 - n % 50,
                "risk_reasons": ["bench"],
                "created_by": "bench",
                "created_at": NOW - 10 * DAY,
                "updated_at": NOW - 10 * DAY,
            }
        )
        for idx, kind in enumerate(MILESTONES):
            out[AgreementMilestone].append(
                {
                    "agreement_id": aid,
                    "idx": idx,
                    "kind": kind,
                    "due_at": NOW + (idx * 7 - 3) * DAY,
                    "confirmed_at": NOW - 4 * DAY if idx == 0 and n % 2 else None,
                    "overdue_notified": False,
                }
            )
        for k, answer in enumerate(("on_track", "delayed" if n % 5 == 0 else "on_track")):
            out[AgreementSignal].append(
                {
                    "agreement_id": aid,
                    "kind": "replied",
                    "answer": answer,
                    "delay_hours": 2.0,
                    "occurred_at": NOW - (4 - k) * DAY,
                }
            )
        for k in range(4):
            out[Touchpoint].append(
                {
                    "id": str(uuid.uuid4()),
                    "key": f"{aid}:checkin:{k}",
                    "tenant": tenant,
                    "agreement_id": aid,
                    "candidate_ref": f"cand-{n}",
                    "kind": "checkin",
                    "occurrence": k,
                    "essential": True,
                    "due_at": NOW + (k - 2) * 2 * DAY,
                    "state": "sent" if k < 2 else "planned",
                    "attempts": 1 if k < 2 else 0,
                    "data": {},
                    "missed": False,
                    "created_at": NOW - 10 * DAY,
                }
            )
        out[ChainOp].append(
            {
                "agreement_id": aid,
                "op": "commit",
                "args": {},
                "signer": "0x" + "3" * 40,
                "nonce": n,
                "tx_hash": "0x" + uuid.uuid4().hex * 2,
                "raw_tx": b"\x00",
                "state": "mined",
                "created_at": NOW - 9 * DAY,
                "finished_at": NOW - 9 * DAY,
            }
        )
        out[Document].append(_document(tenant, n, aid))
    return out


def _document(
    tenant: str, n: int, aid: str, kind: str = "resignation_application"
) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "tenant": tenant,
        "sequence": n + 1,
        "kind": kind,
        "candidate_ref": f"cand-{n}",
        "agreement_id": aid,
        "milestone": "resignation_submitted",
        "sha256": "0x" + uuid.uuid4().hex * 2,
        "salt": "0x" + uuid.uuid4().hex * 2,
        "leaf": "0x" + uuid.uuid4().hex * 2,
        "api_key_id": "bench",
        "received_at": NOW - 5 * DAY,
        "receipt": {},
        "has_content": False,
    }


def _seed(db: Database, tenant: str, start: int, count: int) -> None:
    chunk = 5_000
    for offset in range(start, start + count, chunk):
        rows = _rows(tenant, offset, min(chunk, start + count - offset))
        with db.transaction() as session:
            for model in (Agreement, AgreementMilestone, AgreementSignal, Touchpoint, ChainOp):
                insert_rows(session, model, rows[model])
            insert_rows(session, Document, rows[Document])


def _timings(fn: Any, runs: int) -> dict[str, float]:
    seconds = []
    for _ in range(runs):
        began = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - began)
    seconds.sort()
    p95 = seconds[min(len(seconds) - 1, round(0.95 * (len(seconds) - 1)))]
    return {
        "runs": runs,
        "p50_ms": round(statistics.median(seconds) * 1000, 1),
        "p95_ms": round(p95 * 1000, 1),
    }


def _naive(db: Database) -> list[cp.Row]:
    """The board as it was read before the summaries: every row derived, then sorted."""
    with db.sessions() as session:
        rows = queries.derive_rows(session, Agreement.tenant == "bench", NOW)
    return cp.Filters().apply(rows)[:50]


def _change_then_read(db: Database, some: list[str], round_: int, count: int) -> None:
    """`count` of the tenant's agreements change risk (as the contracts service records it),
    then the board's first page is read (rebuilding those summaries); the change is timed too."""
    ids = some[round_ * count : (round_ + 1) * count]
    with db.transaction() as session:
        session.execute(
            sa.update(Agreement)
            .where(Agreement.id.in_(ids))
            .values(risk_score=Agreement.risk_score - 1)
        )
    board.page(db, "bench", cp.Filters(), 1, 50, NOW)


def _timeline_agreement(db: Database) -> str:
    """One agreement with 200 events: 50 answers, 50 messages sent, 50 chain operations and
    50 documents."""
    rows = _rows("bench", 10_000_000, 1)
    aid = rows[Agreement][0]["id"]
    for k in range(49):
        rows[AgreementSignal].append({**rows[AgreementSignal][0], "occurred_at": NOW - k * DAY})
        rows[Touchpoint].append(
            {
                **rows[Touchpoint][0],
                "id": str(uuid.uuid4()),
                "key": f"{aid}:update:{k}",
                "kind": "weekly_update",
                "occurrence": k,
                "sent_at": NOW - k * DAY,
            }
        )
        rows[ChainOp].append(
            {
                **rows[ChainOp][0],
                "op": "confirm_milestone",
                "nonce": 20_000_000 + k,
                "tx_hash": "0x" + uuid.uuid4().hex * 2,
            }
        )
        rows[Document].append(_document("bench", 20_000_000 + k, aid, "handover_progress"))
    rows[AgreementSignal] = rows[AgreementSignal][:50]
    with db.transaction() as session:
        for model in (Agreement, AgreementMilestone, AgreementSignal, Touchpoint, ChainOp):
            insert_rows(session, model, rows[model])
        insert_rows(session, Document, rows[Document])
    return str(aid)


def run(
    pg_admin_url: str = PG_ADMIN, sizes: tuple[int, ...] = (1_000, 10_000, 100_000)
) -> dict[str, Any]:
    name = f"offerseal_console_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    db = Database(pg_admin_url.rsplit("/", 1)[0] + f"/{name}")
    hr = Principal(key_id="bench", role="hr", tenant="bench")
    out: dict[str, Any] = {"board": {}}
    try:
        db.migrate()
        seeded = 0
        for size in sizes:
            began = time.perf_counter()
            _seed(db, "bench", seeded, size - seeded)
            _seed(db, "other", 50_000_000 + seeded, size - seeded)  # another tenant as large
            with db.engine.begin() as conn:  # statistics as autovacuum would gather them
                conn.execute(sa.text("ANALYZE"))
            seeded = size
            seeded_s = round(time.perf_counter() - began, 1)
            began = time.perf_counter()
            built = board.refresh(db, None, NOW)
            built_s = round(time.perf_counter() - began, 1)
            # what autovacuum does after such a bulk: statistics, and the visibility map that
            # lets the board's counts read its index only
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(sa.text("VACUUM ANALYZE board_summaries, board_changes"))
            runs = 50 if size <= 10_000 else 20
            with db.sessions() as session:
                some = (
                    session.execute(
                        sa.select(Agreement.id).where(Agreement.tenant == "bench").limit(500)
                    )
                    .scalars()
                    .all()
                )
            changes = iter(range(10**6))
            step = {
                "seeded_s": seeded_s,
                "summaries_built": built,
                "summaries_built_s": built_s,
                "page": _timings(lambda: board.page(db, "bench", URGENT, 1, 50, NOW), runs),
                "page_10": _timings(lambda: board.page(db, "bench", URGENT, 10, 50, NOW), runs),
                "filtered": _timings(lambda: board.page(db, "bench", FILTERED, 1, 50, NOW), runs),
                "after_50_changes": _timings(
                    lambda some=some, changes=changes: _change_then_read(
                        db, some, next(changes) % 10, 50
                    ),
                    10,
                ),
                "naive": _timings(lambda: _naive(db), 1 if size > 10_000 else 3),
            }
            out["board"][str(size)] = step
            print(f"board with {size} active agreements: {step}", flush=True)
        aid = _timeline_agreement(db)
        events = len(queries.timeline(db, hr, aid))
        out["timeline"] = {"events": events, **_timings(lambda: queries.timeline(db, hr, aid), 20)}
        print(f"timeline with {events} events: {out['timeline']}", flush=True)
    finally:
        db.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    return out


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))

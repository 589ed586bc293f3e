"""The console board's pure core: the nine checkpoints derived from an agreement's facts, each
cell's status around its due date, the order of urgency and the filters."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from offerseal.web.console import checkpoints as cp

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def facts(**changes: Any) -> cp.Facts:
    base: dict[str, Any] = {
        "state": "committed",
        "offer_expires_at": NOW - 5 * DAY,
        "start_at": NOW + 30 * DAY,
        "committed_at": NOW - 6 * DAY,
        "commit_tx": "0xc0",
    }
    base.update(changes)
    return cp.Facts(**base)


def cells(f: cp.Facts) -> dict[str, cp.Cell]:
    derived = cp.derive(f, NOW)
    assert tuple(c.checkpoint for c in derived) == cp.CHECKPOINTS
    return {c.checkpoint: c for c in derived}


@pytest.mark.parametrize(
    ("due", "done", "flagged", "expected"),
    [
        (NOW + 10 * DAY, False, False, cp.PENDING),
        (NOW + 3 * DAY, False, False, cp.DUE_SOON),
        (NOW + 1 * DAY, False, False, cp.DUE_SOON),
        (NOW, False, False, cp.OVERDUE),
        (NOW - DAY, False, False, cp.OVERDUE),
        (NOW + 10 * DAY, False, True, cp.OVERDUE),  # the sweeper said so
        (NOW - DAY, True, True, cp.DONE),
        (None, False, False, cp.PENDING),
    ],
)
def test_status_around_the_due_date(
    due: dt.datetime | None, done: bool, flagged: bool, expected: str
) -> None:
    assert cp.status_of(due, done, NOW, flagged) == expected


def test_signing_completes_the_first_two_checkpoints_with_the_transaction() -> None:
    c = cells(facts())
    assert c["offer_accepted"].status == c["intent_signed"].status == cp.DONE
    assert c["intent_signed"].evidence == "0xc0"
    assert c["intent_signed"].done_at == NOW - 6 * DAY


def test_an_unsigned_offer_is_due_at_its_deadline() -> None:
    c = cells(facts(state="offered", committed_at=None, offer_expires_at=NOW + 2 * DAY))
    assert c["offer_accepted"].status == cp.DUE_SOON
    assert c["intent_signed"].status == cp.DUE_SOON
    assert c["first_day"].status == cp.PENDING


def test_milestones_fill_their_checkpoints_and_others_are_not_planned() -> None:
    f = facts(
        milestones=(
            cp.Milestone("resignation_submitted", NOW - 2 * DAY, NOW - 3 * DAY, "doc-1", "0xm1"),
            cp.Milestone("handover_halfway", NOW - DAY),
            cp.Milestone("social_insurance_stop", NOW + 2 * DAY),
        )
    )
    c = cells(f)
    assert (c["resignation_submitted"].status, c["resignation_submitted"].evidence) == (
        cp.DONE,
        "doc-1",
    )
    assert c["handover_halfway"].status == cp.OVERDUE
    assert c["social_insurance_stop"].status == cp.DUE_SOON
    assert c["resignation_accepted"].status == cp.NOT_PLANNED
    assert c["last_working_day_fixed"].status == cp.NOT_PLANNED


def test_the_expected_resignation_date_stands_in_for_the_submission() -> None:
    c = cells(facts(milestones=(cp.Milestone("expected_resignation_date", NOW + 9 * DAY),)))
    assert c["resignation_submitted"].status == cp.PENDING
    assert c["resignation_submitted"].due_at == NOW + 9 * DAY


def test_an_upload_waiting_for_review_is_shown_on_its_pending_checkpoint() -> None:
    upload = cp.Upload("doc-9", "resignation_acceptance", "resignation_accepted", NOW, "anchored")
    c = cells(
        facts(
            milestones=(cp.Milestone("resignation_accepted", NOW + 5 * DAY),),
            uploads=(upload,),
        )
    )
    assert c["resignation_accepted"].status == cp.PENDING
    assert c["resignation_accepted"].received == "doc-9"


def test_a_document_without_a_milestone_still_marks_its_checkpoint_done() -> None:
    upload = cp.Upload("doc-3", "handover_progress", None, NOW - DAY, "pending")
    c = cells(facts(uploads=(upload,)))
    assert c["handover_halfway"].status == cp.DONE
    assert c["handover_halfway"].evidence == "doc-3"


def test_first_day_is_done_on_arrival_or_fulfilment_and_overdue_after_the_start() -> None:
    assert cells(facts(start_at=NOW - DAY))["first_day"].status == cp.OVERDUE
    assert cells(facts(start_at=NOW - DAY, arrived_at=NOW - DAY))["first_day"].status == cp.DONE
    fulfilled = cells(facts(state="fulfilled", start_at=NOW - DAY, fulfilled_at=NOW))
    assert fulfilled["first_day"].status == cp.DONE


def test_an_offer_that_ended_unsigned_plans_nothing_more() -> None:
    c = cells(facts(state="cancelled", committed_at=None))
    assert c["offer_accepted"].status == c["first_day"].status == cp.NOT_PLANNED


def row(ref: str, level: str = "blue", score: int = 100, days: int = 20, **kw: Any) -> cp.Row:
    statuses = kw.pop("statuses", ())
    cells_ = tuple(
        cp.Cell(name, statuses[i] if i < len(statuses) else cp.PENDING)
        for i, name in enumerate(cp.CHECKPOINTS)
    )
    base: dict[str, Any] = {
        "agreement_id": f"id-{ref}",
        "candidate_ref": ref,
        "candidate_name": f"{ref}@example.com",
        "position": "Engineer",
        "state": "committed",
        "risk_level": level,
        "risk_score": score,
        "risk_reasons": (),
        "start_at": NOW + days * DAY,
        "days_to_start": days,
        "currency": "CNY",
        "monthly_salary": 3_000_000,
        "liquidated_damages": 900_000,
        "cells": cells_,
    }
    base.update(kw)
    return cp.Row(**base)


def test_urgency_red_first_then_overdue_then_due_soon_then_score_then_start() -> None:
    rows = [
        row("blue-far", days=40),
        row("blue-near", days=5),
        row("yellow", "yellow"),
        row("red-calm", "red", 90),
        row("red-overdue", "red", 90, statuses=(cp.DONE, cp.DONE, cp.OVERDUE)),
        row("red-low", "red", 40),
        row("blue-due-soon", statuses=(cp.DUE_SOON,)),
        row("blue-overdue", statuses=(cp.OVERDUE,)),
    ]
    assert [r.candidate_ref for r in cp.by_urgency(rows)] == [
        "red-overdue",
        "red-low",
        "red-calm",
        "yellow",
        "blue-overdue",
        "blue-due-soon",
        "blue-near",
        "blue-far",
    ]


def test_filters_and_search() -> None:
    rows = [
        row("wang", "red", position="Firmware Engineer"),
        row("li", "blue", state="offered", position="Designer"),
        row("zhao", "blue", days=60, start_at=NOW + 60 * DAY),
    ]
    assert [r.candidate_ref for r in cp.Filters(risk="red").apply(rows)] == ["wang"]
    assert [r.candidate_ref for r in cp.Filters(state="offered").apply(rows)] == ["li"]
    assert [r.candidate_ref for r in cp.Filters(position="Designer").apply(rows)] == ["li"]
    assert [r.candidate_ref for r in cp.Filters(q="ZHAO@example").apply(rows)] == ["zhao"]
    week = rows[2].start_week
    assert [r.candidate_ref for r in cp.Filters(week=week).apply(rows)] == ["zhao"]
    assert [r.candidate_ref for r in cp.Filters(sort="candidate").apply(rows)] == [
        "li",
        "wang",
        "zhao",
    ]


def test_days_to_start_counts_calendar_days_in_the_candidates_zone() -> None:
    from zoneinfo import ZoneInfo

    shanghai = ZoneInfo("Asia/Shanghai")
    late_evening = dt.datetime(2026, 12, 1, 15, 30, tzinfo=dt.UTC)  # 23:30 in Shanghai
    start = dt.datetime(2026, 12, 2, 1, 0, tzinfo=dt.UTC)  # 09:00 the next day there
    assert cp.days_between(late_evening, start, shanghai) == 1
    assert cp.days_between(start, late_evening, shanghai) == -1

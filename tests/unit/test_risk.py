"""Risk rules, table-driven: the traffic light of DOMAIN.md and the stability score."""

from __future__ import annotations

import datetime as dt

import pytest

from offerseal.contracts.domain.risk import Signals, assess, exposure


@pytest.mark.parametrize(
    "signals,level,reason",
    [
        (Signals(), "blue", "nothing unusual"),
        (Signals(non_compete=True), "red", "a non-compete agreement applies"),
        (Signals(project_wrap_up=True), "red", "a project must be wrapped up"),
        (Signals(overdue_milestones=1), "red", "1 milestone(s) overdue"),
        (Signals(reported_delay=True), "red", "the candidate reports a delay"),
        (Signals(reported_withdrawal=True), "red", "the candidate reports withdrawing"),
        (Signals(replacement_days=16), "yellow", "replacing the candidate takes 16 days"),
        (Signals(replacement_days=15), "blue", "nothing unusual"),
        (Signals(checkins_missed=1), "yellow", "1 check-in(s) missed"),
        (Signals(asked_for_help=True), "yellow", "the candidate asked for help"),
        (Signals(replacement_days=30, non_compete=True), "red", "replacing the candidate"),
    ],
)
def test_traffic_light(signals: Signals, level: str, reason: str) -> None:
    risk = assess(signals)
    assert risk.level == level
    assert any(r.startswith(reason) for r in risk.reasons), risk.reasons
    assert (
        risk.response
        == {
            "red": "start the backup plan and involve the legal team",
            "yellow": "agree a staged onboarding date",
            "blue": "standard follow-up",
        }[level]
    )


@pytest.mark.parametrize(
    "signals,score",
    [
        (Signals(), 100),
        (Signals(checkins_missed=2), 70),
        (Signals(reported_withdrawal=True, checkins_missed=4), 0),
        (Signals(reply_delays_hours=(30.0, 40.0)), 90),
        (Signals(reply_delays_hours=(10.0,)), 95),
        (Signals(checkins_missed=1, milestones_on_time=2, documents_submitted=2), 91),
    ],
)
def test_stability_score(signals: Signals, score: int) -> None:
    assert assess(signals).score == score


def test_exposure() -> None:
    out = exposure(
        liquidated_damages=750_000,
        monthly_salary=2_500_000,
        cap=750_000,
        breach_declarable_after=dt.datetime(2027, 1, 4, tzinfo=dt.UTC),
    )
    assert out["percent_of_salary"] == 30.0
    assert out["breach_declarable_after"] == "2027-01-04T00:00:00+00:00"


def test_a_delay_settled_by_signed_new_dates_is_yellow_not_red() -> None:
    reported = assess(Signals(reported_delay=True))
    assert reported.level == "red" and reported.score == 80
    settled = assess(Signals(reported_delay=True, delay_agreed=True))
    assert settled.level == "yellow"
    assert settled.reasons == ("a reported delay was settled: the candidate signed new dates",)
    assert settled.score == 90

"""Resignation risk as HR sees it: the traffic light of DOMAIN.md with its reasons and the
response it calls for, a 0-100 stability score from behaviour, and the financial exposure."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

RED, YELLOW, BLUE = "red", "yellow", "blue"
RESPONSES = {
    RED: "start the backup plan and involve the legal team",
    YELLOW: "agree a staged onboarding date",
    BLUE: "standard follow-up",
}
REPLACEMENT_DAYS_THRESHOLD = 15


@dataclass(frozen=True)
class Signals:
    """Everything risk is computed from; collected by the service, judged here."""

    non_compete: bool = False
    project_wrap_up: bool = False
    replacement_days: int = 0
    overdue_milestones: int = 0
    milestones_on_time: int = 0
    checkins_answered: int = 0
    checkins_missed: int = 0
    reply_delays_hours: tuple[float, ...] = ()
    reported_delay: bool = False
    # The reported delay was settled: the candidate signed new dates (an amendment) after it.
    delay_agreed: bool = False
    reported_withdrawal: bool = False
    asked_for_help: bool = False
    documents_submitted: int = 0


@dataclass(frozen=True)
class Risk:
    level: str
    reasons: tuple[str, ...]
    response: str
    score: int
    score_factors: tuple[str, ...] = field(default=())


def assess(s: Signals) -> Risk:
    red: list[str] = []
    yellow: list[str] = []
    if s.non_compete:
        red.append("a non-compete agreement applies")
    if s.project_wrap_up:
        red.append("a project must be wrapped up before the candidate can leave")
    if s.overdue_milestones:
        red.append(f"{s.overdue_milestones} milestone(s) overdue")
    if s.reported_withdrawal:
        red.append("the candidate reports withdrawing")
    if s.reported_delay and not s.delay_agreed:
        red.append("the candidate reports a delay")
    if s.replacement_days > REPLACEMENT_DAYS_THRESHOLD:
        yellow.append(
            f"replacing the candidate takes {s.replacement_days} days (> "
            f"{REPLACEMENT_DAYS_THRESHOLD})"
        )
    if s.checkins_missed:
        yellow.append(f"{s.checkins_missed} check-in(s) missed")
    if s.asked_for_help:
        yellow.append("the candidate asked for help")
    if s.reported_delay and s.delay_agreed:
        yellow.append("a reported delay was settled: the candidate signed new dates")
    level = RED if red else YELLOW if yellow else BLUE
    reasons = tuple(red + yellow) if red else tuple(yellow)
    score, factors = stability(s)
    return Risk(level, reasons or ("nothing unusual",), RESPONSES[level], score, factors)


def stability(s: Signals) -> tuple[int, tuple[str, ...]]:
    """100 = steady. Each factor is listed so HR can see why the score moved."""
    score = 100
    factors: list[str] = []

    def apply(points: int, why: str) -> None:
        nonlocal score
        if points:
            score += points
            factors.append(f"{points:+d} {why}")

    apply(-15 * s.checkins_missed, f"{s.checkins_missed} missed check-in(s)")
    apply(-10 * s.overdue_milestones, f"{s.overdue_milestones} overdue milestone(s)")
    if s.reported_delay:
        apply(
            -10 if s.delay_agreed else -20,
            "reported a delay" + (" (new dates signed)" if s.delay_agreed else ""),
        )
    apply(-50 if s.reported_withdrawal else 0, "reported withdrawing")
    apply(-5 if s.asked_for_help else 0, "asked for help")
    if s.reply_delays_hours:
        mean = sum(s.reply_delays_hours) / len(s.reply_delays_hours)
        apply(
            -10 if mean > 24 else (-5 if mean > 8 else 0), f"answers after {mean:.0f} h on average"
        )
    apply(min(10, 2 * s.milestones_on_time), f"{s.milestones_on_time} milestone(s) on time")
    apply(min(5, s.documents_submitted), f"{s.documents_submitted} document(s) submitted")
    return max(0, min(100, score)), tuple(factors)


def exposure(
    *, liquidated_damages: int, monthly_salary: int, cap: int, breach_declarable_after: dt.datetime
) -> dict[str, object]:
    return {
        "liquidated_damages": liquidated_damages,
        "cap": cap,
        "percent_of_salary": round(liquidated_damages * 100 / monthly_salary, 2)
        if monthly_salary
        else 0.0,
        "breach_declarable_after": breach_declarable_after.astimezone(dt.UTC).isoformat(),
    }

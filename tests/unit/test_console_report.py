"""The weekly report's maths (funnel, no-show rates against the previous weeks, answers,
overdue checkpoints), its server-drawn SVG and its CSV."""

from __future__ import annotations

import csv
import datetime as dt
import io
import xml.etree.ElementTree as ET
from typing import Any

from offerseal.web.console import checkpoints as cp
from offerseal.web.console import report

WEEK = "2026-W49"  # Monday 30 November 2026
MONDAY = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def agreement(n: int, state: str, created: dt.datetime, start: dt.datetime) -> dict[str, Any]:
    return {"id": f"a{n}", "state": state, "risk": "blue", "created_at": created, "start_at": start}


def test_weeks_are_iso_weeks() -> None:
    assert report.week_start(WEEK) == MONDAY
    assert report.week_of(MONDAY + 6 * DAY) == WEEK
    assert report.previous_weeks(WEEK, 3) == ["2026-W47", "2026-W48", WEEK]
    assert report.previous_weeks("2027-W01", 2) == ["2026-W53", "2027-W01"]


def test_funnel_rates_answers_and_overdue() -> None:
    this_week = MONDAY + 2 * DAY
    last_week = MONDAY - 5 * DAY
    agreements = [
        agreement(1, "offered", this_week, MONDAY + 40 * DAY),
        agreement(2, "committed", this_week, MONDAY + 40 * DAY),
        agreement(3, "fulfilled", MONDAY - 30 * DAY, this_week),
        agreement(4, "breached", MONDAY - 30 * DAY, this_week),
        agreement(5, "fulfilled", MONDAY - 30 * DAY, this_week),
        agreement(6, "fulfilled", MONDAY - 40 * DAY, last_week),
        agreement(7, "breached", MONDAY - 200 * DAY, MONDAY - 150 * DAY),  # outside the window
        agreement(8, "committed", MONDAY + 8 * DAY, MONDAY + 50 * DAY),  # after the week
    ]
    answers = [
        ("delayed", this_week),
        ("delayed", this_week + DAY),
        ("on_track", this_week),
        ("withdrawing", last_week),  # the week before: not counted
    ]
    overdue_row = cp.Row(
        agreement_id="a2",
        candidate_ref="c2",
        candidate_name="",
        position="p",
        state="committed",
        risk_level="red",
        risk_score=60,
        risk_reasons=(),
        start_at=MONDAY + 40 * DAY,
        days_to_start=38,
        currency="CNY",
        monthly_salary=1,
        liquidated_damages=0,
        cells=(cp.Cell("resignation_submitted", cp.OVERDUE), cp.Cell("first_day", cp.PENDING)),
    )
    r = report.build(WEEK, agreements, {"a2", "a3"}, answers, [overdue_row])
    assert r.funnel == {
        "offered": 6,
        "signed": 5,
        "resignation_submitted": 2,
        "started": 3,
        "no_show": 1,
    }
    assert len(r.rates) == report.WEEKS_BACK and r.rates[-1].week == WEEK
    assert (r.rate.no_shows, r.rate.outcomes) == (1, 3)
    assert abs((r.rate.rate or 0) - 1 / 3) < 1e-9
    assert r.previous_rate == 0.0  # one outcome last week, a start
    assert r.answers == {"on_track": 1, "delayed": 2, "need_help": 0, "withdrawing": 0}
    assert r.overdue["resignation_submitted"] == 1 and r.overdue["first_day"] == 0
    assert r.by_risk == {"red": 1, "yellow": 0, "blue": 0} and r.active == 1


def test_a_week_without_outcomes_has_no_rate() -> None:
    r = report.build(WEEK, [], set(), [], [])
    assert r.rate.rate is None and r.previous_rate is None
    assert report.percent(None) == "\u2013"
    assert report.percent(0.125) == "12.5%"


def test_charts_are_well_formed_svg_with_the_figures_as_text() -> None:
    bars = report.bar_chart("By risk <&>", [("Red", 3, "chart__bar--red"), ("Blue", 0, "x")])
    root = ET.fromstring(bars)
    assert root.tag.endswith("svg") and root.get("role") == "img"
    assert root.get("aria-label") == "By risk <&>"
    texts = [t.text for t in root.iter() if t.tag.endswith("text")]
    assert texts == ["Red", "3", "Blue", "0"]
    columns = report.column_chart("Rates", [("W48", None, "c"), ("W49", 0.25, "c")])
    assert "25.0%" in columns and ET.fromstring(columns) is not None


def test_csv_has_one_section_per_table() -> None:
    r = report.build(WEEK, [], set(), [], [])
    rows = list(csv.reader(io.StringIO(report.to_csv(r))))
    assert rows[0] == ["section", "key", "value", "outcomes"]
    sections = {row[0] for row in rows[1:]}
    assert sections == {"report", "risk", "funnel", "no_show_rate", "answers", "overdue"}
    assert ["report", "week", WEEK, ""] in rows
    assert sum(1 for row in rows if row[0] == "overdue") == len(cp.CHECKPOINTS)

"""The weekly report's maths and its charts: candidates by risk, the funnel, the no-show rate
week by week, the candidates' answers and overdue checkpoints; SVG drawn here on the server
(no chart library, no script) and CSV. Standard library only."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from . import checkpoints as cp

RISKS = ("red", "yellow", "blue")
FUNNEL = ("offered", "signed", "resignation_submitted", "started", "no_show")
ANSWERS = ("on_track", "delayed", "need_help", "withdrawing")
SIGNED_STATES = frozenset({"committed", "fulfilled", "breached", "employer_breached"})
WEEKS_BACK = 8


def week_of(moment: dt.datetime | dt.date) -> str:
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"


def week_start(week: str) -> dt.datetime:
    """Monday 00:00 UTC of an ISO week `YYYY-Www` (ValueError when malformed)."""
    year, _, number = week.partition("-W")
    monday = dt.date.fromisocalendar(int(year), int(number), 1)
    return dt.datetime.combine(monday, dt.time(), dt.UTC)


def previous_weeks(week: str, count: int) -> list[str]:
    """`count` weeks ending with `week`, oldest first."""
    start = week_start(week)
    return [week_of(start - dt.timedelta(weeks=n)) for n in range(count - 1, -1, -1)]


@dataclass(frozen=True)
class WeekRate:
    week: str
    no_shows: int
    outcomes: int  # fulfilled + no-shows among agreements starting that week

    @property
    def rate(self) -> float | None:
        return self.no_shows / self.outcomes if self.outcomes else None


@dataclass(frozen=True)
class Report:
    week: str
    by_risk: dict[str, int]
    funnel: dict[str, int]
    rates: tuple[WeekRate, ...]
    answers: dict[str, int]
    overdue: dict[str, int]
    active: int

    @property
    def rate(self) -> WeekRate:
        return self.rates[-1]

    @property
    def previous_rate(self) -> float | None:
        """The no-show rate over the weeks before this one (all their outcomes together)."""
        earlier = self.rates[:-1]
        outcomes = sum(r.outcomes for r in earlier)
        return sum(r.no_shows for r in earlier) / outcomes if outcomes else None


def build(
    week: str,
    agreements: Iterable[Mapping[str, Any]],
    submitted: set[str],
    answers: Iterable[tuple[str | None, dt.datetime]],
    board: Sequence[cp.Row],
) -> Report:
    """`agreements`: dicts with id, state, risk, created_at, start_at (the tenant's, all of
    them); `submitted`: ids whose resignation was confirmed; `answers`: (answer, when) of every
    check-in reply; `board`: the active rows (for risk and overdue checkpoints)."""
    weeks = previous_weeks(week, WEEKS_BACK)
    end = week_start(week) + dt.timedelta(weeks=1)
    window_start = week_start(weeks[0])
    everything = list(agreements)
    # The funnel: agreements offered in the report's window (8 weeks up to this one).
    cohort = [a for a in everything if window_start <= a["created_at"] < end]
    funnel = {
        "offered": len(cohort),
        "signed": sum(1 for a in cohort if a["state"] in SIGNED_STATES),
        "resignation_submitted": sum(1 for a in cohort if a["id"] in submitted),
        "started": sum(1 for a in cohort if a["state"] == "fulfilled"),
        "no_show": sum(1 for a in cohort if a["state"] == "breached"),
    }
    rates = []
    for w in weeks:
        starting = [a for a in everything if week_of(a["start_at"]) == w]
        no_shows = sum(1 for a in starting if a["state"] == "breached")
        fulfilled = sum(1 for a in starting if a["state"] == "fulfilled")
        rates.append(WeekRate(w, no_shows, no_shows + fulfilled))
    this_week = week_start(week)
    said = Counter(a for a, at in answers if a and this_week <= at < end)
    overdue: Counter[str] = Counter()
    for row in board:
        for cell in row.cells:
            if cell.status == cp.OVERDUE:
                overdue[cell.checkpoint] += 1
    risk = Counter(row.risk_level for row in board)
    return Report(
        week=week,
        by_risk={level: risk.get(level, 0) for level in RISKS},
        funnel=funnel,
        rates=tuple(rates),
        answers={a: said.get(a, 0) for a in ANSWERS},
        overdue={c: overdue.get(c, 0) for c in cp.CHECKPOINTS},
        active=len(board),
    )


def percent(value: float | None) -> str:
    return "\u2013" if value is None else f"{value * 100:.1f}%"


# ---- SVG ---------------------------------------------------------------------------------------


def bar_chart(
    title: str, bars: Sequence[tuple[str, float, str]], *, width: int = 560, label_width: int = 170
) -> str:
    """Horizontal bars: (label, value, css class). Scales to its container (viewBox); the
    title and each value are text, so a screen reader reads the figures."""
    bar_h, gap = 26, 10
    height = len(bars) * (bar_h + gap) + gap
    top = max((v for _, v, _ in bars), default=0) or 1
    room = width - label_width - 60
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" '
        f'preserveAspectRatio="xMinYMin meet" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    for i, (label, value, css) in enumerate(bars):
        y = gap + i * (bar_h + gap)
        w = room * value / top
        parts.append(
            f'<text x="{label_width - 8}" y="{y + bar_h * 0.7:.1f}" text-anchor="end" '
            f'class="chart__label">{escape(label)}</text>'
            f'<rect x="{label_width}" y="{y}" width="{w:.1f}" height="{bar_h}" '
            f'class="chart__bar {escape(css)}"></rect>'
            f'<text x="{label_width + w + 6:.1f}" y="{y + bar_h * 0.7:.1f}" '
            f'class="chart__value">{_number(value)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def column_chart(
    title: str, columns: Sequence[tuple[str, float | None, str]], *, width: int = 560
) -> str:
    """Vertical columns of rates 0..1 (None: no outcome that week, drawn as a dash)."""
    height, bottom, left = 220, 40, 64
    plot_h = height - bottom - 16
    step = (width - left - 10) / max(len(columns), 1)
    top = max((v for _, v, _ in columns if v is not None), default=0.0) or 1.0
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" '
        f'preserveAspectRatio="xMinYMin meet" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - 5}" y2="{height - bottom}" '
        'class="chart__axis"></line>',
        f'<text x="{left - 6}" y="{16 + 4}" text-anchor="end" class="chart__value">'
        f"{percent(top)}</text>",
    ]
    for i, (label, value, css) in enumerate(columns):
        x = left + i * step + step * 0.2
        w = step * 0.6
        if value is None:
            parts.append(
                f'<text x="{x + w / 2:.1f}" y="{height - bottom - 6}" text-anchor="middle" '
                'class="chart__value">\u2013</text>'
            )
        else:
            h = plot_h * value / top
            parts.append(
                f'<rect x="{x:.1f}" y="{height - bottom - h:.1f}" width="{w:.1f}" '
                f'height="{h:.1f}" class="chart__bar {escape(css)}"></rect>'
                f'<text x="{x + w / 2:.1f}" y="{height - bottom - h - 4:.1f}" '
                f'text-anchor="middle" class="chart__value">{percent(value)}</text>'
            )
        parts.append(
            f'<text x="{x + w / 2:.1f}" y="{height - bottom + 16}" text-anchor="middle" '
            f'class="chart__label">{escape(label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


# ---- CSV ---------------------------------------------------------------------------------------


def to_csv(report: Report) -> str:
    """One section per table: `section,key,value[,extra]` rows (stable keys, not translated)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["section", "key", "value", "outcomes"])
    writer.writerow(["report", "week", report.week, ""])
    writer.writerow(["report", "active_candidates", report.active, ""])
    for level, n in report.by_risk.items():
        writer.writerow(["risk", level, n, ""])
    for stage, n in report.funnel.items():
        writer.writerow(["funnel", stage, n, ""])
    for r in report.rates:
        writer.writerow(
            ["no_show_rate", r.week, "" if r.rate is None else f"{r.rate:.4f}", r.outcomes]
        )
    for answer, n in report.answers.items():
        writer.writerow(["answers", answer, n, ""])
    for checkpoint, n in report.overdue.items():
        writer.writerow(["overdue", checkpoint, n, ""])
    return out.getvalue()

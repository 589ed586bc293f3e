"""The weekly report as an e-mail: the same figures as the report page (`report.py`, from the
same reads in `queries.py` and `board.py`), in zh-CN then English, with a link to the page.
notify sends it (`notify/weekly.py` decides when and to whom); `stack.py` hands `WeeklyMail` to
it, so notify imports nothing of the console."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from ...shared.auth import Principal
from ...shared.db import Database
from .. import i18n
from . import board, queries
from . import report as weekly

LANGUAGES = ("zh-CN", "en")


@dataclass(frozen=True)
class Mail:
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class WeeklyMail:
    """`WeeklyMail(db, console_url)(tenant, week, now)`: one tenant's report of `week`."""

    db: Database
    console_url: str

    def __call__(self, tenant: str, week: str, now: dt.datetime) -> Mail:
        reader = Principal(key_id="weekly-report", role="legal", tenant=tenant)
        inputs = queries.report_inputs(self.db, reader)
        rows = board.board_rows(self.db, reader, now)
        r = weekly.build(week, inputs["agreements"], inputs["submitted"], inputs["answers"], rows)
        link = f"{self.console_url.rstrip('/')}/console/report?week={week}"
        texts, htmls = [], []
        for language in LANGUAGES:
            t = i18n.translator(language)
            sections = _sections(r, t, weekly.percent)
            texts.append(_text(t, tenant, week, sections, link))
            htmls.append(_html(t, tenant, week, sections, link, language))
        subject = " / ".join(
            i18n.translator(lang)("console.weekly.subject", week=week, tenant=tenant)
            for lang in LANGUAGES
        )
        return Mail(
            subject=subject,
            text="\n\n-----\n\n".join(texts),
            html="<!doctype html><html><body>" + "<hr>".join(htmls) + "</body></html>",
        )


Section = tuple[str, Sequence[tuple[str, str]]]


def _sections(r: Any, t: Callable[..., str], percent: Callable[[Any], str]) -> list[Section]:
    return [
        (
            t("console.report.title"),
            [
                (t("console.report.active"), str(r.active)),
                (
                    t("console.report.rate_week", outcomes=r.rate.outcomes),
                    percent(r.rate.rate),
                ),
                (t("console.report.rate_before"), percent(r.previous_rate)),
            ],
        ),
        (
            t("console.report.by_risk"),
            [(t(f"console.risk.{level}"), str(n)) for level, n in r.by_risk.items()],
        ),
        (
            t("console.report.funnel"),
            [(t(f"console.funnel.{stage}"), str(n)) for stage, n in r.funnel.items()],
        ),
        (
            t("console.report.rates"),
            [(w.week, f"{percent(w.rate)} ({w.outcomes})") for w in r.rates],
        ),
        (
            t("console.report.answers"),
            [(t(f"console.answer.{a}"), str(n)) for a, n in r.answers.items()],
        ),
        (
            t("console.report.overdue"),
            [(t(f"console.cp.{c}"), str(n)) for c, n in r.overdue.items() if n]
            or [(t("console.none"), "0")],
        ),
    ]


def _text(t: Callable[..., str], tenant: str, week: str, sections: list[Section], link: str) -> str:
    lines = [t("console.weekly.heading", week=week, tenant=tenant), ""]
    for title, rows in sections:
        lines.append(title)
        lines += [f"  {name}: {value}" for name, value in rows]
        lines.append("")
    lines.append(t("console.weekly.link", link=link))
    return "\n".join(lines)


def _html(
    t: Callable[..., str],
    tenant: str,
    week: str,
    sections: list[Section],
    link: str,
    language: str,
) -> str:
    parts = [
        f'<div lang="{language}">',
        f"<h1>{escape(t('console.weekly.heading', week=week, tenant=tenant))}</h1>",
    ]
    for title, rows in sections:
        parts.append(f"<h2>{escape(title)}</h2><table>")
        parts += [
            f"<tr><th align='left'>{escape(name)}</th><td>{escape(value)}</td></tr>"
            for name, value in rows
        ]
        parts.append("</table>")
    parts.append(f'<p><a href="{escape(link)}">{escape(t("console.weekly.open"))}</a></p></div>')
    return "".join(parts)

"""The weekly report by e-mail: every Monday from 08:00 UTC, each tenant's HR list receives last
week's report, with the same figures as the console's report page (built by the same code,
`web/console/report.py`, from the same reads) and a link to that page.

The list is the tenant's active `hr` and `admin` console accounts, or the addresses given for
the tenant in OFFERSEAL_REPORT_RECIPIENTS (`acme=hr@acme.example ops@acme.example;globex=...`).
Each (tenant, week, address) is sent once: a row of `notify_weekly_reports` records it; an
address the server refused for good is recorded as failed and not tried again, a temporary
refusal is tried again on the next pass. The e-mail speaks zh-CN, then English."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Sequence
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from ..shared.auth import Principal
from ..shared.db import Database
from ..shared.models import utcnow
from ..shared.users import ConsoleUser
from .adapters.channels import Outgoing, Rejected, RetryLater
from .calendars import calendars_of
from .domain.templates import Rendered
from .domain.workdays import first_working_day_of_week
from .models import WeeklyReport

log = logging.getLogger(__name__)
SEND_WEEKDAY, SEND_HOUR = 0, 8  # Monday 08:00 UTC
CALENDAR_ZONE = ZoneInfo("Asia/Shanghai")  # whose public holidays a holiday calendar knows
LANGUAGES = ("zh-CN", "en")


def parse_recipients(text: str) -> dict[str, list[str]]:
    """`acme=a@x b@y;globex=c@z` -> {"acme": ["a@x", "b@y"], "globex": ["c@z"]}."""
    out: dict[str, list[str]] = {}
    for part in text.split(";"):
        tenant, _, addresses = part.partition("=")
        found = [a for a in addresses.replace(",", " ").split() if "@" in a]
        if tenant.strip() and found:
            out[tenant.strip()] = found
    return out


def week_due(now: dt.datetime) -> str:
    """The ISO week whose report is due at `now`: the week before, from Monday 08:00 UTC."""
    from ..web.console.report import week_of

    since = now.astimezone(dt.UTC) - dt.timedelta(hours=SEND_HOUR)
    return week_of(since - dt.timedelta(weeks=1))


class WeeklyReports:
    def __init__(
        self,
        db: Database,
        channels: dict[str, Any],
        *,
        console_url: str,
        recipients: dict[str, list[str]] | None = None,
    ) -> None:
        self.db = db
        self.channels = channels
        self.console_url = console_url.rstrip("/")
        self.configured = recipients or {}

    def recipients(self) -> dict[str, list[str]]:
        """Every tenant's HR list: the configured one, else its active hr and admin accounts."""
        lists: dict[str, list[str]] = {}
        with self.db.sessions() as session:
            for user in session.execute(
                select(ConsoleUser.tenant, ConsoleUser.email)
                .where(
                    ConsoleUser.role.in_(("hr", "admin")),
                    ConsoleUser.disabled_at.is_(None),
                    ConsoleUser.password_hash.is_not(None),
                )
                .order_by(ConsoleUser.tenant, ConsoleUser.email)
            ):
                lists.setdefault(user.tenant, []).append(user.email)
        return {**lists, **self.configured}

    def send_due(self, now: dt.datetime | None = None) -> int:
        """Send what is due and not sent yet; returns how many e-mails went out."""
        channel = self.channels.get("email")
        if channel is None:
            return 0
        now = now or utcnow()
        week = week_due(now)
        sent = 0
        lists = self.recipients()
        with self.db.sessions() as session:
            calendars = calendars_of(session, lists)
        today = now.astimezone(CALENDAR_ZONE).date()
        for tenant, addresses in sorted(lists.items()):
            calendar = calendars.get(tenant)
            if calendar is not None and today < first_working_day_of_week(today, calendar):
                continue  # a holiday Monday: the report waits for the week's first working day
            with self.db.sessions() as session:
                done = set(
                    session.execute(
                        select(WeeklyReport.recipient).where(
                            WeeklyReport.tenant == tenant, WeeklyReport.week == week
                        )
                    ).scalars()
                )
            waiting = [a for a in addresses if a not in done]
            if not waiting:
                continue
            rendered = self.render(tenant, week, now)
            for address in waiting:
                sent += self._send(channel, tenant, week, address, rendered)
        return sent

    def _send(self, channel: Any, tenant: str, week: str, address: str, r: Rendered) -> int:
        message_id = f"<weekly-{uuid.uuid4().hex}@offerseal>"
        out = Outgoing(
            touchpoint_id=f"weekly-{uuid.uuid4()}",
            message_id=message_id,
            to_email=address,
            rendered=r,
            essential=True,
            unsubscribe_url=None,
            payload={"kind": "weekly_report", "tenant": tenant, "week": week},
        )
        try:
            detail, state = channel.send(out), "sent"
        except RetryLater as exc:
            log.warning("weekly report to %s for %s: %s; tried again later", address, tenant, exc)
            return 0
        except Rejected as exc:
            detail, state = str(exc), "failed"
        with self.db.transaction() as session:
            session.add(
                WeeklyReport(
                    tenant=tenant,
                    week=week,
                    recipient=address,
                    state=state,
                    detail=detail[:500],
                    sent_at=utcnow(),
                )
            )
        return 1 if state == "sent" else 0

    def render(self, tenant: str, week: str, now: dt.datetime) -> Rendered:
        """The report's figures, as the page shows them, in zh-CN then English."""
        from ..web import i18n
        from ..web.console import queries
        from ..web.console import report as weekly

        reader = Principal(key_id="weekly-report", role="legal", tenant=tenant)
        inputs = queries.report_inputs(self.db, reader)
        board = queries.board_rows(self.db, reader, now)
        r = weekly.build(week, inputs["agreements"], inputs["submitted"], inputs["answers"], board)
        link = f"{self.console_url}/console/report?week={week}"
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
        return Rendered(
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

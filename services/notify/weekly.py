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
from collections.abc import Callable
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import select

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
    """The ISO week (`YYYY-Www`, as the report page names it) whose report is due at `now`: the
    week before, from Monday 08:00 UTC."""
    since = now.astimezone(dt.UTC) - dt.timedelta(hours=SEND_HOUR)
    year, week, _ = (since - dt.timedelta(weeks=1)).isocalendar()
    return f"{year}-W{week:02d}"


class ReportMail(Protocol):
    @property
    def subject(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def html(self) -> str: ...


# (tenant, week, now) -> the e-mail of that tenant's report for that week, in every language.
ComposeReport = Callable[[str, str, dt.datetime], ReportMail]


class WeeklyReports:
    def __init__(
        self,
        db: Database,
        channels: dict[str, Any],
        *,
        compose: ComposeReport,
        recipients: dict[str, list[str]] | None = None,
    ) -> None:
        self.db = db
        self.channels = channels
        self.compose = compose
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
            mail = self.compose(tenant, week, now)
            rendered = Rendered(subject=mail.subject, text=mail.text, html=mail.html)
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

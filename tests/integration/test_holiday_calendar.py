"""A tenant's switch to mainland China's calendar, through the notify service on SQLite with a
recording channel: a check-in due on the first day of the 2026 Spring Festival waits for the
first day after the holidays (another tenant's goes out), and the weekly report skips the
National Day Monday until the week's first working day."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from offerseal.notify import dispatch
from offerseal.notify.adapters.channels import Outgoing
from offerseal.notify.domain import schedule
from offerseal.notify.models import FollowedAgreement, NotifyCandidate, Touchpoint
from offerseal.notify.service import NotifyService
from offerseal.notify.weekly import WeeklyReports
from offerseal.shared.auth import Principal
from offerseal.shared.db import Database
from offerseal.shared.errors import ValidationFailed
from offerseal.shared.links import LinkSigner
from offerseal.web.console.report_mail import WeeklyMail

SHANGHAI = ZoneInfo("Asia/Shanghai")


class Recording:
    name = "email"

    def __init__(self) -> None:
        self.sent: list[Outgoing] = []

    def send(self, out: Outgoing) -> str:
        self.sent.append(out)
        return "recorded"


def setup(sqlite_url: str) -> tuple[Database, NotifyService, Recording]:
    db = Database(sqlite_url)
    db.migrate()
    channel = Recording()
    service = NotifyService(
        db,
        LinkSigner(b"k" * 32),
        {"email": channel},
        public_url="http://127.0.0.1:1",
        evidence_url="http://127.0.0.1:1",
        checkin_interval=48 * 3600,
        quiet_hours="22:00-08:00",
        default_timezone="Asia/Shanghai",
        mail_domain="offerseal.local",
    )
    with db.transaction() as session:
        for tenant in ("acme", "globex"):
            session.add(
                NotifyCandidate(
                    tenant=tenant,
                    candidate_ref="cand-1",
                    email="c@example.com",
                    timezone="Asia/Shanghai",
                    language="zh-CN",
                    quiet_hours="22:00-08:00",
                    channels=["email"],
                    opted_out=False,
                )
            )
            session.add(
                FollowedAgreement(
                    agreement_id=f"ag-{tenant}",
                    tenant=tenant,
                    candidate_ref="cand-1",
                    language="zh-CN",
                    employer_name="示例科技",
                    position="工程师",
                    start_at=dt.datetime(2026, 4, 1, tzinfo=dt.UTC),
                    milestones=[],
                    state="committed",
                )
            )
            session.add(
                Touchpoint(
                    id=f"tp-{tenant}",
                    key=f"ag-{tenant}:checkin:1",
                    tenant=tenant,
                    agreement_id=f"ag-{tenant}",
                    candidate_ref="cand-1",
                    kind=schedule.CHECKIN,
                    occurrence=1,
                    essential=False,
                    due_at=dt.datetime(2026, 2, 17, 1, 0, tzinfo=dt.UTC),
                    data={},
                )
            )
    return db, service, channel


def test_a_checkin_waits_out_the_spring_festival_for_a_tenant_with_the_calendar(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, service, channel = setup(sqlite_url)
    hr = Principal("key-1", "hr", "acme")
    assert service.calendars.get(hr)["calendar"] == "none"
    shown = service.calendars.put(hr, "cn")
    assert shown["calendar"] == "cn" and shown["official_until"] >= 2026
    with pytest.raises(ValidationFailed):
        service.calendars.put(hr, "us")
    # 10:00 in Shanghai on the first day of the Spring Festival 2026
    first_day = dt.datetime(2026, 2, 17, 10, 0, tzinfo=SHANGHAI).astimezone(dt.UTC)
    monkeypatch.setattr(dispatch, "utcnow", lambda: first_day)
    service.dispatch_once()
    assert [out.tenant for out in channel.sent] == ["globex"]  # no calendar: sent
    with db.sessions() as session:
        tp = session.get(Touchpoint, "tp-acme")
        assert tp is not None and tp.state == "planned"
        due = tp.due_at if tp.due_at.tzinfo else tp.due_at.replace(tzinfo=dt.UTC)
    # the first day after the holidays (15-23 February), when quiet hours end
    assert due.astimezone(SHANGHAI) == dt.datetime(2026, 2, 24, 8, 0, tzinfo=SHANGHAI)
    detail = service.candidates.touchpoint(hr, "tp-acme")
    assert "public holiday" in repr(detail)


def test_the_weekly_report_skips_a_holiday_monday(sqlite_url: str) -> None:
    db, service, channel = setup(sqlite_url)
    service.calendars.put(Principal("key-1", "hr", "acme"), "cn")
    reports = WeeklyReports(
        db,
        {"email": channel},
        compose=WeeklyMail(db, "https://offerseal.example"),
        recipients={"acme": ["hr@acme.example"], "globex": ["hr@globex.example"]},
    )

    def sent_to() -> list[Any]:
        return [out.to_email for out in channel.sent]

    # Monday 5 October 2026, 17:00 in Shanghai (after 08:00 UTC): National Day
    reports.send_due(dt.datetime(2026, 10, 5, 17, 0, tzinfo=SHANGHAI))
    assert sent_to() == ["hr@globex.example"]
    reports.send_due(dt.datetime(2026, 10, 7, 17, 0, tzinfo=SHANGHAI))
    assert sent_to() == ["hr@globex.example"]
    # Thursday 8 October: the week's first working day
    reports.send_due(dt.datetime(2026, 10, 8, 17, 0, tzinfo=SHANGHAI))
    assert sent_to() == ["hr@globex.example", "hr@acme.example"]

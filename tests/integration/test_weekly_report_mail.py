"""The weekly report by e-mail through a real SMTP server (aiosmtpd): the tenant's active hr and
admin accounts receive last week's report once, with the figures of the console's report page
(read from its CSV over real HTTP) and a link to it; a configured list replaces the accounts."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
import requests
from aiosmtpd.controller import Controller

from offerseal.notify.adapters.channels import SmtpChannel
from offerseal.notify.weekly import WeeklyReports, parse_recipients, week_due
from offerseal.shared import users
from offerseal.shared.auth import create_key
from offerseal.shared.config import load_settings
from offerseal.shared.db import Database
from offerseal.shared.server import HttpServer
from offerseal.web.app import create_app
from offerseal.web.console.report_mail import WeeklyMail
from tests.conftest import free_port
from tests.integration.test_console import seed_agreement
from tests.integration.test_notify import Mailbox

PASSWORD = "a long enough passphrase"


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, str]]:
    handler = Mailbox()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, f"smtp://127.0.0.1:{port}"
    controller.stop()


def _account(db: Database, email: str, role: str, tenant: str) -> None:
    _, token = users.add_user(db, email, role, tenant, by="test")
    users.set_password(db, token, PASSWORD)


def _text(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def test_the_hr_list_receives_last_weeks_report_once(
    tmp_path: Path, mailbox: tuple[Mailbox, str]
) -> None:
    box, smtp_url = mailbox
    settings = load_settings(
        {}, data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'weekly.db'}"
    )
    db = Database(settings.effective_database_url)
    db.migrate()
    server = HttpServer(create_app(settings, db), "127.0.0.1", 0, 2).start()
    try:
        seed_agreement(db, "acme", "cand-red", risk_level="red", risk_score=40)
        seed_agreement(db, "acme", "cand-blue")
        seed_agreement(db, "globex", "cand-globex")
        _account(db, "lin.hr@acme.example", "hr", "acme")
        _account(db, "boss@acme.example", "admin", "acme")
        _account(db, "counsel@acme.example", "legal", "acme")  # legal: not on the HR list
        _account(db, "gone@acme.example", "hr", "acme")
        users.disable_user(db, "gone@acme.example")
        users.add_user(db, "invited@acme.example", "hr", "acme", by="test")  # no password yet
        console = f"http://127.0.0.1:{server.port}"
        channel = SmtpChannel(smtp_url, "OfferSeal <reports@offerseal.test>")
        reports = WeeklyReports(
            db,
            {"email": channel},
            compose=WeeklyMail(db, console),
            recipients=parse_recipients("globex=ops@globex.example, hr@globex.example"),
        )
        now = dt.datetime.now(dt.UTC)
        week = week_due(now)
        assert reports.send_due(now) == 4
        assert reports.send_due(now) == 0  # once per address and week
        channel.close()

        mails = {str(m["To"]): m for m in box.messages}
        assert set(mails) == {
            "lin.hr@acme.example",
            "boss@acme.example",
            "ops@globex.example",
            "hr@globex.example",
        }
        acme = mails["boss@acme.example"]
        assert week in str(acme["Subject"]) and "周报" in str(acme["Subject"])
        text = _text(acme)
        assert f"{console}/console/report?week={week}" in text
        assert "Weekly report" in text and "周报" in text  # zh-CN, then English

        # the same figures as the report page (its CSV, over HTTP, for that week)
        key = {"Authorization": f"Bearer {create_key(db, 'hr', 'acme')[1]}"}
        page = requests.get(f"{console}/console/report.csv?week={week}", headers=key, timeout=10)
        assert page.status_code == 200
        figures = {
            (row["section"], row["key"]): row["value"]
            for row in csv.DictReader(io.StringIO(page.text.lstrip("\ufeff")))
        }
        english = text.split("-----")[-1]
        assert figures[("report", "active_candidates")] == "2"
        assert "candidates between offer and first day: 2\n" in english
        for level, name in (("red", "Red"), ("yellow", "Yellow"), ("blue", "Blue")):
            assert f"  {name}: {figures['risk', level]}\n" in english, level
        for stage, name in (("offered", "Offered"), ("signed", "Signed"), ("no_show", "No-show")):
            assert f"  {name}: {figures['funnel', stage]}\n" in english, stage
        assert f"  Resignation submitted: {figures['overdue', 'resignation_submitted']}" in english
        assert "cand-globex" not in text and "cand-red" not in text  # figures, no names
        globex = _text(mails["ops@globex.example"]).split("-----")[-1]
        assert "candidates between offer and first day: 1" in globex
    finally:
        server.stop()
        db.dispose()


def test_the_report_of_a_week_is_due_from_monday_eight_utc() -> None:
    monday = dt.datetime(2027, 3, 1, tzinfo=dt.UTC)  # ISO week 2027-W09
    assert week_due(monday + dt.timedelta(hours=7, minutes=59)) == "2027-W07"
    assert week_due(monday + dt.timedelta(hours=8)) == "2027-W08"
    assert week_due(monday + dt.timedelta(days=6, hours=23)) == "2027-W08"
    assert parse_recipients("acme=a@x.example b@x.example;bad;globex=") == {
        "acme": ["a@x.example", "b@x.example"]
    }

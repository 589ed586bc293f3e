"""The HR console over real HTTP (waitress, SQLite): people sign in through a one-time link,
sessions and their cookies, CSRF on every form, the sign-in throttle, session expiry, and the
same role and tenant checks as the APIs (a person of one tenant never sees or touches another
tenant's candidates). Agreements are rows written as the contracts service writes them."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select

from harness.procs import free_port
from offerseal.cli import main as cli_main
from offerseal.contracts.models import Agreement, AgreementMilestone, AgreementSignal
from offerseal.shared import users
from offerseal.shared.auth import create_key
from offerseal.shared.config import load_settings
from offerseal.shared.db import Database
from offerseal.shared.server import HttpServer
from offerseal.web.app import create_app

PASSWORD = "a long enough passphrase"
NOW = dt.datetime.now(dt.UTC)


def seed_agreement(db: Database, tenant: str, ref: str, **changes: Any) -> str:
    """An agreement row as the contracts service stores it (with one milestone)."""
    agreement_id = str(uuid.uuid4())
    values: dict[str, Any] = {
        "id": agreement_id,
        "tenant": tenant,
        "onchain_id": "0x" + uuid.uuid4().hex * 2,
        "candidate_ref": ref,
        "candidate_address": "0x" + "1" * 40,
        "contact": {"email": f"{ref}@example.com", "timezone": "Asia/Shanghai"},
        "employer_name": f"{tenant} Ltd",
        "employer_address": "0x" + "2" * 40,
        "position": "Firmware Engineer",
        "currency": "CNY",
        "monthly_salary": 3_000_000,
        "liquidated_damages": 900_000,
        "start_at": NOW + dt.timedelta(days=20),
        "grace_days": 3,
        "offer_expires_at": NOW + dt.timedelta(days=3),
        "language": "zh-CN",
        "terms_text": "terms",
        "terms_hash": "0x" + "0" * 64,
        "state": "committed",
        "risk_level": "blue",
        "risk_score": 100,
        "risk_reasons": ["nothing unusual"],
        "created_by": "seed",
    }
    values.update(changes)
    with db.transaction() as session:
        session.add(Agreement(**values))
        session.flush()
        session.add(
            AgreementMilestone(
                agreement_id=agreement_id,
                idx=0,
                kind="resignation_submitted",
                due_at=NOW - dt.timedelta(days=1),
            )
        )
    return agreement_id


@dataclass
class Console:
    url: str
    db: Database
    acme: str
    globex: str


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    tmp: Path = tmp_path_factory.mktemp("console")
    settings = load_settings(
        {},
        data_dir=tmp,
        database_url=f"sqlite:///{tmp / 'console.db'}",
        login_rate_limit="3/minute",
        public_rate_limit="100000/minute",
    )
    db = Database(settings.effective_database_url)
    db.migrate()
    port = free_port()
    origin = f"http://127.0.0.1:{port}"  # as configured (OFFERSEAL_WEB_PUBLIC_URL)
    server = HttpServer(create_app(settings, db, public_origin=origin), "127.0.0.1", port, 4)
    server.start()
    acme = seed_agreement(db, "acme", "cand-acme", risk_level="red", risk_score=55)
    with db.transaction() as session:
        session.add(
            AgreementSignal(agreement_id=acme, kind="replied", answer="delayed", occurred_at=NOW)
        )
    globex = seed_agreement(db, "globex", "cand-globex")
    try:
        yield Console(f"http://127.0.0.1:{server.port}", db, acme, globex)
    finally:
        server.stop()
        db.dispose()


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the form carries a CSRF token"
    return match.group(1)


def person(console: Console, email: str, role: str, tenant: str) -> requests.Session:
    """An account made as `offerseal users add` makes it, its password set through the link
    it printed, and a browser-like session signed in with it."""
    _, token = users.add_user(console.db, email, role, tenant, by="test")
    browser = requests.Session()
    setup = browser.get(f"{console.url}/console/setup/{token}", timeout=10)
    assert setup.status_code == 200
    done = browser.post(
        f"{console.url}/console/setup/{token}",
        data={"csrf_token": csrf_of(setup.text), "password": PASSWORD, "confirm": PASSWORD},
        timeout=10,
    )
    assert done.status_code == 200 and "/console/login" in done.url
    signed_in = browser.post(
        f"{console.url}/console/login",
        data={"csrf_token": csrf_of(done.text), "email": email, "password": PASSWORD},
        timeout=10,
    )
    assert signed_in.status_code == 200 and signed_in.url.endswith("/console"), signed_in.text
    return browser


@pytest.fixture(scope="module")
def hr(console: Console) -> requests.Session:
    return person(console, "hr@acme.example", "hr", "acme")


def test_the_cli_prints_a_one_time_link(
    console: Console, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OFFERSEAL_DATABASE_URL", console.db.url)
    monkeypatch.setenv("OFFERSEAL_WEB_PORT", "8100")
    assert (
        cli_main(["users", "add", "Admin@Acme.example", "--role", "admin", "--tenant", "acme"]) == 0
    )
    link = capsys.readouterr().out.strip().splitlines()[-1]
    assert re.fullmatch(r"http://127\.0\.0\.1:8100/console/setup/[A-Za-z0-9_-]{43}", link)
    assert cli_main(["users", "list", "--tenant", "acme"]) == 0
    listed = capsys.readouterr().out
    assert "admin@acme.example" in listed and "invited" in listed
    assert cli_main(["users", "disable", "admin@acme.example"]) == 0
    assert cli_main(["users", "disable", "admin@acme.example"]) == 1
    token = link.rsplit("/", 1)[1]
    assert requests.get(f"{console.url}/console/setup/{token}", timeout=10).status_code == 410


def test_cookies_are_httponly_and_samesite_lax(console: Console) -> None:
    _, token = users.add_user(console.db, "cookie@acme.example", "hr", "acme", by="test")
    users.set_password(console.db, token, PASSWORD)
    page = requests.get(f"{console.url}/console/login", timeout=10)
    answer = requests.post(
        f"{console.url}/console/login",
        data={
            "csrf_token": csrf_of(page.text),
            "email": "cookie@acme.example",
            "password": PASSWORD,
        },
        cookies=page.cookies,
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 303 and answer.headers["Location"] == "/console"
    cookie = next(c for c in answer.headers["Set-Cookie"].split(", offerseal") if "session=" in c)
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


def test_cookies_are_secure_behind_tls(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'tls.db'}")
    db.migrate()
    _, token = users.add_user(db, "tls@acme.example", "hr", "acme", by="test")
    users.set_password(db, token, PASSWORD)
    client = create_app(load_settings({}, data_dir=tmp_path), db).test_client()
    page = client.get("/console/login", base_url="https://console.example")
    answer = client.post(
        "/console/login",
        base_url="https://console.example",
        data={"csrf_token": csrf_of(page.text), "email": "tls@acme.example", "password": PASSWORD},
    )
    assert answer.status_code == 303
    session_cookie = [c for c in answer.headers.getlist("Set-Cookie") if "session=" in c]
    assert session_cookie and "Secure" in session_cookie[0]
    assert "Strict-Transport-Security" in answer.headers
    db.dispose()


def test_a_page_without_a_session_sends_the_person_to_sign_in(console: Console) -> None:
    page = requests.get(f"{console.url}/console?risk=red", allow_redirects=False, timeout=10)
    assert page.status_code == 303
    assert page.headers["Location"] == "/console/login?next=%2Fconsole%3Frisk%3Dred"
    data = requests.get(f"{console.url}/console/board.json", timeout=10)
    assert data.status_code == 401
    assert data.headers["Content-Type"].startswith("application/problem+json")


def test_only_console_paths_are_followed_after_sign_in(console: Console) -> None:
    _, token = users.add_user(console.db, "next@acme.example", "hr", "acme", by="test")
    users.set_password(console.db, token, PASSWORD)
    browser = requests.Session()
    page = browser.get(f"{console.url}/console/login?next=//evil.example/x", timeout=10)
    assert 'value="/console"' in page.text
    answer = browser.post(
        f"{console.url}/console/login",
        data={
            "csrf_token": csrf_of(page.text),
            "email": "next@acme.example",
            "password": PASSWORD,
            "next": "https://evil.example/",
        },
        allow_redirects=False,
        timeout=10,
    )
    assert answer.headers["Location"] == "/console"


def test_every_form_needs_its_csrf_token(console: Console, hr: requests.Session) -> None:
    # sign-in without the double-submitted token
    fresh = requests.post(
        f"{console.url}/console/login",
        data={"email": "hr@acme.example", "password": PASSWORD},
        timeout=10,
    )
    assert fresh.status_code == 403
    # a signed-in person's unsafe request without the session's token, or with another
    for data in ({}, {"csrf_token": "forged"}):
        answer = hr.post(f"{console.url}/console/logout", data=data, timeout=10)
        assert answer.status_code == 403, data
        answer = hr.post(
            f"{console.url}/console/agreements/{console.acme}/revoke",
            data={**data, "reason": "test"},
            timeout=10,
        )
        assert answer.status_code == 403, data
    assert hr.get(f"{console.url}/console", timeout=10).status_code == 200  # still signed in


def test_failed_sign_ins_are_throttled(console: Console) -> None:
    _, token = users.add_user(console.db, "slow@acme.example", "hr", "acme", by="test")
    users.set_password(console.db, token, PASSWORD)
    browser = requests.Session()
    csrf = csrf_of(browser.get(f"{console.url}/console/login", timeout=10).text)

    def attempt(password: str) -> requests.Response:
        return browser.post(
            f"{console.url}/console/login",
            data={"csrf_token": csrf, "email": "slow@acme.example", "password": password},
            allow_redirects=False,
            timeout=10,
        )

    for _ in range(3):
        assert attempt("wrong password, again").status_code == 401
    refused = attempt(PASSWORD)  # even the right one waits now
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert "Too many failed attempts" in refused.text or "失败次数过多" in refused.text


def test_sign_out_and_session_expiry(console: Console) -> None:
    browser = person(console, "leaver@acme.example", "hr", "acme")
    board = browser.get(f"{console.url}/console", timeout=10)
    out = browser.post(
        f"{console.url}/console/logout", data={"csrf_token": csrf_of(board.text)}, timeout=10
    )
    assert out.status_code == 200 and "done=signed_out" in out.url
    assert (
        browser.get(f"{console.url}/console", allow_redirects=False, timeout=10).status_code == 303
    )
    # idle for longer than OFFERSEAL_SESSION_IDLE (30 min by default)
    again = person(console, "idle@acme.example", "hr", "acme")
    with console.db.transaction() as session:
        idle = select(users.ConsoleUser.id).where(users.ConsoleUser.email == "idle@acme.example")
        for row in session.execute(
            select(users.ConsoleSession).where(users.ConsoleSession.user_id.in_(idle))
        ).scalars():
            row.last_seen_at = NOW - dt.timedelta(hours=1)
    assert again.get(f"{console.url}/console", allow_redirects=False, timeout=10).status_code == 303


def test_the_board_shows_only_the_callers_tenant(console: Console, hr: requests.Session) -> None:
    board = hr.get(f"{console.url}/console", timeout=10)
    assert board.status_code == 200
    assert "cand-acme" in board.text and "cand-globex" not in board.text
    data = hr.get(f"{console.url}/console/board.json", timeout=10).json()
    assert [r["candidate_ref"] for r in data["rows"]] == ["cand-acme"]
    row = data["rows"][0]
    assert row["risk"]["level"] == "red" and row["last_answer"] == "delayed"
    statuses = {c["checkpoint"]: c["status"] for c in row["checkpoints"]}
    assert statuses["resignation_submitted"] == "overdue"
    assert statuses["offer_accepted"] == "done"
    filtered = hr.get(f"{console.url}/console/board.json?risk=blue", timeout=10).json()
    assert filtered["rows"] == []
    report = hr.get(f"{console.url}/console/report.csv", timeout=10)
    assert report.status_code == 200 and "risk,red,1" in report.text
    assert "risk,blue,0" in report.text  # globex's blue candidate is not counted


def test_another_tenants_candidate_answers_like_a_missing_one(
    console: Console, hr: requests.Session
) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    csrf = csrf_of(hr.get(f"{console.url}/console", timeout=10).text)
    for path in ("", "/withdraw", "/start", "/revoke"):
        theirs = hr.get(f"{console.url}/console/agreements/{console.globex}{path}", timeout=10)
        nobodys = hr.get(f"{console.url}/console/agreements/{missing}{path}", timeout=10)
        assert theirs.status_code == nobodys.status_code == 404, path
        assert "cand-globex" not in theirs.text
    for action in ("withdraw", "start", "revoke"):
        theirs = hr.post(
            f"{console.url}/console/agreements/{console.globex}/{action}",
            data={"csrf_token": csrf, "reason": "x"},
            timeout=10,
        )
        assert theirs.status_code == 404, action
    with console.db.sessions() as session:
        assert session.get(Agreement, console.globex).state == "committed"


def test_roles_are_checked_like_the_apis(console: Console) -> None:
    legal = person(console, "legal@acme.example", "legal", "acme")
    assert legal.get(f"{console.url}/console", timeout=10).status_code == 200
    assert legal.get(f"{console.url}/console/report", timeout=10).status_code == 200
    timeline = legal.get(f"{console.url}/console/agreements/{console.acme}", timeout=10)
    assert timeline.status_code == 200 and "/withdraw" not in timeline.text
    csrf = csrf_of(timeline.text)
    assert legal.get(f"{console.url}/console/offer", timeout=10).status_code == 403
    assert (
        legal.get(f"{console.url}/console/agreements/{console.acme}/withdraw", timeout=10)
    ).status_code == 403
    refused = legal.post(
        f"{console.url}/console/agreements/{console.acme}/revoke",
        data={"csrf_token": csrf, "reason": "x"},
        timeout=10,
    )
    assert refused.status_code == 403


def test_an_api_key_reads_the_board_data_too(console: Console) -> None:
    key = create_key(console.db, "legal", "globex")[1]
    data = requests.get(
        f"{console.url}/console/board.json",
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    assert data.status_code == 200
    assert [r["candidate_ref"] for r in data.json()["rows"]] == ["cand-globex"]


def test_the_timeline_and_report_render_in_both_languages(
    console: Console, hr: requests.Session
) -> None:
    for lang, words in (("en", ("Timeline", "Weekly report")), ("zh-CN", ("时间线", "周报"))):
        timeline = hr.get(
            f"{console.url}/console/agreements/{console.acme}?lang={lang}", timeout=10
        )
        assert timeline.status_code == 200 and words[0] in timeline.text
        assert f'<html lang="{lang}">' in timeline.text
        report = hr.get(f"{console.url}/console/report?lang={lang}", timeout=10)
        assert report.status_code == 200 and words[1] in report.text
        assert report.text.count("<svg") == 3


def test_the_tenants_admin_adds_and_disables_people(console: Console) -> None:
    admin = person(console, "boss@acme.example", "admin", "acme")
    page = admin.get(f"{console.url}/console/people", timeout=10)
    assert page.status_code == 200 and "boss@acme.example" in page.text
    assert "hr@globex" not in page.text
    added = admin.post(
        f"{console.url}/console/people",
        data={"csrf_token": csrf_of(page.text), "email": "new.hr@acme.example", "role": "hr"},
        timeout=10,
    )
    assert added.status_code == 201
    link = re.search(r'id="setup-link">([^<]+)<', added.text)
    assert link and link.group(1).startswith(f"{console.url}/console/setup/")
    assert requests.get(link.group(1), timeout=10).status_code == 200
    # A forged Host header does not reach the link the admin hands on: it names the configured
    # origin (it was built from the Host header, so an attacker's site could receive the token).
    cookies = "; ".join(f"{c.name}={c.value}" for c in admin.cookies)  # requests would match
    forged = requests.post(  # them against the forged Host and send none
        f"{console.url}/console/people",
        data={"csrf_token": csrf_of(page.text), "email": "other.hr@acme.example", "role": "hr"},
        headers={"Host": "attacker.example", "X-Forwarded-Host": "attacker.example"}
        | {"Cookie": cookies},
        timeout=10,
    )
    assert forged.status_code == 201, forged.text
    shown = re.search(r'id="setup-link">([^<]+)<', forged.text)
    assert shown and shown.group(1).startswith(f"{console.url}/console/setup/"), shown
    assert "attacker" not in forged.text
    again = admin.post(
        f"{console.url}/console/people",
        data={"csrf_token": csrf_of(page.text), "email": "NEW.hr@acme.example", "role": "hr"},
        timeout=10,
    )
    assert again.status_code == 409
    newcomer = next(
        u for u in users.list_users(console.db, "acme") if u["email"] == "new.hr@acme.example"
    )
    confirm = admin.get(f"{console.url}/console/people/{newcomer['id']}/disable", timeout=10)
    assert confirm.status_code == 200
    done = admin.post(
        f"{console.url}/console/people/{newcomer['id']}/disable",
        data={"csrf_token": csrf_of(confirm.text)},
        timeout=10,
    )
    assert done.status_code == 200 and "done=disabled" in done.url
    assert requests.get(link.group(1), timeout=10).status_code == 410
    # another tenant's account answers like a missing one; an hr person may not manage people
    other = users.add_user(console.db, "x@globex.example", "hr", "globex", by="test")[0]
    assert admin.get(f"{console.url}/console/people/{other}/disable", timeout=10).status_code == 404
    refused = admin.post(
        f"{console.url}/console/people/{other}/disable",
        data={"csrf_token": csrf_of(confirm.text)},
        timeout=10,
    )
    assert refused.status_code == 404
    assert users.list_users(console.db, "globex")[0]["state"] == "invited"
    hr = person(console, "plain.hr@acme.example", "hr", "acme")
    assert hr.get(f"{console.url}/console/people", timeout=10).status_code == 403


def test_the_offer_form_refuses_damages_above_the_cap(
    console: Console, hr: requests.Session
) -> None:
    form = hr.get(f"{console.url}/console/offer?lang=en", timeout=10)
    assert form.status_code == 200
    refused = hr.post(
        f"{console.url}/console/offer",
        data={
            "csrf_token": csrf_of(form.text),
            "candidate_ref": "cand-new",
            "monthly_salary": "30,000",
            "liquidated_damages": "9000.01",
            "currency": "CNY",
            "start_date": (NOW + dt.timedelta(days=40)).date().isoformat(),
            "offer_expires_at": (NOW + dt.timedelta(days=7)).date().isoformat(),
        },
        timeout=10,
    )
    assert refused.status_code == 422
    assert 'href="#liquidated_damages">Above the cap of 9,000.00 CNY' in refused.text
    assert 'href="#employer_name">Enter the Employer' in refused.text
    assert 'value="cand-new"' in refused.text  # what was typed stays
    with console.db.sessions() as session:
        refs = session.execute(select(Agreement.candidate_ref)).scalars().all()
    assert "cand-new" not in refs


def test_the_board_pages_fifty_rows_most_urgent_first(console: Console) -> None:
    for n in range(54):
        seed_agreement(console.db, "bulk", f"bulk-{n:02d}", risk_level="blue")
    seed_agreement(console.db, "bulk", "bulk-red", risk_level="red")
    key = {"Authorization": f"Bearer {create_key(console.db, 'hr', 'bulk')[1]}"}
    first = requests.get(f"{console.url}/console/board.json", headers=key, timeout=10).json()
    assert (first["page"], first["pages"], first["matching"], first["count"]) == (1, 2, 55, 50)
    assert first["rows"][0]["candidate_ref"] == "bulk-red"
    second = requests.get(
        f"{console.url}/console/board.json?page=2", headers=key, timeout=10
    ).json()
    assert second["count"] == 5
    refs = {r["candidate_ref"] for r in first["rows"]} | {
        r["candidate_ref"] for r in second["rows"]
    }
    assert len(refs) == 55
    page = requests.get(f"{console.url}/console?risk=blue", headers=key, timeout=10)
    assert 'rel="next" href="/console?risk=blue&amp;page=2"' in page.text


def test_a_change_to_the_facts_shows_on_the_board(console: Console) -> None:
    """The board reads stored summaries: a check-in answer, a milestone confirmed on chain and
    a risk change each show on the next read, without anything else asked."""
    calm = seed_agreement(console.db, "live", "live-calm")
    moving = seed_agreement(console.db, "live", "live-moving", risk_score=90)
    key = {"Authorization": f"Bearer {create_key(console.db, 'hr', 'live')[1]}"}

    def rows() -> dict[str, Any]:
        data = requests.get(f"{console.url}/console/board.json", headers=key, timeout=10).json()
        return {r["agreement_id"]: r for r in data["rows"]} | {"order": data["rows"]}

    before = rows()
    assert before[moving]["last_answer"] is None
    with console.db.transaction() as session:
        signal = AgreementSignal(agreement_id=moving, kind="replied", answer="need_help")
        session.add(signal)
        signal.occurred_at = NOW
    assert rows()[moving]["last_answer"] == "need_help"
    with console.db.transaction() as session:
        milestone = session.get(AgreementMilestone, (calm, 0))
        assert milestone is not None
        milestone.confirmed_at, milestone.tx_hash = NOW, "0x" + "b" * 64
    cells = {c["checkpoint"]: c for c in rows()[calm]["checkpoints"]}
    assert cells["resignation_submitted"]["status"] == "done"
    assert cells["resignation_submitted"]["evidence"] == "0x" + "b" * 64
    assert rows()["order"][0]["agreement_id"] == moving  # one overdue cell against none
    with console.db.transaction() as session:
        agreement = session.get(Agreement, calm)
        assert agreement is not None
        agreement.risk_level, agreement.risk_score = "red", 35
    after = rows()
    assert after["order"][0]["agreement_id"] == calm
    assert after[calm]["risk"] == {"level": "red", "score": 35, "reasons": ["nothing unusual"]}


def test_the_dossier_button_is_shown_to_legal_and_admin_only(
    console: Console, hr: requests.Session
) -> None:
    # A form that POSTs with the session's CSRF token: making a dossier deposits and anchors
    # its manifest, which a link (a GET anyone's page can trigger) must never do.
    link = f'<form method="post" action="/v1/agreements/{console.acme}/dossier"'
    page = hr.get(f"{console.url}/console/agreements/{console.acme}", timeout=10)
    assert page.status_code == 200 and link not in page.text
    assert "/amend" in page.text and "/breach" in page.text  # hr acts on a signed agreement
    legal = person(console, "counsel@acme.example", "legal", "acme")
    page = legal.get(f"{console.url}/console/agreements/{console.acme}?lang=zh-CN", timeout=10)
    assert link in page.text and "下载证据包" in page.text
    form = page.text[page.text.index(link) : page.text.index("</form>", page.text.index(link))]
    assert f'name="csrf_token" value="{csrf_of(page.text)}"' in form
    assert "/amend" not in page.text and "/breach" not in page.text  # legal reads
    assert legal.get(f"{console.url}/console/agreements/{console.acme}/amend").status_code == 403
    admin = person(console, "owner@acme.example", "admin", "acme")
    page = admin.get(f"{console.url}/console/agreements/{console.acme}?lang=en", timeout=10)
    assert link in page.text and "Download the dossier" in page.text


def test_the_breach_page_shows_the_damages_against_the_cap(
    console: Console, hr: requests.Session
) -> None:
    page = hr.get(f"{console.url}/console/agreements/{console.acme}/breach?lang=en", timeout=10)
    assert page.status_code == 200
    stake = page.text[page.text.index('id="stake"') :]
    assert "9,000.00 CNY" in stake  # the damages, and the cap: 30% of 30,000.00 CNY
    assert "30% of the monthly salary of 30,000.00 CNY" in stake
    assert "30.0%" in stake and "within the cap" in stake
    assert 'id="confirm-action"' in page.text
    # a signed agreement is cancelled only by mutual release: the page says so, no button
    cancel = hr.get(f"{console.url}/console/agreements/{console.acme}/cancel?lang=en")
    assert cancel.status_code == 200 and "mutual release" in cancel.text
    assert 'id="confirm-action"' not in cancel.text
    refused = hr.post(
        f"{console.url}/console/agreements/{console.acme}/cancel",
        data={"csrf_token": csrf_of(cancel.text)},
        timeout=10,
    )
    assert refused.status_code == 409 and "mutual release" in refused.text


def test_the_date_form_checks_what_was_typed(console: Console, hr: requests.Session) -> None:
    url = f"{console.url}/console/agreements/{console.acme}/amend"
    form = hr.get(url + "?lang=en", timeout=10)
    assert form.status_code == 200
    assert 'id="start_date"' in form.text and 'id="due_0"' in form.text
    csrf = csrf_of(form.text)
    nothing = hr.post(url, data={"csrf_token": csrf, "reason": "moved"}, timeout=10)
    assert nothing.status_code == 422
    assert 'href="#start_date">Change the start date or a milestone' in nothing.text
    bad = hr.post(
        url, data={"csrf_token": csrf, "start_date": "2027-02-30", "reason": ""}, timeout=10
    )
    assert bad.status_code == 422
    assert 'href="#start_date">Enter a date like 2027-03-01' in bad.text
    assert 'href="#reason">Say why the dates change' in bad.text
    assert hr.post(url, data={"start_date": "2027-03-01"}, timeout=10).status_code == 403
    # the form is right: the contracts service is not in this process (a web node alone)
    later = (NOW + dt.timedelta(days=40)).date().isoformat()
    sent = hr.post(
        url, data={"csrf_token": csrf, "start_date": later, "reason": "moved"}, timeout=10
    )
    assert sent.status_code == 503
    other = hr.get(f"{console.url}/console/agreements/{console.globex}/amend", timeout=10)
    assert other.status_code == 404


def test_the_board_summaries_are_rebuilt_by_a_command(
    console: Console,
    hr: requests.Session,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("OFFERSEAL_DATABASE_URL", console.db.url)
    before = hr.get(f"{console.url}/console/board.json", timeout=10).json()
    assert cli_main(["console", "rebuild-board"]) == 0
    assert "rebuilt the board's summaries" in capsys.readouterr().out
    after = hr.get(f"{console.url}/console/board.json", timeout=10).json()
    assert after["rows"] == before["rows"]

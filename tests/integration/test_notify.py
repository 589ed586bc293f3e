"""The notify service end to end: a real SMTP server (aiosmtpd) and a real webhook receiver,
messages from the contracts service, the candidate's replies through signed links, quiet hours,
opt-out, retries and bounces, and the schedule's index."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import hashlib
import hmac
import http.server
import json
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
import sqlalchemy
from aiosmtpd.controller import Controller
from sqlalchemy import select, text, update

from offerseal.notify.models import Touchpoint
from offerseal.shared.models import OutboxMessage
from tests.conftest import RunningStack, api_link, free_port, make_settings, start_stack
from tests.integration.test_contracts_service import CANDIDATE_KEY, OTHER_KEY, body
from tests.signing import ethers_sign

pytestmark = pytest.mark.chain


class Mailbox:
    """aiosmtpd handler: keeps what it accepts; `answers` scripts 4xx/5xx replies first."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.answers: list[str] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            if self.answers:
                return self.answers.pop(0)
            self.messages.append(
                email.message_from_bytes(envelope.content, policy=email.policy.default)
            )
        return "250 OK"

    def wait(self, predicate: Any, timeout: float = 30.0) -> list[Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                found = [m for m in self.messages if predicate(m)]
            if found:
                return found
            time.sleep(0.1)
        raise AssertionError("no such message arrived")


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, str]]:
    handler = Mailbox()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, f"smtp://127.0.0.1:{port}"
    controller.stop()


def quiet_window_excluding_now() -> str:
    local = dt.datetime.now(ZoneInfo("Asia/Shanghai"))
    start = (local + dt.timedelta(hours=2)).strftime("%H:%M")
    end = (local + dt.timedelta(hours=3)).strftime("%H:%M")
    return f"{start}-{end}"


def notify_stack(tmp_path: Path, database_url: str, anvil: Any, **overrides: Any) -> RunningStack:
    settings = make_settings(
        tmp_path,
        database_url,
        anvil.url,
        dispatch_interval=0.1,
        quiet_hours=quiet_window_excluding_now(),
        **overrides,
    )
    return start_stack(settings)


def text_of(message: Any) -> str:
    return str(message.get_body(preferencelist=("plain",)).get_content())


def resolve(url: str) -> str:
    """Where a short link (`/l/<code>` on the people's origin) leads: the web app answers 303
    with the signed link; any other URL is itself."""
    if "/l/" not in url:
        return url
    answer = requests.get(url, allow_redirects=False, timeout=30)
    assert answer.status_code == 303, (url, answer.status_code)
    return str(answer.headers["Location"])


def same_signing_link(stack: RunningStack, url: str, agreement: dict[str, Any]) -> bool:
    """`url` opens the agreement's signing page as the link in the API's answer does: the same
    page, a token for the same agreement and purpose (the two are issued separately, so their
    issue times may differ by a second)."""
    page, _, query = url.partition("?token=")
    if page != agreement["signing_link"].partition("?token=")[0]:
        return False
    link = stack.stack.contracts.links.verify(query, "sign")
    return bool(link.agreement_id == agreement["id"])


def short_links_in(message: Any) -> list[str]:
    """The links a candidate sees in the plain text (after a label and a colon)."""
    words = text_of(message).replace("：", " ").split()
    return [w for w in words if w.startswith("http")]


def live_links_in(message: Any) -> list[str]:
    """The links a message's short links lead to now; one already used or withdrawn (a
    check-in answered) leads nowhere and is left out."""
    found = []
    for url in short_links_in(message):
        if "/l/" not in url:
            found.append(url)
            continue
        answer = requests.get(url, allow_redirects=False, timeout=30)
        # 410 withdrawn or expired; anything else (a 429 from the origin's limit) is no answer
        assert answer.status_code in (303, 410), (url, answer.status_code)
        if answer.status_code == 303:
            found.append(str(answer.headers["Location"]))
    return found


def links_in(message: Any) -> list[str]:
    """The signed links behind the message's short links."""
    return [resolve(u) for u in short_links_in(message)]


def offer(stack: RunningStack, **changes: Any) -> dict[str, Any]:
    r = requests.post(
        stack.stack.urls["contracts"] + "/v1/agreements",
        headers={**stack.hr, "Prefer": "wait=30"},
        json=body(**changes),
        timeout=60,
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def sign(stack: RunningStack, agreement: dict[str, Any]) -> None:
    link = agreement["signing_link"]
    token = urllib.parse.parse_qs(urllib.parse.urlparse(link).query)["token"][0]
    typed = requests.get(link, timeout=30).json()
    r = requests.post(
        stack.stack.urls["contracts"] + f"/v1/agreements/{agreement['id']}/signature",
        params={"token": token},
        json={"signature": ethers_sign(CANDIDATE_KEY, typed)},
        timeout=60,
    )
    assert r.status_code == 200, r.text


def risk(stack: RunningStack, agreement_id: str) -> dict[str, Any]:
    return dict(
        requests.get(
            stack.stack.urls["contracts"] + f"/v1/agreements/{agreement_id}/risk",
            headers=stack.hr,
            timeout=30,
        ).json()
    )


def test_invitation_checkins_and_a_reply_that_moves_risk(
    tmp_path: Path,
    database_url: str,
    broker_url: str,
    fresh_anvil: Any,
    mailbox: tuple[Mailbox, str],
) -> None:
    """The whole notify story, on each database and each broker (in-process and RabbitMQ)."""
    box, smtp_url = mailbox
    stack = notify_stack(
        tmp_path,
        database_url,
        fresh_anvil,
        smtp_url=smtp_url,
        checkin_interval=2.0,
        broker_url=broker_url,
    )
    try:
        agreement = offer(
            stack,
            language="en",
            candidate_contact={
                "email": "cand042@example.com",
                "timezone": "Asia/Shanghai",
                "language": "en",
            },
        )
        [invitation] = box.wait(lambda m: "sign" in m["Subject"])
        assert invitation["To"] == "cand042@example.com"
        assert invitation["Message-ID"].endswith("@offerseal.local>")
        assert invitation["List-Unsubscribe"] is None  # signing links always go
        assert invitation.get_body(preferencelist=("html",)) is not None
        assert "token=" not in text_of(invitation)  # short links only
        assert any(same_signing_link(stack, u, agreement) for u in links_in(invitation))

        sign(stack, agreement)
        checkins = box.wait(lambda m: "resignation going" in m["Subject"], timeout=30)
        first = checkins[0]
        assert len({m["Message-ID"] for m in box.messages}) == len(box.messages)
        # The first check-in is not answered before the second goes out: missed -> yellow.
        box.wait(lambda m: "resignation going" in m["Subject"] and m is not first)
        deadline = time.monotonic() + 20
        while risk(stack, agreement["id"])["level"] != "yellow" and time.monotonic() < deadline:
            time.sleep(0.2)
        # The next check-in goes out 2 s later and may have been missed as well by now.
        reason = risk(stack, agreement["id"])["reasons"][0]
        assert re.fullmatch(r"[1-9]\d* check-in\(s\) missed", reason), reason

        latest = box.wait(lambda m: "resignation going" in m["Subject"])[-1]
        delayed = next(u for u in links_in(latest) if u.endswith("answer=delayed"))
        token_url = delayed.split("?")[0]
        # A browser lands in the candidate's portal with the answer chosen (the page posts it).
        page = requests.get(delayed, headers={"Accept": "text/html"}, timeout=30)
        assert page.status_code == 200 and 'data-mode="reply"' in page.text
        assert "/portal/" in page.url and "answer=delayed" in page.url
        answer = requests.post(
            token_url, json={"answer": "delayed", "new_date": "2027-02-01"}, timeout=30
        )
        assert answer.status_code == 200, answer.text
        again = requests.post(token_url, json={"answer": "on_track"}, timeout=30)
        assert again.status_code == 410  # a link works once; nothing changes
        tampered = requests.post(token_url[:-3] + "AAA", json={"answer": "on_track"}, timeout=30)
        assert tampered.status_code == 401
        deadline = time.monotonic() + 20
        while risk(stack, agreement["id"])["level"] != "red" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "the candidate reports a delay" in risk(stack, agreement["id"])["reasons"]

        hr_view = requests.get(
            stack.stack.urls["notify"] + "/v1/candidates/cand-042/touchpoints",
            headers=stack.hr,
            timeout=30,
        ).json()["items"]
        answered = [t for t in hr_view if t["answer"] == "delayed"]
        assert answered and answered[0]["new_date"] == "2027-02-01"
        detail = requests.get(
            stack.stack.urls["notify"] + f"/v1/touchpoints/{answered[0]['id']}",
            headers=stack.hr,
            timeout=30,
        ).json()
        assert detail["attempts"][0]["outcome"] == "sent"
        assert (
            requests.get(
                stack.stack.urls["notify"] + f"/v1/touchpoints/{answered[0]['id']}",
                headers=stack.other_tenant,
                timeout=30,
            ).status_code
            == 404
        )
    finally:
        stack.stack.stop()


def test_quiet_hours_defer_the_message(
    tmp_path: Path, sqlite_url: str, fresh_anvil: Any, mailbox: tuple[Mailbox, str]
) -> None:
    box, smtp_url = mailbox
    local = dt.datetime.now(ZoneInfo("Asia/Shanghai"))
    window = f"{(local - dt.timedelta(hours=1)):%H:%M}-{(local + dt.timedelta(hours=1)):%H:%M}"
    stack = start_stack(
        make_settings(
            tmp_path,
            sqlite_url,
            fresh_anvil.url,
            smtp_url=smtp_url,
            quiet_hours=window,
            dispatch_interval=0.1,
        )
    )
    try:
        agreement = offer(stack)
        notify = stack.stack.urls["notify"]
        deadline = time.monotonic() + 20
        detail: dict[str, Any] = {"attempts": []}
        while time.monotonic() < deadline and not detail["attempts"]:
            time.sleep(0.1)
            items = requests.get(
                notify + "/v1/candidates/cand-042/touchpoints", headers=stack.hr, timeout=30
            ).json()["items"]
            mine = [t for t in items if t["agreement_id"] == agreement["id"]]
            if mine:
                detail = requests.get(
                    notify + f"/v1/touchpoints/{mine[0]['id']}", headers=stack.hr, timeout=30
                ).json()
        assert detail["attempts"][-1]["outcome"] == "deferred"
        assert detail["state"] == "planned" and not box.messages
        end = (local + dt.timedelta(hours=1)).replace(second=0, microsecond=0)
        due = dt.datetime.fromisoformat(detail["due_at"])
        assert abs((due - end).total_seconds()) < 61
    finally:
        stack.stack.stop()


def _insert_due(
    stack: RunningStack,
    agreement_id: str,
    kind: str,
    essential: bool,
    data: dict[str, str] | None = None,
) -> str:
    import uuid

    tp_id = str(uuid.uuid4())
    with stack.db.transaction() as session:
        session.add(
            Touchpoint(
                id=tp_id,
                key=f"{agreement_id}:{kind}:99",
                tenant="acme",
                agreement_id=agreement_id,
                candidate_ref="cand-042",
                kind=kind,
                occurrence=99,
                essential=essential,
                due_at=dt.datetime.now(dt.UTC),
                data=data or {},
            )
        )
    return tp_id


def test_opt_out_stops_non_essential_mail_only(
    tmp_path: Path, sqlite_url: str, fresh_anvil: Any, mailbox: tuple[Mailbox, str]
) -> None:
    box, smtp_url = mailbox
    stack = notify_stack(tmp_path, sqlite_url, fresh_anvil, smtp_url=smtp_url)
    try:
        agreement = offer(stack)
        box.wait(lambda m: True)  # the invitation
        _insert_due(stack, agreement["id"], "weekly_update", essential=False)
        [weekly] = box.wait(lambda m: m["List-Unsubscribe"] is not None)
        assert weekly["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        unsubscribe = weekly["List-Unsubscribe"].strip("<>")
        one_click = requests.post(unsubscribe, data={"List-Unsubscribe": "One-Click"}, timeout=30)
        assert one_click.status_code == 200
        count = len(box.messages)
        skipped = _insert_due(stack, agreement["id"], "welcome_package", essential=False)
        legal = _insert_due(stack, agreement["id"], "closing", essential=True)
        box.wait(lambda m: m["X-OfferSeal-Touchpoint"] == legal)
        detail = _touchpoint_once(stack, skipped, lambda d: d["state"] in ("skipped", "sent"))
        assert detail["state"] == "skipped" and detail["detail"] == "candidate opted out"
        assert len(box.messages) == count + 1
    finally:
        stack.stack.stop()


def test_a_tenant_s_own_template_is_used_for_its_candidates_only(
    tmp_path: Path, sqlite_url: str, fresh_anvil: Any, mailbox: tuple[Mailbox, str]
) -> None:
    box, smtp_url = mailbox
    stack = notify_stack(tmp_path, sqlite_url, fresh_anvil, smtp_url=smtp_url)
    url = stack.stack.urls["notify"] + "/v1/templates/invitation/zh-CN"
    try:
        bad = requests.put(
            url, headers=stack.hr, json={"subject": "请签署", "text": "没有链接"}, timeout=30
        )
        assert bad.status_code == 422
        assert bad.headers["Content-Type"].startswith("application/problem+json")
        assert bad.json()["errors"][0]["field"] == "text"
        denied = requests.put(
            url, headers=stack.legal, json={"subject": "x", "text": "{sign_link}"}, timeout=30
        )
        assert denied.status_code == 403
        own = {
            "subject": "{employer}：请签署{position}意向书",
            "text": "您好！\n\n请点击签署：{sign_link}\n\n<b>人力资源部</b>",
        }
        put = requests.put(url, headers=stack.hr, json=own, timeout=30)
        assert put.status_code == 200, put.text
        assert put.json()["source"] == "tenant"
        assert put.json()["preview"]["subject"] == "Acme：请签署Engineer意向书"
        other = requests.get(url, headers=stack.other_tenant, timeout=30).json()
        assert other["source"] == "default" and other["text"] is None

        agreement = offer(stack)
        [mail] = box.wait(lambda m: True)
        assert mail["Subject"] == "Acme Robotics：请签署Senior Firmware Engineer意向书"
        [short] = short_links_in(mail)
        assert same_signing_link(stack, resolve(short), agreement)
        html_part = str(mail.get_body(preferencelist=("html",)).get_content())
        assert "&lt;b&gt;人力资源部&lt;/b&gt;" in html_part  # the tenant's text is escaped
        assert f'href="{short}"' in html_part  # the layout's button

        assert requests.delete(url, headers=stack.hr, timeout=30).status_code == 204
        assert requests.delete(url, headers=stack.hr, timeout=30).status_code == 404
        offer(stack, candidate_ref="cand-043")
        box.wait(lambda m: m["Subject"] == "请阅读并签署入职意向书")
    finally:
        stack.stack.stop()


def test_new_dates_are_signed_by_the_candidate_and_move_the_schedule(
    tmp_path: Path, database_url: str, fresh_anvil: Any, mailbox: tuple[Mailbox, str]
) -> None:
    box, smtp_url = mailbox
    stack = notify_stack(
        tmp_path, database_url, fresh_anvil, smtp_url=smtp_url, checkin_interval=3600.0
    )
    contracts = stack.stack.urls["contracts"]
    today = dt.datetime.now(ZoneInfo("Asia/Shanghai")).date()
    try:
        agreement = offer(
            stack,
            language="en",
            candidate_contact={
                "email": "cand042@example.com",
                "timezone": "Asia/Shanghai",
                "language": "en",
            },
        )
        amendments = contracts + f"/v1/agreements/{agreement['id']}/amendments"
        box.wait(lambda m: "sign" in m["Subject"])
        # While offered the employer moves the start alone; the candidate signs the new terms.
        later_start = (today + dt.timedelta(days=45)).isoformat()
        r = requests.post(
            amendments, headers=stack.hr, json={"start_date": later_start}, timeout=60
        )
        assert r.status_code == 201, r.text
        assert r.json()["state"] == "applied" and r.json()["tx_hash"]
        notice = box.wait(lambda m: m["Subject"] == "The dates of your offer changed")[0]
        assert any(u.startswith(agreement["signing_link"].split("?")[0]) for u in links_in(notice))
        terms = requests.get(
            contracts + f"/v1/agreements/{agreement['id']}/terms", headers=stack.hr, timeout=30
        )
        assert terms.headers["X-Terms-SHA256"] == r.json()["terms_hash"] != agreement["terms_hash"]
        sign(stack, agreement)

        nothing = requests.post(amendments, headers=stack.hr, json={}, timeout=30)
        assert nothing.status_code == 422 and nothing.json()["errors"][0]["field"] == "start_date"
        too_late = requests.post(
            amendments,
            headers=stack.hr,
            json={"milestones": [{"index": 1, "due": (today + dt.timedelta(days=60)).isoformat()}]},
            timeout=30,
        )
        assert too_late.status_code == 422
        assert too_late.json()["errors"][0]["field"] == "milestones.0.due"
        past = requests.post(
            amendments,
            headers=stack.hr,
            json={"milestones": [{"index": 0, "due": (today - dt.timedelta(days=1)).isoformat()}]},
            timeout=30,
        )
        assert past.status_code == 422 and "future" in past.json()["errors"][0]["message"]
        move = {
            "milestones": [{"index": 1, "due": (today + dt.timedelta(days=35)).isoformat()}],
            "reason": "the current employer asked for a longer handover",
        }
        assert (
            requests.post(amendments, headers=stack.legal, json=move, timeout=30).status_code == 403
        )
        assert (
            requests.post(amendments, headers=stack.other_tenant, json=move, timeout=30).status_code
            == 404
        )
        # Committed: proposed, nothing changes until the candidate signs.
        proposed = requests.post(amendments, headers=stack.hr, json=move, timeout=60)
        assert proposed.status_code == 201, proposed.text
        assert proposed.json()["state"] == "awaiting_signature"
        [mail] = box.wait(lambda m: m["Subject"].startswith("New dates for your agreement"))
        assert "longer handover" in text_of(mail)
        link = next(u for u in links_in(mail) if "/amendments/" in u)
        typed = requests.get(link, timeout=30).json()
        assert typed["primaryType"] == "Amendment"
        assert requests.get(link.split("?")[0], timeout=30).status_code == 401  # no token
        text = requests.get(api_link(link, "/terms"), timeout=30)
        assert "0x" + hashlib.sha256(text.content).hexdigest() == typed["message"]["termsHash"]
        before = requests.get(
            contracts + f"/v1/agreements/{agreement['id']}", headers=stack.hr, timeout=30
        ).json()
        assert before["milestones"][1]["due_at"] != proposed.json()["milestone_dues"][1]

        signature_url = api_link(link, "/signature")
        wrong = ethers_sign(OTHER_KEY, typed)
        bad = requests.post(signature_url, json={"signature": wrong}, timeout=60)
        assert bad.status_code == 422 and "wrong signer" in bad.json()["detail"]
        good = requests.post(
            signature_url, json={"signature": ethers_sign(CANDIDATE_KEY, typed)}, timeout=60
        )
        assert good.status_code == 200, good.text
        assert good.json()["state"] == "applied"
        again = requests.post(
            signature_url, json={"signature": ethers_sign(CANDIDATE_KEY, typed)}, timeout=60
        )
        assert again.status_code == 409
        after = requests.get(
            contracts + f"/v1/agreements/{agreement['id']}", headers=stack.hr, timeout=30
        ).json()
        new_due = dt.datetime.fromisoformat(after["milestones"][1]["due_at"])
        assert new_due.astimezone(ZoneInfo("Asia/Shanghai")).date() == today + dt.timedelta(days=35)

        # Notify moved the document request for that milestone with the date.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            items = requests.get(
                stack.stack.urls["notify"] + "/v1/candidates/cand-042/touchpoints",
                headers=stack.hr,
                timeout=30,
            ).json()["items"]
            request_1 = next(
                t for t in items if t["kind"] == "milestone_request" and t["occurrence"] == 1
            )
            if request_1["detail"] and "amended" in request_1["detail"]:
                break
            time.sleep(0.2)
        assert request_1["state"] == "planned"
        assert dt.datetime.fromisoformat(request_1["due_at"]) == new_due - dt.timedelta(days=2)
        welcome = next(t for t in items if t["kind"] == "welcome_package")
        assert dt.datetime.fromisoformat(welcome["due_at"]) == dt.datetime.fromisoformat(
            after["start_at"]
        ) - dt.timedelta(days=3)

        # A proposal still unsigned when the agreement ends is void: nothing left to sign.
        later = {"start_date": (today + dt.timedelta(days=50)).isoformat()}
        pending = requests.post(amendments, headers=stack.hr, json=later, timeout=60).json()
        started = requests.post(
            contracts + f"/v1/agreements/{agreement['id']}/start", headers=stack.hr, timeout=60
        )
        assert started.status_code == 200, started.text
        listed = requests.get(amendments, headers=stack.hr, timeout=30).json()["items"]
        assert [a["state"] for a in listed] == ["applied", "applied", "void"]
        assert listed[2]["id"] == pending["id"]
        void = requests.post(
            contracts + f"/v1/agreements/{agreement['id']}/amendments/{pending['id']}/signature",
            headers=stack.hr,
            json={"signature": ethers_sign(CANDIDATE_KEY, typed)},
            timeout=60,
        )
        assert void.status_code == 409
    finally:
        stack.stack.stop()


def _touchpoint_once(
    stack: Any, tp_id: str, recorded: Callable[[dict[str, Any]], bool], timeout: float = 30.0
) -> dict[str, Any]:
    """The touchpoint as notify shows it, once `recorded` holds: a dispatcher commits each
    outcome after the channel took the message, so a message in the mailbox may be ahead."""
    deadline = time.monotonic() + timeout
    while True:
        detail: dict[str, Any] = requests.get(
            stack.stack.urls["notify"] + f"/v1/touchpoints/{tp_id}", headers=stack.hr, timeout=30
        ).json()
        if recorded(detail) or time.monotonic() >= deadline:
            return detail
        time.sleep(0.1)


def test_4xx_is_retried_and_5xx_fails(
    tmp_path: Path, sqlite_url: str, fresh_anvil: Any, mailbox: tuple[Mailbox, str]
) -> None:
    box, smtp_url = mailbox
    box.answers = ["451 4.3.0 try again later"]
    stack = notify_stack(tmp_path, sqlite_url, fresh_anvil, smtp_url=smtp_url)
    try:
        agreement = offer(stack)
        [invitation] = box.wait(lambda m: True, timeout=30)  # after one retry (5 s backoff)
        tp_id = invitation["X-OfferSeal-Touchpoint"]
        # the outcome is committed after the server took the message: asked until recorded
        detail = _touchpoint_once(stack, tp_id, lambda d: d["state"] == "sent")
        assert [a["outcome"] for a in detail["attempts"]] == ["retry", "sent"]
        box.answers = ["550 5.1.1 no such user"]
        bounced = _insert_due(stack, agreement["id"], "closing", essential=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            state = requests.get(
                stack.stack.urls["notify"] + f"/v1/touchpoints/{bounced}",
                headers=stack.hr,
                timeout=30,
            ).json()["state"]
            if state == "failed":
                break
            time.sleep(0.1)
        assert state == "failed"
        with stack.db.sessions() as session:
            failed = (
                session.execute(
                    select(OutboxMessage.body).where(
                        OutboxMessage.routing_key == "touchpoint.failed.v1"
                    )
                )
                .scalars()
                .all()
            )
        assert [m["payload"]["touchpoint_id"] for m in failed] == [bounced]
    finally:
        stack.stack.stop()


class Hook(http.server.BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        Hook.received.append((dict(self.headers), self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_candidate_without_email_gets_the_signed_webhook(
    tmp_path: Path, sqlite_url: str, fresh_anvil: Any
) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Hook.received = []
    secret = "webhook-secret-for-tests"
    stack = notify_stack(
        tmp_path,
        sqlite_url,
        fresh_anvil,
        webhook_url=f"http://127.0.0.1:{server.server_port}/hook",
        webhook_secret=secret,
    )
    try:
        agreement = offer(
            stack, candidate_contact={"phone": "+86 138 0000 0000", "timezone": "Asia/Shanghai"}
        )
        deadline = time.monotonic() + 20
        while not Hook.received and time.monotonic() < deadline:
            time.sleep(0.1)
        [(headers, raw)] = Hook.received
        stamp, signature = (
            part.split("=", 1)[1] for part in headers["X-OfferSeal-Signature"].split(",")
        )
        expected = hmac.new(
            secret.encode(), stamp.encode() + b"." + raw, hashlib.sha256
        ).hexdigest()
        assert hmac.compare_digest(signature, expected)
        payload = json.loads(raw)
        assert payload["kind"] == "invitation" and payload["phone"] == "+86 138 0000 0000"
        # one SMS segment (70 characters in UCS-2) with the short link, for SMS gateways
        sms = payload["sms"]
        assert len(sms.encode("utf-16-le")) // 2 <= 70 and "token=" not in sms
        short = next(w for w in sms.replace("：", " ").split() if w.startswith("http"))
        assert short.startswith(stack.stack.portal_url + "/l/")
        assert resolve(short) == resolve(payload["links"]["sign"])
        assert same_signing_link(stack, resolve(short), agreement)
    finally:
        stack.stack.stop()
        server.shutdown()


def test_the_due_query_uses_its_index_on_postgres(postgres_url: str) -> None:
    import sqlalchemy as sa

    from offerseal.shared.db import Database

    db = Database(postgres_url)
    db.migrate()
    try:
        with db.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO touchpoints (id, key, tenant, agreement_id, candidate_ref, kind, "
                    "occurrence, essential, due_at, state, attempts, data, missed, created_at) "
                    "SELECT md5(i::text), 'k' || i, 't', 'a', 'c', 'checkin', i, true, "
                    "now() + (i || ' minutes')::interval, "
                    "CASE WHEN i % 10 = 0 THEN 'sent' ELSE 'planned' END, 0, '{}', false, now() "
                    "FROM generate_series(1, 20000) AS i"
                )
            )
            conn.execute(text("ANALYZE touchpoints"))
            plan = "\n".join(
                conn.execute(
                    sa.text(
                        "EXPLAIN SELECT id FROM touchpoints WHERE state = 'planned' "
                        "AND due_at <= now() ORDER BY due_at LIMIT 100 FOR UPDATE SKIP LOCKED"
                    )
                ).scalars()
            )
        assert "ix_touchpoints_due" in plan, plan
    finally:
        db.dispose()


@pytest.mark.slow
@pytest.mark.parametrize("failpoint", ["notify.before_send", "notify.after_send"])
def test_a_killed_worker_neither_loses_nor_doubles_the_invitation(
    tmp_path: Path,
    sqlite_url: str,
    fresh_anvil: Any,
    mailbox: tuple[Mailbox, str],
    failpoint: str,
) -> None:
    from harness.procs import ServiceProcess, create_key, service_env
    from offerseal.shared.config import ANVIL_DEV_KEY_2

    box, smtp_url = mailbox
    env = service_env(
        tmp_path,
        sqlite_url,
        fresh_anvil.url,
        OFFERSEAL_CONTRACTS_SIGNER_KEY=ANVIL_DEV_KEY_2,
        OFFERSEAL_CONTRACTS_PORT=str(free_port()),
        OFFERSEAL_NOTIFY_PORT=str(free_port()),
        OFFERSEAL_SMTP_URL=smtp_url,
        OFFERSEAL_QUIET_HOURS=quiet_window_excluding_now(),
        OFFERSEAL_DISPATCH_INTERVAL="100ms",
    )
    key = create_key(env)
    contracts = f"http://127.0.0.1:{env['OFFERSEAL_CONTRACTS_PORT']}"
    service = ServiceProcess(env, tmp_path / "service.log").start(failpoint)
    try:
        service.wait_healthy()
        # No `Prefer: wait`: the answer comes once the offer is committed, before its
        # transaction is mined and long before the invitation. With a wait, the failpoint's
        # SIGKILL could land while the answer is still on its way (CI saw it once).
        r = requests.post(
            contracts + "/v1/agreements",
            json=body(),
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
        )
        assert r.status_code == 201, r.text
        assert service.wait_exit(30) == -9  # killed by the failpoint, around the send
        service.start()
        box.wait(lambda m: "sign" in m["Subject"] or "签署" in m["Subject"], timeout=30)
        # The restarted dispatcher commits `sent` only after the server accepted the message
        # (or after it found it in the journal): once the row says so, any duplicate would
        # already be in the mailbox. Wait for that condition, not for a fixed time.
        engine = sqlalchemy.create_engine(sqlite_url)
        deadline = time.monotonic() + 60
        while True:
            with engine.connect() as conn:
                state, detail = conn.execute(
                    text("SELECT state, detail FROM touchpoints WHERE kind = 'invitation'")
                ).one()
            if state == "sent":
                break
            assert time.monotonic() < deadline, f"invitation still {state}: {detail}"
            time.sleep(0.1)
        engine.dispose()
    finally:
        service.kill()
    # Killed before sending: sent once after the restart. Killed after the server accepted
    # it but before the commit: the sent journal tells the restarted dispatcher, which
    # records it as sent instead of sending it again.
    assert len(box.messages) == 1
    if failpoint == "notify.after_send":
        assert "recorded after a restart" in detail


def test_the_candidate_uploads_through_the_document_request_link(
    tmp_path: Path, sqlite_url: str, fresh_anvil: Any, mailbox: tuple[Mailbox, str]
) -> None:
    box, smtp_url = mailbox
    stack = notify_stack(tmp_path, sqlite_url, fresh_anvil, smtp_url=smtp_url)
    try:
        # this tenant lets a candidate's anchored upload confirm the stage by itself
        policy = requests.put(
            stack.stack.urls["contracts"] + "/v1/policy",
            json={"candidate_uploads": "auto"},
            headers=stack.admin,
            timeout=30,
        )
        assert policy.status_code == 200, policy.text
        agreement = offer(
            stack,
            language="en",
            candidate_contact={"email": "cand042@example.com", "language": "en"},
        )
        box.wait(lambda m: "sign" in m["Subject"])  # notify has the candidate's contact data
        sign(stack, agreement)
        _insert_due(
            stack,
            agreement["id"],
            "milestone_request",
            essential=True,
            data={"milestone": "resignation_submitted", "due_at": "2026-12-10"},
        )
        [request_mail] = box.wait(lambda m: "evidence" in m["Subject"])
        upload_url = next(u for u in links_in(request_mail) if "/v1/uploads/" in u)
        assert requests.get(upload_url, timeout=30).status_code == 200  # the upload page
        uploaded = requests.post(
            upload_url, files={"file": ("stamped.pdf", b"%PDF stamped")}, timeout=30
        )
        assert uploaded.status_code == 201, uploaded.text
        receipt = uploaded.json()["intake_receipt"]["payload"]
        assert receipt["api_key_id"] == "candidate-link"
        tampered = upload_url[:-2] + ("AA" if not upload_url.endswith("AA") else "BB")
        assert (
            requests.post(tampered, files={"file": ("x.pdf", b"x")}, timeout=30).status_code == 401
        )
        deadline = time.monotonic() + 30  # anchored, then confirmed on chain by contracts
        while time.monotonic() < deadline:
            current = requests.get(
                stack.stack.urls["contracts"] + f"/v1/agreements/{agreement['id']}",
                headers=stack.hr,
                timeout=30,
            ).json()
            if current["milestones"][0]["confirmed_at"]:
                break
            time.sleep(0.2)
        assert current["milestones"][0]["document_id"] == uploaded.json()["id"]
    finally:
        stack.stack.stop()


def _direct_service(db: Any, smtp_url: str, journal: Any) -> Any:
    """A notify service layer on `db` sending by SMTP, without a stack (no planning runs)."""
    from offerseal.notify.adapters.channels import SmtpChannel
    from offerseal.notify.service import NotifyService
    from offerseal.shared.links import LinkSigner

    return NotifyService(
        db,
        LinkSigner(b"k" * 32),
        {"email": SmtpChannel(smtp_url, "OfferSeal <no-reply@offerseal.local>")},
        public_url="http://127.0.0.1:1",
        evidence_url="http://127.0.0.1:1",
        checkin_interval=3600,
        quiet_hours="00:00-00:00",
        default_timezone="UTC",
        mail_domain="offerseal.local",
        journal=journal,
    )


def _seed_due(db: Any, count: int) -> None:
    """A candidate, their agreement and `count` essential messages due now (tp-0, tp-1, ...)."""
    from offerseal.notify.models import FollowedAgreement, NotifyCandidate

    with db.transaction() as session:
        session.add(
            NotifyCandidate(
                tenant="acme",
                candidate_ref="cand-1",
                email="cand1@example.com",
                timezone="UTC",
                language="en",
                quiet_hours="00:00-00:00",
                channels=["email"],
                opted_out=False,
            )
        )
        session.add(
            FollowedAgreement(
                agreement_id="ag-1",
                tenant="acme",
                candidate_ref="cand-1",
                language="en",
                employer_name="Acme",
                position="Engineer",
                start_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=30),
                milestones=[],
                state="committed",
            )
        )
        for i in range(count):
            session.add(
                Touchpoint(
                    id=f"tp-{i}",
                    key=f"ag-1:closing:{i}",
                    tenant="acme",
                    agreement_id="ag-1",
                    candidate_ref="cand-1",
                    kind="closing",
                    occurrence=i,
                    essential=True,
                    due_at=dt.datetime.now(dt.UTC),
                    data={"state": "fulfilled"},
                )
            )


def test_outcomes_survive_a_failed_commit_and_are_recorded_once(
    tmp_path: Path, sqlite_url: str, mailbox: tuple[Mailbox, str]
) -> None:
    """The database refuses the commit of what was just sent: the outcomes are kept (and the
    journal keeps them too) and recorded by the next round; nothing is sent twice."""
    from offerseal.notify.adapters.journal import SentJournal
    from offerseal.shared.db import Database

    box, smtp_url = mailbox
    db = Database(sqlite_url)
    db.migrate()
    journal = SentJournal(tmp_path / "journal")
    service = _direct_service(db, smtp_url, journal)
    _seed_due(db, 3)
    real_commit = service._commit_outcomes
    calls = {"n": 0}

    def refuse_once(outcomes: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("database unavailable")
        real_commit(outcomes)

    service._commit_outcomes = refuse_once  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        service.dispatch_once()
    box.wait(lambda m: True)
    time.sleep(0.5)
    assert len(box.messages) == 3
    assert {a.touchpoint_id for a in journal.leftovers()} == {"tp-0", "tp-1", "tp-2"}
    with db.sessions() as session:
        states = set(session.execute(select(Touchpoint.state)).scalars())
    assert states == {"sending"}

    assert service.dispatch_once() == 0  # records what was kept, sends nothing new
    with db.sessions() as session:
        states = set(session.execute(select(Touchpoint.state)).scalars())
    assert states == {"sent"}
    assert journal.leftovers() == []
    assert len(box.messages) == 3
    journal.close()
    db.dispose()


@pytest.mark.parametrize("when", ["at_start", "while_running"])
def test_what_a_killed_dispatcher_claimed_goes_out_at_once_not_after_the_lease(
    tmp_path: Path, database_url: str, mailbox: tuple[Mailbox, str], when: str
) -> None:
    """A dispatcher (a real process) claims two messages, sends the first and is killed before
    recording it. The next dispatcher on the host, started after it (taking its slot) or
    already running (its release pass adopts the dead slot), records the first as sent from
    the journal and puts the second back at once: on PostgreSQL it used to wait out the
    two-minute lease. A claim of a live dispatcher (its slot held) and one that names no slot
    (made before claimers were recorded) stay."""
    import subprocess
    import sys

    from offerseal.notify.adapters.journal import SentJournal
    from offerseal.shared.db import Database
    from tests.conftest import ROOT

    box, smtp_url = mailbox
    db = Database(database_url)
    db.migrate()
    _seed_due(db, 4)
    folder = tmp_path / "journal"
    live = SentJournal(folder)
    live.path  # noqa: B018  (a live dispatcher holds slot 0)
    journal = SentJournal(folder)
    if when == "while_running":
        journal.path  # noqa: B018  (slot 1: the dead one takes slot 2, adopted later)
    script = (
        "from pathlib import Path\n"
        "from offerseal.notify.adapters.journal import SentJournal\n"
        "from offerseal.shared import failpoints\n"
        "from offerseal.shared.db import Database\n"
        "from tests.integration.test_notify import _direct_service\n"
        f"service = _direct_service(Database({database_url!r}), {smtp_url!r}, "
        f"SentJournal(Path({str(folder)!r})))\n"
        "failpoints.arm('notify.after_send')\n"
        "service.dispatch_once(limit=2)\n"
    )
    killed = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert killed.returncode == -9, killed.stderr
    with db.transaction() as session:  # one claimed by the live dispatcher, one by old code
        session.execute(
            update(Touchpoint)
            .where(Touchpoint.id == "tp-2")
            .values(state="sending", claimed_at=dt.datetime.now(dt.UTC), claimed_by=live.claimer)
        )
        session.execute(
            update(Touchpoint)
            .where(Touchpoint.id == "tp-3")
            .values(state="sending", claimed_at=dt.datetime.now(dt.UTC), claimed_by=None)
        )

    def states() -> dict[str, str]:
        with db.sessions() as session:
            rows = session.execute(select(Touchpoint.id, Touchpoint.state)).all()
            return {str(tp_id): str(state) for tp_id, state in rows}

    assert states() == {f"tp-{i}": "sending" for i in range(4)}
    assert [m["Message-ID"] for m in box.messages] == ["<tp-0@offerseal.local>"]
    service = _direct_service(db, smtp_url, journal)
    try:
        service.settle_journal(first=when == "at_start")
        assert states() == {
            "tp-0": "sent",
            "tp-1": "planned",
            "tp-2": "sending",
            "tp-3": "sending",
        }
        assert service.dispatch_once() == 1
        assert states()["tp-1"] == "sent"
        assert sorted(m["Message-ID"] for m in box.messages) == [
            "<tp-0@offerseal.local>",
            "<tp-1@offerseal.local>",
        ]
    finally:
        journal.close()
        live.close()
        db.dispose()

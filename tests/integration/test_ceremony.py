"""The candidate's signature is the candidate's own, tried as an attacker would over real HTTP
(one stack per module on SQLite and PostgreSQL, a real SMTP server, its own Anvil):

- someone else holding the signing link cannot bind or replace the signer, nor see how far the
  enrolment got, nor add to the ceremony;
- a bound signer is replaced only with a fresh code, the candidate hears of every binding, and
  the contract accepts no commitment for a day after a rebinding;
- the code goes to the contact written in the offer, whatever another offer or notify's
  preferences say about the candidate reference;
- code limits hold over the offer's life, under concurrency, and a new code never voids the one
  being typed;
- the Commitment covers the hash of the ceremony's record, which the contract stores and anyone
  can recompute from the signing record; the record is frozen after the signature.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from web3 import Web3

from harness.procs import free_port
from offerseal.contracts.domain.passkeys import b64url
from offerseal.demo.passkey import SoftwarePasskey
from offerseal.evidence.adapters.registry import Web3ChainView
from offerseal.shared import chain
from offerseal.shared.chain import typed_data_digest
from offerseal_verify.ceremony import ceremony_hash, check_record
from offerseal_verify.dossier import verify_dossier
from tests.conftest import PG_ADMIN_URL, RunningStack, _pg_admin, require_server
from tests.integration.test_contracts_service import body
from tests.integration.test_dossier import dossier
from tests.integration.test_notify import Mailbox, notify_stack, text_of

pytestmark = pytest.mark.chain


@dataclass
class Rig:
    stack: RunningStack
    box: Mailbox
    rpc_url: str

    @property
    def web(self) -> str:
        return str(self.stack.stack.urls["web"])

    def sql(self, statement: str, **params: Any) -> None:
        with self.stack.stack.db.engine.begin() as conn:
            conn.execute(sa.text(statement), params)

    def backdate_codes(self, agreement_id: str, minutes: int = 120) -> None:
        """The candidate waited: their codes were sent `minutes` earlier (the clock, moved)."""
        rows = self.stack.stack.db.engine.connect()
        with rows:
            found = rows.execute(
                sa.text("SELECT id, created_at FROM candidate_codes WHERE agreement_id = :a"),
                {"a": agreement_id},
            ).all()
        for code_id, created in found:
            if isinstance(created, str):
                created = dt.datetime.fromisoformat(created)
            self.sql(
                "UPDATE candidate_codes SET created_at = :t WHERE id = :i",
                t=created - dt.timedelta(minutes=minutes),
                i=code_id,
            )


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def rig(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    from offerseal.shared.anvil import AnvilProcess

    tmp = tmp_path_factory.mktemp("ceremony")
    dropped = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp / 'offerseal.db'}"
    else:
        require_server("PostgreSQL", "127.0.0.1", 5432)
        name = f"offerseal_test_{uuid.uuid4().hex[:12]}"
        admin = _pg_admin()
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        url, dropped = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}", (admin, name)
    anvil = AnvilProcess(free_port())  # this module moves the chain's clock
    box = Mailbox()
    smtp = Controller(box, hostname="127.0.0.1", port=free_port())
    smtp.start()
    stack = notify_stack(tmp, url, anvil, smtp_url=f"smtp://127.0.0.1:{smtp.port}")
    try:
        yield Rig(stack, box, anvil.url)
    finally:
        stack.stack.stop()
        smtp.stop()
        anvil.stop()
        if dropped is not None:
            admin, name = dropped
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


class Browser:
    """One browser (or one program) holding the candidate's link: its own cookies."""

    def __init__(self, link: str, user_agent: str = "Mozilla/5.0 (candidate's phone)") -> None:
        self.link = link
        path, _, self.query = link.replace("/portal/", "/v1/agreements/").partition("?")
        self.api = path
        self.http = requests.Session()
        self.http.headers["User-Agent"] = user_agent

    def url(self, suffix: str) -> str:
        return f"{self.api}{suffix}?{self.query}"

    def get(self, suffix: str) -> requests.Response:
        return self.http.get(self.url(suffix), timeout=60)

    def post(self, suffix: str, json: dict[str, Any]) -> requests.Response:
        return self.http.post(self.url(suffix), json=json, timeout=60)

    def typed(self) -> dict[str, Any]:
        answer = self.http.get(self.link, headers={"Accept": "application/json"}, timeout=60)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def passkey(self, passkey: SoftwarePasskey) -> requests.Response:
        return self.post(
            "/enrolment/signer",
            {
                "kind": "passkey",
                "credential_id": b64url(passkey.credential_id),
                "public_key": b64url(passkey.spki()),
            },
        )

    def sign(self, passkey: SoftwarePasskey) -> requests.Response:
        typed = self.typed()
        assertion = passkey.sign(typed_data_digest(typed)).as_json(passkey.credential_id)
        return self.post("/signature", {"passkey": assertion})


def offer(rig: Rig, email: str | None = None, ref: str | None = None) -> dict[str, Any]:
    ref = ref or f"cand-{uuid.uuid4().hex[:8]}"
    contact = {"email": email or f"{ref}@example.com", "timezone": "Asia/Shanghai"}
    answer = requests.post(
        rig.web + "/v1/agreements",
        headers={**rig.stack.hr, "Prefer": "wait=30"},
        json=body(candidate_address=None, candidate_ref=ref, candidate_contact=contact),
        timeout=60,
    )
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def mails_to(rig: Rig, address: str, subject: tuple[str, ...]) -> list[Any]:
    return [
        m
        for m in list(rig.box.messages)
        if address in str(m["To"]) and str(m["Subject"]).startswith(subject)
    ]


CODE_SUBJECTS = ("您的验证码", "Your code")


def code_for(rig: Rig, address: str, seen: int = 0) -> str:
    """The newest code e-mailed to `address` after the first `seen` code mails to it."""
    mails = rig.box.wait(lambda m: len(mails_to(rig, address, CODE_SUBJECTS)) > seen)
    assert mails
    mail = mails_to(rig, address, CODE_SUBJECTS)[-1]
    match = re.search(r"\b(\d{6})\b", text_of(mail))
    assert match, text_of(mail)
    return match.group(1)


def prove(rig: Rig, browser: Browser, address: str) -> None:
    seen = len(mails_to(rig, address, CODE_SUBJECTS))
    sent = browser.post("/enrolment/code", {"channel": "email"})
    assert sent.status_code == 202, sent.text
    verified = browser.post("/enrolment/verify", {"code": code_for(rig, address, seen)})
    assert verified.status_code == 200, verified.text
    cookie = verified.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie


def contact_of(agreement: dict[str, Any]) -> str:
    return f"{agreement['candidate_ref']}@example.com"


def test_a_second_holder_of_the_link_cannot_bind_replace_or_watch(rig: Rig) -> None:
    agreement = offer(rig)
    candidate = Browser(agreement["signing_link"])
    forwarded = Browser(agreement["signing_link"], user_agent="curl/8 (someone else)")
    prove(rig, candidate, contact_of(agreement))

    # The candidate proved the code; the other holder of the link sees nothing of it ...
    seen = forwarded.get("/enrolment").json()
    assert seen["code_verified"] is False and seen["signer"] is None and seen["can_bind"] is False
    assert candidate.get("/enrolment").json()["can_bind"] is True
    # ... and cannot bind their key in the candidate's place (this was 200 before).
    theirs = SoftwarePasskey(origin=rig.web)
    taken = forwarded.passkey(theirs)
    assert taken.status_code == 403, taken.text
    assert taken.headers["Content-Type"] == "application/problem+json"
    assert "this browser" in taken.json()["detail"]
    other = Web3.to_checksum_address("0x" + "5a" * 20)
    wallet = forwarded.post("/enrolment/signer", {"kind": "wallet", "address": other})
    assert wallet.status_code == 403

    mine = SoftwarePasskey(origin=rig.web)
    bound = candidate.passkey(mine)
    assert bound.status_code == 200, bound.text
    assert bound.json()["address"] == mine.public_key.address

    # Once bound: neither the other holder nor the candidate's own proof binds again.
    assert forwarded.passkey(theirs).status_code == 403
    again = candidate.post("/enrolment/signer", {"kind": "wallet", "address": other})
    assert again.status_code == 409 and "new code" in again.json()["detail"]
    assert forwarded.get("/enrolment").json()["signer"] is None
    assert forwarded.get("/signing-record").status_code == 403
    assert candidate.get("/enrolment").json()["signer"]["address"] == mine.public_key.address

    # The candidate is told of the binding, at the offer's own address.
    told = rig.box.wait(
        lambda m: bool(
            mails_to(rig, contact_of(agreement), ("您的签署密钥已设置", "Your signing key"))
        )
    )
    assert told
    node = rig.stack.stack.contracts.service.client
    terms = node.terms_of(agreement["onchain_id"])
    assert terms.candidate == mine.public_key.address


def test_the_code_goes_only_to_the_contact_written_in_the_offer(rig: Rig) -> None:
    ref = f"cand-{uuid.uuid4().hex[:8]}"
    real, desk = f"real.{ref}@example.com", f"hr.desk.{ref}@example.com"
    first = offer(rig, email=real, ref=ref)
    offer(rig, email=desk, ref=ref)  # a second offer under the same reference, another address

    def change_preferences() -> requests.Response:  # notify's address for the reference too
        return requests.put(
            rig.stack.stack.urls["notify"] + f"/v1/candidates/{ref}/preferences",
            headers=rig.stack.hr,
            json={"email": desk},
            timeout=30,
        )

    deadline = time.monotonic() + 30  # notify learns of the offer through the broker
    changed = change_preferences()
    while changed.status_code == 404 and time.monotonic() < deadline:
        time.sleep(0.1)
        changed = change_preferences()
    assert changed.status_code == 200, changed.text
    candidate = Browser(first["signing_link"])
    sent = candidate.post("/enrolment/code", {"channel": "email"})
    assert sent.status_code == 202, sent.text
    assert sent.json()["destination"] == "r***@example.com"
    code = code_for(rig, real)
    assert not mails_to(rig, desk, CODE_SUBJECTS)  # it went to hr.desk before
    assert candidate.post("/enrolment/verify", {"code": code}).status_code == 200

    # The record names the destination (masked, with a keyed hash) and its delivery evidence.
    def delivered() -> list[dict[str, Any]]:
        record = candidate.get("/signing-record").json()
        return [e for e in record["events"] if e["kind"] == "code_delivered"]

    deadline = time.monotonic() + 30  # notify's answer reaches contracts through the broker
    while not delivered() and time.monotonic() < deadline:
        time.sleep(0.1)
    [delivery] = delivered()
    assert delivery["detail"]["message_id"].startswith("<") and delivery["detail"]["answer"]
    record = candidate.get("/signing-record").json()
    [sent_event] = [e for e in record["events"] if e["kind"] == "code_sent"]
    assert sent_event["detail"]["destination"] == "r***@example.com"
    assert re.fullmatch(r"[0-9a-f]{64}", sent_event["detail"]["destination_hash"])
    assert real not in str(record) and desk not in str(record)


def test_code_limits_hold_over_the_offers_life(rig: Rig) -> None:
    agreement = offer(rig)
    address = contact_of(agreement)
    candidate = Browser(agreement["signing_link"])
    assert candidate.post("/enrolment/code", {"channel": "email"}).status_code == 202
    first = code_for(rig, address)
    # A new code within the minute would void the one being typed: refused, and said when.
    soon = candidate.post("/enrolment/code", {"channel": "email"})
    assert soon.status_code == 429, soon.text
    assert 1 <= int(soon.headers["Retry-After"]) <= 60
    assert soon.json()["next_code_at"] and "stays valid" in soon.json()["detail"]

    # Concurrent requests after the minute: exactly one code is sent.
    rig.backdate_codes(agreement["id"])
    answers: list[int] = []

    def ask() -> None:
        answers.append(
            Browser(agreement["signing_link"])
            .post("/enrolment/code", {"channel": "email"})
            .status_code
        )

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(answers) == [202] + [429] * 5, answers
    # The first code still verifies: a newer code does not cancel one being typed.
    assert candidate.post("/enrolment/verify", {"code": first}).status_code == 200

    # Ten codes over the offer's life, then no more, however long the candidate waits.
    for _ in range(8):
        rig.backdate_codes(agreement["id"])
        assert candidate.post("/enrolment/code", {"channel": "email"}).status_code == 202
    rig.backdate_codes(agreement["id"], minutes=24 * 60)
    refused = candidate.post("/enrolment/code", {"channel": "email"})
    assert refused.status_code == 429 and "the most it allows" in refused.json()["detail"]


def test_the_signature_covers_the_ceremony_and_the_record_is_then_frozen(rig: Rig) -> None:
    agreement = offer(rig)
    candidate = Browser(agreement["signing_link"])
    candidate.post("/enrolment/events", {"kind": "text_opened", "seconds": 0})
    prove(rig, candidate, contact_of(agreement))
    passkey = SoftwarePasskey(origin=rig.web)
    assert candidate.passkey(passkey).status_code == 200
    assert candidate.post("/enrolment/events", {"kind": "text_read", "seconds": 86_400 * 30}).ok
    assert candidate.post("/enrolment/events", {"kind": "consent", "seconds": 0}).ok

    before = candidate.get("/ceremony").json()
    ceremony = before["ceremony"]
    assert before["ceremony_hash"] == ceremony_hash(ceremony)
    assert ceremony["text"]["read_seconds_reported_by_browser"] == 86_400  # bounded
    assert ceremony["consent"]["given_at"] and ceremony["text"]["opened_at"]
    assert ceremony["code"]["channel"] == "email" and ceremony["code"]["destination_hash"]
    assert ceremony["signer"]["credential_id"] == b64url(passkey.credential_id)
    assert ceremony["signer"]["address"] == passkey.public_key.address.lower()

    # What a bare link holder posts is kept, unproven, and changes nothing the signature covers.
    stranger = Browser(agreement["signing_link"], user_agent="someone else")
    assert stranger.post("/enrolment/events", {"kind": "consent", "seconds": 0}).status_code == 204
    assert candidate.get("/ceremony").json()["ceremony_hash"] == before["ceremony_hash"]

    typed = candidate.typed()
    assert typed["message"]["ceremonyHash"] == before["ceremony_hash"]
    signed = candidate.sign(passkey)
    assert signed.status_code == 200, signed.text
    assert signed.json()["state"] == "committed"

    node = rig.stack.stack.contracts.service.client
    onchain = (
        "0x"
        + bytes(node.functions.ceremonyOf(bytes.fromhex(agreement["onchain_id"][2:])).call()).hex()
    )
    assert onchain == before["ceremony_hash"]
    record = candidate.get("/signing-record").json()
    assert record["ceremony"] == ceremony and record["ceremony_hash"] == onchain
    ok, why = check_record(record, onchain)
    assert ok, why
    tampered = {**record, "ceremony": {**ceremony, "consent": {"given_at": None}}}
    assert check_record(tampered, onchain)[0] is False

    # The dossier carries the record; a legal team checks its ceremony against the chain.
    answer = dossier(rig.stack, agreement["id"], rig.stack.legal, lang="en")
    assert answer.status_code == 200, answer.text
    view = Web3ChainView(chain.connect(rig.rpc_url))
    verdict = verify_dossier(answer.content, trusted_keys=None, chain=view)
    [checked] = [c for c in verdict.checks if c.name == "ceremony"]
    assert checked.ok is True, checked.detail
    assert before["ceremony_hash"] in checked.detail

    # Frozen: nothing joins the ceremony after the signature.
    late = candidate.post("/enrolment/events", {"kind": "consent", "seconds": 0})
    assert late.status_code == 409, late.text
    assert (
        stranger.post("/enrolment/events", {"kind": "text_read", "seconds": 5}).status_code == 409
    )


def test_a_replacement_needs_a_fresh_code_is_announced_and_waits_a_day_on_chain(rig: Rig) -> None:
    # Last in the module: it moves the chain's clock by a day.
    agreement = offer(rig)
    address = contact_of(agreement)
    candidate = Browser(agreement["signing_link"])
    prove(rig, candidate, address)
    first = SoftwarePasskey(origin=rig.web)
    assert candidate.passkey(first).status_code == 200

    # The candidate lost that passkey: a fresh code, proved in this browser, binds another.
    rig.backdate_codes(agreement["id"])
    prove(rig, candidate, address)
    second = SoftwarePasskey(origin=rig.web)
    replaced = candidate.passkey(second)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["replaced"] is True
    rig.box.wait(
        lambda m: bool(mails_to(rig, address, ("您的签署密钥已更换", "Your signing key was")))
    )

    node = rig.stack.stack.contracts.service.client
    onchain_id = bytes.fromhex(agreement["onchain_id"][2:])
    assert node.functions.reboundAt(onchain_id).call() > 0
    bound = node.contract.events.CandidateBound().get_logs(
        from_block=0, argument_filters={"agreementId": onchain_id}
    )
    assert [(e.args.candidate, e.args.previous) for e in bound][-1] == (
        second.public_key.address,
        first.public_key.address,
    )
    # No commitment within a day of the rebinding: the candidate has time to object.
    early = candidate.sign(second)
    assert early.status_code == 409, early.text
    assert "RebindingPending" in early.json()["detail"]

    w3 = Web3(Web3.HTTPProvider(rig.rpc_url))
    w3.provider.make_request("evm_increaseTime", [24 * 3600 + 60])  # type: ignore[arg-type]
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    signed = candidate.sign(second)
    assert signed.status_code == 200, signed.text
    record = candidate.get("/signing-record").json()
    assert record["ceremony"]["signer"]["replaces"] == first.public_key.address

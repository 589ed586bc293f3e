"""The candidate's portal behind the page, over real HTTP on the people's origin (one port for
pages and APIs), a real SMTP server and real Anvil: an offer made without a candidate address,
the one-time code from the e-mail (wrong codes counted), a passkey enrolled and bound on chain,
the commitment signed with a WebAuthn assertion (a software authenticator answering as a phone's
would), an amendment and the arrival signed the same way, and the signing record. The contract
itself checks every assertion; a different passkey or a replayed assertion is refused."""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from web3 import Web3

from offerseal.contracts.domain.passkeys import b64url
from offerseal.demo.passkey import SoftwarePasskey
from offerseal.shared import chain
from offerseal.shared.chain import typed_data_digest
from tests.conftest import RunningStack, api_link
from tests.integration.test_contracts_service import body
from tests.integration.test_notify import (
    Mailbox,
    mailbox,
    notify_stack,
    text_of,
)
from tests.integration.test_notify import live_links_in as links_in

__all__ = ["mailbox"]


pytestmark = pytest.mark.chain
STATES = ["None", "Offered", "Committed", "Fulfilled", "Breached", "EmployerBreached"]


@pytest.fixture
def portal(
    tmp_path: Path, database_url: str, fresh_anvil: Any, mailbox: tuple[Mailbox, str]
) -> Iterator[tuple[RunningStack, Mailbox]]:
    box, smtp_url = mailbox
    stack = notify_stack(tmp_path, database_url, fresh_anvil, smtp_url=smtp_url)
    try:
        yield stack, box
    finally:
        stack.stack.stop()


def on_chain_state(stack: RunningStack, onchain_id: str) -> str:
    node = stack.stack.contracts.service.client
    return STATES[node.functions.stateOf(bytes.fromhex(onchain_id[2:])).call()]


def code_from(box: Mailbox, after: int) -> str:
    [mail] = box.wait(
        lambda m: (
            m["Subject"].startswith(("您的验证码", "Your code")) and box.messages.index(m) >= after
        )
    )[-1:]
    match = re.search(r"\b(\d{6})\b", text_of(mail))
    assert match, text_of(mail)
    return match.group(1)


def field_of(response: requests.Response) -> str:
    return str(response.json()["errors"][0]["field"])


def post(url: str, **kwargs: Any) -> requests.Response:
    return requests.post(url, timeout=60, **kwargs)


def test_a_candidate_without_a_wallet_enrols_a_passkey_and_signs(
    portal: tuple[RunningStack, Mailbox],
) -> None:
    stack, box = portal
    web = stack.stack.urls["web"]
    offered = post(
        web + "/v1/agreements",
        headers={**stack.hr, "Prefer": "wait=30"},
        json=body(candidate_address=None),
    )  # the API through the people's origin
    assert offered.status_code == 201, offered.text
    agreement = offered.json()
    assert agreement["candidate_address"] is None
    [invitation] = box.wait(lambda m: agreement["id"] in " ".join(links_in(m)))
    link = next(u for u in links_in(invitation) if "/portal/" in u)
    assert link.startswith(
        web.replace("127.0.0.1", "localhost") + "/portal/" + agreement["id"] + "?token="
    )

    # A browser gets the page; a program gets the typed data, as signing links always gave.
    page = requests.get(link, headers={"Accept": "text/html"}, timeout=30)
    assert page.status_code == 200 and 'id="portal"' in page.text
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    early = requests.get(link, headers={"Accept": "application/json"}, timeout=30)
    assert early.status_code == 409 and early.json()["title"].startswith("The candidate has not")

    status = requests.get(api_link(link, "/enrolment"), timeout=30).json()
    assert status["signer"] is None and status["channels"] == ["email"]
    assert "risk" not in status["agreement"]  # HR's assessment is not the candidate's page

    passkey = SoftwarePasskey(origin=web)
    enrol = {
        "kind": "passkey",
        "credential_id": b64url(passkey.credential_id),
        "public_key": b64url(passkey.spki()),
    }
    # The candidate's browser: it alone will hold the proof of the code (a cookie).
    browser = requests.Session()
    refused = browser.post(api_link(link, "/enrolment/signer"), json=enrol, timeout=60)
    assert refused.status_code == 403 and "one-time code" in refused.json()["detail"]

    # The code, from the e-mail; a wrong one is counted.
    seen = len(box.messages)
    sent = post(api_link(link, "/enrolment/code"), json={"channel": "email"})
    assert sent.status_code == 202, sent.text
    assert sent.json()["destination"] == "c***@example.com"
    code = code_from(box, seen)
    # Once delivered, the code is not kept by notify (contracts keeps only its keyed hash).
    from offerseal.notify.models import Touchpoint

    def codes_kept() -> list[Any]:
        with stack.stack.db.sessions() as session:
            rows = session.query(Touchpoint).filter_by(kind="code").all()
            return [t.data for t in rows if t.state != "sent" or "code" in t.data]

    deadline = time.monotonic() + 30  # the outcome is committed just after the SMTP answer
    while codes_kept() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not codes_kept()
    wrong = post(
        api_link(link, "/enrolment/verify"), json={"code": f"{(int(code) + 1) % 10**6:06d}"}
    )
    assert wrong.status_code == 422 and field_of(wrong) == "code"
    assert "4 attempts left" in wrong.json()["detail"]
    assert post(api_link(link, "/enrolment/verify"), json={"code": "12"}).status_code == 422
    ok = browser.post(api_link(link, "/enrolment/verify"), json={"code": code}, timeout=60)
    assert ok.status_code == 200 and ok.json()["verified"] is True
    again = post(api_link(link, "/enrolment/verify"), json={"code": code})
    assert again.status_code == 409  # a used code

    bound = browser.post(api_link(link, "/enrolment/signer"), json=enrol, timeout=60)
    assert bound.status_code == 200, bound.text
    assert bound.json()["address"] == passkey.public_key.address
    terms = stack.stack.contracts.service.client.terms_of(agreement["onchain_id"])
    assert terms.candidate == passkey.public_key.address

    typed = requests.get(link, headers={"Accept": "application/json"}, timeout=30).json()
    assert typed["message"]["candidate"] == passkey.public_key.address
    digest = typed_data_digest(typed)

    # Another passkey, and the right one over another digest: refused.
    stranger = SoftwarePasskey(origin=web)
    foreign = stranger.sign(digest).as_json(stranger.credential_id)
    r = post(api_link(link, "/signature"), json={"passkey": foreign})
    assert r.status_code == 422 and field_of(r) == "passkey.credential_id"
    impostor = {**stranger.sign(digest).as_json(passkey.credential_id)}
    r = post(api_link(link, "/signature"), json={"passkey": impostor})
    assert r.status_code == 422 and "wrong signer" in r.json()["detail"]
    r = post(
        api_link(link, "/signature"),
        json={"passkey": passkey.sign(b"\x01" * 32).as_json(passkey.credential_id)},
    )
    assert r.status_code == 422 and "wrong signer" in r.json()["detail"]
    assert on_chain_state(stack, agreement["onchain_id"]) == "Offered"

    assertion = passkey.sign(digest).as_json(passkey.credential_id)
    signed = post(api_link(link, "/signature"), json={"passkey": assertion})
    assert signed.status_code == 200, signed.text
    assert signed.json()["state"] == "committed"
    # The signing record is a document of the agreement: receipted, batched, anchored.
    record_doc = signed.json()["signing_record_document"]
    assert record_doc
    assert on_chain_state(stack, agreement["onchain_id"]) == "Committed"

    record = requests.get(api_link(link, "/signing-record"), timeout=30).json()
    kinds = [e["kind"] for e in record["events"]]
    for expected in (
        "code_sent",
        "code_failed",
        "code_verified",
        "signer_bound",
        "passkey_assertion",
        "signed",
    ):
        assert expected in kinds, kinds
    assertion_event = next(
        e
        for e in record["events"]
        if e["kind"] == "passkey_assertion" and e["detail"]["what"] == "commitment"
    )
    assert assertion_event["detail"]["flags"]["user_verified"] is True
    assert record["terms_hash"] == agreement["terms_hash"]
    assert record["candidate_address"] == passkey.public_key.address
    assert record["evidence_document_id"] == record_doc
    signed_event = next(e for e in record["events"] if e["kind"] == "signed")
    assert signed_event["detail"]["tx_hash"].startswith("0x")
    document = requests.get(
        stack.stack.urls["evidence"] + f"/v1/documents/{record_doc}",
        headers=stack.legal,
        timeout=30,
    ).json()
    assert document["kind"] == "signing_record" and document["agreement_id"] == agreement["id"]
    assert all("code" not in str(e["detail"].get("code", "")) for e in record["events"])

    # New dates: the candidate signs the amendment with the same passkey.
    proposed = post(
        web + f"/v1/agreements/{agreement['id']}/amendments",
        headers=stack.hr,
        json={
            "start_date": (
                dt.date.fromisoformat(body()["start_date"]) + dt.timedelta(days=3)
            ).isoformat(),
            "reason": "longer handover",
        },
    )
    assert proposed.status_code == 201, proposed.text
    [mail] = box.wait(lambda m: any("/amendments/" in u for u in links_in(m)))
    amend_link = next(u for u in links_in(mail) if "/amendments/" in u)
    assert "/portal/" in amend_link
    item = requests.get(api_link(amend_link), timeout=30).json()
    assert item["signer"]["address"] == passkey.public_key.address
    amend_typed = requests.get(
        amend_link, headers={"Accept": "application/json"}, timeout=30
    ).json()
    amend_assertion = passkey.sign(typed_data_digest(amend_typed)).as_json(passkey.credential_id)
    applied = post(api_link(amend_link, "/signature"), json={"passkey": amend_assertion})
    assert applied.status_code == 200, applied.text
    assert applied.json()["state"] == "applied"

    # The first day: the signed arrival.
    w3 = Web3(Web3.HTTPProvider(stack.rpc_url))
    start = dt.datetime.fromisoformat(
        requests.get(api_link(link, "/enrolment"), timeout=30).json()["agreement"]["start_at"]
    )
    now = int(w3.eth.get_block("latest")["timestamp"])
    # The morning of the first day, by the chain's clock (before any grace period ends).
    w3.provider.make_request("evm_increaseTime", [int(start.timestamp()) - now + 600])  # type: ignore[arg-type]
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    status = requests.get(api_link(link, "/enrolment"), timeout=30).json()
    assert status["arrival_open"] is True
    arrival = requests.get(api_link(link, "/arrival/typed-data"), timeout=30).json()
    arrived = post(
        api_link(link, "/arrival"),
        json={
            "passkey": passkey.sign(typed_data_digest(arrival)).as_json(passkey.credential_id),
            "deadline": arrival["message"]["deadline"],
        },
    )
    assert arrived.status_code == 200, arrived.text
    assert arrived.json()["arrival"]["arrived_at"]
    assert chain.has_code(w3, stack.stack.contracts.service.client.address)

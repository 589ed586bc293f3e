"""The contracts service end to end over real HTTP with a real Anvil: offer -> the candidate
reads the terms and signs the typed data with ethers -> relay -> anchored evidence confirms a
milestone on chain -> start or breach; bad input, refusals, tenants, risk and its messages."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import func, select

from offerseal.contracts.models import Agreement, ChainOp
from offerseal.shared import chain, messages
from offerseal.shared.auth import create_key
from offerseal.shared.models import OutboxMessage
from tests.conftest import RunningStack, make_settings, start_stack, upload
from tests.signing import ethers_sign

pytestmark = pytest.mark.chain
ROOT = Path(__file__).resolve().parents[2]
CANDIDATE_KEY = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"
OTHER_KEY = "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6"
CANDIDATE = chain.account(CANDIDATE_KEY).address


@pytest.fixture
def stack(tmp_path: Path, database_url: str, fresh_anvil: Any) -> Iterator[RunningStack]:
    # Its own chain: these tests move the chain's clock.
    running = start_stack(make_settings(tmp_path, database_url, fresh_anvil.url))
    yield running
    running.stack.stop()


@pytest.fixture(scope="module")
def refusing_stack(
    tmp_path_factory: pytest.TempPathFactory, module_database_url: str, anvil: Any
) -> Iterator[RunningStack]:
    """One stack per database for the tests that are only refused: they change nothing."""
    tmp = tmp_path_factory.mktemp("refusals")
    running = start_stack(make_settings(tmp, module_database_url, anvil.url))
    yield running
    running.stack.stop()


def contracts(stack: RunningStack, path: str) -> str:
    return stack.stack.urls["contracts"] + path


def body(**changes: Any) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC)
    base = {
        "candidate_ref": "cand-042",
        "candidate_address": CANDIDATE,
        "candidate_contact": {
            "email": "cand042@example.com",
            "timezone": "Asia/Shanghai",
            "language": "zh-CN",
        },
        "employer_name": "Acme Robotics",
        "position": "Senior Firmware Engineer",
        "currency": "CNY",
        "monthly_salary": 3_000_000,
        "liquidated_damages": 900_000,
        "start_date": (now + dt.timedelta(days=40)).date().isoformat(),
        "grace_days": 3,
        "offer_expires_at": (now + dt.timedelta(days=7)).isoformat(),
        "milestones": [
            {
                "kind": "resignation_submitted",
                "due": (now + dt.timedelta(days=10)).date().isoformat(),
            },
            {"kind": "handover_halfway", "due": (now + dt.timedelta(days=25)).date().isoformat()},
        ],
        "language": "zh-CN",
        "replacement_days": 0,
    }
    base.update(changes)
    return base


def create(stack: RunningStack, **changes: Any) -> dict[str, Any]:
    r = requests.post(
        contracts(stack, "/v1/agreements"),
        headers={**stack.hr, "Prefer": "wait=30"},
        json=body(**changes),
        timeout=60,
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def outbox(stack: RunningStack, type_: str) -> list[dict[str, Any]]:
    with stack.db.sessions() as session:
        rows = session.execute(
            select(OutboxMessage.body)
            .where(OutboxMessage.routing_key == f"{type_}.v1")
            .order_by(OutboxMessage.id)
        ).scalars()
        return list(rows)


def signing_link(stack: RunningStack, agreement_id: str) -> str:
    [offered] = [
        m
        for m in outbox(stack, "agreement.offered")
        if m["payload"]["agreement_id"] == agreement_id
    ]
    return str(offered["payload"]["signing_link"])


def sign_through_link(
    stack: RunningStack, agreement_id: str, key: str = CANDIDATE_KEY
) -> requests.Response:
    link = signing_link(stack, agreement_id)
    typed = requests.get(link, timeout=30).json()
    token = urllib.parse.parse_qs(urllib.parse.urlparse(link).query)["token"][0]
    return requests.post(
        contracts(stack, f"/v1/agreements/{agreement_id}/signature"),
        params={"token": token},
        json={"signature": ethers_sign(key, typed)},
        timeout=60,
    )


def test_offer_sign_evidence_start(stack: RunningStack) -> None:
    agreement = create(stack)
    assert agreement["state"] == "offered" and agreement["transaction"].startswith("0x")
    assert agreement["risk"]["level"] == "blue"
    # What the candidate reads is what the chain holds.
    link = signing_link(stack, agreement["id"])
    token = urllib.parse.parse_qs(urllib.parse.urlparse(link).query)["token"][0]
    terms = requests.get(
        contracts(stack, f"/v1/agreements/{agreement['id']}/terms"),
        params={"token": token},
        timeout=30,
    )
    assert "入职意向书" in terms.text and "30%" in terms.text
    digest = "0x" + hashlib.sha256(terms.content).hexdigest()
    assert digest == agreement["terms_hash"] == terms.headers["X-Terms-SHA256"]
    client = stack.stack.contracts.service.client
    onchain = client.functions.termsOf(bytes.fromhex(agreement["onchain_id"][2:])).call()
    assert "0x" + bytes(onchain[2]).hex() == digest
    assert onchain[7] == 900_000  # damages on chain, exactly 30%

    signed = sign_through_link(stack, agreement["id"])
    assert signed.status_code == 200, signed.text
    assert signed.json()["state"] == "committed"
    assert client.state_of(agreement["onchain_id"]) == "committed"

    # Anchored evidence tied to the agreement is recorded for the milestone, by message. The
    # contract computes the leaf from the document's [sha256, salt]; a message that carries
    # only the leaf leaves the confirmation to HR's request with the document id.
    doc = upload(
        stack,
        b"stamped resignation application",
        kind="resignation_application",
        agreement_id=agreement["id"],
        milestone="resignation_submitted",
    ).json()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        current = requests.get(
            contracts(stack, f"/v1/agreements/{agreement['id']}"), headers=stack.legal, timeout=30
        ).json()
        if current["milestones"][0]["document_id"] or current["milestones"][0]["confirmed_at"]:
            break
        time.sleep(0.2)
    assert current["milestones"][0]["document_id"] == doc["id"]
    if not current["milestones"][0]["confirmed_at"]:
        r = requests.post(
            contracts(
                stack,
                f"/v1/agreements/{agreement['id']}/milestones/resignation_submitted/evidence",
            ),
            headers=stack.hr,
            json={"document_id": doc["id"]},
            timeout=60,
        )
        # the worker may confirm it from the evidence.anchored message at the same moment
        assert r.status_code == 200 or (
            r.status_code == 409 and r.json()["error"] == "MilestoneAlreadyConfirmed"
        ), r.text
        deadline = time.monotonic() + 30
        while not current["milestones"][0]["confirmed_at"]:
            assert time.monotonic() < deadline, "the milestone was never confirmed"
            time.sleep(0.2)
            current = requests.get(
                contracts(stack, f"/v1/agreements/{agreement['id']}"),
                headers=stack.legal,
                timeout=30,
            ).json()
    evidence_leaf = client.functions.evidenceOf(
        bytes.fromhex(agreement["onchain_id"][2:]), 0
    ).call()
    with stack.db.sessions() as session:
        from offerseal.evidence.models import Document

        leaf = session.execute(select(Document.leaf).where(Document.id == doc["id"])).scalar()
    assert "0x" + bytes(evidence_leaf).hex() == leaf

    # ... and through the API with a document id.
    second = upload(stack, b"supervisor: handover half-way", kind="handover_progress").json()
    deadline = time.monotonic() + 30
    while True:
        r = requests.post(
            contracts(
                stack, f"/v1/agreements/{agreement['id']}/milestones/handover_halfway/evidence"
            ),
            headers=stack.hr,
            json={"document_id": second["id"]},
            timeout=60,
        )
        if r.status_code != 409 or time.monotonic() > deadline:
            break
        time.sleep(0.3)  # not anchored yet
    assert r.status_code == 200, r.text
    assert all(m["confirmed_at"] for m in r.json()["milestones"])
    assert {m["payload"]["kind"] for m in outbox(stack, "milestone.confirmed")} == {
        "resignation_submitted",
        "handover_halfway",
    }

    started = requests.post(
        contracts(stack, f"/v1/agreements/{agreement['id']}/start"), headers=stack.hr, timeout=60
    )
    assert started.status_code == 200 and started.json()["state"] == "fulfilled"
    again = requests.post(
        contracts(stack, f"/v1/agreements/{agreement['id']}/start"), headers=stack.hr, timeout=60
    )
    assert again.status_code == 409 and "fulfilled" in again.json()["detail"]
    assert [m["payload"]["state"] for m in outbox(stack, "agreement.fulfilled")] == ["fulfilled"]


def test_breach_only_after_start_plus_grace_and_by_the_sweeper(stack: RunningStack) -> None:
    agreement = create(stack)
    assert sign_through_link(stack, agreement["id"]).status_code == 200
    early = requests.post(
        contracts(stack, f"/v1/agreements/{agreement['id']}/breach"), headers=stack.hr, timeout=60
    )
    assert early.status_code == 409
    assert early.json()["error"] == "BreachNotDeclarable"
    w3 = chain.connect(stack.rpc_url)
    w3.provider.make_request("evm_increaseTime", [44 * 86400])  # type: ignore[arg-type]
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    deadline = time.monotonic() + 30  # the sweeper declares it; nobody has to remember
    while time.monotonic() < deadline:
        state = requests.get(
            contracts(stack, f"/v1/agreements/{agreement['id']}"), headers=stack.hr, timeout=30
        ).json()["state"]
        if state == "breached":
            break
        time.sleep(0.3)
    assert state == "breached"
    [breach] = outbox(stack, "agreement.breached")
    assert breach["payload"]["liquidated_damages"] == 900_000


def test_withdraw_and_cancel(stack: RunningStack) -> None:
    committed = create(stack)
    assert sign_through_link(stack, committed["id"]).status_code == 200
    r = requests.post(
        contracts(stack, f"/v1/agreements/{committed['id']}/withdraw"), headers=stack.hr, timeout=60
    )
    assert r.json()["state"] == "employer_breached"
    offered = create(stack)
    r = requests.post(
        contracts(stack, f"/v1/agreements/{offered['id']}/cancel"), headers=stack.hr, timeout=60
    )
    assert r.status_code == 200 and r.json()["state"] == "cancelled"


@pytest.mark.parametrize(
    "changes,field",
    [
        ({"liquidated_damages": 900_001}, "liquidated_damages"),
        ({"start_date": "2020-01-01"}, "start_date"),
        (
            {"offer_expires_at": (dt.datetime.now(dt.UTC) + dt.timedelta(days=60)).isoformat()},
            "offer_expires_at",
        ),
        (
            {"milestones": [{"kind": "resignation_submitted", "due": "2030-01-01"}] * 9},
            "milestones",
        ),
        ({"candidate_address": CANDIDATE.lower()}, "candidate_address"),
        ({"milestones": [{"kind": "love_letter", "due": "2030-01-01"}]}, "milestones.0.kind"),
        ({"candidate_contact": {"timezone": "Mars/Olympus"}}, "candidate_contact.timezone"),
    ],
)
def test_bad_agreements_are_422_and_change_nothing(
    refusing_stack: RunningStack, changes: dict[str, Any], field: str
) -> None:
    stack = refusing_stack
    r = requests.post(
        contracts(stack, "/v1/agreements"), headers=stack.hr, json=body(**changes), timeout=30
    )
    assert r.status_code == 422, r.text
    assert r.headers["Content-Type"] == "application/problem+json"
    assert field in [e["field"] for e in r.json()["errors"]]
    with stack.db.sessions() as session:
        assert session.execute(select(func.count()).select_from(Agreement)).scalar() == 0
        assert session.execute(select(func.count()).select_from(ChainOp)).scalar() == 0


def test_signature_is_checked_before_relay(stack: RunningStack) -> None:
    first, second = create(stack), create(stack)
    url = contracts(stack, f"/v1/agreements/{first['id']}/signature")

    def post(signature: str) -> requests.Response:
        return requests.post(url, headers=stack.hr, json={"signature": signature}, timeout=60)

    assert post("nothex").status_code == 422
    assert "malformed" in post("0x" + "ab" * 10).json()["detail"]
    typed = requests.get(
        contracts(stack, f"/v1/agreements/{first['id']}/typed-data"), headers=stack.hr, timeout=30
    ).json()
    assert "wrong signer" in post(ethers_sign(OTHER_KEY, typed)).json()["detail"]
    typed_second = requests.get(
        contracts(stack, f"/v1/agreements/{second['id']}/typed-data"), headers=stack.hr, timeout=30
    ).json()
    wrong = post(ethers_sign(CANDIDATE_KEY, typed_second))
    assert wrong.status_code == 422 and "wrong agreement" in wrong.json()["detail"]
    with stack.db.sessions() as session:  # nothing was relayed
        assert (
            session.execute(
                select(func.count()).select_from(ChainOp).where(ChainOp.op == "commit")
            ).scalar()
            == 0
        )
    assert post(ethers_sign(CANDIDATE_KEY, typed)).json()["state"] == "committed"


def test_links_tenants_and_roles(stack: RunningStack) -> None:
    agreement = create(stack)
    path = f"/v1/agreements/{agreement['id']}"
    assert (
        requests.get(contracts(stack, path), headers=stack.other_tenant, timeout=30).status_code
        == 404
    )
    assert requests.get(contracts(stack, path), timeout=30).status_code == 401
    assert (
        requests.post(
            contracts(stack, "/v1/agreements"), headers=stack.legal, json=body(), timeout=30
        ).status_code
        == 403
    )
    link = signing_link(stack, agreement["id"])
    token = urllib.parse.parse_qs(urllib.parse.urlparse(link).query)["token"][0]
    tampered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    assert (
        requests.get(
            contracts(stack, path + "/typed-data"), params={"token": tampered}, timeout=30
        ).status_code
        == 401
    )
    other = create(stack)  # a link opens its own agreement only
    assert (
        requests.get(
            contracts(stack, f"/v1/agreements/{other['id']}/typed-data"),
            params={"token": token},
            timeout=30,
        ).status_code
        == 404
    )
    listed = requests.get(
        contracts(stack, "/v1/agreements?state=offered&limit=1"), headers=stack.hr, timeout=30
    ).json()
    assert len(listed["items"]) == 1 and listed["next"]


def test_risk_follows_inputs_and_candidate_replies(stack: RunningStack) -> None:
    yellow = create(stack, replacement_days=20)
    risk = requests.get(
        contracts(stack, f"/v1/agreements/{yellow['id']}/risk"), headers=stack.hr, timeout=30
    ).json()
    assert risk["level"] == "yellow" and risk["response"] == "agree a staged onboarding date"
    assert risk["exposure"]["percent_of_salary"] == 30.0
    assert risk["exposure"]["cap"] == 900_000
    red = create(stack, non_compete=True)
    assert (
        requests.get(
            contracts(stack, f"/v1/agreements/{red['id']}/risk"), headers=stack.hr, timeout=30
        ).json()["level"]
        == "red"
    )

    blue = create(stack)
    assert sign_through_link(stack, blue["id"]).status_code == 200
    consumer = stack.stack.contracts.consumer
    now = dt.datetime.now(dt.UTC)
    reply = messages.build(
        messages.TOUCHPOINT_REPLIED,
        "acme",
        {
            "touchpoint_id": "tp-1",
            "agreement_id": blue["id"],
            "candidate_ref": "cand-042",
            "kind": "checkin",
            "answer": "delayed",
            "new_date": "2027-02-01",
            "sent_at": now - dt.timedelta(hours=30),
            "replied_at": now,
        },
    )
    assert consumer.handle(json.loads(json.dumps(reply))) == "handled"
    assert consumer.handle(json.loads(json.dumps(reply))) == "duplicate"
    risk = requests.get(
        contracts(stack, f"/v1/agreements/{blue['id']}/risk"), headers=stack.hr, timeout=30
    ).json()
    assert risk["level"] == "red" and "the candidate reports a delay" in risk["reasons"]
    assert risk["stability_score"] < 100
    changes = [
        m["payload"]
        for m in outbox(stack, "risk.changed")
        if m["payload"]["agreement_id"] == blue["id"]
    ]
    assert changes[-1]["level"] == "red" and changes[-1]["previous"] == "blue"


def test_mutual_cancellation_with_the_candidates_signature(stack: RunningStack) -> None:
    agreement = create(stack)
    assert sign_through_link(stack, agreement["id"]).status_code == 200
    url = contracts(stack, f"/v1/agreements/{agreement['id']}/cancel")
    alone = requests.post(url, headers=stack.hr, timeout=60)
    assert alone.status_code == 409  # committed: the employer cannot cancel alone
    deadline = int(time.time()) + 3600
    typed = requests.get(
        contracts(stack, f"/v1/agreements/{agreement['id']}/typed-data"),
        params={"purpose": "cancellation", "deadline": deadline},
        headers=stack.hr,
        timeout=30,
    ).json()
    assert typed["primaryType"] == "Cancellation"
    released = requests.post(
        url,
        headers=stack.hr,
        timeout=60,
        json={"deadline": deadline, "signature": ethers_sign(CANDIDATE_KEY, typed)},
    )
    assert released.status_code == 200 and released.json()["state"] == "cancelled"


def test_overdue_milestones_are_flagged_and_turn_risk_red(stack: RunningStack) -> None:
    agreement = create(stack)
    assert sign_through_link(stack, agreement["id"]).status_code == 200
    expiry = requests.post(
        contracts(stack, f"/v1/agreements/{agreement['id']}/expire"), headers=stack.hr, timeout=60
    )
    assert expiry.status_code == 409  # committed agreements do not expire
    w3 = chain.connect(stack.rpc_url)
    w3.provider.make_request("evm_increaseTime", [12 * 86400])  # type: ignore[arg-type]
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        overdue = [m["payload"] for m in outbox(stack, "milestone.overdue")]
        if overdue:
            break
        time.sleep(0.3)
    assert [m["kind"] for m in overdue] == ["resignation_submitted"]
    risk = requests.get(
        contracts(stack, f"/v1/agreements/{agreement['id']}/risk"), headers=stack.hr, timeout=30
    ).json()
    assert risk["level"] == "red" and "1 milestone(s) overdue" in risk["reasons"]


EMPLOYER_KEY = "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba"  # Anvil #5


def test_a_tenant_offers_from_its_own_employer_address(stack: RunningStack) -> None:
    employer = chain.account(EMPLOYER_KEY)
    url = contracts(stack, "/v1/employer")
    current = requests.get(url, headers=stack.hr, timeout=30).json()
    assert current["source"] == "relayer" and current["operator_approved"]
    relayer = current["relayer"]
    unsigned = {"address": employer.address}
    assert requests.put(url, headers=stack.hr, json=unsigned, timeout=30).status_code == 403
    lower = requests.put(url, headers=stack.admin, json={"address": employer.address.lower()})
    assert lower.status_code == 422 and lower.json()["errors"][0]["field"] == "address"
    # Without the address's own signature a tenant cannot claim it (another company's name)
    claimed = requests.put(url, headers=stack.admin, json=unsigned, timeout=30)
    assert claimed.status_code == 422 and claimed.json()["errors"][0]["field"] == "signature"
    typed = requests.get(
        url + "/binding", params={"address": employer.address}, headers=stack.admin, timeout=30
    ).json()
    assert typed["message"]["tenant"] == "acme" and typed["message"]["relayer"] == relayer
    wanted = {
        "address": employer.address,
        "signature": ethers_sign(EMPLOYER_KEY, typed),  # the company's wallet, not ours
        "deadline": typed["message"]["deadline"],
    }
    forged = {**wanted, "signature": ethers_sign(CANDIDATE_KEY, typed)}
    assert requests.put(url, headers=stack.admin, json=forged, timeout=30).status_code == 422
    refused = requests.put(url, headers=stack.admin, json=wanted, timeout=30)
    assert refused.status_code == 409 and f"setOperator({relayer}, true)" in refused.text

    # The employer appoints the relayer from its own wallet; then the tenant may use it.
    client = stack.stack.contracts.service.client
    w3 = client.w3
    tx = client.functions.setOperator(relayer, True).build_transaction(
        {"from": employer.address, "nonce": w3.eth.get_transaction_count(employer.address)}
    )
    chain.send_signed(w3, employer, dict(tx))
    accepted = requests.put(url, headers=stack.admin, json=wanted, timeout=30)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["source"] == "tenant" and accepted.json()["operator_approved"]
    other = requests.get(url, headers=stack.other_tenant, timeout=30).json()
    assert other["address"] == relayer  # another tenant is not affected
    # ... and cannot take the address, even with a binding the address signed for it
    globex = {"Authorization": f"Bearer {create_key(stack.db, 'admin', 'globex')[1]}"}
    theirs = requests.get(
        url + "/binding", params={"address": employer.address}, headers=globex, timeout=30
    ).json()
    taken = requests.put(
        url,
        headers=globex,
        json={
            "address": employer.address,
            "signature": ethers_sign(EMPLOYER_KEY, theirs),
            "deadline": theirs["message"]["deadline"],
        },
        timeout=30,
    )
    assert taken.status_code == 409 and "another tenant" in taken.text

    agreement = create(stack)
    assert agreement["employer_address"] == employer.address
    onchain = client.functions.termsOf(bytes.fromhex(agreement["onchain_id"][2:])).call()
    assert onchain[0] == employer.address  # the company itself is the party on chain
    assert sign_through_link(stack, agreement["id"]).status_code == 200
    started = requests.post(
        contracts(stack, f"/v1/agreements/{agreement['id']}/start"), headers=stack.hr, timeout=60
    )
    assert started.status_code == 200 and started.json()["state"] == "fulfilled"

    back = requests.put(url, headers=stack.admin, json={"address": None}, timeout=30)
    assert back.json()["source"] == "relayer"


def travel(stack: RunningStack, seconds: int) -> None:
    w3 = chain.connect(stack.rpc_url)
    w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def get(stack: RunningStack, agreement_id: str) -> dict[str, Any]:
    r = requests.get(
        contracts(stack, f"/v1/agreements/{agreement_id}"), headers=stack.hr, timeout=30
    )
    return dict(r.json())


def eventually(stack: RunningStack, agreement_id: str, state: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        current = get(stack, agreement_id)
        if current["state"] == state or time.monotonic() > deadline:
            return current
        time.sleep(0.3)


def test_an_arrived_candidate_is_fulfilled_and_never_breached(stack: RunningStack) -> None:
    arrived, disputed = create(stack), create(stack)
    for a in (arrived, disputed):
        assert sign_through_link(stack, a["id"]).status_code == 200
    link = signing_link(stack, arrived["id"])
    token = urllib.parse.parse_qs(urllib.parse.urlparse(link).query)["token"][0]
    base = f"/v1/agreements/{arrived['id']}/arrival"
    typed = requests.get(
        contracts(stack, base + "/typed-data"), params={"token": token}, timeout=30
    )
    assert typed.status_code == 200 and typed.json()["primaryType"] == "Arrival"

    def submit(a: dict[str, Any], **auth: Any) -> requests.Response:
        typed = requests.get(
            contracts(stack, f"/v1/agreements/{a['id']}/arrival/typed-data"), timeout=30, **auth
        ).json()
        return requests.post(
            contracts(stack, f"/v1/agreements/{a['id']}/arrival"),
            json={
                "signature": ethers_sign(CANDIDATE_KEY, typed),
                "deadline": typed["message"]["deadline"],
            },
            timeout=60,
            **auth,
        )

    early = submit(arrived, params={"token": token})
    assert early.status_code == 409 and early.json()["error"] == "ArrivalNotOpen"
    travel(stack, 40 * 86400)  # the start date (09:00 in Shanghai) has come
    r = submit(arrived, params={"token": token})  # the candidate, through their link
    assert r.status_code == 200, r.text
    assert r.json()["arrival"]["arrived_at"]
    r = submit(disputed, headers=stack.hr)  # or HR relays the candidate's signature
    assert r.status_code == 200, r.text
    r = requests.post(
        contracts(stack, f"/v1/agreements/{disputed['id']}/arrival/dispute"),
        headers=stack.legal,
        timeout=60,
    )
    assert r.status_code == 403
    r = requests.post(
        contracts(stack, f"/v1/agreements/{disputed['id']}/arrival/dispute"),
        headers=stack.hr,
        timeout=60,
    )
    assert r.status_code == 200 and r.json()["arrival"]["disputed_at"], r.text
    # HR never calls /start: past start + grace the sweeper breaches only the disputed one.
    travel(stack, 4 * 86400)
    assert eventually(stack, disputed["id"], "breached")["state"] == "breached"
    assert get(stack, arrived["id"])["state"] == "committed"
    breach = requests.post(
        contracts(stack, f"/v1/agreements/{arrived['id']}/breach"), headers=stack.hr, timeout=60
    )
    assert breach.status_code == 409 and breach.json()["error"] == "CandidateArrived"
    # After the dispute window the sweeper fulfils it.
    travel(stack, 8 * 86400)
    assert eventually(stack, arrived["id"], "fulfilled")["state"] == "fulfilled"
    fulfilled = [m["payload"]["agreement_id"] for m in outbox(stack, "agreement.fulfilled")]
    assert fulfilled == [arrived["id"]]


def test_the_service_follows_an_expiry_sent_by_someone_else(stack: RunningStack) -> None:
    agreement = create(stack)
    w3 = chain.connect(stack.rpc_url)
    client = stack.stack.contracts.service.client
    stranger = chain.account(OTHER_KEY)
    # A third party's expire() lands in the very block that passes the offer's expiry, so it
    # is there before the sweeper's own attempt.
    w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
    try:
        tx = client.functions.expire(bytes.fromhex(agreement["onchain_id"][2:])).build_transaction(
            {
                "from": stranger.address,
                "nonce": w3.eth.get_transaction_count(stranger.address),
                "gas": 100_000,
            }
        )
        signed = stranger.sign_transaction(tx)
        tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
        w3.provider.make_request("evm_increaseTime", [8 * 86400])  # type: ignore[arg-type]
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    finally:
        w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
    assert w3.eth.get_transaction_receipt(tx_hash)["status"] == 1
    assert client.state_of(agreement["onchain_id"]) == "expired"
    assert eventually(stack, agreement["id"], "expired")["state"] == "expired"
    [expired] = outbox(stack, "agreement.expired")
    assert expired["payload"]["tx_hash"] is None  # recorded from the chain's state
    with stack.db.sessions() as session:
        sent = session.execute(
            select(func.count())
            .select_from(ChainOp)
            .where(ChainOp.agreement_id == agreement["id"], ChainOp.op == "expire")
        ).scalar()
    assert sent == 0  # refused in simulation: nothing sent, nothing left to retry
    time.sleep(2)  # a few more sweeps
    assert get(stack, agreement["id"])["state"] == "expired"
    assert len(outbox(stack, "agreement.expired")) == 1


def test_a_commitment_sent_from_the_candidates_own_wallet_is_followed(
    stack: RunningStack,
) -> None:
    """Nobody asks the service: the candidate sends commit() themselves. The contract's
    Committed event brings the database along (no sweeper, no refusal involved)."""
    agreement = create(stack)
    w3 = chain.connect(stack.rpc_url)
    client = stack.stack.contracts.service.client
    typed = requests.get(signing_link(stack, agreement["id"]), timeout=30).json()
    signature = bytes.fromhex(ethers_sign(CANDIDATE_KEY, typed)[2:])
    candidate = chain.account(CANDIDATE_KEY)
    ceremony = bytes.fromhex(typed["message"]["ceremonyHash"][2:])
    tx = client.functions.commit(
        bytes.fromhex(agreement["onchain_id"][2:]), ceremony, signature
    ).build_transaction(
        {"from": candidate.address, "nonce": w3.eth.get_transaction_count(candidate.address)}
    )
    assert chain.send_signed(w3, candidate, dict(tx))["status"] == 1
    assert eventually(stack, agreement["id"], "committed")["state"] == "committed"
    [_announced] = [  # once
        m
        for m in outbox(stack, "agreement.committed")
        if m["payload"]["agreement_id"] == agreement["id"]
    ]
    with stack.db.sessions() as session:
        sent = session.execute(
            select(func.count())
            .select_from(ChainOp)
            .where(ChainOp.agreement_id == agreement["id"], ChainOp.op == "commit")
        ).scalar()
    assert sent == 0  # the service sent nothing: it followed the chain

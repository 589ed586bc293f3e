"""The judicial-chain witness through Tencent's real SDK (`tencentcloud-sdk-python-btoe`) against
a local BTOE on 127.0.0.1 that checks the documented TC3-HMAC-SHA256 signature: a deposit of the
root's SM3 is answered and becomes a bundle entry that the verifier accepts; a throttled platform
(`RequestLimitExceeded`) delays only this witness, with backoff; a wrong secret key
(`AuthFailure.SignatureFailure`) is refused, and the secret is never logged. End to end, a real
stack anchors a document on Anvil, deposits its root, and `offerseal-verify` reports the witness.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from offerseal.evidence.adapters.btoe import BtoeWitness
from offerseal.evidence.models import Batch, BatchDeposit
from offerseal.evidence.witnesses import (
    AnchoredRoot,
    Depositor,
    WitnessRefused,
    WitnessUnavailable,
)
from offerseal_verify import cli as verifier_cli
from offerseal_verify.deposits import verify_deposit
from offerseal_verify.sm3 import sm3
from tests.btoe_server import BtoeServer, FakeBtoe
from tests.conftest import make_settings, start_stack, upload, wait_for_proof

SECRET_ID = "AKIDoffersealtest0000000000000000000"
SECRET_KEY = "offerseal-test-secret-key-" + "k" * 6
ROOT = bytes.fromhex("5f" * 32)


@pytest.fixture
def btoe() -> Any:
    state = FakeBtoe(accounts={SECRET_ID: SECRET_KEY})
    with BtoeServer(state) as server:
        yield server


def witness(server: BtoeServer, secret_key: str = SECRET_KEY) -> BtoeWitness:
    return BtoeWitness(SECRET_ID, secret_key, endpoint=server.url, region="ap-guangzhou")


def test_a_deposit_through_the_sdk_is_answered_and_verifies(btoe: BtoeServer) -> None:
    entry = witness(btoe).deposit(AnchoredRoot(7, ROOT, 31337, "0x" + "11" * 32))
    assert btoe.state.signatures_checked == 1 and btoe.state.refused == []
    seen = btoe.state.deposits[0]
    assert seen["params"]["HashType"] == 0  # SM3, BTOE's default
    assert seen["params"]["EvidenceHash"] == sm3(ROOT).hex()
    assert json.loads(seen["params"]["EvidenceInfo"])["root"] == "0x" + ROOT.hex()
    assert seen["headers"]["x-tc-action"] == "CreateHashDepositNoCert"
    answer = seen["answer"]
    assert entry["evidence_id"] == answer["EvidenceId"]
    assert entry["tx_hash"] == answer["EvidenceTxHash"]
    assert entry["evidence_time"] == answer["EvidenceTime"]
    assert entry["block_height"] == answer["BlockchainHeight"]
    assert entry["certificate"] is None
    assert SECRET_KEY not in json.dumps(entry) and SECRET_ID not in json.dumps(entry)
    ok, detail = verify_deposit(entry, ROOT)
    assert ok, detail
    assert verify_deposit(entry, b"\x00" * 32)[0] is False


def test_a_wrong_secret_key_is_refused_by_the_signature_check(
    btoe: BtoeServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(WitnessRefused, match=r"AuthFailure\.SignatureFailure") as raised:
        witness(btoe, secret_key="not-the-key").deposit(AnchoredRoot(1, ROOT, 31337, ""))
    assert btoe.state.refused == ["AuthFailure.SignatureFailure"] and btoe.state.deposits == []
    assert "not-the-key" not in str(raised.value) and "not-the-key" not in caplog.text


def test_throttling_is_unavailable_not_refused(btoe: BtoeServer) -> None:
    btoe.state.throttle = 1
    with pytest.raises(WitnessUnavailable, match="RequestLimitExceeded"):
        witness(btoe).deposit(AnchoredRoot(1, ROOT, 31337, ""))
    assert witness(btoe).deposit(AnchoredRoot(1, ROOT, 31337, ""))["evidence_id"]


def test_an_unreachable_platform_is_unavailable() -> None:
    with BtoeServer(FakeBtoe(accounts={})) as server:
        url = server.url
    with pytest.raises(WitnessUnavailable, match="ClientNetworkError"):
        BtoeWitness(SECRET_ID, SECRET_KEY, endpoint=url).deposit(AnchoredRoot(1, ROOT, 1, ""))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def anchored_batch(database: Any, root: bytes) -> int:
    with database.transaction() as session:
        batch = Batch(
            root="0x" + root.hex(),
            leaf_count=1,
            state="anchored",
            chain_id=31337,
            registry_address="0x" + "00" * 20,
            signer="0x" + "00" * 20,
            tx_hash="0x" + "22" * 32,
        )
        session.add(batch)
        session.flush()
        return int(batch.id)


def test_a_throttled_witness_backs_off_and_deposits_later(database: Any, btoe: BtoeServer) -> None:
    first, second = anchored_batch(database, ROOT), anchored_batch(database, b"\x01" * 32)
    clock = Clock()
    depositor = Depositor(database, [witness(btoe)], clock=clock)
    btoe.state.throttle = 2
    assert depositor.run_once() == 0  # throttled: waits 1 s
    assert depositor.run_once() == 0 and btoe.state.refused == ["RequestLimitExceeded"]
    clock.now += 1.0
    assert depositor.run_once() == 0  # throttled again: waits 2 s now
    clock.now += 1.0
    assert depositor.run_once() == 0 and len(btoe.state.refused) == 2  # still waiting
    clock.now += 1.0
    assert depositor.run_once() == 2  # both batches, oldest first
    with database.sessions() as session:
        rows = session.execute(select(BatchDeposit).order_by(BatchDeposit.batch_id)).scalars().all()
        assert [r.batch_id for r in rows] == [first, second]
        assert all(r.witness == "tencent-btoe" for r in rows)
    assert depositor.run_once() == 0  # nothing left; no request sent
    assert len(btoe.state.deposits) == 2


def test_the_stack_deposits_each_anchored_root_and_the_verifier_reports_it(
    tmp_path: Path,
    sqlite_url: str,
    anvil: Any,
    btoe: BtoeServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    btoe.state.throttle = 1  # the first try is throttled: the proof is served meanwhile
    settings = make_settings(
        tmp_path,
        sqlite_url,
        anvil.url,
        btoe_secret_id=SECRET_ID,
        btoe_secret_key=SECRET_KEY,
        btoe_endpoint=btoe.url,
    )
    stack = start_stack(settings)
    try:
        content = "离职证明：王五已于2026年12月1日离职。".encode() + os.urandom(8)
        doc_id = upload(stack, content).json()["id"]
        bundle = wait_for_proof(stack, doc_id)
        bundle = wait_for_deposit(stack, doc_id)
        assert bundle["format"] == "offerseal-proof/3"
        assert bundle["witnesses"][-1] == "tencent-btoe"
        (entry,) = bundle["deposits"]
        root = bytes.fromhex(bundle["merkle"]["root"][2:])
        assert entry["hash"] == sm3(root).hex()
        assert "RequestLimitExceeded" in btoe.state.refused
        assert SECRET_KEY not in json.dumps(bundle)
        with stack.stack.db.sessions() as session:
            assert session.execute(select(func.count()).select_from(BatchDeposit)).scalar() >= 1
        assert SECRET_KEY not in str(settings.redacted())
    finally:
        stack.stack.stop()
    document = tmp_path / "doc.txt"
    document.write_bytes(content)
    proof = tmp_path / "proof.json"
    proof.write_text(json.dumps(bundle))
    status = verifier_cli.main(["proof", str(document), str(proof), "--rpc", anvil.url])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "PASS  judicial_deposit" in out and "PASS  document_sm3" in out
    assert "present, checked against the provider's answer" in out
    assert "on-line confirmation needs" in out


def wait_for_deposit(stack: Any, doc_id: str, timeout: float = 30.0) -> dict[str, Any]:
    import time

    import requests

    deadline = time.monotonic() + timeout
    while True:
        bundle: dict[str, Any] = requests.get(
            stack.url(f"/v1/documents/{doc_id}/proof"), headers=stack.hr, timeout=10
        ).json()
        if bundle.get("deposits") or time.monotonic() > deadline:
            return bundle
        time.sleep(0.2)


TENANT_ID = "AKIDacmeown0000000000000000000000000"
TENANT_KEY = "acme-own-secret-key-" + "q" * 12


def test_a_tenants_own_account_deposits_its_batches_and_is_never_returned(
    tmp_path: Path,
    sqlite_url: str,
    anvil: Any,
    btoe: BtoeServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No deployment account: acme's admin sets acme's own through the API (sealed, shown by
    its first characters); acme's documents get a deposit signed with acme's SecretId, another
    tenant's none; HR may not set it; bad input names the field."""
    import time

    import requests

    from offerseal.evidence.models import WitnessAccount

    caplog.set_level(logging.DEBUG)
    btoe.state.accounts[TENANT_ID] = TENANT_KEY
    settings = make_settings(tmp_path, sqlite_url, anvil.url, btoe_endpoint=btoe.url)
    stack = start_stack(settings)
    try:
        url = stack.url("/v1/witnesses/btoe")
        assert requests.get(url, headers=stack.hr, timeout=10).json()["source"] == "none"
        body = {"secret_id": TENANT_ID, "secret_key": TENANT_KEY, "region": "ap-shanghai"}
        assert requests.put(url, headers=stack.hr, json=body, timeout=10).status_code == 403
        bad = requests.put(url, headers=stack.admin, json={**body, "secret_id": "x y"}, timeout=10)
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "secret_id"
        bad = requests.put(url, headers=stack.admin, json={**body, "region": "../x"}, timeout=10)
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "region"
        set_ = requests.put(url, headers=stack.admin, json=body, timeout=10)
        assert set_.status_code == 200, set_.text
        shown = requests.get(url, headers=stack.hr, timeout=10)
        for answer in (set_, shown):
            assert answer.json()["source"] == "tenant" and answer.json()["secret_id"] == "AKID…"
            assert TENANT_KEY not in answer.text and TENANT_ID not in answer.text
        other = requests.get(url, headers=stack.other_tenant, timeout=10).json()
        assert other["source"] == "none"
        with stack.stack.db.sessions() as session:
            row = session.get(WitnessAccount, ("acme", "tencent-btoe"))
            assert row is not None
            assert TENANT_KEY.encode() not in row.ciphertext
            assert TENANT_ID.encode() not in row.ciphertext

        mine = upload(stack, b"acme certificate " + os.urandom(8)).json()["id"]
        theirs = upload(
            stack, b"globex certificate " + os.urandom(8), headers=stack.other_tenant
        ).json()["id"]
        bundle = wait_for_deposit(stack, mine)
        (entry,) = bundle["deposits"]
        assert entry["request"]["Region"] == "ap-shanghai"
        signed_by = [
            d["headers"]["authorization"]
            for d in btoe.state.deposits
            if d["answer"]["EvidenceId"] == entry["evidence_id"]
        ]
        assert len(signed_by) == 1 and f"Credential={TENANT_ID}/" in signed_by[0]
        deadline = time.monotonic() + 30
        while True:
            answer = requests.get(
                stack.url(f"/v1/documents/{theirs}/proof"), headers=stack.other_tenant, timeout=10
            )
            if answer.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert answer.status_code == 200 and answer.json().get("deposits", []) == []
        assert TENANT_KEY not in caplog.text
        removed = requests.delete(url, headers=stack.admin, timeout=10)
        assert removed.status_code == 200 and removed.json()["source"] == "none"
    finally:
        stack.stack.stop()

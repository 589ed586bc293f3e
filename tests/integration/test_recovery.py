"""Nothing accepted is lost, with real processes: SIGKILL at each step of anchoring, two
workers racing for one signer, and a chain that forgets everything (Anvil restarted)."""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select

from harness.procs import ServiceProcess, create_key, service_env
from offerseal.evidence.adapters.registry import RegistryClient, Web3ChainView
from offerseal.evidence.models import Batch, BatchMember, Document
from offerseal.shared import chain
from offerseal.shared.db import Database
from offerseal_verify.proofs import verify_bundle
from tests.conftest import free_port

pytestmark = [pytest.mark.chain, pytest.mark.slow]


def post(base: str, key: str, content: bytes) -> str:
    response = requests.post(
        base + "/v1/documents",
        headers={"Authorization": f"Bearer {key}"},
        data={"kind": "resignation_application", "candidate_ref": "c"},
        files={"file": ("d.txt", content)},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def stored_id(database_url: str, content: bytes) -> str:
    """The id of the document stored with these bytes (for an upload whose 201 a SIGKILL
    overtook: committed, its answer lost on the way)."""
    import hashlib

    db = Database(database_url)
    try:
        with db.sessions() as session:
            sha256 = "0x" + hashlib.sha256(content).hexdigest()
            return str(
                session.execute(select(Document.id).where(Document.sha256 == sha256)).scalar_one()
            )
    finally:
        db.dispose()


def proofs(base: str, key: str, ids: list[str], timeout: float = 60.0) -> dict[str, Any]:
    out: dict[str, Any] = {}
    deadline = time.monotonic() + timeout
    while len(out) < len(ids) and time.monotonic() < deadline:
        for doc_id in ids:
            if doc_id in out:
                continue
            try:
                r = requests.get(
                    f"{base}/v1/documents/{doc_id}/proof",
                    headers={"Authorization": f"Bearer {key}"},
                    timeout=10,
                )
            except (requests.Timeout, requests.ConnectionError):  # busy: ask again
                continue
            if r.status_code == 200:
                out[doc_id] = r.json()
        time.sleep(0.2)
    assert len(out) == len(ids), f"only {len(out)} of {len(ids)} anchored"
    return out


def assert_anchored_exactly_once(
    database_url: str, rpc_url: str, contents: dict[str, bytes], bundles: dict[str, Any]
) -> None:
    w3 = chain.connect(rpc_url)
    view = Web3ChainView(w3)
    import hashlib

    for doc_id, bundle in bundles.items():
        verdict = verify_bundle(
            bundle,
            document_sha256="0x" + hashlib.sha256(contents[doc_id]).hexdigest(),
            trusted_keys=None,
            chain=view,
        )
        assert verdict.valid, verdict.as_dict()
    db = Database(database_url)
    try:
        with db.sessions() as session:
            anchored = (
                session.execute(select(Batch).where(Batch.state == "anchored")).scalars().all()
            )
            members = (
                session.execute(
                    select(BatchMember.document_seq)
                    .join(Batch, Batch.id == BatchMember.batch_id)
                    .where(Batch.state == "anchored")
                )
                .scalars()
                .all()
            )
            docs = session.execute(select(Document)).scalars().all()
    finally:
        db.dispose()
    assert len(members) == len(set(members)) == len(docs)  # one live proof per document
    assert {d.batch_id for d in docs} <= {b.id for b in anchored}  # each in an anchored batch
    registry = RegistryClient(w3, anchored[0].registry_address)
    events = registry.contract.events.Anchored().get_logs(from_block=0)
    roots = ["0x" + bytes(e["args"]["root"]).hex() for e in events]
    assert sorted(roots) == sorted(b.root for b in anchored)  # one transaction per batch


@pytest.mark.parametrize(
    "failpoint", ["anchor.before_send", "anchor.after_send", "anchor.after_receipt"]
)
def test_sigkill_during_anchoring_loses_and_doubles_nothing(
    tmp_path: Path, database_url: str, fresh_anvil: Any, failpoint: str
) -> None:
    # One batch of exactly the five uploads, cut when the fifth is committed (no clock: a
    # window in seconds was overtaken on a busy machine). The failpoint kills the process at
    # that first anchoring, so the fifth upload's 201 may not get out: it is committed.
    env = service_env(
        tmp_path,
        database_url,
        fresh_anvil.url,
        OFFERSEAL_BATCH_MAX="5",
        OFFERSEAL_BATCH_INTERVAL="10m",
    )
    key = create_key(env)
    service = ServiceProcess(env, tmp_path / "service.log").start(failpoint)
    try:
        service.wait_http()
        contents = {}
        lost: bytes | None = None
        for i in range(5):
            data = f"document {i} ".encode() + os.urandom(16)
            try:
                contents[post(service.base, key, data)] = data
            except requests.ConnectionError:
                assert i == 4, "killed before the batch was full"
                lost = data
        assert service.wait_exit(60) == -9, "the failpoint should have killed the process"
        if lost is not None:
            contents[stored_id(database_url, lost)] = lost
        log = (tmp_path / "service.log").read_text()
        assert f"failpoint {failpoint} reached" in log

        service.start()  # no failpoint: recovery
        service.wait_http()
        bundles = proofs(service.base, key, list(contents))
        assert "recovering batch" in (tmp_path / "service.log").read_text()
    finally:
        service.kill()
    assert_anchored_exactly_once(database_url, fresh_anvil.url, contents, bundles)


def test_one_anchoring_worker_per_signer_and_failover(
    tmp_path: Path, database_url: str, fresh_anvil: Any
) -> None:
    env_a = service_env(tmp_path / "a", database_url, fresh_anvil.url)
    env_b = {**env_a, "OFFERSEAL_EVIDENCE_PORT": str(free_port())}
    if database_url.startswith("sqlite"):
        (tmp_path / "a").mkdir()
    key = create_key(env_a)
    first = ServiceProcess(env_a, tmp_path / "a.log").start()
    first.wait_healthy()  # evidence is healthy once its anchorer holds the lock
    second = ServiceProcess(env_b, tmp_path / "b.log").start()
    try:
        second.wait_http()
        contents: dict[str, bytes] = {}
        for i in range(6):
            base = first.base if i % 2 == 0 else second.base
            data = os.urandom(40)
            contents[post(base, key, data)] = data
        proofs(first.base, key, list(contents))
        assert "standing by" in (tmp_path / "b.log").read_text()
        first.kill()  # the lock dies with its holder; the standby takes over
        data = os.urandom(40)
        doc_id = post(second.base, key, data)
        contents[doc_id] = data
        bundles = proofs(second.base, key, list(contents), timeout=60)
    finally:
        first.kill()
        second.kill()
    assert_anchored_exactly_once(database_url, fresh_anvil.url, contents, bundles)


def test_anvil_started_again_from_its_state_keeps_its_genesis(tmp_path: Path) -> None:
    """Otherwise block 0 answers with another hash after each restart (Anvil adds a genesis
    of its own to the loaded blocks) and the anchorer takes the restart for a reset."""
    from offerseal.shared.anvil import AnvilProcess, wait_port_free
    from offerseal.shared.chain import connect

    port, state = free_port(), tmp_path / "anvil-state.json"
    hashes, heads = [], []
    for _ in range(4):  # the old code's block 0: one of n genesis blocks after n - 1 restarts
        anvil = AnvilProcess(port, state_file=state)
        try:
            w3 = connect(anvil.url)
            w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
            hashes.append(w3.eth.get_block(0)["hash"])
            heads.append(w3.eth.block_number)
        finally:
            anvil.stop()
        wait_port_free(port)
    assert len(set(hashes)) == 1, hashes
    assert heads == sorted(set(heads))  # the state was kept


def test_anvil_stopped_under_load_keeps_each_transaction_with_its_block(tmp_path: Path) -> None:
    """Stopped while transactions arrive, then started again from its state: every transaction
    whose effect the state holds is in a kept block (otherwise an offer or an anchor is applied
    on chain with no block to prove it, and the services wait for a receipt that never comes).
    One sent as it stopped may be applied without its sender hearing back: that is allowed."""
    import threading

    from offerseal.shared.anvil import AnvilProcess, wait_port_free
    from offerseal.shared.chain import connect

    port, state = free_port(), tmp_path / "anvil-state.json"
    for _ in range(8):  # the old stop failed this test 3 runs in 3
        anvil = AnvilProcess(port, state_file=state)
        w3 = connect(anvil.url)
        sender = w3.eth.accounts[1]
        first, first_block = w3.eth.get_transaction_count(sender), w3.eth.block_number
        sent: list[Any] = []
        stop = threading.Event()

        def pump(
            w3: Any = w3, sender: str = sender, sent: list[Any] = sent, stop: Any = stop
        ) -> None:
            while not stop.is_set():
                try:
                    tx = {"from": sender, "to": sender, "value": 1, "gas": 21_000}
                    sent.append(w3.eth.send_transaction(tx))
                except Exception:
                    return  # the node went away

        pumps = [threading.Thread(target=pump) for _ in range(6)]
        for thread in pumps:
            thread.start()
        deadline = time.monotonic() + 30
        while len(sent) < 150 and time.monotonic() < deadline:
            time.sleep(0.05)
        anvil.stop()
        stop.set()
        for thread in pumps:
            thread.join()
        wait_port_free(port)
        anvil = AnvilProcess(port, state_file=state)
        try:
            w3 = connect(anvil.url)
            applied = w3.eth.get_transaction_count(sender) - first
            in_blocks = sum(  # the sender's transactions the kept blocks hold
                1
                for n in range(first_block, w3.eth.block_number + 1)
                for tx in w3.eth.get_block(n, full_transactions=True)["transactions"]
                if tx["from"] == sender and tx["nonce"] >= first
            )
            assert applied > 0 and in_blocks == applied, (len(sent), applied, in_blocks)
        finally:
            anvil.stop()
        wait_port_free(port)


def test_chain_reset_supersedes_and_reanchors(tmp_path: Path, sqlite_url: str) -> None:
    from offerseal.shared.anvil import AnvilProcess

    port = free_port()
    anvil = AnvilProcess(port)
    env = service_env(tmp_path, sqlite_url, anvil.url, OFFERSEAL_RECONCILE_INTERVAL="500ms")
    key = create_key(env)
    service = ServiceProcess(env, tmp_path / "service.log").start()
    try:
        service.wait_http()
        contents = {}
        for _ in range(3):
            data = os.urandom(64)
            contents[post(service.base, key, data)] = data
        before = proofs(service.base, key, list(contents))

        anvil.kill()  # the chain and everything on it is gone
        anvil = AnvilProcess(port)

        deadline = time.monotonic() + 60
        after: dict[str, Any] = {}
        while time.monotonic() < deadline and len(after) < len(contents):
            for doc_id in contents:
                # Same signer, nonce and root on a fresh chain can give the very same
                # transaction hash, so look at the proof history, not at the hash.
                r = requests.get(
                    f"{service.base}/v1/documents/{doc_id}/proofs",
                    headers={"Authorization": f"Bearer {key}"},
                    timeout=10,
                )
                items = r.json()["items"]
                if [p["state"] for p in items] == ["superseded", "anchored"]:
                    after[doc_id] = items[-1]["bundle"]
            time.sleep(0.3)
        assert len(after) == len(contents), (tmp_path / "service.log").read_text()[-3000:]
        history = requests.get(
            f"{service.base}/v1/documents/{next(iter(contents))}/proofs",
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        ).json()
        assert [p["state"] for p in history["items"]] == ["superseded", "anchored"]
        assert history["items"][0]["superseded_at"]
    except BaseException:
        anvil.stop()  # a failure here leaves no Anvil running for the rest of the run
        raise
    finally:
        service.kill()
    try:
        assert_anchored_exactly_once(sqlite_url, anvil.url, contents, after)
        view = Web3ChainView(chain.connect(anvil.url))
        old = next(iter(before.values()))
        # The superseded proof no longer matches the chain: its block is not the anchoring one.
        stale = verify_bundle(old, document_sha256=None, trusted_keys=None, chain=view)
        assert {"anchor_transaction", "block_timestamp"} & set(stale.failed)
    finally:
        anvil.stop()


def test_a_relayed_transaction_mined_but_not_recorded_is_recognised(
    tmp_path: Path, sqlite_url: str, fresh_anvil: Any
) -> None:
    """SIGKILL right after the offer and then the commit were sent: after a restart the
    service records what the chain did, and never sends them twice."""
    from offerseal.shared.config import ANVIL_DEV_KEY_2
    from tests.integration.test_contracts_service import CANDIDATE_KEY, body
    from tests.signing import ethers_sign

    env = service_env(
        tmp_path,
        sqlite_url,
        fresh_anvil.url,
        OFFERSEAL_CONTRACTS_SIGNER_KEY=ANVIL_DEV_KEY_2,
        OFFERSEAL_CONTRACTS_PORT=str(free_port()),
    )
    key = create_key(env)
    headers = {"Authorization": f"Bearer {key}"}
    base = f"http://127.0.0.1:{env['OFFERSEAL_CONTRACTS_PORT']}"
    service = ServiceProcess(env, tmp_path / "service.log")
    service.start("contracts.after_send")
    try:
        service.wait_http()
        _wait_contracts(base)
        with pytest.raises(requests.RequestException):  # the process dies mid-request
            requests.post(base + "/v1/agreements", headers=headers, json=body(), timeout=60)
        assert service.wait_exit(30) == -9
        service.start()
        service.wait_http()
        _wait_contracts(base)
        [agreement] = requests.get(base + "/v1/agreements", headers=headers, timeout=30).json()[
            "items"
        ]
        assert agreement["state"] == "offered"  # recovered from the stored transaction

        typed = requests.get(
            f"{base}/v1/agreements/{agreement['id']}/typed-data", headers=headers, timeout=30
        ).json()
        signature = ethers_sign(CANDIDATE_KEY, typed)
        _relay_killed_after_send(
            service, base, f"{base}/v1/agreements/{agreement['id']}/signature", signature, headers
        )
        state = _wait_for(f"{base}/v1/agreements/{agreement['id']}", headers, "committed")
        assert state == "committed"
        assert "recovering commit" in (tmp_path / "service.log").read_text()

        # The same for an amendment the candidate signed.
        amendments = f"{base}/v1/agreements/{agreement['id']}/amendments"
        proposed = requests.post(
            amendments,
            headers=headers,
            json={
                "start_date": (
                    dt.date.fromisoformat(body()["start_date"]) + dt.timedelta(days=7)
                ).isoformat(),
                "reason": "handover",
            },
            timeout=60,
        )
        assert proposed.status_code == 201, proposed.text
        amendment = proposed.json()
        typed = requests.get(
            f"{amendments}/{amendment['id']}/typed-data", headers=headers, timeout=30
        ).json()
        signature = ethers_sign(CANDIDATE_KEY, typed)
        _relay_killed_after_send(
            service, base, f"{amendments}/{amendment['id']}/signature", signature, headers
        )
        assert _wait_for(f"{amendments}/{amendment['id']}", headers, "applied") == "applied"
        assert "recovering amend" in (tmp_path / "service.log").read_text()
    finally:
        service.kill()
    w3 = chain.connect(fresh_anvil.url)
    contract = w3.eth.contract(
        address=agreement["contract"], abi=chain.artifact("IntentAgreements")["abi"]
    )
    onchain = bytes.fromhex(agreement["onchain_id"][2:])
    assert (
        len(
            contract.events.Offered().get_logs(
                from_block=0, argument_filters={"agreementId": onchain}
            )
        )
        == 1
    )
    assert (
        len(
            contract.events.Committed().get_logs(
                from_block=0, argument_filters={"agreementId": onchain}
            )
        )
        == 1
    )
    amended_logs = contract.events.Amended().get_logs(
        from_block=0, argument_filters={"agreementId": onchain}
    )
    assert len(amended_logs) == 1 and amended_logs[0]["args"]["mutual"]


def _relay_killed_after_send(
    service: ServiceProcess, base: str, url: str, signature: str, headers: dict[str, str]
) -> None:
    """Submit a signature to a service that dies right after sending its transaction, then
    start it again."""
    service.kill()
    service.start("contracts.after_send")
    service.wait_http()
    _wait_contracts(base)
    with pytest.raises(requests.RequestException):  # the process dies mid-request
        requests.post(url, headers=headers, json={"signature": signature}, timeout=60)
    assert service.wait_exit(30) == -9
    service.start()
    service.wait_http()
    _wait_contracts(base)


def _wait_for(url: str, headers: dict[str, str], state: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    current = ""
    while time.monotonic() < deadline:
        current = str(requests.get(url, headers=headers, timeout=30).json()["state"])
        if current == state:
            break
        time.sleep(0.2)
    return current


def _wait_contracts(base: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(base + "/healthz", timeout=2).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):  # not up yet, or busy
            pass
        time.sleep(0.1)
    raise AssertionError("contracts service not healthy")

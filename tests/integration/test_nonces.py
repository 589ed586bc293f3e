"""The contracts service's nonce manager against a real Anvil, with real processes killed by
SIGKILL: offers answered before their block and pipelined into one block, a crash between
taking a nonce and sending, between sending and recording, and while replacing a stuck
transaction, a transaction the node lost, a nonce nothing was stored for, and two replicas
sharing one signer. Each ends with every intended transaction mined exactly once and no nonce
used for two different contents."""

from __future__ import annotations

import concurrent.futures
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select, update

from harness.procs import ServiceProcess, create_key, service_env
from offerseal.contracts.models import Agreement, ChainOp
from offerseal.shared import chain
from offerseal.shared.db import Database
from offerseal.shared.models import SignerNonce
from tests.conftest import RunningStack, free_port, make_settings, start_stack
from tests.integration.test_contracts_service import body, outbox

pytestmark = [pytest.mark.chain, pytest.mark.slow]


def rpc(rpc_url: str, method: str, *params: Any) -> Any:
    answer = requests.post(
        rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
    ).json()
    assert "error" not in answer, answer
    return answer.get("result")


def offer(base: str, headers: dict[str, str], **changes: Any) -> requests.Response:
    return requests.post(base + "/v1/agreements", headers=headers, json=body(**changes), timeout=60)


def wait_state(
    base: str, headers: dict[str, str], agreement_id: str, state: str, timeout: float = 60.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        current: dict[str, Any] = requests.get(
            f"{base}/v1/agreements/{agreement_id}", headers=headers, timeout=30
        ).json()
        if current["state"] == state or time.monotonic() > deadline:
            assert current["state"] == state, current
            return current
        time.sleep(0.1)


def wait_healthy(base: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            answer = requests.get(base + "/healthz", timeout=2)
            if answer.status_code == 200:
                return
            last = answer.text
        except (requests.ConnectionError, requests.Timeout) as exc:  # not up yet, or busy
            last = str(exc)
        time.sleep(0.1)
    raise AssertionError(f"contracts service not healthy: {last}")


def operations(database_url: str) -> list[ChainOp]:
    db = Database(database_url)
    try:
        with db.sessions() as session:
            return list(session.execute(select(ChainOp).order_by(ChainOp.nonce)).scalars())
    finally:
        db.dispose()


def assert_each_mined_once(rpc_url: str, ops: list[ChainOp]) -> None:
    """Every operation is in a block exactly once, with the nonce it was stored with; the
    signer's nonces are used without a second content (offers sent together as one multicall
    share its nonce and hash); one Offered per offer."""
    w3 = chain.connect(rpc_url)
    content: dict[int, str] = {}
    for op in ops:
        assert content.setdefault(op.nonce, op.tx_hash) == op.tx_hash, "a nonce used twice"
    contract: Any = None
    for op in ops:
        assert op.state == "mined", (op.op, op.state, op.error)
        receipt = w3.eth.get_transaction_receipt(op.tx_hash)  # type: ignore[arg-type]
        assert receipt["status"] == 1
        assert w3.eth.get_transaction(op.tx_hash)["nonce"] == op.nonce  # type: ignore[arg-type]
        for earlier in op.earlier_hashes or []:  # replaced attempts never mined
            with pytest.raises(Exception, match="not found"):
                w3.eth.get_transaction_receipt(earlier)  # type: ignore[arg-type]
        contract = w3.eth.contract(
            address=receipt["to"], abi=chain.artifact("IntentAgreements")["abi"]
        )
    offered = contract.events.Offered().get_logs(from_block=0)
    ids = [bytes(e["args"]["agreementId"]) for e in offered]
    assert len(ids) == len(set(ids)) == len([op for op in ops if op.op == "offer"])


# ---- in one process ------------------------------------------------------------------------


@pytest.fixture
def stack(tmp_path: Path, database_url: str, fresh_anvil: Any) -> Iterator[RunningStack]:
    running = start_stack(
        make_settings(
            tmp_path, database_url, fresh_anvil.url, tx_stuck_after=1.0, tx_stuck_blocks=2
        )
    )
    yield running
    rpc(fresh_anvil.url, "evm_setAutomine", True)
    running.stack.stop()


def test_offers_answer_at_once_and_share_one_block(stack: RunningStack) -> None:
    base, rpc_url = stack.stack.urls["contracts"], stack.rpc_url
    rpc(rpc_url, "evm_setAutomine", False)  # no block until we mine one
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        answers = list(
            pool.map(lambda i: offer(base, stack.hr, candidate_ref=f"cand-{i}"), range(6))
        )
    assert [a.status_code for a in answers] == [201] * 6, answers[0].text
    pending = [a.json() for a in answers]
    assert {p["state"] for p in pending} == {"offering"}
    assert {p["chain"]["status"] for p in pending} == {"pending"}
    assert answers[0].headers["Location"] == f"/v1/agreements/{pending[0]['id']}"
    # consecutive nonces; offers that waited for the signer together share a multicall's
    taken = sorted({(p["chain"]["nonce"], p["chain"]["tx"]) for p in pending})
    assert [n for n, _ in taken] == list(range(taken[0][0], taken[0][0] + len(taken)))
    assert outbox(stack, "agreement.offered") == []  # the invitations wait for the chain

    # Nothing can be done with an offer that is not on chain yet: a clear 409.
    one = pending[0]["id"]
    for method, path, payload in [
        ("GET", f"/v1/agreements/{one}/typed-data", None),
        ("POST", f"/v1/agreements/{one}/signature", {"signature": "0x" + "11" * 65}),
        ("POST", f"/v1/agreements/{one}/withdraw", None),
    ]:
        refused = requests.request(method, base + path, headers=stack.hr, json=payload, timeout=30)
        assert refused.status_code == 409, refused.text
        assert refused.headers["Content-Type"] == "application/problem+json"
        assert "still being offered" in refused.json()["detail"]
    listed = requests.get(
        base + "/v1/agreements?state=offering", headers=stack.hr, timeout=30
    ).json()
    assert len(listed["items"]) == 6

    rpc(rpc_url, "evm_mine")  # one block
    done = [wait_state(base, stack.hr, p["id"], "offered") for p in pending]
    assert {d["chain"]["status"] for d in done} == {"confirmed"}
    w3 = chain.connect(rpc_url)
    # The transactions as finally sent: on a busy machine one may have been replaced (a higher
    # fee, tx_stuck_after=1 s) before the block was mined; assert_each_mined_once checks that.
    blocks = {w3.eth.get_transaction_receipt(d["chain"]["tx"])["blockNumber"] for d in done}
    assert len(blocks) == 1  # the signer's transactions (one to six) in one block
    deadline = time.monotonic() + 10
    while len(outbox(stack, "agreement.offered")) < 6 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(outbox(stack, "agreement.offered")) == 6
    rpc(rpc_url, "evm_setAutomine", True)
    assert_each_mined_once(rpc_url, operations(stack.settings.database_url))


def test_offers_waiting_together_are_one_multicall_transaction(stack: RunningStack) -> None:
    """Offers that wait for the signer's lock together go out as one multicall: one
    transaction, one Offered event for each, each agreement offered with its invitation; it
    costs less gas than the same offers sent one by one."""
    base, rpc_url = stack.stack.urls["contracts"], stack.rpc_url
    w3 = chain.connect(rpc_url)
    alone = offer(base, stack.hr, candidate_ref="cand-alone").json()
    alone = wait_state(base, stack.hr, alone["id"], "offered")
    gas_alone = w3.eth.get_transaction_receipt(alone["chain"]["tx"])["gasUsed"]
    tx = stack.stack.contracts.service.transactions
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        with tx._local_lock:  # the signer is busy: the six offers wait for it together
            futures = [
                pool.submit(offer, base, stack.hr, candidate_ref=f"cand-{i}") for i in range(6)
            ]
            deadline = time.monotonic() + 30
            while len(tx._queue) < 6:
                assert time.monotonic() < deadline, "the offers did not wait together"
                time.sleep(0.01)
        answers = [f.result() for f in futures]
    assert [a.status_code for a in answers] == [201] * 6, answers[0].text
    done = [wait_state(base, stack.hr, a.json()["id"], "offered") for a in answers]
    [tx_hash] = {d["chain"]["tx"] for d in done}
    assert len({d["chain"]["nonce"] for d in done}) == 1
    receipt = w3.eth.get_transaction_receipt(tx_hash)
    contract = w3.eth.contract(address=receipt["to"], abi=chain.artifact("IntentAgreements")["abi"])
    offered = contract.events.Offered().process_receipt(receipt)
    assert sorted("0x" + bytes(e["args"]["agreementId"]).hex() for e in offered) == sorted(
        d["onchain_id"] for d in done
    )
    assert receipt["gasUsed"] < 6 * gas_alone  # 21,000 and the warm-up paid once
    deadline = time.monotonic() + 30
    while len(outbox(stack, "agreement.offered")) < 7 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(outbox(stack, "agreement.offered")) == 7
    assert_each_mined_once(rpc_url, operations(stack.settings.database_url))


def test_a_lost_transaction_is_sent_again_and_a_gap_is_filled(
    tmp_path: Path, sqlite_url: str, fresh_anvil: Any
) -> None:
    # 5 s, not less: a pause of the test's own thread between the offer and the drop must not
    # let the service replace the transaction before it is dropped.
    running = start_stack(make_settings(tmp_path, sqlite_url, fresh_anvil.url, tx_stuck_after=5.0))
    rpc_url, base, hr = fresh_anvil.url, running.stack.urls["contracts"], running.hr
    try:
        w3 = chain.connect(rpc_url)
        rpc(rpc_url, "evm_setAutomine", False)
        # 1. The node loses a sent transaction: its stored bytes are sent again.
        lost = offer(base, hr, candidate_ref="cand-lost").json()
        tx = lost["chain"]["tx"]
        rpc(rpc_url, "anvil_dropTransaction", tx)
        assert rpc(rpc_url, "eth_getTransactionByHash", tx) is None
        deadline = time.monotonic() + 30
        while rpc(rpc_url, "eth_getTransactionByHash", tx) is None:
            assert time.monotonic() < deadline, "the lost transaction was not sent again"
            time.sleep(0.2)
        rpc(rpc_url, "evm_mine")
        assert wait_state(base, hr, lost["id"], "offered")["chain"]["tx"] == tx  # same bytes

        # 2. A nonce taken with nothing stored for it (a database restored from a backup
        # taken between two offers, say): the chain waits for it, a self-transfer fills it.
        relayer = running.stack.contracts.service.client.relayer
        with running.db.transaction() as session:
            session.execute(
                update(SignerNonce)
                .where(SignerNonce.signer == relayer)
                .values(next_nonce=SignerNonce.next_nonce + 1)
            )
        gap = w3.eth.get_transaction_count(relayer)
        after = offer(base, hr, candidate_ref="cand-after-gap").json()
        assert after["chain"]["nonce"] == gap + 1
        deadline = time.monotonic() + 30
        while w3.eth.get_transaction_count(relayer, "pending") < gap + 2:
            assert time.monotonic() < deadline, "the gap was not filled"
            time.sleep(0.2)
        rpc(rpc_url, "evm_mine")
        wait_state(base, hr, after["id"], "offered")
        block = w3.eth.get_block(w3.eth.block_number, full_transactions=True)
        filler = next(t for t in block["transactions"] if t["nonce"] == gap)  # type: ignore[union-attr]
        assert filler["from"] == filler["to"] == relayer and filler["value"] == 0  # type: ignore[index]
        assert filler["input"] in (b"", "0x")  # type: ignore[index]
    finally:
        rpc(rpc_url, "evm_setAutomine", True)
        running.stack.stop()
    assert_each_mined_once(rpc_url, operations(sqlite_url))


# ---- real processes, SIGKILL ---------------------------------------------------------------


def contracts_env(tmp_path: Path, database_url: str, rpc_url: str, **extra: str) -> dict[str, str]:
    from offerseal.shared.config import ANVIL_DEV_KEY_2

    return service_env(
        tmp_path,
        database_url,
        rpc_url,
        OFFERSEAL_CONTRACTS_SIGNER_KEY=ANVIL_DEV_KEY_2,
        OFFERSEAL_CONTRACTS_PORT=str(free_port()),
        **extra,
    )


@pytest.mark.parametrize(
    "failpoint", ["contracts.before_send", "contracts.after_send", "contracts.after_receipt"]
)
def test_sigkill_around_sending_an_offer_mines_it_once(
    tmp_path: Path, sqlite_url: str, fresh_anvil: Any, failpoint: str
) -> None:
    env = contracts_env(tmp_path, sqlite_url, fresh_anvil.url)
    headers = {"Authorization": f"Bearer {create_key(env)}"}
    base = f"http://127.0.0.1:{env['OFFERSEAL_CONTRACTS_PORT']}"
    service = ServiceProcess(env, tmp_path / "service.log").start(failpoint)
    try:
        service.wait_http()
        wait_healthy(base)
        # before/after sending: in the request; after the receipt: in the confirmer
        with contextlib.suppress(requests.RequestException):
            offer(base, headers, candidate_ref="cand-killed")
        assert service.wait_exit(30) == -9
        assert f"failpoint {failpoint} reached" in (tmp_path / "service.log").read_text()

        service.start()
        service.wait_http()
        wait_healthy(base)
        [killed] = requests.get(base + "/v1/agreements", headers=headers, timeout=30).json()[
            "items"
        ]
        wait_state(base, headers, killed["id"], "offered")
        # The next offer takes the next nonce: the stored one is never reused.
        after = offer(base, headers, candidate_ref="cand-after").json()
        wait_state(base, headers, after["id"], "offered")
    finally:
        service.kill()
    ops = operations(sqlite_url)
    assert [op.op for op in ops] == ["offer", "offer"] and ops[1].nonce == ops[0].nonce + 1
    assert_each_mined_once(fresh_anvil.url, ops)


def test_sigkill_before_a_multicall_is_sent_mines_each_of_its_offers_once(
    tmp_path: Path, sqlite_url: str, fresh_anvil: Any
) -> None:
    """The process dies after storing a multicall of several offers (its nonce taken, its
    bytes committed) and before sending it: after the restart the stored bytes are sent once
    and each of its offers is offered once; the next offer takes the next nonce."""
    env = contracts_env(tmp_path, sqlite_url, fresh_anvil.url)
    headers = {"Authorization": f"Bearer {create_key(env)}"}
    base = f"http://127.0.0.1:{env['OFFERSEAL_CONTRACTS_PORT']}"
    service = ServiceProcess(env, tmp_path / "service.log").start("contracts.before_multicall_send")
    assert service.process is not None
    try:
        service.wait_http()
        wait_healthy(base)
        rounds = 0
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            while service.process.poll() is None:  # until offers wait for the signer together
                rounds += 1
                assert rounds <= 20, "eight offers at once never waited for the signer together"
                futures = [
                    pool.submit(offer, base, headers, candidate_ref=f"cand-{rounds}-{i}")
                    for i in range(8)
                ]
                for future in futures:
                    with contextlib.suppress(requests.RequestException):
                        future.result()
        assert service.wait_exit(30) == -9
        assert (
            "failpoint contracts.before_multicall_send reached"
            in (tmp_path / "service.log").read_text()
        )
        stored = operations(sqlite_url)
        shared = [op for op in stored if sum(o.nonce == op.nonce for o in stored) > 1]
        assert shared and all(op.state == "prepared" for op in shared)
        assert rpc(fresh_anvil.url, "eth_getTransactionByHash", shared[0].tx_hash) is None

        service.start()
        service.wait_http()
        wait_healthy(base)
        for op in shared:
            wait_state(base, headers, op.agreement_id, "offered")
        after = offer(base, headers, candidate_ref="cand-after").json()
        wait_state(base, headers, after["id"], "offered")
    finally:
        service.kill()
    assert after["chain"]["nonce"] > max(op.nonce for op in stored)  # none taken twice
    assert_each_mined_once(fresh_anvil.url, operations(sqlite_url))


def test_a_stuck_offer_is_replaced_and_survives_a_sigkill(
    tmp_path: Path, sqlite_url: str, fresh_anvil: Any
) -> None:
    """The base fee jumps after the offer was signed: it is not mined for two blocks, so it
    is re-signed with the same nonce and higher fees; the process dies right after sending the
    replacement, and after a restart the replacement is recorded, the original never mined."""
    rpc_url = fresh_anvil.url
    env = contracts_env(
        tmp_path, sqlite_url, rpc_url, OFFERSEAL_TX_STUCK_BLOCKS="2", OFFERSEAL_TX_STUCK_AFTER="5m"
    )
    headers = {"Authorization": f"Bearer {create_key(env)}"}
    base = f"http://127.0.0.1:{env['OFFERSEAL_CONTRACTS_PORT']}"
    service = ServiceProcess(env, tmp_path / "service.log").start(
        "contracts.after_replacement_send"
    )
    try:
        service.wait_http()
        wait_healthy(base)
        rpc(rpc_url, "evm_setAutomine", False)
        stuck = offer(base, headers, candidate_ref="cand-stuck").json()
        original = stuck["chain"]["tx"]
        rpc(rpc_url, "anvil_setNextBlockBaseFeePerGas", hex(1000 * 10**9))
        deadline = time.monotonic() + 60
        assert service.process is not None
        while service.process.poll() is None:  # blocks until the replacement kills it
            assert time.monotonic() < deadline, "the stuck offer was not replaced"
            rpc(rpc_url, "evm_mine")
            time.sleep(0.3)
        assert service.wait_exit(10) == -9
        assert "is stuck: replaced" in (tmp_path / "service.log").read_text()
        assert rpc(rpc_url, "eth_getTransactionReceipt", original) is None

        rpc(rpc_url, "evm_mine")  # the replacement, while the service is down
        rpc(rpc_url, "evm_setAutomine", True)
        service.start()
        service.wait_http()
        wait_healthy(base)
        done = wait_state(base, headers, stuck["id"], "offered")
        assert done["chain"]["tx"] != original and done["chain"]["nonce"] == stuck["chain"]["nonce"]
    finally:
        rpc(rpc_url, "evm_setAutomine", True)
        service.kill()
    [op] = operations(sqlite_url)
    assert op.earlier_hashes == [original]
    assert_each_mined_once(rpc_url, [op])


def test_two_replicas_share_one_signer_without_reusing_a_nonce(
    tmp_path: Path, postgres_url: str, fresh_anvil: Any
) -> None:
    env_a = contracts_env(tmp_path / "a", postgres_url, fresh_anvil.url)
    env_b = {
        **env_a,
        "OFFERSEAL_CONTRACTS_PORT": str(free_port()),
        "OFFERSEAL_EVIDENCE_URL": f"http://127.0.0.1:{env_a['OFFERSEAL_EVIDENCE_PORT']}",
    }
    headers = {"Authorization": f"Bearer {create_key(env_a)}"}
    first = ServiceProcess(env_a, tmp_path / "a.log")
    second = ServiceProcess(env_b, tmp_path / "b.log")
    second.services = ["contracts"]  # a second contracts replica beside the first node
    replicas = [first, second]
    bases = [f"http://127.0.0.1:{e['OFFERSEAL_CONTRACTS_PORT']}" for e in (env_a, env_b)]
    try:
        first.start().wait_http()
        wait_healthy(bases[0])  # the first one deploys
        second.start()
        wait_healthy(bases[1])
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(
                pool.map(
                    lambda i: offer(bases[i % 2], headers, candidate_ref=f"cand-{i}"), range(16)
                )
            )
        assert [a.status_code for a in answers] == [201] * 16
        for a in answers:
            wait_state(bases[0], headers, a.json()["id"], "offered")
    finally:
        for replica in replicas:
            replica.kill()
    ops = operations(postgres_url)
    assert len(ops) == 16
    nonces = sorted({op.nonce for op in ops})  # offers sent as one multicall share a nonce
    assert nonces == list(range(nonces[0], nonces[0] + len(nonces)))  # in order, no gap
    assert_each_mined_once(fresh_anvil.url, ops)
    db = Database(postgres_url)
    try:
        with db.sessions() as session:
            states = set(session.execute(select(Agreement.state)).scalars())
    finally:
        db.dispose()
    assert states == {"offered"}

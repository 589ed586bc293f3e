"""The nonce manager's pure parts and the asynchronous offer, against the fake chain: nonces
taken in order with the stored transaction (never twice), fees a node accepts as a
replacement, an offer answered before its block and confirmed exactly once by the confirmer,
and a clear 409 for what cannot be done with an offer not yet on chain."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from offerseal.contracts.errors import ChainRefusal, SenderStopped, StillOffering
from offerseal.contracts.models import Agreement, ChainOp
from offerseal.contracts.ports import ChainCall
from offerseal.contracts.service_layer import ContractsService
from offerseal.shared import nonces
from offerseal.shared.db import Database
from offerseal.shared.links import LinkSigner
from offerseal.shared.problems import status_of
from tests.unit.test_contracts_service_layer import (
    HR,
    FakeChain,
    FakeNode,
    chain,  # noqa: F401
    contracts,  # noqa: F401
    db,  # noqa: F401  (fixtures)
    message_types,
    new_agreement,
    node,  # noqa: F401
    sign_commitment,
)


def test_nonces_are_taken_in_order_and_given_back_with_a_rollback(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'n.db'}")
    database.migrate()
    try:
        with database.transaction() as session:
            assert nonces.take(session, 1, "0xA", floor=5) == 5  # the chain had mined five
            assert nonces.take(session, 1, "0xA", floor=0) == 6
            assert nonces.take(session, 2, "0xA", floor=0) == 0  # another chain, its own
        with pytest.raises(RuntimeError), database.transaction() as session:
            assert nonces.take(session, 1, "0xA", floor=0) == 7
            raise RuntimeError("the signed transaction was never stored")
        with database.transaction() as session:
            assert nonces.take(session, 1, "0xA", floor=0) == 7  # never stored: not consumed
            assert nonces.take(session, 1, "0xA", floor=20) == 20  # someone else used 8..19
    finally:
        database.dispose()


@pytest.mark.parametrize(
    ("tip", "cap", "suggested_tip", "suggested_cap"),
    [(1, 2, 1, 2), (10**9, 3 * 10**9, 10**9, 2 * 10**9), (7, 9, 50, 400)],
)
def test_a_replacement_raises_both_fees_by_at_least_ten_percent(
    tip: int, cap: int, suggested_tip: int, suggested_cap: int
) -> None:
    old = {"maxPriorityFeePerGas": tip, "maxFeePerGas": cap, "gas": 21_000}
    new = nonces.bumped(old, {"maxPriorityFeePerGas": suggested_tip, "maxFeePerGas": suggested_cap})
    assert new["maxPriorityFeePerGas"] * 10 >= tip * 11 and new["maxFeePerGas"] * 10 >= cap * 11
    assert new["maxPriorityFeePerGas"] >= suggested_tip and new["maxFeePerGas"] >= suggested_cap
    assert new["maxFeePerGas"] >= new["maxPriorityFeePerGas"] and new["gas"] == 21_000


def test_an_offer_answers_before_its_block_and_is_confirmed_once(
    db: Database,  # noqa: F811
    chain: FakeChain,  # noqa: F811
    node: FakeNode,  # noqa: F811
    contracts: ContractsService,  # noqa: F811
) -> None:
    held: list[bytes] = []
    send = node.send
    node.send = held.append  # type: ignore[method-assign]  (sent, not yet in a block)
    answer = contracts.agreements.create(HR, new_agreement())
    assert answer["state"] == "offering" and answer["chain"]["status"] == "pending"
    assert answer["transaction"] == answer["chain"]["tx"] and answer["signing_link"]
    assert "agreement.offered" not in message_types(db)  # the invitation waits for the chain
    with pytest.raises(StillOffering) as refused:
        contracts.signatures.typed_data(HR, None, answer["id"])
    assert status_of(refused.value) == 409
    with pytest.raises(StillOffering):
        contracts.agreements.transition(HR, answer["id"], "withdraw")

    assert contracts.confirm() == 0  # nothing in a block yet
    node.send = send  # type: ignore[method-assign]
    for raw in held:
        node.send(raw)
    assert contracts.confirm() == 1
    assert contracts.confirm() == 0  # recorded once
    current = contracts.agreements.get(HR, answer["id"])
    assert current["state"] == "offered" and current["chain"]["status"] == "confirmed"
    assert message_types(db).count("agreement.offered") == 1
    signature = sign_commitment(contracts, answer["id"])
    assert contracts.signatures.submit_signature(HR, None, answer["id"], signature)["state"] == (
        "committed"
    )


def queued_together(tx: Any, jobs: list[Any]) -> dict[int, Any]:
    """Run `jobs` (callables) in threads while the signer's lock is busy, so that all of them
    wait in its queue and whoever takes the lock next stores and sends them together; each
    job's answer or error by its index."""
    results: dict[int, Any] = {}

    def run(i: int) -> None:
        try:
            results[i] = jobs[i]()
        except BaseException as exc:  # the answer of the lock's holder may be any
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    with tx._local_lock:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while len(tx._queue) < len(jobs):
            assert time.monotonic() < deadline, "the submissions did not queue up"
            time.sleep(0.01)
    for thread in threads:
        thread.join(10)
    assert tx._queue == []
    return results


def test_offers_waiting_together_go_out_as_one_multicall(
    db: Database,  # noqa: F811
    chain: FakeChain,  # noqa: F811
    contracts: ContractsService,  # noqa: F811
) -> None:
    """Offers that wait for the signer's lock together are simulated together and sent as one
    multicall transaction: one nonce, one hash, an operation row for each offer; each offer's
    outcome and message recorded when it is mined."""
    results = queued_together(
        contracts.transactions,
        [lambda: contracts.agreements.create(HR, new_agreement()) for _ in range(4)],
    )
    answers = [results[i] for i in range(4)]
    assert chain.bundles == [4]
    assert {(a["chain"]["nonce"], a["chain"]["tx"]) for a in answers} == {
        (0, answers[0]["chain"]["tx"])
    }
    with db.sessions() as session:
        stored = list(session.execute(select(ChainOp)).scalars())
    assert sorted(op.agreement_id for op in stored) == sorted(a["id"] for a in answers)
    assert contracts.confirm() == 4
    assert contracts.confirm() == 0
    assert {contracts.agreements.get(HR, a["id"])["state"] for a in answers} == {"offered"}
    assert message_types(db).count("agreement.offered") == 4
    # the next offer, alone, is a transaction of its own with the next nonce
    alone = contracts.agreements.create(HR, new_agreement())
    assert alone["chain"]["nonce"] == 1 and chain.bundles == [4]


def test_an_offer_refused_among_others_is_refused_alone(
    db: Database,  # noqa: F811
    chain: FakeChain,  # noqa: F811
    contracts: ContractsService,  # noqa: F811
) -> None:
    """Offers the contract refuses together are simulated each on its own: only the refused
    one gets the refusal (and writes nothing); the others are sent."""
    chain.poor = {1_000_000}
    salaries = [3_000_000, 1_000_000, 3_000_000]
    results = queued_together(
        contracts.transactions,
        [
            lambda s=s: contracts.agreements.create(
                HR, new_agreement(monthly_salary=s, liquidated_damages=s * 3 // 10)
            )
            for s in salaries
        ],
    )
    assert isinstance(results[1], ChainRefusal)
    answers = [results[0], results[2]]
    assert sorted(a["chain"]["nonce"] for a in answers) == [0, 1]
    assert chain.bundles == []
    with db.sessions() as session:
        assert session.execute(select(func.count()).select_from(Agreement)).scalar() == 2
    assert contracts.confirm() == 2
    assert {contracts.agreements.get(HR, a["id"])["state"] for a in answers} == {"offered"}


def test_a_reverted_multicall_fails_each_of_its_offers(
    db: Database,  # noqa: F811
    chain: FakeChain,  # noqa: F811
    contracts: ContractsService,  # noqa: F811
) -> None:
    """A multicall is all or nothing: when its transaction reverts on chain (simulated fine,
    the chain changed before its block), every offer in it is recorded failed, none offered."""
    chain.revert = {"offer"}
    results = queued_together(
        contracts.transactions,
        [lambda: contracts.agreements.create(HR, new_agreement()) for _ in range(3)],
    )
    assert chain.bundles == [3]
    assert contracts.confirm() == 3
    states = {contracts.agreements.get(HR, results[i]["id"])["state"] for i in range(3)}
    assert states == {"failed"}
    assert message_types(db).count("agreement.offered") == 0


@pytest.mark.parametrize("multicall", [True, False], ids=["2.2", "2.1"])
def test_offers_arriving_together_are_stored_in_one_transaction_in_nonce_order(
    db: Database,  # noqa: F811
    chain: FakeChain,  # noqa: F811
    node: FakeNode,  # noqa: F811
    contracts: ContractsService,  # noqa: F811
    multicall: bool,
) -> None:
    """Submissions waiting for the signer's lock are stored and sent by whoever holds it next:
    consecutive nonces, sent in nonce order, each answered with its own; one whose writes fail
    gets its error and takes no nonce, the others are stored all the same (each in its own
    transaction, with a contract that has multicall: the multicall they were to share could
    not be stored)."""
    chain.multicall = multicall
    tx = contracts.transactions
    sent: list[bytes] = []
    send = node.send

    def record(raw: bytes) -> None:
        sent.append(raw)
        send(raw)

    node.send = record  # type: ignore[method-assign]

    def broken(session: Session) -> None:
        raise ValueError("this submission's own writes fail")

    results: dict[int, Any] = {}

    def offer(i: int) -> None:
        try:
            if i == 2:
                tx.submit("no-such-agreement", "offer", ChainCall("offer", ()), before=broken)
            else:
                results[i] = contracts.agreements.create(HR, new_agreement())
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=offer, args=(i,)) for i in range(4)]
    with tx._local_lock:  # the lock is busy: all four wait in the queue
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while len(tx._queue) < 4:
            assert time.monotonic() < deadline, "the submissions did not queue up"
            time.sleep(0.01)
    for thread in threads:
        thread.join(10)
    assert isinstance(results[2], ValueError)
    answers = [results[i] for i in (0, 1, 3)]
    assert sorted(a["chain"]["nonce"] for a in answers) == [0, 1, 2]
    with db.sessions() as session:
        stored = list(session.execute(select(ChainOp).order_by(ChainOp.nonce)).scalars())
    assert [op.nonce for op in stored] == [0, 1, 2]
    assert [bytes(op.raw_tx) for op in stored] == sent  # sent in nonce order
    assert tx._queue == []
    assert contracts.confirm() == 3


def test_outcomes_mined_together_are_recorded_together_or_one_by_one(
    db: Database,  # noqa: F811
    chain: FakeChain,  # noqa: F811
    node: FakeNode,  # noqa: F811
    contracts: ContractsService,  # noqa: F811
) -> None:
    held: list[bytes] = []
    send = node.send
    node.send = held.append  # type: ignore[method-assign]  (sent, not yet in a block)
    answers = [contracts.agreements.create(HR, new_agreement()) for _ in range(4)]
    node.send = send  # type: ignore[method-assign]
    for raw in held[:2]:
        node.send(raw)
    assert contracts.confirm() == 2  # two in one transaction
    for raw in held[2:]:
        node.send(raw)
    outcomes = contracts.transactions.outcomes
    mined = outcomes.mined
    broken = answers[2]["id"]

    def failing(session: Session, agreement: Any, op: ChainOp) -> None:
        if agreement.id == broken:
            raise RuntimeError("this outcome cannot be recorded now")
        mined(session, agreement, op)

    outcomes.mined = failing  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        contracts.confirm()  # the batch fails: one by one, the failure raised at the end
    states = {a["id"]: contracts.agreements.get(HR, a["id"])["state"] for a in answers}
    assert states[broken] == "offering" and states[answers[3]["id"]] == "offered"
    outcomes.mined = mined  # type: ignore[method-assign]
    assert contracts.confirm() == 1
    assert {contracts.agreements.get(HR, a["id"])["state"] for a in answers} == {"offered"}
    assert message_types(db).count("agreement.offered") == 4


def test_consecutive_nonces_are_taken_at_once(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'n.db'}")
    database.migrate()
    try:
        with database.transaction() as session:
            assert nonces.take(session, 1, "0xA", floor=3, count=5) == 3  # 3..7
            assert nonces.take(session, 1, "0xA", floor=0) == 8
    finally:
        database.dispose()


def test_each_operation_takes_the_next_nonce(
    db: Database,  # noqa: F811
    contracts: ContractsService,  # noqa: F811
) -> None:
    first = contracts.agreements.create(HR, new_agreement(), wait=5)
    second = contracts.agreements.create(HR, new_agreement(), wait=5)
    contracts.agreements.transition(HR, first["id"], "withdraw")
    with db.sessions() as session:
        taken = [
            (op.op, op.nonce)
            for op in session.execute(select(ChainOp).order_by(ChainOp.id)).scalars()
        ]
    assert taken == [("offer", 0), ("offer", 1), ("withdraw", 2)]
    assert second["chain"]["nonce"] == 1


class HoldingNode(FakeNode):
    """A node that keeps what it is sent in its pool until told to mine it."""

    def __init__(self) -> None:
        super().__init__(FakeChain())
        self.pool: dict[str, bytes] = {}
        self.head = 100

    def send(self, raw: bytes) -> None:
        self.pool["0x" + hashlib.sha256(raw).hexdigest()] = raw

    def transaction_known(self, tx_hash: str) -> bool:
        return tx_hash in self.pool or tx_hash in self.chain._mined

    def block_number(self) -> int:
        return self.head

    def mine(self, tx_hash: str) -> None:
        FakeNode.send(self, self.pool.pop(tx_hash))


@pytest.fixture
def held(tmp_path: Path) -> Iterator[tuple[Database, HoldingNode, ContractsService]]:
    """A service whose node holds what it is sent until `mine()`: a transaction counts as stuck
    after two blocks."""
    database = Database(f"sqlite:///{tmp_path / 'held.db'}")
    database.migrate()
    holding = HoldingNode()
    service = ContractsService.build(
        database,
        holding.chain,
        LinkSigner(b"k" * 32),
        signing=holding,
        public_url="https://offers.example/",
        link_ttl=3600,
        tx_options={"stuck_blocks": 2, "stuck_seconds": 3600},
    )
    try:
        yield database, holding, service
    finally:
        database.dispose()


def test_a_stuck_transaction_is_replaced_with_the_same_nonce_and_higher_fees(
    held: tuple[Database, HoldingNode, ContractsService],
) -> None:
    database, holding, service = held
    answer = service.agreements.create(HR, new_agreement())
    original = answer["chain"]["tx"]
    assert service.confirm() == 0  # first seen at block 100
    holding.head = 101
    assert service.confirm() == 0  # one block: not stuck yet
    holding.head = 102
    assert service.confirm() == 0  # two blocks: replaced
    with database.sessions() as session:
        [op] = session.execute(select(ChainOp)).scalars()
        assert op.earlier_hashes == [original] and op.tx_hash != original
        assert op.nonce == answer["chain"]["nonce"]
        assert op.tx_fields is not None
        assert op.tx_fields["maxFeePerGas"] * 10 >= 2 * 11
        replacement = op.tx_hash
    assert set(holding.pool) == {original, replacement}  # the holding decides which one
    holding.mine(replacement)
    assert service.confirm() == 1
    current = service.agreements.get(HR, answer["id"])
    assert current["state"] == "offered" and current["chain"]["tx"] == replacement
    assert message_types(database).count("agreement.offered") == 1


def test_when_the_original_is_mined_after_all_the_record_lists_only_what_never_was(
    held: tuple[Database, HoldingNode, ContractsService],
) -> None:
    """A stuck transaction is replaced, then the node mines the original after all (a busy
    chain does): the operation records the original as its transaction, and its list of
    attempts never mined holds the replacement, not the mined hash."""
    database, holding, service = held
    answer = service.agreements.create(HR, new_agreement())
    original = answer["chain"]["tx"]
    assert service.confirm() == 0
    holding.head = 102
    assert service.confirm() == 0  # replaced
    with database.sessions() as session:
        [op] = session.execute(select(ChainOp)).scalars()
        replacement = op.tx_hash
    assert replacement != original
    holding.mine(original)
    assert service.confirm() == 1
    with database.sessions() as session:
        [op] = session.execute(select(ChainOp)).scalars()
        assert op.state == "mined" and op.tx_hash == original
        assert op.earlier_hashes == [replacement]
    assert service.agreements.get(HR, answer["id"])["chain"]["tx"] == original


def test_a_stuck_multicall_is_replaced_once_for_all_its_offers(
    held: tuple[Database, HoldingNode, ContractsService],
) -> None:
    """The offers of one multicall share its transaction: when it is stuck it is replaced once
    (one new hash, the same nonce, every offer's row moved to it), and when the replacement
    is mined each offer is recorded once."""
    database, holding, service = held
    results = queued_together(
        service.transactions,
        [lambda: service.agreements.create(HR, new_agreement()) for _ in range(3)],
    )
    original = results[0]["chain"]["tx"]
    assert len(holding.pool) == 1
    assert service.confirm() == 0  # first seen at block 100
    holding.head = 102
    assert service.confirm() == 0  # two blocks: replaced, once
    with database.sessions() as session:
        ops = list(session.execute(select(ChainOp)).scalars())
    assert len(ops) == 3 and {op.nonce for op in ops} == {0}
    assert {tuple(op.earlier_hashes) for op in ops} == {(original,)}
    [replacement] = {op.tx_hash for op in ops}
    assert set(holding.pool) == {original, replacement}
    holding.mine(replacement)
    assert service.confirm() == 3
    assert service.confirm() == 0
    states = {service.agreements.get(HR, results[i]["id"])["state"] for i in range(3)}
    assert states == {"offered"}
    assert message_types(database).count("agreement.offered") == 3


def test_offers_waiting_together_while_the_node_is_down_each_get_its_error_once(
    db: Database,  # noqa: F811
    chain: FakeChain,  # noqa: F811
    contracts: ContractsService,  # noqa: F811
) -> None:
    """When the node does not answer the simulation of a multicall, every offer in it gets
    that error at once (not one more unanswered call each under the signer's lock), and
    nothing is stored."""
    asked: list[ChainCall] = []
    unsigned = chain.unsigned

    def down(call: ChainCall) -> dict[str, Any]:
        asked.append(call)
        raise ConnectionError("the node went away")

    chain.unsigned = down  # type: ignore[method-assign]
    results = queued_together(
        contracts.transactions,
        [lambda: contracts.agreements.create(HR, new_agreement()) for _ in range(3)],
    )
    assert all(isinstance(results[i], ConnectionError) for i in range(3))
    assert [c.function for c in asked] == ["multicall"]
    with db.sessions() as session:
        assert session.execute(select(func.count()).select_from(ChainOp)).scalar() == 0
        assert session.execute(select(func.count()).select_from(Agreement)).scalar() == 0
    chain.unsigned = unsigned  # type: ignore[method-assign]
    assert contracts.agreements.create(HR, new_agreement())["chain"]["nonce"] == 0


class _Stop(BaseException):
    """What escapes `except Exception`: an interrupt, a thread's exit."""


@pytest.mark.parametrize("escaping", [RuntimeError("the encoder broke"), _Stop()])
def test_offers_taken_by_a_holder_that_dies_each_get_an_answer_and_the_lock_is_free(
    db: Database,  # noqa: F811
    chain: FakeChain,  # noqa: F811
    contracts: ContractsService,  # noqa: F811
    escaping: BaseException,
) -> None:
    """An error that escapes the lock's holder while it stores and sends the offers it took
    from the queue (here: building their multicall) answers each of them, none is left
    waiting, and the signer's lock is free for the next submission. The holder's own request
    gets the error; the others get it too, or a 503 when it is no Exception (an interrupt is
    not raised in another request's thread)."""
    bundle = chain.bundle

    def broken(calls: Any) -> ChainCall | None:
        if len(calls) > 1:  # the offers' multicall, built by the holder; not the probe
            raise escaping
        return bundle(calls)

    chain.bundle = broken  # type: ignore[method-assign]
    results = queued_together(
        contracts.transactions,
        [lambda: contracts.agreements.create(HR, new_agreement()) for _ in range(3)],
    )
    assert sorted(results) == [0, 1, 2], "a submission was left without an answer"
    if isinstance(escaping, Exception):
        assert all(results[i] is escaping for i in range(3))
    else:
        assert sum(results[i] is escaping for i in range(3)) == 1  # the holder's
        others = [results[i] for i in range(3) if results[i] is not escaping]
        assert all(isinstance(e, SenderStopped) and status_of(e) == 503 for e in others)
        assert all(e.__cause__ is escaping for e in others)
    with db.sessions() as session:
        assert session.execute(select(func.count()).select_from(ChainOp)).scalar() == 0
    chain.bundle = bundle  # type: ignore[method-assign]
    assert not contracts.transactions._local_lock.locked()
    assert contracts.agreements.create(HR, new_agreement())["chain"]["nonce"] == 0

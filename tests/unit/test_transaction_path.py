"""The one transaction path of a signing key (`shared/transactions`), against a fake chain,
nonce book and store, in milliseconds: nonces taken in order with the stored bytes and given
back by a rollback, sends that fail kept for another try, a lost transaction sent again from
its stored bytes, a stuck one replaced with higher fees and the same nonce, a gap filled with a
self-transfer, an attempt whose nonce another transaction took noticed (twice, not once)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import pytest
import requests

from offerseal.shared.chain import PreparedTx
from offerseal.shared.transactions import RESEND_AFTER, Attempt, Mined, SignerPath

SIGNER = "0x00000000000000000000000000000000000000a1"
FEES = {"maxFeePerGas": 100, "maxPriorityFeePerGas": 10}


class FakeSigningChain:
    """A node and its chain for one key: sent transactions wait in the pool until `mine()`."""

    signer = SIGNER

    def __init__(self) -> None:
        self.head = 100
        self.pool: dict[str, tuple[int, bytes]] = {}  # hash -> (nonce, raw)
        self.receipts: dict[str, Mined] = {}
        self.count = 0  # transactions of the signer mined
        self.sent: list[bytes] = []
        self.refuse: set[str] = set()  # hashes the node refuses
        self.away = False  # the node does not answer
        self.fees = dict(FEES)

    def chain_id(self) -> int:
        return 31337

    def block_number(self) -> int:
        return self.head

    def sent_count(self, address: str, pending: bool = False) -> int:
        return self.count + (len(self.pool) if pending else 0)

    def suggested_fees(self) -> dict[str, int]:
        return dict(self.fees)

    def self_transfer(self) -> dict[str, Any]:
        return {"to": SIGNER, "data": "0x", **self.fees}

    def sign(self, fields: dict[str, Any], nonce: int) -> PreparedTx:
        raw = json.dumps({**fields, "nonce": nonce}, sort_keys=True).encode()
        return PreparedTx(raw, "0x" + hashlib.sha256(raw).hexdigest(), nonce)

    def fields_of(self, raw: bytes) -> dict[str, Any]:
        return {k: v for k, v in json.loads(raw).items() if k != "nonce"}

    def send(self, raw: bytes) -> None:
        if self.away:
            raise requests.ConnectionError("the node went away")
        tx_hash = "0x" + hashlib.sha256(raw).hexdigest()
        if tx_hash in self.refuse:
            raise ValueError("max fee per gas less than block base fee")
        self.sent.append(raw)
        self.pool[tx_hash] = (json.loads(raw)["nonce"], raw)

    def mine(self, tx_hash: str, succeeded: bool = True) -> None:
        nonce, _ = self.pool.pop(tx_hash)
        assert nonce == self.count, "mined in nonce order"
        self.pool = {h: v for h, v in self.pool.items() if v[0] != nonce}  # replaced ones go
        self.receipts[tx_hash] = Mined(tx_hash, succeeded)
        self.count += 1
        self.head += 1

    def mined(self, tx_hash: str) -> Mined | None:
        return self.receipts.get(tx_hash)

    def mined_many(self, tx_hashes: Sequence[str]) -> dict[str, Mined]:
        return {h: self.receipts[h] for h in tx_hashes if h in self.receipts}

    def transaction_known(self, tx_hash: str) -> bool:
        return tx_hash in self.pool or tx_hash in self.receipts


class FakeSession:
    def __init__(self) -> None:
        self.next: dict[int, int] = {}


class FakeBook:
    """The signer's nonces in memory: a transaction's takes count only when it commits."""

    def __init__(self) -> None:
        self.next: dict[int, int] = {}
        self.locked = False

    @contextmanager
    def sending(self) -> Iterator[None]:
        assert not self.locked, "the signer's lock is taken once"
        self.locked = True
        try:
            yield
        finally:
            self.locked = False

    @contextmanager
    def transaction(self) -> Iterator[FakeSession]:
        session = FakeSession()
        session.next = dict(self.next)
        yield session
        self.next = session.next  # committed

    def take(self, session: FakeSession, chain_id: int, floor: int, count: int = 1) -> int:
        nonce = max(session.next.get(chain_id, floor), floor)
        session.next[chain_id] = nonce + count
        return nonce

    def rewind(self, session: FakeSession, chain_id: int, to: int) -> None:
        session.next[chain_id] = min(session.next.get(chain_id, to), to)


class FakeAttempts:
    """The store of attempts, by key; each change is recorded in `log`."""

    def __init__(self) -> None:
        self.rows: dict[Any, Attempt] = {}
        self.log: list[tuple[str, Any]] = []

    def add(self, attempt: Attempt) -> Attempt:
        self.rows[attempt.key] = attempt
        return attempt

    def current(self, attempt: Attempt) -> Attempt | None:
        return self.rows.get(attempt.key)

    def mark_sent(self, attempt: Attempt, head: int) -> None:
        self.log.append(("sent", attempt.key))
        self.rows[attempt.key] = replace(attempt, sent_block=head)

    def replace(self, attempt: Attempt, by: PreparedTx, fields: dict[str, Any], head: int) -> bool:
        if attempt.key not in self.rows:
            return False
        self.log.append(("replaced", attempt.key))
        self.rows[attempt.key] = replace(
            attempt,
            tx_hash=by.tx_hash,
            raw=by.raw,
            hashes=(*attempt.hashes, by.tx_hash),
            fields=fields,
            sent_block=head,
        )
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake() -> FakeSigningChain:
    return FakeSigningChain()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def path(fake: FakeSigningChain, clock: Clock) -> SignerPath:
    return SignerPath(fake, FakeBook(), stuck_blocks=3, stuck_seconds=90.0, clock=clock)


def stored(path: SignerPath, attempts: FakeAttempts, key: str, clock: Clock) -> Attempt:
    """A call signed with the next nonce and stored, as a caller of the path does."""
    fields = {"to": "0xcontract", "data": key, **FEES}
    with path.book.transaction() as session:
        (prepared,) = path.sign_new(session, [fields], floor=path.mined_floor())
    return attempts.add(
        Attempt(
            key=key,
            nonce=prepared.nonce,
            tx_hash=prepared.tx_hash,
            raw=prepared.raw,
            hashes=(prepared.tx_hash,),
            fields=fields,
            sent_at=dt.datetime.fromtimestamp(clock.now, dt.UTC),
            sent_block=path.chain.block_number(),
        )
    )


def test_nonces_follow_each_other_from_the_chains_count_and_a_rollback_gives_them_back(
    path: SignerPath, fake: FakeSigningChain
) -> None:
    fake.count = 4  # the key sent four transactions before
    with path.book.transaction() as session:
        first = path.sign_new(session, [{"a": 1}, {"a": 2}], floor=path.mined_floor())
    assert [p.nonce for p in first] == [4, 5]
    with pytest.raises(RuntimeError), path.book.transaction() as session:
        assert path.sign_new(session, [{"a": 3}], floor=4)[0].nonce == 6
        raise RuntimeError("not stored")
    with path.book.transaction() as session:
        assert path.sign_new(session, [{"a": 3}], floor=4)[0].nonce == 6  # not consumed
        assert path.sign_new(session, [{"a": 4}], floor=10)[0].nonce == 10  # 7..9 used elsewhere


def test_a_send_says_whether_the_node_took_refused_or_did_not_answer(
    path: SignerPath, fake: FakeSigningChain
) -> None:
    ok = fake.sign({"a": 1}, 0)
    assert path.send(ok.raw, ok.tx_hash, ["k"]) is True
    refused = fake.sign({"a": 2}, 1)
    fake.refuse.add(refused.tx_hash)
    assert path.send(refused.raw, refused.tx_hash, ["k"]) is False
    fake.away = True
    assert path.send(ok.raw, ok.tx_hash, ["k"]) is None
    with pytest.raises(requests.ConnectionError):
        path.send(ok.raw, ok.tx_hash, ["k"], quiet=False)


def test_a_transaction_the_node_lost_is_sent_again_from_its_stored_bytes(
    path: SignerPath, fake: FakeSigningChain, clock: Clock
) -> None:
    attempts = FakeAttempts()
    attempt = stored(path, attempts, "lost", clock)
    fake.away = True
    assert path.send(attempt.raw, attempt.tx_hash, [attempt.key]) is None
    fake.away = False
    path.unstick([attempt], attempts, fake.head, fake.count)
    assert fake.sent == []  # not before RESEND_AFTER
    clock.now += RESEND_AFTER
    path.unstick([attempt], attempts, fake.head, fake.count)
    assert fake.sent == [attempt.raw]  # the same bytes: never signed anew
    assert attempts.log == [("sent", "lost")]


def test_the_stuck_transaction_the_chain_waits_for_is_replaced_with_higher_fees(
    path: SignerPath, fake: FakeSigningChain, clock: Clock
) -> None:
    attempts = FakeAttempts()
    first = stored(path, attempts, "first", clock)
    second = stored(path, attempts, "second", clock)
    for a in (first, second):
        path.send(a.raw, a.tx_hash, [a.key])
    path.unstick([first, second], attempts, fake.head + 2, fake.count)
    assert attempts.log == []  # two blocks: not stuck yet
    path.unstick([first, second], attempts, fake.head + 3, fake.count)
    # only the one the chain waits for is replaced; the one behind it waits
    assert attempts.log == [("replaced", "first"), ("sent", "second")]
    now = attempts.rows["first"]
    assert now.nonce == first.nonce and now.hashes == (first.tx_hash, now.tx_hash)
    assert now.fields is not None
    assert now.fields["maxFeePerGas"] >= first.fields["maxFeePerGas"] * 1.1  # type: ignore[index]
    assert now.fields["maxPriorityFeePerGas"] >= 11
    assert fake.sent[-1] == now.raw
    fake.mine(now.tx_hash)
    assert path.receipt_of(now) == Mined(now.tx_hash, True)


def test_stored_bytes_the_node_refuses_are_replaced(
    path: SignerPath, fake: FakeSigningChain, clock: Clock
) -> None:
    attempts = FakeAttempts()
    attempt = stored(path, attempts, "cheap", clock)
    fake.refuse.add(attempt.tx_hash)  # the base fee rose above its cap
    assert path.send(attempt.raw, attempt.tx_hash, [attempt.key]) is False
    clock.now += RESEND_AFTER
    path.unstick([attempt], attempts, fake.head, fake.count)
    assert attempts.log == [("sent", "cheap"), ("replaced", "cheap")]
    assert fake.pool and attempt.tx_hash not in fake.pool


def test_an_attempt_finished_meanwhile_or_without_fields_is_not_replaced(
    path: SignerPath, fake: FakeSigningChain, clock: Clock
) -> None:
    attempts = FakeAttempts()
    attempt = stored(path, attempts, "old", clock)
    path.send(attempt.raw, attempt.tx_hash)
    assert path.replace(replace(attempt, fields=None), attempts, fake.head) is None
    del attempts.rows["old"]  # recorded by another process
    path.resend_or_replace(attempt, attempts, fake.head + 10, next_on_chain=True)
    assert attempts.log == [] and fake.sent == [attempt.raw]


def test_a_gap_below_the_waiting_ones_is_filled_once_it_lasts(
    path: SignerPath, fake: FakeSigningChain, clock: Clock
) -> None:
    attempts = FakeAttempts()
    fake.count = 5
    with path.book.transaction() as session:
        path.book.take(session, 31337, 5)  # nonce 5 taken, never stored (a restored backup)
    attempt = stored(path, attempts, "above", clock)
    assert attempt.nonce == 6
    path.send(attempt.raw, attempt.tx_hash)
    path.unstick([attempt], attempts, fake.head, fake.count)
    assert len(fake.sent) == 1  # seen, not filled yet
    clock.now += 90
    path.unstick([attempt], attempts, fake.head, fake.count)
    filler = json.loads(fake.sent[-1])
    assert filler["nonce"] == 5 and filler["to"] == SIGNER and filler["maxFeePerGas"] > 100
    fake.mine(next(h for h, (n, _) in fake.pool.items() if n == 5))
    fake.mine(attempt.tx_hash)
    assert path.gaps({6}, fake.head, fake.count) == []


def test_a_nonce_another_transaction_took_is_noticed_on_the_second_look(
    path: SignerPath, fake: FakeSigningChain, clock: Clock
) -> None:
    attempts = FakeAttempts()
    mined = stored(path, attempts, "mined", clock)
    taken = stored(path, attempts, "taken", clock)
    path.send(mined.raw, mined.tx_hash)
    fake.mine(mined.tx_hash)
    fake.count += 1  # nonce 1 used by a transaction the store does not know
    assert path.sort([mined, taken]) == ([(mined, Mined(mined.tx_hash, True))], [])
    assert path.sort([taken]) == ([], [taken])


def test_the_writer_holds_the_signers_lock_across_processes(
    path: SignerPath,
) -> None:
    book = path.book
    assert isinstance(book, FakeBook)
    with path.writer():
        assert book.locked
    assert not book.locked

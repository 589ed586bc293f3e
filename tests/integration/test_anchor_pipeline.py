"""The anchoring worker keeps several batches in flight: it cuts and sends a batch every batch
interval while earlier ones wait for their block, with consecutive durable nonces, and finalizes
each as it is mined. A crash with several batches in flight anchors each exactly once."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select

from harness.procs import ServiceProcess, create_key, service_env
from offerseal.evidence.anchoring import Anchorer
from offerseal.evidence.crypto import DocumentCipher
from offerseal.evidence.domain.documents import NewDocument, status_of
from offerseal.evidence.models import Batch, BatchMember, Document
from offerseal.evidence.service import EvidenceService
from offerseal.shared import chain, nonces
from offerseal.shared.auth import Principal
from offerseal.shared.config import ANVIL_DEV_KEY
from offerseal.shared.db import Database
from offerseal.shared.models import OutboxMessage
from offerseal_verify.receipts import ReceiptSigner
from tests.conftest import free_port
from tests.integration.test_recovery import (
    assert_anchored_exactly_once,
    post,
    proofs,
    stored_id,
)

pytestmark = [pytest.mark.chain, pytest.mark.slow]

HR = Principal(key_id="k-hr", role="hr", tenant="acme")


def _ingest(db: Database, count: int = 1) -> None:
    service = EvidenceService(
        db, DocumentCipher(os.urandom(32)), ReceiptSigner.from_seed(b"s" * 32)
    )
    service.ingest_hashes(
        HR,
        [
            NewDocument(kind="other", candidate_ref="c-1", sha256="0x" + os.urandom(32).hex())
            for _ in range(count)
        ],
    )


def _wait(condition: Any, timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_batches_in_flight_share_a_block_and_are_all_finalized(
    database_url: str, tmp_path: Path
) -> None:
    from offerseal.shared.anvil import AnvilProcess

    anvil = AnvilProcess(free_port())  # automine until the registry is there; then one block
    db = Database(database_url)
    db.migrate()
    try:
        w3 = chain.connect(anvil.url)
        signer = chain.account(ANVIL_DEV_KEY)
        anchorer = Anchorer(
            db,
            w3,
            signer,
            batch_interval=0.1,
            batch_max=100,
            confirmations=1,
            reconcile_interval=60,
            data_dir=tmp_path,
        )
        anchorer.connect()
        anchorer.recover()
        w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
        mined_before = w3.eth.get_transaction_count(signer.address, "latest")
        ids = []
        for i in range(3):
            _ingest(db, count=i + 1)
            batch_id = anchorer.cut()  # sent at once, without waiting for the earlier ones
            assert batch_id is not None
            ids.append(batch_id)
        assert anchorer.in_flight() == 3
        with db.sessions() as session:
            batches = [session.get(Batch, i) for i in ids]
            assert [b.nonce for b in batches if b is not None] == [
                mined_before,
                mined_before + 1,
                mined_before + 2,
            ]  # consecutive nonces, kept by the nonce manager
            assert nonces.peek(session, 31337, signer.address) == mined_before + 3
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        _wait(lambda: anchorer.watch() >= 0 and anchorer.in_flight() == 0, what="the blocks")
        with db.sessions() as session:
            batches = session.execute(select(Batch).order_by(Batch.id)).scalars().all()
            assert [b.state for b in batches] == ["anchored"] * 3
            blocks = [b.block_number for b in batches]
            # Three sent before the next block, each without waiting for the one before: all
            # three are in it.
            assert len(set(blocks)) == 1, blocks
            docs = (
                session.execute(select(Batch.state).join(Document, Document.batch_id == Batch.id))
                .scalars()
                .all()
            )
            assert docs == ["anchored"] * 6  # a document's status is its batch's
            members = session.execute(select(BatchMember.batch_id)).scalars().all()
            assert sorted(members) == sorted([ids[0]] + [ids[1]] * 2 + [ids[2]] * 3)
            keys = session.execute(select(OutboxMessage.routing_key)).scalars().all()
            assert sum("batch_anchored" in k for k in keys) == 3  # one per batch (one tenant)
        registry = anchorer._registry()
        for b in batches:
            assert registry.anchored_at(bytes.fromhex(b.root[2:])) > 0
    finally:
        db.dispose()
        anvil.stop()


def test_the_loop_cuts_while_earlier_batches_wait_and_bounds_them(
    database_url: str, tmp_path: Path
) -> None:
    """The worker's loop: with blocks every 4 s it sends a batch per interval, never more than
    `max_in_flight` unmined, and each is finalized once its block comes."""
    from offerseal.shared.anvil import AnvilProcess

    anvil = AnvilProcess(free_port(), extra_args=("--block-time", "4"))
    db = Database(database_url)
    db.migrate()
    stop = threading.Event()
    worker: threading.Thread | None = None
    try:
        w3 = chain.connect(anvil.url)
        anchorer = Anchorer(
            db,
            w3,
            chain.account(ANVIL_DEV_KEY),
            batch_interval=0.05,
            batch_max=100,
            confirmations=1,
            reconcile_interval=60,
            data_dir=tmp_path,
            max_in_flight=2,
        )
        worker = threading.Thread(target=anchorer.run, args=(stop,), daemon=True)
        worker.start()
        assert anchorer.ready.wait(30)
        high = 0
        for _ in range(4):
            _ingest(db)
            _wait(lambda: anchorer.pending_count() == 0 or anchorer.in_flight() >= 2, 10, "a cut")
            high = max(high, anchorer.in_flight())
        assert high == 2  # two sent while the first waited for its block, then no more

        def stored() -> tuple[list[str], list[str]]:
            with db.sessions() as session:
                states = list(session.execute(select(Batch.state)).scalars())
                docs = [
                    status_of(state)
                    for state in session.execute(
                        select(Batch.state)
                        .select_from(Document)
                        .outerjoin(Batch, Batch.id == Document.batch_id)
                    ).scalars()
                ]
            return states, docs

        # Watched in the database: a batch is committed as prepared a moment before the
        # worker counts it in flight, so "nothing pending, nothing in flight" can be seen
        # in between.
        _wait(
            lambda: stored()[1] == ["anchored"] * 4 and set(stored()[0]) == {"anchored"},
            60,
            "every batch anchored",
        )
        _wait(lambda: anchorer.in_flight() == 0, 30, "nothing left in flight")
    finally:
        stop.set()
        if worker is not None:
            worker.join(30)  # it releases its lock before the database goes
        db.dispose()
        anvil.stop()


@pytest.mark.parametrize("failpoint", ["anchor.before_send#4", "anchor.after_send#3"])
def test_sigkill_with_several_batches_in_flight_anchors_each_once(
    tmp_path: Path, database_url: str, fresh_anvil: Any, failpoint: str
) -> None:
    """Blocks stop while documents come: the worker keeps cutting and sending batches; it dies
    with several of them in flight. Restarted (and blocks going again), each batch is anchored
    exactly once with its documents, from the stored bytes and nonces."""
    env = service_env(tmp_path, database_url, fresh_anvil.url)
    key = create_key(env)
    service = ServiceProcess(env, tmp_path / "service.log").start(failpoint)
    w3 = chain.connect(fresh_anvil.url)
    db = Database(database_url)

    def batches() -> list[Batch]:
        with db.sessions() as session:
            return list(session.execute(select(Batch).order_by(Batch.id)).scalars().all())

    try:
        service.wait_http()
        contents: dict[str, bytes] = {}
        data = b"first " + os.urandom(16)
        contents[post(service.base, key, data)] = data
        _wait(lambda: [b.state for b in batches()] == ["anchored"], what="the first batch")
        w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
        mined = w3.eth.get_transaction_count(w3.eth.account.from_key(ANVIL_DEV_KEY).address)
        want = int(failpoint.rsplit("#", 1)[1])  # batches in all: the first and those in flight
        lost: bytes | None = None
        for i in range(want - 1):
            data = f"document {i} ".encode() + os.urandom(16)
            try:
                contents[post(service.base, key, data)] = data
            except requests.ConnectionError:  # its batch's SIGKILL overtook the 201
                assert i == want - 2, "the process died before the last batch"
                lost = data  # committed: it is in the batch that killed the process
            if i < want - 2:  # the last one's batch kills the process
                _wait(lambda n=i: len(batches()) >= n + 2, what="a batch in flight")
        assert service.wait_exit(60) == -9, "the failpoint should have killed the process"
        if lost is not None:
            contents[stored_id(database_url, lost)] = lost
        stored = batches()
        assert len(stored) == want and [b.state for b in stored[1:]] == ["prepared"] * (want - 1)
        assert [b.nonce for b in stored[1:]] == list(range(mined, mined + want - 1))
        assert w3.eth.get_transaction_count(stored[0].signer, "latest") == mined  # none mined

        w3.provider.make_request("evm_setIntervalMining", [1])  # type: ignore[arg-type]
        service.start()  # no failpoint: recovery
        service.wait_http()
        bundles = proofs(service.base, key, list(contents))
        assert "recovering batch" in (tmp_path / "service.log").read_text()
        after = batches()
        assert [b.state for b in after] == ["anchored"] * want
        assert [b.nonce for b in after[1:]] == list(range(mined, mined + want - 1))  # no re-sign
    finally:
        service.kill()
        db.dispose()
    assert_anchored_exactly_once(database_url, fresh_anvil.url, contents, bundles)


def test_a_nonce_nothing_was_sent_for_is_filled_and_the_batches_above_it_anchored(
    database_url: str, tmp_path: Path, fresh_anvil: Any
) -> None:
    """A nonce taken with nothing sent for it (a batch prepared for a registry that is gone,
    or a database restored from a backup): the batches above it wait in the node's pool until
    the gap has lasted as long as a stuck transaction; then it is filled with a no-op
    self-transfer and they are anchored, with the nonces they were stored with."""
    db = Database(database_url)
    db.migrate()
    w3 = chain.connect(fresh_anvil.url)
    signer = chain.account(ANVIL_DEV_KEY)
    try:
        anchorer = Anchorer(
            db,
            w3,
            signer,
            batch_interval=0.1,
            batch_max=100,
            confirmations=1,
            reconcile_interval=60,
            data_dir=tmp_path,
            stuck_blocks=2,
            stuck_seconds=3600,
        )
        anchorer.connect()
        anchorer.recover()
        gap = w3.eth.get_transaction_count(signer.address, "latest")
        with db.transaction() as session:  # the nonce `gap` is taken, nothing stored for it
            nonces.take(session, 31337, signer.address, gap)
        ids = []
        for _ in range(2):
            _ingest(db)
            batch_id = anchorer.cut()
            assert batch_id is not None
            ids.append(batch_id)
        with db.sessions() as session:
            assert [session.get(Batch, i).nonce for i in ids] == [gap + 1, gap + 2]  # type: ignore[union-attr]
        anchorer.watch()
        assert w3.eth.get_transaction_count(signer.address, "latest") == gap  # they wait

        def anchored() -> bool:
            w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]  (blocks pass)
            anchorer.watch()
            return anchorer.in_flight() == 0

        _wait(anchored, what="the gap filled and the batches anchored")
        with db.sessions() as session:
            batches = [session.get(Batch, i) for i in ids]
            assert [b.state for b in batches if b is not None] == ["anchored"] * 2
            assert [b.nonce for b in batches if b is not None] == [gap + 1, gap + 2]
        filler = next(
            tx
            for n in range(w3.eth.block_number + 1)
            for tx in w3.eth.get_block(n, full_transactions=True)["transactions"]
            if tx["nonce"] == gap and tx["from"] == signer.address  # type: ignore[index]
        )
        assert filler["to"] == signer.address and filler["value"] == 0  # type: ignore[index]
        assert filler["input"] in (b"", "0x")  # type: ignore[index]
    finally:
        db.dispose()

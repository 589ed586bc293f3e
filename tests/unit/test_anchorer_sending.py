"""The anchorer's sending, on the signer's transaction path with a fake chain and registry (no
Anvil, no web3): a batch is stored with its signed transaction and the signer's next nonce,
then sent; a transaction the node lost is sent again from its stored bytes; a stuck one is
replaced (same nonce, higher fees) and the batch row follows; a nonce another transaction took
is signed again with a new one."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from offerseal.evidence.anchoring import Anchorer
from offerseal.evidence.crypto import DocumentCipher
from offerseal.evidence.models import Batch
from offerseal.evidence.service import EvidenceService, NewDocument
from offerseal.shared import chain
from offerseal.shared.auth import Principal
from offerseal.shared.config import ANVIL_DEV_KEY
from offerseal.shared.db import Database
from offerseal_verify.receipts import ReceiptSigner
from tests.unit.test_transaction_path import FakeSigningChain

HR = Principal(key_id="k-hr", role="hr", tenant="acme")
REGISTRY = "0x" + "55" * 20


class FakeRegistry:
    """The EvidenceRegistry as the anchorer asks it: nothing is anchored until mined."""

    address = REGISTRY

    def __init__(self, node: FakeSigningChain) -> None:
        self.node = node

    def anchor_fields(self, root: bytes, chain_id: int, fees: dict[str, int]) -> dict[str, Any]:
        return {"to": REGISTRY, "data": "0x" + root.hex(), "gas": 120_000, **fees}

    def anchored_at(self, root: bytes) -> int:
        return 0

    def receipt(self, tx_hash: str) -> Any | None:
        return None


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'evidence.db'}")
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture
def node() -> FakeSigningChain:
    return FakeSigningChain()


@pytest.fixture
def anchorer(db: Database, node: FakeSigningChain) -> Anchorer:
    node.signer = chain.account(ANVIL_DEV_KEY).address  # type: ignore[misc]
    worker = Anchorer(
        db,
        None,  # type: ignore[arg-type]  (no web3 on the send path)
        chain.account(ANVIL_DEV_KEY),
        batch_interval=0.1,
        batch_max=100,
        confirmations=1,
        reconcile_interval=60,
        stuck_blocks=3,
        stuck_seconds=90,
        signing=node,
    )
    worker.registry = FakeRegistry(node)  # type: ignore[assignment]
    worker.chain_id = node.chain_id()
    return worker


def cut_one(db: Database, anchorer: Anchorer) -> int:
    """One document taken in, and its batch cut (stored and sent)."""
    take_in(db, "0x" + "ab" * 32)
    batch_id = anchorer.cut()
    assert batch_id is not None
    return batch_id


def take_in(db: Database, sha: str) -> None:
    service = EvidenceService(
        db, DocumentCipher(os.urandom(32)), ReceiptSigner.from_seed(b"s" * 32)
    )
    service.ingest_hashes(HR, [NewDocument(kind="other", candidate_ref="c-1", sha256=sha)])


def batch(db: Database, batch_id: int) -> Batch:
    with db.sessions() as session:
        row = session.execute(select(Batch).where(Batch.id == batch_id)).scalar_one()
        session.expunge(row)
        return row


def due(anchorer: Anchorer, batch_id: int, *, age: float = 0.0) -> None:
    """The batch is looked at in the next `watch`, its transaction sent `age` seconds ago."""
    flight = anchorer._in_flight[batch_id]
    flight.checked_at = 0.0
    flight.sent_at = time.monotonic() - age


def test_a_batch_is_stored_with_its_signed_transaction_then_sent(
    db: Database, node: FakeSigningChain, anchorer: Anchorer
) -> None:
    node.count = 3  # the key sent three transactions before
    batch_id = cut_one(db, anchorer)
    row = batch(db, batch_id)
    assert row.state == "prepared" and row.nonce == 3
    assert node.sent == [bytes(row.raw_tx)] and row.tx_hash in node.pool


def test_a_transaction_the_node_lost_is_sent_again_from_its_stored_bytes(
    db: Database, node: FakeSigningChain, anchorer: Anchorer
) -> None:
    batch_id = cut_one(db, anchorer)
    node.pool.clear()  # the node restarted
    due(anchorer, batch_id)
    anchorer.watch()
    row = batch(db, batch_id)
    assert node.sent == [bytes(row.raw_tx)] * 2 and row.tx_hash in node.pool


def test_a_stuck_anchor_is_replaced_with_the_same_nonce_and_higher_fees(
    db: Database, node: FakeSigningChain, anchorer: Anchorer
) -> None:
    batch_id = cut_one(db, anchorer)
    before = batch(db, batch_id)
    due(anchorer, batch_id, age=10)
    anchorer.watch()
    assert batch(db, batch_id).tx_hash == before.tx_hash  # not stuck yet
    due(anchorer, batch_id, age=91)
    anchorer.watch()
    after = batch(db, batch_id)
    assert after.nonce == before.nonce and after.tx_hash != before.tx_hash
    old, new = json.loads(bytes(before.raw_tx)), json.loads(bytes(after.raw_tx))
    assert new["maxFeePerGas"] * 10 >= old["maxFeePerGas"] * 11
    assert new["maxPriorityFeePerGas"] * 10 >= old["maxPriorityFeePerGas"] * 11
    assert node.sent[-1] == bytes(after.raw_tx)
    assert anchorer._in_flight[batch_id].tx_hash == after.tx_hash


def test_a_nonce_another_transaction_took_is_signed_again_with_the_next(
    db: Database, node: FakeSigningChain, anchorer: Anchorer
) -> None:
    batch_id = cut_one(db, anchorer)
    node.pool.clear()
    node.count = 1  # nonce 0 went to a transaction this worker never stored
    due(anchorer, batch_id)
    anchorer.watch()
    row = batch(db, batch_id)
    assert row.nonce == 1 and node.sent[-1] == bytes(row.raw_tx) and row.tx_hash in node.pool

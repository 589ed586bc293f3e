"""The anchoring worker: batches pending leaves into one Merkle tree, anchors the root with one
transaction, and stores every proof. Crash-safe by construction:

1. *prepare*: in one transaction the tree, every proof and the **signed** transaction (nonce,
   raw bytes, hash) are stored and the documents are bound to the batch;
2. *send* the stored raw transaction; 3. wait for the receipt and confirmations;
4. *finalize*: in one transaction the batch becomes `anchored`, the documents too, and
   `evidence.anchored` messages go into the outbox.

After a crash anywhere, `recover()` finishes prepared batches: it asks the chain whether the
root is anchored, whether the stored transaction is known, and re-sends the same signed bytes
(or re-signs only when its nonce was consumed without anchoring). So every accepted document is
anchored exactly once. `reconcile()` notices roots the chain no longer holds (reset or reorg),
marks those batches superseded and puts their documents back in the queue; an RPC that fails or
lags behind is never taken for a chain that lost them.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from sqlalchemy import func, select, update
from web3 import Web3

from offerseal_verify import merkle
from offerseal_verify.hexbytes import from_hex32, to_hex

from ..shared import chain, failpoints, messages
from ..shared.broker import enqueue
from ..shared.db import Database, insert_rows
from ..shared.deployments import (
    DEV_CHAIN_ID,
    EVIDENCE_REGISTRY,
    ContractMissing,
    ensure_registry,
    genesis_hash,
    recorded,
)
from ..shared.locks import ExclusiveLock
from ..shared.models import aware, utcnow
from ..shared.workers import Backoff, run_every
from .adapters.registry import RegistryClient
from .domain.documents import ANCHORED, PENDING
from .models import Batch, BatchMember, Document
from .service import CANDIDATE_LINK

log = logging.getLogger(__name__)


class Anchorer:
    def __init__(
        self,
        db: Database,
        w3: Web3,
        signer: LocalAccount,
        *,
        batch_interval: float,
        batch_max: int,
        confirmations: int,
        reconcile_interval: float,
        registry_address: str = "",
        registry_admin: str = "",
        auto_deploy: bool = True,
        data_dir: Path | None = None,
    ) -> None:
        self.db = db
        self.w3 = w3
        self.signer = signer
        self.batch_interval = batch_interval
        self.batch_max = batch_max
        self.confirmations = confirmations
        self.reconcile_interval = reconcile_interval
        self.configured_registry = registry_address
        self.registry_admin = registry_admin
        self.auto_deploy = auto_deploy
        self.data_dir = data_dir
        self.chain_id = 0
        self.registry: RegistryClient | None = None
        self.ready = threading.Event()

    # ---- set-up ---------------------------------------------------------------------------

    def connect(self) -> None:
        self.chain_id = int(self.w3.eth.chain_id)
        address = ensure_registry(
            self.db,
            self.w3,
            self.signer,
            admin=self.registry_admin,
            configured=self.configured_registry,
            auto_deploy=self.auto_deploy,
            data_dir=self.data_dir,
        )
        registry = RegistryClient(self.w3, address)
        if not registry.may_anchor(self.signer.address):
            raise ContractMissing(
                f"{self.signer.address} may not anchor on the EvidenceRegistry {address}: its "
                "admin grants it with grantRole(ANCHORER_ROLE, signer)"
            )
        if self.chain_id != DEV_CHAIN_ID and registry.is_admin(self.signer.address):
            # Registries deployed before the roles were separated: they keep working.
            log.warning(
                "the anchoring key %s also administers the EvidenceRegistry %s: hand the admin "
                "role to a cold key or multisig (grantRole(DEFAULT_ADMIN_ROLE, admin), then "
                "renounceRole(DEFAULT_ADMIN_ROLE, %s))",
                self.signer.address,
                address,
                self.signer.address,
            )
        self.registry = registry

    def _registry(self) -> RegistryClient:
        assert self.registry is not None, "connect() first"
        return self.registry

    # ---- one batch ------------------------------------------------------------------------

    def pending_count(self) -> int:
        with self.db.sessions() as session:
            return int(
                session.execute(
                    select(func.count()).select_from(Document).where(Document.batch_id.is_(None))
                ).scalar()
                or 0
            )

    def prepare(self) -> int | None:
        """Build the next tree and store it with its signed transaction. Returns the batch id."""
        registry = self._registry()
        with self.db.transaction() as session:
            rows = session.execute(
                select(Document.seq, Document.leaf)
                .where(Document.batch_id.is_(None))
                .order_by(Document.seq)
                .limit(self.batch_max)
            ).all()
            if not rows:
                return None
            leaves = [from_hex32(leaf) for _, leaf in rows]
            tree = merkle.MerkleTree.build(leaves)
            prepared = chain.sign_for_later(
                self.w3, self.signer, lambda n: registry.prepare_anchor(self.signer, tree.root, n)
            )
            nonce = prepared.nonce
            batch = Batch(
                root=to_hex(tree.root),
                leaf_count=len(rows),
                state="prepared",
                chain_id=self.chain_id,
                registry_address=registry.address,
                signer=self.signer.address,
                nonce=nonce,
                tx_hash=prepared.tx_hash,
                raw_tx=prepared.raw,
            )
            session.add(batch)
            session.flush()
            insert_rows(
                session,
                BatchMember,
                [
                    {
                        "batch_id": batch.id,
                        "document_seq": seq,
                        "proof": [to_hex(p) for p in tree.proof(leaf)],
                    }
                    for (seq, _), leaf in zip(rows, leaves, strict=True)
                ],
            )
            session.execute(
                update(Document)
                .where(Document.seq.in_([s for s, _ in rows]))
                .values(batch_id=batch.id),
                execution_options={"synchronize_session": False},
            )
            batch_id = batch.id
        log.info(
            "batch %s prepared: %s leaves, root %s, tx %s",
            batch_id,
            len(rows),
            to_hex(tree.root),
            prepared.tx_hash,
        )
        return batch_id

    def complete(self, batch_id: int) -> None:
        """Send (or re-send) a prepared batch's transaction and finalize it once mined."""
        registry = self._registry()
        with self.db.sessions() as session:
            batch = session.get(Batch, batch_id)
            assert batch is not None and batch.tx_hash and batch.raw_tx is not None
            root = from_hex32(batch.root)
            tx_hash, raw, nonce = batch.tx_hash, batch.raw_tx, int(batch.nonce or 0)
        receipt = registry.receipt(tx_hash)
        if (
            receipt is None
            and registry.anchored_at(root) == 0
            and not registry.transaction_known(tx_hash)
        ):
            latest_nonce = self.w3.eth.get_transaction_count(self.signer.address, "latest")
            if latest_nonce != nonce:
                # Our nonce was consumed by something else, or the chain forgot the past
                # (reset): sign again with the next free nonce, stored before sending.
                tx_hash, raw = self._resign(batch_id, root)
            failpoints.hit("anchor.before_send")
            registry.send_raw(raw)
            failpoints.hit("anchor.after_send")
        receipt = receipt or registry.wait(tx_hash, timeout=120)
        self._await_confirmations(int(receipt["blockNumber"]))
        failpoints.hit("anchor.after_receipt")
        if receipt["status"] != 1:
            receipt = registry.receipt_of_anchor(root)
            if receipt is None:
                self._release(batch_id, f"anchor transaction {tx_hash} reverted")
                return
        self.finalize(batch_id, receipt)

    def _resign(self, batch_id: int, root: bytes) -> tuple[str, bytes]:
        nonce = self.w3.eth.get_transaction_count(self.signer.address, "pending")
        prepared = self._registry().prepare_anchor(self.signer, root, nonce)
        with self.db.transaction() as session:
            session.execute(
                update(Batch)
                .where(Batch.id == batch_id)
                .values(nonce=nonce, tx_hash=prepared.tx_hash, raw_tx=prepared.raw)
            )
        log.info("batch %s re-signed with nonce %s: %s", batch_id, nonce, prepared.tx_hash)
        return prepared.tx_hash, prepared.raw

    def _await_confirmations(self, block_number: int) -> None:
        while self.w3.eth.block_number < block_number + self.confirmations - 1:
            time.sleep(0.25)

    def _release(self, batch_id: int, reason: str) -> None:
        log.error("batch %s failed: %s; its documents go back to the queue", batch_id, reason)
        with self.db.transaction() as session:
            session.execute(update(Batch).where(Batch.id == batch_id).values(state="failed"))
            session.execute(
                update(Document)
                .where(Document.batch_id == batch_id)
                .values(batch_id=None, status=PENDING)
            )

    def finalize(self, batch_id: int, receipt: Any) -> None:
        block = self.w3.eth.get_block(receipt["blockNumber"])
        with self.db.transaction() as session:
            batch = session.get(Batch, batch_id)
            assert batch is not None
            if batch.state == "anchored":
                return
            batch.state = "anchored"
            batch.tx_hash = receipt["transactionHash"].to_0x_hex()
            batch.block_number = int(receipt["blockNumber"])
            batch.block_hash = receipt["blockHash"].to_0x_hex()
            batch.block_timestamp = int(block["timestamp"])
            batch.gas_used = int(receipt["gasUsed"])
            batch.anchored_at = utcnow()
            session.execute(
                update(Document).where(Document.batch_id == batch_id).values(status=ANCHORED)
            )
            members = session.execute(
                select(
                    Document.id,
                    Document.tenant,
                    Document.kind,
                    Document.candidate_ref,
                    Document.agreement_id,
                    Document.milestone,
                    Document.leaf,
                    Document.sha256,
                    Document.salt,
                    Document.api_key_id,
                    BatchMember.proof,
                )
                .join(BatchMember, BatchMember.document_seq == Document.seq)
                .where(BatchMember.batch_id == batch_id, Document.agreement_id.is_not(None))
            ).all()
            per_tenant = session.execute(
                select(Document.tenant, func.count())
                .where(Document.batch_id == batch_id)
                .group_by(Document.tenant)
            ).all()
            anchor_facts = {
                "batch_id": batch.id,
                "root": batch.root,
                "chain_id": batch.chain_id,
                "registry": batch.registry_address,
                "tx_hash": batch.tx_hash,
                "block_number": batch.block_number,
                "block_timestamp": batch.block_timestamp,
            }
            # One message per tenant and batch; a message per document only where a consumer
            # acts on it (documents tied to an agreement milestone). Thousands of per-document
            # messages nobody reads would only slow the relay and the broker.
            enqueue(
                session,
                [
                    messages.build(
                        messages.EVIDENCE_BATCH_ANCHORED,
                        tenant,
                        {**anchor_facts, "documents": int(count)},
                    )
                    for tenant, count in per_tenant
                ]
                + [
                    messages.build(
                        messages.EVIDENCE_ANCHORED,
                        m.tenant,
                        {
                            "document_id": m.id,
                            "kind": m.kind,
                            "candidate_ref": m.candidate_ref,
                            "agreement_id": m.agreement_id,
                            "milestone": m.milestone,
                            "leaf": m.leaf,
                            "values": [m.sha256, m.salt],  # the leaf's values
                            "via_candidate_link": m.api_key_id == CANDIDATE_LINK,
                            "root": batch.root,
                            "proof": m.proof,
                            "chain_id": batch.chain_id,
                            "registry": batch.registry_address,
                            "tx_hash": batch.tx_hash,
                            "block_number": batch.block_number,
                            "block_timestamp": batch.block_timestamp,
                            "batch_id": batch.id,
                        },
                    )
                    for m in members
                ],
            )
        log.info(
            "batch %s anchored in block %s (%s gas for %s leaves)",
            batch_id,
            receipt["blockNumber"],
            receipt["gasUsed"],
            batch.leaf_count,
        )

    # ---- recovery and reconciliation ------------------------------------------------------

    def recover(self) -> None:
        """Finish every batch a previous process prepared but did not finalize."""
        with self.db.sessions() as session:
            ids = (
                session.execute(
                    select(Batch.id).where(Batch.state == "prepared").order_by(Batch.id)
                )
                .scalars()
                .all()
            )
        for batch_id in ids:
            log.info("recovering batch %s", batch_id)
            with self.db.sessions() as session:
                batch = session.get(Batch, batch_id)
                assert batch is not None
                stale = batch.registry_address != self._registry().address
            if stale:  # prepared against a registry that is gone: build it again
                self._release(batch_id, "prepared for a registry that no longer exists")
                continue
            self.complete(batch_id)

    def reconcile(self) -> int:
        """Supersede anchored batches whose root the chain no longer holds. Returns how many.

        Only a chain that answers counts: an RPC failure raises (nothing is superseded), and a
        node whose head is below an anchor's block is taken as behind, not as reset, unless it
        answers with another genesis block (another history)."""
        registry = self._registry()
        if not chain.has_code(self.w3, registry.address):
            # Redeploys only on a chain with another genesis (reset); a node that is merely
            # behind raises ChainBehind and nothing changes.
            self.connect()
            registry = self._registry()
        with self.db.sessions() as session:
            latest = session.execute(
                select(Batch)
                .where(Batch.state == "anchored", Batch.chain_id == self.chain_id)
                .order_by(Batch.id.desc())
                .limit(1)
            ).scalar_one_or_none()
        if latest is None or not self._root_gone(latest):
            return 0
        # The newest root is gone: check them all (newest first; older ones may survive a reorg).
        with self.db.sessions() as session:
            batches = (
                session.execute(
                    select(Batch)
                    .where(Batch.state == "anchored", Batch.chain_id == self.chain_id)
                    .order_by(Batch.id.desc())
                )
                .scalars()
                .all()
            )
        gone = [b for b in batches if self._root_gone(b)]
        for batch in gone:
            self._supersede(batch.id)
        log.warning(
            "chain no longer holds %s anchored root(s): superseded, re-anchoring", len(gone)
        )
        return len(gone)

    def _root_gone(self, batch: Batch) -> bool:
        """True only when the chain answered and lacks the batch's anchor: the registry was
        redeployed after a reset, the node has another genesis, or its head is at or past the
        anchor block while the root or that block is not there. Any RPC failure raises."""
        registry = self._registry()
        if batch.registry_address != registry.address:
            return True  # the registry was redeployed (only on a reset chain)
        deployment = recorded(self.db, self.chain_id, EVIDENCE_REGISTRY)
        if (
            deployment is not None
            and deployment.address == registry.address
            and batch.anchored_at is not None
            and aware(batch.anchored_at) < aware(deployment.deployed_at)
        ):
            # Anchored on an earlier deployment at the same address (same signer and nonce on
            # a reset chain): that registry and its roots are gone.
            return True
        anchor_block = int(batch.block_number or 0)
        if int(self.w3.eth.block_number) < anchor_block:
            if self._other_history():
                return True
            log.warning(
                "the chain node's head is below block %s of batch %s: behind, not reset; waiting",
                anchor_block,
                batch.id,
            )
            return False
        if registry.anchored_at(from_hex32(batch.root)) == 0:
            return True
        block = self.w3.eth.get_block(anchor_block)
        return bool(block["hash"].to_0x_hex() != batch.block_hash)

    def _other_history(self) -> bool:
        deployment = recorded(self.db, self.chain_id, EVIDENCE_REGISTRY)
        known = deployment.genesis_hash if deployment is not None else None
        return known is not None and known != genesis_hash(self.w3)

    def _supersede(self, batch_id: int) -> None:
        with self.db.transaction() as session:
            batch = session.get(Batch, batch_id)
            assert batch is not None
            batch.state = "superseded"
            batch.superseded_at = utcnow()
            docs = session.execute(
                select(Document.id, Document.tenant).where(Document.batch_id == batch_id)
            ).all()
            session.execute(
                update(Document)
                .where(Document.batch_id == batch_id)
                .values(batch_id=None, status=PENDING)
            )
            by_tenant: dict[str, list[str]] = {}
            for doc_id, tenant in docs:
                by_tenant.setdefault(tenant, []).append(doc_id)
            enqueue(
                session,
                [
                    messages.build(
                        messages.EVIDENCE_SUPERSEDED,
                        tenant,
                        {
                            "root": batch.root,
                            "batch_id": batch.id,
                            "chain_id": batch.chain_id,
                            "document_ids": ids,
                        },
                    )
                    for tenant, ids in by_tenant.items()
                ],
            )

    # ---- the loop -------------------------------------------------------------------------

    def run_once(self) -> int | None:
        batch_id = self.prepare()
        if batch_id is not None:
            self.complete(batch_id)
        return batch_id

    def run(self, stop: threading.Event) -> None:
        lock = ExclusiveLock(self.db, f"anchor:{self.signer.address}")
        while not lock.try_acquire():
            log.info("another worker anchors for %s; standing by", self.signer.address)
            if stop.wait(2.0):
                return
        try:
            self._loop(stop)
        finally:
            lock.release()

    def _loop(self, stop: threading.Event) -> None:
        # Any failure (chain, database) reconnects and recovers before the next batch; the
        # backoff starts again only once a batch has been anchored.
        backoff = Backoff(0.5, 10.0)
        connected = False
        last_batch = last_reconcile = time.monotonic()

        def step() -> bool:
            """One look at the queue; True when a batch was anchored (look again at once)."""
            nonlocal connected, last_batch, last_reconcile
            if not connected:
                self.connect()
                self.recover()
                connected = True
                self.ready.set()
            now = time.monotonic()
            if now - last_reconcile >= self.reconcile_interval:
                self.reconcile()
                last_reconcile = now
            pending = self.pending_count()
            if pending and (pending >= self.batch_max or now - last_batch >= self.batch_interval):
                self.run_once()
                last_batch = time.monotonic()
                backoff.reset()
                return True
            if not pending:
                last_batch = now
            return False

        def paused(_exc: BaseException) -> None:
            nonlocal connected
            connected = False
            self.ready.clear()

        run_every(
            stop,
            min(0.1, self.batch_interval),
            step,
            name="anchoring",
            log=log,
            backoff=backoff,
            on_error=paused,
            reset_after_step=False,
        )

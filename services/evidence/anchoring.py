"""The anchoring worker: batches pending leaves into one Merkle tree, anchors the root with one
transaction, and stores every proof. Signing, sending, sending again, replacing and filling
nonce gaps are the signer's transaction path's (`shared/transactions`, shared in its kind with
the contracts service's relayer); this module decides what is batched, what a batch's
transaction is, and when a batch is finalized or superseded. Crash-safe by construction:

1. *prepare*: in one transaction the tree, every proof and the **signed** transaction (raw
   bytes, hash, and its nonce, taken from the signer's durable nonces in that same
   transaction) are stored and the documents are bound to the batch;
2. *send* the stored raw transaction; 3. its receipt and confirmations arrive;
4. *finalize* (`finalizing.py`): in one transaction the batch becomes `anchored`, the
   documents too, and `evidence.anchored` messages go into the outbox.

Batches are pipelined: a new one is cut and sent every batch interval (or at `batch_max`
pending) while earlier ones wait for their block, with consecutive nonces, up to
`max_in_flight` unmined; each step of the loop looks at their receipts and finalizes each one
as the chain mines it, in any order. A transaction the node lost is sent again from its stored
bytes; the one the chain waits for is replaced (same nonce, fees up 12.5%) when it is stuck;
a nonce below the batches in flight that the chain waits for with nothing sent for it (a batch
prepared for a registry that is gone, a database restored from a backup) is filled with a no-op
self-transfer once that lasts as long as a stuck transaction, so the batches above it are mined.

After a crash anywhere, `recover()` takes over prepared batches: it asks the chain whether the
root is anchored, whether the stored transaction is known, and re-sends the same signed bytes,
in nonce order (a later batch's nonce is legitimately above the chain's count); it re-signs
only when the nonce was consumed by something else without anchoring, or when the chain forgot
its past (another genesis block: the nonce counter goes back to the chain's count). So every
accepted document is anchored exactly once. `reconcile()` (`reconciling.py`) notices roots the
chain no longer holds (reset or reorg), marks those batches superseded and puts their documents
back in the queue; an RPC that fails or lags behind is never taken for a chain that lost them.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from sqlalchemy import func, select, update
from web3 import Web3

from offerseal_verify import merkle
from offerseal_verify.hexbytes import from_hex32, to_hex

from ..shared import chain, failpoints
from ..shared.db import Database, copy_text, insert_rows
from ..shared.deployments import (
    DEV_CHAIN_ID,
    EVIDENCE_REGISTRY,
    ContractMissing,
    ensure_registry,
    genesis_hash,
    recorded,
)
from ..shared.locks import ExclusiveLock
from ..shared.transactions import SignerPath, SigningChain
from ..shared.transactions.book import DbNonceBook
from ..shared.transactions.onchain import Web3SigningChain
from ..shared.workers import IDLE, reconnect_backoff, run_every
from .adapters.registry import RegistryClient
from .finalizing import finalize, seq_among
from .in_flight import Batches, Flight, attempt_of
from .models import Batch, BatchMember, Document
from .reconciling import Reconciliation
from .trees import JSON_NULL, leaves_of

log = logging.getLogger(__name__)
CHECK_EVERY = 1.0  # seconds between deeper looks (pool, nonce) at a batch not mined yet


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
        max_in_flight: int = 8,
        stuck_blocks: int = 3,
        stuck_seconds: float = 90.0,
        signing: SigningChain | None = None,
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
        self.max_in_flight = max(1, max_in_flight)
        self.stuck_blocks = stuck_blocks
        self.stuck_seconds = stuck_seconds
        self.ready = threading.Event()
        # the signer's transaction path, shared in its kind with the contracts service's
        self.path = SignerPath(
            signing or Web3SigningChain(w3, signer),
            DbNonceBook(db, signer.address),
            stuck_blocks=stuck_blocks,
            stuck_seconds=stuck_seconds,
            failpoint="anchor",
        )
        self._in_flight: dict[int, Flight] = {}
        self._batches = Batches(db, self._in_flight, self.path.chain.fields_of)
        self._forgotten = False  # the chain forgot its past: prepared batches are signed anew
        self._gap_since: tuple[float, int] | None = None  # (monotonic, head) a gap was seen
        self._gap_checked = 0.0  # monotonic, of the last look for a gap

    # ---- set-up ---------------------------------------------------------------------------

    def connect(self) -> None:
        self.chain_id = int(self.w3.eth.chain_id)
        before = recorded(self.db, self.chain_id, EVIDENCE_REGISTRY)
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
        if (
            before is not None
            and before.genesis_hash is not None
            and before.genesis_hash != genesis_hash(self.w3)
        ):
            self._chain_forgot()

    def _chain_forgot(self) -> None:
        """Another genesis block: nothing this key sent before is on the chain, so its nonce
        counter goes back to the chain's count and prepared batches are signed anew."""
        count = self.path.chain.sent_count(self.signer.address, pending=True)
        self.path.rewind(count)
        log.warning(
            "the chain has another genesis block (reset): nonces of %s start again at %s",
            self.signer.address,
            count,
        )
        self._forgotten = True
        self._in_flight.clear()

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
        """Build the next tree and store it with its transaction, signed with the signer's next
        nonce (taken in the same database transaction). Returns the batch id. The caller holds
        the signer's sending lock (`_sending`) until the transaction is sent."""
        registry = self._registry()
        floor = self._floor()
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
            fields = registry.anchor_fields(
                tree.root, self.chain_id, self.path.chain.suggested_fees()
            )
            (prepared,) = self.path.sign_new(session, [fields], floor)
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
                leaves=leaves_of(leaves),  # each member's proof is rebuilt from them
            )
            session.add(batch)
            session.flush()
            seqs = [int(seq) for seq, _ in rows]
            if session.connection().dialect.name == "postgresql":
                copy_text(
                    session,
                    "batch_members",
                    ("batch_id", "document_seq", "proof"),
                    "".join(f"{batch.id}\t{seq}\t{JSON_NULL}\n" for seq in seqs),
                )
            else:
                insert_rows(
                    session,
                    BatchMember,
                    [{"batch_id": batch.id, "document_seq": seq, "proof": None} for seq in seqs],
                )
            session.execute(
                update(Document).where(seq_among(session, seqs)).values(batch_id=batch.id),
                execution_options={"synchronize_session": False},
            )
            batch_id = batch.id
        log.info(
            "batch %s prepared: %s leaves, root %s, nonce %s, tx %s",
            batch_id,
            len(rows),
            to_hex(tree.root),
            nonce,
            prepared.tx_hash,
        )
        return batch_id

    def _sending(self) -> AbstractContextManager[None]:
        """The signer's sending lock, shared with the contracts service (`nonces.sending`)."""
        return self.path.sending()

    def _mined_count(self) -> int:
        return self.path.chain.sent_count(self.signer.address)

    def _floor(self) -> int:
        """The lowest nonce a new transaction may take: above every one the chain has mined and
        every batch in flight (prepared before the nonce manager kept this signer's count)."""
        return max([self._mined_count()] + [f.nonce + 1 for f in self._in_flight.values()])

    def _load(self, batch_id: int) -> Flight:
        with self.db.sessions() as session:
            batch = session.get(Batch, batch_id)
            assert batch is not None and batch.tx_hash and batch.raw_tx is not None
            return Flight(
                batch_id=batch_id,
                root=from_hex32(batch.root),
                nonce=int(batch.nonce or 0),
                tx_hash=batch.tx_hash,
                raw=bytes(batch.raw_tx),
                sent_at=time.monotonic(),
                sent_block=None,  # the head at the next look
            )

    def cut(self) -> int | None:
        """Prepare the next batch and send its transaction, whatever is still in flight.
        Returns its id (None when nothing waits)."""
        with self._sending():
            batch_id = self.prepare()
            if batch_id is None:
                return None
            flight = self._load(batch_id)
            failpoints.hit("anchor.before_send")
            self._send(flight)
            failpoints.hit("anchor.after_send")
        self._in_flight[batch_id] = flight
        return batch_id

    def _send(self, flight: Flight) -> bool:
        """Send the stored bytes. A node that does not answer raises (the loop reconnects and
        recovers); a refusal (already known, fees too low) is left for `watch` to look at:
        False."""
        return self.path.send(flight.raw, flight.tx_hash, quiet=False) is True

    def complete(self, batch_id: int, timeout: float = 120.0) -> None:
        """Send (or re-send) a prepared batch's transaction and wait until it is finalized."""
        if batch_id not in self._in_flight:
            self._in_flight[batch_id] = self._recover_one(batch_id, self._mined_count())
        deadline = time.monotonic() + timeout
        while batch_id in self._in_flight:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"batch {batch_id} not anchored within {timeout} s")
            if not self.watch():
                time.sleep(0.05)

    # ---- in flight -------------------------------------------------------------------------

    def in_flight(self) -> int:
        return len(self._in_flight)

    def watch(self) -> int:
        """One look at every batch in flight: finalize the mined and confirmed ones (in any
        order the chain mined them); send again, replace or re-sign the ones that hold up.
        Returns how many were finalized or released."""
        if not self._in_flight:
            return 0
        registry = self._registry()
        head = self.path.chain.block_number()
        now = time.monotonic()
        done = 0
        due: list[Flight] = []
        for flight in sorted(self._in_flight.values(), key=lambda f: f.nonce):
            receipt = flight.receipt
            if receipt is None and (flight.looked_at != head or now - flight.asked_at >= 0.5):
                # Asked for once per block (and twice a second, should the index lag the head).
                receipt = registry.receipt(flight.tx_hash)
                flight.looked_at, flight.asked_at = head, now
            if receipt is None:
                if flight.sent_block is None:
                    flight.sent_block = head
                if now - flight.checked_at >= CHECK_EVERY:
                    due.append(flight)
                continue
            flight.receipt = receipt
            if head < int(receipt["blockNumber"]) + self.confirmations - 1:
                continue
            if self.confirmations > 1:
                # Confirmed: make sure the block that holds it is still the chain's.
                again = registry.receipt(to_hex(bytes(receipt["transactionHash"])))
                if again is None or again["blockHash"] != receipt["blockHash"]:
                    flight.receipt = None
                    continue
            failpoints.hit("anchor.after_receipt")
            self._settle(flight, receipt)
            del self._in_flight[flight.batch_id]
            done += 1
        if due:
            self._unstick(due, head, now)
        if self._in_flight:
            self._fill_gap(head, now)
        return done

    def _settle(self, flight: Flight, receipt: Any) -> None:
        if receipt["status"] != 1:
            # Reverted: an earlier attempt (a replaced or re-signed transaction) may have
            # anchored the root already.
            receipt = self._registry().receipt_of_anchor(flight.root)
            if receipt is None:
                self._release(flight.batch_id, f"anchor transaction {flight.tx_hash} reverted")
                return
        self.finalize(flight.batch_id, receipt)

    def _unstick(self, due: list[Flight], head: int, now: float) -> None:
        """For unmined batches: an earlier attempt mined is recognised; a nonce consumed by
        another transaction of this key is signed again with a new one; the rest is the
        signer's path's: bytes the node lost are sent again, and the transaction the chain
        waits for next is replaced with higher fees when it is stuck (not mined after
        `stuck_blocks` blocks or `stuck_seconds`) or when the node refuses its bytes."""
        registry = self._registry()
        mined = self._mined_count()
        for flight in due:
            flight.checked_at = now
            if registry.anchored_at(flight.root) != 0:
                flight.receipt = registry.receipt_of_anchor(flight.root)
                continue
            known = self.path.chain.transaction_known(flight.tx_hash)
            if not known and flight.nonce < mined:
                self._resign(flight, "its nonce was used by another transaction")
                continue
            late = now - flight.sent_at >= self.stuck_seconds or (
                flight.sent_block is not None and head - flight.sent_block >= self.stuck_blocks
            )
            if known and (flight.nonce != mined or not late):
                continue
            with self._sending():
                self.path.resend_or_replace(
                    attempt_of(flight, self.path.chain.fields_of),
                    self._batches,
                    head,
                    next_on_chain=flight.nonce == mined,
                )

    def _fill_gap(self, head: int, now: float) -> None:
        """When the chain waits for a nonce below every batch in flight, and the node holds no
        transaction for it, for as long as makes a transaction stuck: fill it with a no-op
        self-transfer. Looked at under the signer's lock, where whoever took a nonce (this
        worker or the contracts service sharing the key) has sent it: only the first nonce
        the node lacks is filled at a time, never one another transaction may hold."""
        if now - self._gap_checked < CHECK_EVERY:
            return
        self._gap_checked = now
        lowest = min(f.nonce for f in self._in_flight.values())
        mined = self._mined_count()
        if lowest <= mined:
            self._gap_since = None
            return
        if self._gap_since is None:
            self._gap_since = (now, head)
            return
        since, since_head = self._gap_since
        if now - since < self.stuck_seconds and head - since_head < self.stuck_blocks:
            return
        with self._sending():
            missing = self.path.chain.sent_count(self.signer.address, pending=True)
            if missing < lowest:  # else the node holds a transaction for every nonce below ours
                self.path.fill(missing)

    def _resign(self, flight: Flight, reason: str) -> None:
        """Sign the batch's anchor again with the signer's next nonce (taken and stored in one
        database transaction), then send it."""
        registry = self._registry()
        with self._sending():
            floor = self._floor()
            fields = registry.anchor_fields(
                flight.root, self.chain_id, self.path.chain.suggested_fees()
            )
            with self.db.transaction() as session:
                (prepared,) = self.path.sign_new(session, [fields], floor)
                session.execute(
                    update(Batch)
                    .where(Batch.id == flight.batch_id)
                    .values(nonce=prepared.nonce, tx_hash=prepared.tx_hash, raw_tx=prepared.raw)
                )
            flight.took(prepared)
            log.info(
                "batch %s re-signed with nonce %s (%s): %s",
                flight.batch_id,
                prepared.nonce,
                reason,
                prepared.tx_hash,
            )
            failpoints.hit("anchor.before_send")
            self._send(flight)
            failpoints.hit("anchor.after_send")

    def _release(self, batch_id: int, reason: str) -> None:
        log.error("batch %s failed: %s; its documents go back to the queue", batch_id, reason)
        with self.db.transaction() as session:
            session.execute(update(Batch).where(Batch.id == batch_id).values(state="failed"))
            session.execute(
                update(Document).where(Document.batch_id == batch_id).values(batch_id=None)
            )

    def finalize(self, batch_id: int, receipt: Any) -> None:
        block = self.w3.eth.get_block(receipt["blockNumber"])
        finalize(self.db, batch_id, receipt, int(block["timestamp"]))

    # ---- recovery and reconciliation ------------------------------------------------------

    def recover(self) -> None:
        """Take over every batch a previous process (or this one, before a failure) prepared
        but did not finalize: mined ones are finalized once confirmed; stored bytes the node
        does not know are sent again, in nonce order; a batch is signed again only when its
        nonce was consumed by another transaction or the chain forgot its past (reset)."""
        self._in_flight.clear()
        with self.db.sessions() as session:
            ids = (
                session.execute(
                    select(Batch.id)
                    .where(Batch.state == "prepared")
                    .order_by(Batch.nonce, Batch.id)
                )
                .scalars()
                .all()
            )
        mined = self._mined_count() if ids else 0
        for batch_id in ids:
            log.info("recovering batch %s", batch_id)
            with self.db.sessions() as session:
                batch = session.get(Batch, batch_id)
                assert batch is not None
                stale = batch.registry_address != self._registry().address
            if stale:  # prepared against a registry that is gone: build it again
                self._release(batch_id, "prepared for a registry that no longer exists")
                continue
            self._in_flight[batch_id] = self._recover_one(batch_id, mined)
        self._forgotten = False

    def _recover_one(self, batch_id: int, mined: int) -> Flight:
        registry = self._registry()
        flight = self._load(batch_id)
        flight.receipt = registry.receipt(flight.tx_hash)
        if flight.receipt is not None:
            return flight
        if registry.anchored_at(flight.root) != 0:  # an earlier attempt anchored it
            flight.receipt = registry.receipt_of_anchor(flight.root)
            return flight
        if self.path.chain.transaction_known(flight.tx_hash):
            return flight  # waiting in the node's pool
        if flight.nonce < mined or self._forgotten:
            reason = "the chain forgot it" if self._forgotten else "its nonce was used"
            self._resign(flight, reason)
            return flight
        log.info("re-sending the stored transaction of batch %s", batch_id)
        with self._sending():
            failpoints.hit("anchor.before_send")
            self._send(flight)
            failpoints.hit("anchor.after_send")
        return flight

    def reconcile(self) -> int:
        """Supersede anchored batches whose root the chain no longer holds (`reconciling.py`).
        Returns how many."""
        registry = self._registry()
        if Reconciliation(self.db, self.w3, registry, self.chain_id).newest_intact():
            return 0  # the head and one block read: the common case, every few seconds
        if not chain.has_code(self.w3, registry.address):
            # Redeploys only on a chain with another genesis (reset); a node that is merely
            # behind raises ChainBehind and nothing changes.
            self.connect()
            registry = self._registry()
        return Reconciliation(self.db, self.w3, registry, self.chain_id).run()

    # ---- the loop -------------------------------------------------------------------------

    def run_once(self) -> int | None:
        """Cut one batch and wait until it is anchored (tests and tools; the loop does not wait)."""
        batch_id = self.cut()
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
        backoff = reconnect_backoff()
        connected = False
        last_batch = last_reconcile = time.monotonic()

        def step() -> object:
            """One look at the batches in flight and at the queue; True when something moved
            (look again at once), IDLE when nothing waits and nothing is in flight."""
            nonlocal connected, last_batch, last_reconcile
            if not connected:
                self.connect()
                self.recover()
                connected = True
                self.ready.set()
            now = time.monotonic()
            if now - last_reconcile >= self.reconcile_interval:
                self.reconcile()
                if self._forgotten:
                    self.recover()
                last_reconcile = now
            finished = self.watch()
            if finished:
                backoff.reset()
            if len(self._in_flight) >= self.max_in_flight:
                return finished > 0  # the chain holds enough of ours: wait for it
            pending = self.pending_count()
            if pending and (pending >= self.batch_max or now - last_batch >= self.batch_interval):
                self.cut()
                last_batch = time.monotonic()
                return True
            if not pending:
                last_batch = now
                if not finished and not self._in_flight:
                    return IDLE
            return finished > 0

        def paused(_exc: BaseException) -> None:
            nonlocal connected
            connected = False
            self.ready.clear()

        run_every(
            stop,
            min(0.05, self.batch_interval),
            step,
            name="anchoring",
            log=log,
            backoff=backoff,
            on_error=paused,
            reset_after_step=False,
        )

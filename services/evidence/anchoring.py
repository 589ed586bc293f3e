"""The anchoring worker: batches pending leaves into one Merkle tree, anchors the root with one
transaction, and stores every proof. Crash-safe by construction:

1. *prepare*: in one transaction the tree, every proof and the **signed** transaction (raw
   bytes, hash, and its nonce, taken from the signer's durable nonce manager `nonces.take` in
   that same transaction) are stored and the documents are bound to the batch;
2. *send* the stored raw transaction; 3. its receipt and confirmations arrive;
4. *finalize*: in one transaction the batch becomes `anchored`, the documents too, and
   `evidence.anchored` messages go into the outbox.

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
accepted document is anchored exactly once. `reconcile()` notices roots the chain no longer
holds (reset or reorg), marks those batches superseded and puts their documents back in the
queue; an RPC that fails or lags behind is never taken for a chain that lost them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from eth_account.signers.local import LocalAccount
from sqlalchemy import BigInteger, ColumnElement, any_, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from web3 import Web3

from offerseal_verify import merkle
from offerseal_verify.hexbytes import from_hex32, to_hex

from ..shared import chain, failpoints, messages, nonces
from ..shared.broker import enqueue
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
from ..shared.models import aware, utcnow
from ..shared.workers import reconnect_backoff, run_every
from .adapters.registry import RegistryClient
from .domain.documents import CANDIDATE_LINK
from .models import Batch, BatchMember, Document
from .trees import JSON_NULL, leaves_of, path_hex, tree_of

log = logging.getLogger(__name__)
CHECK_EVERY = 1.0  # seconds between deeper looks (pool, nonce) at a batch not mined yet


@dataclass
class _Flight:
    """A prepared batch whose transaction is sent and not finalized yet."""

    batch_id: int
    root: bytes
    nonce: int
    tx_hash: str
    raw: bytes
    sent_at: float  # monotonic, of the current attempt
    sent_block: int | None  # the chain's head when it was sent (seen at the next look)
    receipt: Any | None = None  # mined, waiting for its confirmations
    checked_at: float = 0.0  # monotonic, of the last look at the pool and the nonce
    looked_at: int | None = None  # the head when its receipt was last asked for, and when
    asked_at: float = 0.0


def seq_among(session: Session, seqs: Sequence[int]) -> ColumnElement[bool]:
    """`Document.seq IN seqs`; on PostgreSQL as `= ANY(array)`, one parameter (an IN list of
    10,000 takes longer to compile and to plan than the update takes)."""
    if session.connection().dialect.name == "postgresql":
        return Document.seq == any_(bindparam("seqs", list(seqs), type_=ARRAY(BigInteger)))
    return Document.seq.in_(seqs)


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
        self._in_flight: dict[int, _Flight] = {}
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
        count = int(self.w3.eth.get_transaction_count(self.signer.address, "pending"))
        with self._sending(), self.db.transaction() as session:
            nonces.rewind(session, self.chain_id, self.signer.address, count)
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
            nonce = nonces.take(session, self.chain_id, self.signer.address, floor)
            prepared = registry.prepare_anchor(self.signer, tree.root, nonce)
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
        return nonces.sending(self.db, self.signer.address)

    def _mined_count(self) -> int:
        return int(self.w3.eth.get_transaction_count(self.signer.address, "latest"))

    def _floor(self) -> int:
        """The lowest nonce a new transaction may take: above every one the chain has mined and
        every batch in flight (prepared before the nonce manager kept this signer's count)."""
        return max([self._mined_count()] + [f.nonce + 1 for f in self._in_flight.values()])

    def _load(self, batch_id: int) -> _Flight:
        with self.db.sessions() as session:
            batch = session.get(Batch, batch_id)
            assert batch is not None and batch.tx_hash and batch.raw_tx is not None
            return _Flight(
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

    def _send(self, flight: _Flight) -> bool:
        """Send the stored bytes. A node that does not answer raises (the loop reconnects and
        recovers); a refusal (already known, fees too low) is left for `watch` to look at:
        False."""
        try:
            self._registry().send_raw(flight.raw)
        except (requests.ConnectionError, requests.Timeout):
            raise
        except Exception as exc:
            log.warning("the node refused %s of batch %s: %s", flight.tx_hash, flight.batch_id, exc)
            return False
        return True

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
        head = int(self.w3.eth.block_number)
        now = time.monotonic()
        done = 0
        due: list[_Flight] = []
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

    def _settle(self, flight: _Flight, receipt: Any) -> None:
        if receipt["status"] != 1:
            # Reverted: an earlier attempt (a replaced or re-signed transaction) may have
            # anchored the root already.
            receipt = self._registry().receipt_of_anchor(flight.root)
            if receipt is None:
                self._release(flight.batch_id, f"anchor transaction {flight.tx_hash} reverted")
                return
        self.finalize(flight.batch_id, receipt)

    def _unstick(self, due: list[_Flight], head: int, now: float) -> None:
        """For unmined batches: an earlier attempt mined is recognised; bytes the node lost
        are sent again; a nonce consumed by another transaction of this key is signed again
        with a new one; the transaction the chain waits for next is replaced with higher fees
        when it is stuck (not mined after `stuck_blocks` blocks or `stuck_seconds`)."""
        registry = self._registry()
        mined = self._mined_count()
        for flight in due:
            flight.checked_at = now
            if registry.anchored_at(flight.root) != 0:
                flight.receipt = registry.receipt_of_anchor(flight.root)
                continue
            if not registry.transaction_known(flight.tx_hash):
                if flight.nonce < mined:
                    self._resign(flight, "its nonce was used by another transaction")
                    continue
                log.info("re-sending the stored transaction of batch %s", flight.batch_id)
                with self._sending():
                    sent = self._send(flight)
                if sent or flight.nonce != mined:
                    continue
                # The node refuses the stored bytes of the nonce it waits for (the base fee
                # rose above their cap): replaced below.
            elif flight.nonce != mined or not (
                now - flight.sent_at >= self.stuck_seconds
                or (flight.sent_block is not None and head - flight.sent_block >= self.stuck_blocks)
            ):
                continue
            self._replace(flight)

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
            missing = int(self.w3.eth.get_transaction_count(self.signer.address, "pending"))
            if missing >= lowest:
                return  # the node holds a transaction for every nonce below ours
            fees = chain.suggested_fees(self.w3)
            fields = nonces.bumped(
                chain.self_transfer_fields(self.chain_id, self.signer.address, fees), fees
            )
            filler = chain.sign_eip1559(self.signer, fields, missing)
            log.warning(
                "nonce %d of %s has no transaction (the batches above it wait): filled with a "
                "self-transfer %s",
                missing,
                self.signer.address,
                filler.tx_hash,
            )
            try:
                self._registry().send_raw(filler.raw)
            except (requests.ConnectionError, requests.Timeout):
                raise
            except Exception as exc:  # tried again at the next look while the gap stays
                log.warning("the self-transfer for nonce %d was refused (%s)", missing, exc)

    def _replace(self, flight: _Flight) -> None:
        """The same anchor with the same nonce and fees up by 12.5%, stored before it is sent."""
        registry = self._registry()
        fees = nonces.bumped(chain.fees_of(flight.raw), chain.suggested_fees(self.w3))
        with self._sending():
            prepared = registry.prepare_anchor(self.signer, flight.root, flight.nonce, fees)
            self._store_attempt(flight, prepared.nonce, prepared.tx_hash, prepared.raw)
            log.warning(
                "the anchor of batch %s (nonce %s) is stuck: replaced by %s (max fee %s)",
                flight.batch_id,
                flight.nonce,
                prepared.tx_hash,
                fees["maxFeePerGas"],
            )
            self._send(flight)

    def _resign(self, flight: _Flight, reason: str) -> None:
        """Sign the batch's anchor again with the signer's next nonce (taken and stored in one
        database transaction), then send it."""
        registry = self._registry()
        with self._sending():
            floor = self._floor()
            with self.db.transaction() as session:
                nonce = nonces.take(session, self.chain_id, self.signer.address, floor)
                prepared = registry.prepare_anchor(self.signer, flight.root, nonce)
                session.execute(
                    update(Batch)
                    .where(Batch.id == flight.batch_id)
                    .values(nonce=nonce, tx_hash=prepared.tx_hash, raw_tx=prepared.raw)
                )
            self._took(flight, nonce, prepared.tx_hash, prepared.raw)
            log.info(
                "batch %s re-signed with nonce %s (%s): %s",
                flight.batch_id,
                nonce,
                reason,
                prepared.tx_hash,
            )
            failpoints.hit("anchor.before_send")
            self._send(flight)
            failpoints.hit("anchor.after_send")

    def _store_attempt(self, flight: _Flight, nonce: int, tx_hash: str, raw: bytes) -> None:
        with self.db.transaction() as session:
            session.execute(
                update(Batch)
                .where(Batch.id == flight.batch_id)
                .values(nonce=nonce, tx_hash=tx_hash, raw_tx=raw)
            )
        self._took(flight, nonce, tx_hash, raw)

    def _took(self, flight: _Flight, nonce: int, tx_hash: str, raw: bytes) -> None:
        flight.nonce, flight.tx_hash, flight.raw = nonce, tx_hash, raw
        flight.sent_at, flight.sent_block, flight.receipt = time.monotonic(), None, None
        flight.looked_at = None

    def _release(self, batch_id: int, reason: str) -> None:
        log.error("batch %s failed: %s; its documents go back to the queue", batch_id, reason)
        with self.db.transaction() as session:
            session.execute(update(Batch).where(Batch.id == batch_id).values(state="failed"))
            session.execute(
                update(Document).where(Document.batch_id == batch_id).values(batch_id=None)
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
            # The batch's documents found by its members (by primary key), not by `batch_id`
            # (no index: a scan of every document ever taken in, twice a batch).
            members_seq = seq_among(
                session,
                session.execute(
                    select(BatchMember.document_seq).where(BatchMember.batch_id == batch_id)
                )
                .scalars()
                .all(),
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
                .where(
                    BatchMember.batch_id == batch_id,
                    members_seq,
                    Document.agreement_id.is_not(None),
                )
            ).all()
            per_tenant = session.execute(
                select(Document.tenant, func.count())
                .where(Document.batch_id == batch_id, members_seq)
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
                            "proof": proof,
                            "chain_id": batch.chain_id,
                            "registry": batch.registry_address,
                            "tx_hash": batch.tx_hash,
                            "block_number": batch.block_number,
                            "block_timestamp": batch.block_timestamp,
                            "batch_id": batch.id,
                        },
                    )
                    for m, proof in zip(members, self._paths(batch, members), strict=True)
                ],
            )
        log.info(
            "batch %s anchored in block %s (%s gas for %s leaves)",
            batch_id,
            receipt["blockNumber"],
            receipt["gasUsed"],
            batch.leaf_count,
        )

    @staticmethod
    def _paths(batch: Batch, members: Sequence[Any]) -> list[list[str]]:
        """The members' proofs: as stored (batches prepared before revision 0022), or rebuilt
        from the batch's stored leaves (the tree built only if some member needs it)."""
        tree = None
        paths = []
        for m in members:
            if m.proof is not None:
                paths.append(list(m.proof))
                continue
            if tree is None:
                tree = tree_of(batch.leaves)
            paths.append(path_hex(tree, from_hex32(m.leaf)))
        return paths

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

    def _recover_one(self, batch_id: int, mined: int) -> _Flight:
        registry = self._registry()
        flight = self._load(batch_id)
        flight.receipt = registry.receipt(flight.tx_hash)
        if flight.receipt is not None:
            return flight
        if registry.anchored_at(flight.root) != 0:  # an earlier attempt anchored it
            flight.receipt = registry.receipt_of_anchor(flight.root)
            return flight
        if registry.transaction_known(flight.tx_hash):
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
                update(Document).where(Document.batch_id == batch_id).values(batch_id=None)
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

        def step() -> bool:
            """One look at the batches in flight and at the queue; True when something moved
            (look again at once)."""
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

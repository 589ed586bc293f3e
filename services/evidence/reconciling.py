"""Reconciling anchored batches with the chain: a root the chain no longer holds (a reset, a
reorg) makes its batch superseded and its documents go back to the queue; an RPC that fails or
a node that lags behind is never taken for a chain that lost them."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select, update
from web3 import Web3

from offerseal_verify.hexbytes import from_hex32

from ..shared import messages
from ..shared.broker import enqueue
from ..shared.db import Database
from ..shared.deployments import EVIDENCE_REGISTRY, genesis_hash, recorded
from ..shared.models import aware, utcnow
from .adapters.registry import RegistryClient
from .models import Batch, Document

log = logging.getLogger("offerseal.evidence.anchoring")


@dataclass
class Reconciliation:
    """One look at the anchored batches of `chain_id` through `w3` and the current registry."""

    db: Database
    w3: Web3
    registry: RegistryClient
    chain_id: int

    def newest_intact(self) -> bool:
        """True when the newest anchored batch's block is on the chain with the hash recorded,
        under the registry in use, and the head at or past it: the chain's history up to that
        block is the one we anchored in (a block hash commits to every block before it), so no
        root is gone. Two reads instead of the checks of `Anchorer.reconcile` and `run`; any
        doubt (no batch, another block, an RPC failure) is False, and they decide."""
        with self.db.sessions() as session:
            latest = session.execute(
                select(Batch.block_number, Batch.block_hash, Batch.registry_address)
                .where(Batch.state == "anchored", Batch.chain_id == self.chain_id)
                .order_by(Batch.id.desc())
                .limit(1)
            ).one_or_none()
        if latest is None:
            return False  # `run` still looks whether the registry is there (a reset chain)
        number, block_hash, registry_address = latest
        if not number or not block_hash or registry_address != self.registry.address:
            return False
        try:
            if int(self.w3.eth.block_number) < int(number):
                return False  # behind, or another chain: `run` tells which
            block = self.w3.eth.get_block(int(number))
        except Exception:  # not there (a reset chain, a node behind) or unreachable: run decides
            return False
        return bool(block["hash"].to_0x_hex() == block_hash)

    def run(self) -> int:
        """Supersede anchored batches whose root the chain no longer holds. Returns how many.

        Only a chain that answers counts: an RPC failure raises (nothing is superseded), and a
        node whose head is below an anchor's block is taken as behind, not as reset, unless it
        answers with another genesis block (another history)."""
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
        registry = self.registry
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

"""A document's proof bundles: the current one once its batch is anchored, and every one it
ever had (superseded batches after a chain reorganisation included), each with its path to the
root, the anchor, its intake receipt, and the root's time-stamps and judicial-chain deposits."""

from __future__ import annotations

from typing import Any

from offerseal_verify import timestamps
from offerseal_verify.hexbytes import from_hex32

from ..shared.auth import READ_ROLES, Principal
from .domain.documents import ANCHORED, status_of
from .domain.records import StoredBatch, StoredDocument, bundle
from .domain.statements import receipt_time
from .errors import ProofPending
from .ports import EvidenceReads, EvidenceStorage
from .reads import ReceiptBook, load
from .trees import TreeCache, path_hex


class Proofs:
    def __init__(self, storage: EvidenceStorage, receipts: ReceiptBook, trees: TreeCache) -> None:
        self.storage = storage
        self.receipts = receipts
        self.trees = trees

    def proof(self, principal: Principal, document_id: str) -> dict[str, Any]:
        """The bundle of the document's current proof; ProofPending until its batch is
        anchored."""
        principal.require(*READ_ROLES)
        with self.storage.reads() as reads:
            doc = load(reads, principal, document_id)
            batch = reads.batch(doc.batch_id) if doc.batch_id else None
            if batch is None or status_of(batch.state) != ANCHORED:
                raise ProofPending(
                    "the document is accepted and waiting for its batch to be anchored; "
                    "retry after a few seconds",
                    retry_after=1,
                )
            return self._bundle(reads, doc, batch, reads.stored_path(batch.id, doc.seq))

    def proofs(self, principal: Principal, document_id: str) -> list[dict[str, Any]]:
        """Every proof the document ever had: the current one and superseded ones."""
        principal.require(*READ_ROLES)
        with self.storage.reads() as reads:
            doc = load(reads, principal, document_id)
            return [
                {
                    "state": batch.state,
                    "superseded_at": receipt_time(batch.superseded_at)
                    if batch.superseded_at
                    else None,
                    "bundle": self._bundle(reads, doc, batch, stored),
                }
                for batch, stored in reads.history(doc.seq)
            ]

    def _bundle(
        self,
        reads: EvidenceReads,
        doc: StoredDocument,
        batch: StoredBatch,
        stored: list[str] | None,
    ) -> dict[str, Any]:
        return bundle(
            doc,
            batch,
            self._path(reads, batch.id, doc, stored),
            [timestamps.bundle_entry(tsa, stamp) for tsa, stamp in reads.stamps(batch.id)],
            self.receipts.of(reads, doc),
            reads.deposits(batch.id, doc.tenant),
        )

    def _path(
        self, reads: EvidenceReads, batch_id: int, doc: StoredDocument, stored: list[str] | None
    ) -> list[str]:
        """A document's proof in an anchored batch: as its member row stored it (batches
        prepared before revision 0022), or rebuilt from the batch's stored leaves."""
        if stored is not None:
            return stored
        tree = self.trees.get(("batch", batch_id), lambda: reads.batch_leaves(batch_id))
        return path_hex(tree, from_hex32(doc.leaf))

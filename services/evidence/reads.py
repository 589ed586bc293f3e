"""Reading documents back: one document's description, a page of a tenant's documents, a
document's bytes; and each document's intake receipt as it was signed (`ReceiptBook`), which
the proofs serve too."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from offerseal_verify.receipts import item_leaf, member_receipt

from ..shared.auth import READ_ROLES, Principal
from .crypto import DocumentCipher, UnknownMasterKey
from .domain.records import StoredDocument, describe
from .domain.statements import statement_of
from .errors import DocumentNotFound, MasterKeyMissing, NoContent
from .ports import EvidenceReads, EvidenceStorage
from .trees import TreeCache, path_hex

log = logging.getLogger(__name__)


def load(reads: EvidenceReads, principal: Principal, document_id: str) -> StoredDocument:
    """The tenant's document (DocumentNotFound otherwise)."""
    doc = reads.document(principal.tenant, document_id)
    if doc is None:  # another tenant's document looks exactly like a missing one
        raise DocumentNotFound(f"no document {document_id}")
    return doc


class ReceiptBook:
    """Documents' intake receipts as they were signed. Hash-only intake stored the batch
    receipt once and each document's path into it (or the leaves of its tree): a document's
    receipt is rebuilt from them and its statement (its columns). Signed receipts and stored
    trees never change, so both are kept for the next request."""

    def __init__(self, trees: TreeCache) -> None:
        self.trees = trees
        self._intake_batches: dict[int, dict[str, Any]] = {}  # signed batch receipts, by id

    def of(self, reads: EvidenceReads, doc: StoredDocument) -> dict[str, Any]:
        if doc.intake_batch_id is None:
            assert doc.receipt is not None
            return doc.receipt
        intake_batch_id = doc.intake_batch_id
        batch = self._intake_batches.get(intake_batch_id)
        if batch is None:
            batch = reads.intake_receipt(intake_batch_id)
            if len(self._intake_batches) > 1000:
                self._intake_batches.clear()
            self._intake_batches[intake_batch_id] = batch  # signed: never changes
        item = statement_of(
            doc.id, doc.sha256, doc.size, doc.kind, int(doc.sequence), bool(doc.has_content)
        )
        if doc.receipt is not None:  # stored before revision 0022, with its path
            return member_receipt(batch, item, list(doc.receipt["item_proof"]))
        tree = self.trees.get(
            ("intake", intake_batch_id), lambda: reads.intake_leaves(intake_batch_id)
        )
        return member_receipt(batch, item, path_hex(tree, item_leaf(item)))


class Reads:
    def __init__(
        self, storage: EvidenceStorage, cipher: DocumentCipher, receipts: ReceiptBook
    ) -> None:
        self.storage = storage
        self.cipher = cipher
        self.receipts = receipts

    def get(self, principal: Principal, document_id: str) -> dict[str, Any]:
        """The document's description (`domain.records.describe`)."""
        principal.require(*READ_ROLES)
        with self.storage.reads() as reads:
            doc = load(reads, principal, document_id)
            batch = reads.batch(doc.batch_id) if doc.batch_id else None
            return describe(doc, batch, self.receipts.of(reads, doc))

    def list_documents(
        self, principal: Principal, candidate_ref: str | None, after: int, limit: int
    ) -> tuple[list[dict[str, Any]], int | None]:
        """A page of the tenant's documents in intake order; returns (items, next cursor)."""
        principal.require(*READ_ROLES)
        with self.storage.reads() as reads:
            docs = reads.page(principal.tenant, candidate_ref, after, limit + 1)
            batches = reads.batches({d.batch_id for d in docs if d.batch_id})
            page = docs[:limit]
            items = [
                describe(d, batches.get(d.batch_id or -1), self.receipts.of(reads, d)) for d in page
            ]
            cursor = page[-1].sequence if len(docs) > limit else None
            return items, cursor

    def content(self, principal: Principal, document_id: str) -> tuple[bytes, str, str | None]:
        """The document's bytes, decrypted and checked against its sha256: (bytes, media
        type, file name)."""
        principal.require(*READ_ROLES)
        with self.storage.reads() as reads:
            doc = load(reads, principal, document_id)
            sealed = reads.sealed(doc.seq)
        if sealed is None:
            raise NoContent("this document was registered by hash only; no bytes are stored")
        try:
            plaintext = self.cipher.open(doc.id, sealed)
        except UnknownMasterKey as exc:
            log.error("cannot open document %s: %s", doc.id, exc)
            raise MasterKeyMissing(
                f"this document was stored under master key {exc.version}, which the "
                "service is not configured with; the operator must add that key to "
                "OFFERSEAL_MASTER_KEYS_PREVIOUS (see the README, key rotation)"
            ) from None
        if hashlib.sha256(plaintext).hexdigest() != doc.sha256[2:]:
            raise RuntimeError(f"stored content of {doc.id} does not match its sha256")
        return plaintext, doc.content_type or "application/octet-stream", doc.filename

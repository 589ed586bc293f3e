"""The evidence service layer assembled from its parts, each deciding one thing: intake
(`intake.py`), reads (`reads.py`), proofs (`proofs.py`) and verification (`verification.py`),
over the storage port (`ports.py`, `adapters/storage.py`). It decides nothing itself: the HTTP
layer, the certificate issuer and the tests call the methods below, each handed to its part."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from offerseal_verify.proofs import ChainView, Verdict
from offerseal_verify.receipts import ReceiptSigner, TrustedKey

from ..shared.auth import Principal
from ..shared.db import Database
from ..shared.group_commit import GroupCommit
from ..shared.links import Link
from .adapters.storage import SqlStorage
from .crypto import DocumentCipher
from .domain.documents import NewDocument
from .intake import Intake
from .proofs import Proofs
from .provenance import DnsTxt, Provenance
from .reads import Reads, ReceiptBook
from .receipt_keys import ReceiptKeys
from .trees import TreeCache
from .verification import Verification

if TYPE_CHECKING:
    from cryptography.x509 import Certificate


class EvidenceService:
    def __init__(
        self,
        db: Database,
        cipher: DocumentCipher,
        signer: ReceiptSigner,
        tsa_roots: Sequence[Certificate] | None = None,
        dkim_dns: DnsTxt | None = None,
        group: GroupCommit | None = None,
    ) -> None:
        self.db = db
        # Uploads through the API share transactions with those arriving at the same time
        # (None: each its own transaction).
        self.group = group
        self.cipher = cipher
        self.signer = signer
        self.keys = ReceiptKeys(db, signer)
        self.trees = TreeCache()  # intake batches' and anchored batches' trees, rebuilt
        storage = SqlStorage(db, group)
        receipts = ReceiptBook(self.trees)
        self.intake = Intake(storage, cipher, signer, dkim_dns)
        self.reads = Reads(storage, cipher, receipts)
        self.proving = Proofs(storage, receipts, self.trees)
        self.verification = Verification(self.keys, tsa_roots)

    @property
    def tsa_roots(self) -> list[Certificate] | None:
        """The TSA roots /v1/verify trusts for RFC 3161 stamps (None: each bundle's own)."""
        return self.verification.tsa_roots

    # ---- intake (`intake.py`) -------------------------------------------------------------

    def ingest(
        self,
        principal: Principal,
        doc: NewDocument,
        idempotency_key: str | None = None,
        seen: Provenance | None = None,
    ) -> tuple[int, dict[str, Any], bool]:
        return self.intake.ingest(principal, doc, idempotency_key, seen)

    def ingest_hashes(
        self,
        principal: Principal,
        docs: Sequence[NewDocument],
        idempotency_key: str | None = None,
        seen: Provenance | None = None,
    ) -> tuple[int, dict[str, Any], bool]:
        return self.intake.ingest_hashes(principal, docs, idempotency_key, seen)

    def ingest_from_candidate(
        self, link: Link, doc: NewDocument, seen: Provenance | None = None
    ) -> dict[str, Any]:
        return self.intake.ingest_from_candidate(link, doc, seen)

    def ingest_record(
        self, link: Link, doc: NewDocument, seen: Provenance | None = None
    ) -> dict[str, Any]:
        return self.intake.ingest_record(link, doc, seen)

    # ---- reads (`reads.py`) and proofs (`proofs.py`) --------------------------------------

    def get(self, principal: Principal, document_id: str) -> dict[str, Any]:
        return self.reads.get(principal, document_id)

    def list_documents(
        self, principal: Principal, candidate_ref: str | None, after: int, limit: int
    ) -> tuple[list[dict[str, Any]], int | None]:
        return self.reads.list_documents(principal, candidate_ref, after, limit)

    def content(self, principal: Principal, document_id: str) -> tuple[bytes, str, str | None]:
        return self.reads.content(principal, document_id)

    def proof(self, principal: Principal, document_id: str) -> dict[str, Any]:
        return self.proving.proof(principal, document_id)

    def proofs(self, principal: Principal, document_id: str) -> list[dict[str, Any]]:
        return self.proving.proofs(principal, document_id)

    # ---- verification, no key needed (`verification.py`) ----------------------------------

    def trusted_keys(self) -> dict[str, TrustedKey]:
        return self.verification.trusted_keys()

    def public_keys(self) -> list[dict[str, Any]]:
        return self.verification.public_keys()

    def verify(
        self,
        bundle: Any,
        document_sha256: str | None,
        chain: ChainView | None,
        document_sm3: str | None = None,
    ) -> Verdict:
        return self.verification.verify(bundle, document_sha256, chain, document_sm3)

"""The evidence service's errors; all derive from `EvidenceError` (itself an OfferSealError)."""

from __future__ import annotations

from ..shared import idempotency
from ..shared.errors import Conflict, NotFound, OfferSealError, TransientError


class EvidenceError(OfferSealError):
    """Root of the evidence service's errors."""


class DocumentNotFound(EvidenceError, NotFound):
    title = "Document not found"


class ProofPending(EvidenceError, Conflict):
    title = "Proof not available yet"


class IdempotencyConflict(EvidenceError, idempotency.IdempotencyConflict):
    title = "Idempotency-Key reused with a different request"


class NoContent(EvidenceError, NotFound):
    title = "No content stored"


class UploadLimitReached(EvidenceError, Conflict):
    title = "Upload limit reached"


class MasterKeyMissing(EvidenceError, TransientError):
    """The master key that wrapped a document's data key is not configured (an operator's fix,
    not the client's)."""

    title = "Document key not available"


class CertificatePending(EvidenceError, Conflict):
    title = "Certificate not available yet"


class SchemaNotFound(EvidenceError, NotFound):
    title = "Schema not found"

"""The evidence service over HTTP, as the employer's confirmation needs it: a document's
fingerprints, read with HR's own credentials (so the evidence service decides whether the tenant
may see it), and records deposited through a `record` link notify signed."""

from __future__ import annotations

from typing import Any

from ...shared.errors import NotFound
from ...shared.peers import call, post_file


class DocumentNotFound(NotFound):
    """No such document for this tenant (another tenant's looks exactly like a missing one)."""


class EvidenceDocuments:
    def __init__(self, base_url: str, timeout: float = 15) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def document(self, document_id: str, authorization: str) -> dict[str, Any]:
        """The document's metadata (`id`, `kind`, `sha256`, `sm3`, `agreement_id`, ...)."""
        answer = call(
            "GET",
            f"{self.base_url}/v1/documents/{document_id}",
            service="evidence",
            timeout=self.timeout,
            headers={"Authorization": authorization},
            errors={404: lambda: DocumentNotFound(f"no document {document_id}")},
        )
        body: dict[str, Any] = answer.json()
        return body

    def deposit(
        self, token: str, filename: str, content: bytes, content_type: str
    ) -> dict[str, Any]:
        """Store a record as a document of the link's agreement (receipted, anchored); the
        evidence service's 201 (with, for an e-mail, its DKIM result in `provenance`)."""
        return post_file(
            f"{self.base_url}/v1/documents/records/{token}",
            service="evidence",
            timeout=self.timeout,
            filename=filename,
            content=content,
            content_type=content_type,
        )

"""The evidence service over HTTP, as the employer's confirmation needs it: a document's
fingerprints, read with HR's own credentials (so the evidence service decides whether the tenant
may see it), and records deposited through a `record` link notify signed."""

from __future__ import annotations

from typing import Any

import requests

from ...shared.errors import NotFound, TransientError


class DocumentNotFound(NotFound):
    """No such document for this tenant (another tenant's looks exactly like a missing one)."""


class EvidenceDocuments:
    def __init__(self, base_url: str, timeout: float = 15) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def document(self, document_id: str, authorization: str) -> dict[str, Any]:
        """The document's metadata (`id`, `kind`, `sha256`, `sm3`, `agreement_id`, ...)."""
        try:
            answer = requests.get(
                f"{self.base_url}/v1/documents/{document_id}",
                headers={"Authorization": authorization},
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise TransientError(f"the evidence service is unreachable: {exc}") from None
        if answer.status_code == 404:
            raise DocumentNotFound(f"no document {document_id}")
        if answer.status_code != 200:
            raise TransientError(f"the evidence service answered {answer.status_code}")
        body: dict[str, Any] = answer.json()
        return body

    def deposit(
        self, token: str, filename: str, content: bytes, content_type: str
    ) -> dict[str, Any]:
        """Store a record as a document of the link's agreement (receipted, anchored); the
        evidence service's 201 (with, for an e-mail, its DKIM result in `provenance`)."""
        try:
            answer = requests.post(
                f"{self.base_url}/v1/documents/records/{token}",
                files={"file": (filename, content, content_type)},
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise TransientError(f"the evidence service is unreachable: {exc}") from None
        if answer.status_code != 201:
            raise TransientError(f"the evidence service answered {answer.status_code}")
        body: dict[str, Any] = answer.json()
        return body

"""The evidence service over HTTP: the anchored proof of a document, fetched with the caller's
own credentials (so the evidence service decides whether the tenant may see it)."""

from __future__ import annotations

from typing import Any

import requests

from ...shared.errors import Conflict, TransientError, ValidationFailed


class EvidenceClient:
    def __init__(self, base_url: str, timeout: float = 15) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def milestone_evidence(self, document_id: str, authorization: str) -> dict[str, Any]:
        """`document_id`, `leaf`, `root` and `proof` of an anchored document of the tenant."""
        try:
            answer = requests.get(
                f"{self.base_url}/v1/documents/{document_id}/proof",
                headers={"Authorization": authorization},
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise TransientError(f"the evidence service is unreachable: {exc}") from None
        if answer.status_code == 404:
            raise ValidationFailed("document_id", "no such document for this tenant")
        if answer.status_code == 409:
            raise Conflict("the document is not anchored yet; retry in a few seconds")
        if answer.status_code != 200:
            raise TransientError(f"the evidence service answered {answer.status_code}")
        bundle = answer.json()
        return {
            "document_id": document_id,
            "leaf": bundle["leaf"]["hash"],
            "values": list(bundle["leaf"]["values"]),  # [sha256, salt]: the chain hashes them
            "root": bundle["merkle"]["root"],
            "proof": bundle["merkle"]["proof"],
        }

    def upload_through_link(
        self, token: str, filename: str, content: bytes, content_type: str
    ) -> dict[str, Any]:
        """Store `content` as a document of the link's agreement (the candidate's own upload
        path: receipted and anchored like any document). Returns the evidence service's 201."""
        try:
            answer = requests.post(
                f"{self.base_url}/v1/uploads/{token}",
                files={"file": (filename, content, content_type)},
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise TransientError(f"the evidence service is unreachable: {exc}") from None
        if answer.status_code != 201:
            raise TransientError(f"the evidence service answered {answer.status_code}")
        body: dict[str, Any] = answer.json()
        return body

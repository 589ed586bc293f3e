"""The evidence service over HTTP: the anchored proof of a document, fetched with the caller's
own credentials (so the evidence service decides whether the tenant may see it)."""

from __future__ import annotations

from collections.abc import Mapping
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


class EvidenceArchiveClient:
    """The evidence and notify services and the people's origin, as an agreement's dossier
    reads them: documents, their bytes and proofs, and the touchpoint log, each asked with the
    caller's own credentials; the manifest deposited through a `record` link."""

    def __init__(
        self, evidence_url: str, notify_url: str, portal_url: str, timeout: float = 30
    ) -> None:
        self.evidence_url = evidence_url.rstrip("/")
        self.notify_url = notify_url.rstrip("/")
        self.portal_url = portal_url.rstrip("/")
        self.timeout = timeout

    def _get(self, url: str, auth: Mapping[str, str], **params: Any) -> requests.Response:
        try:
            answer = requests.get(url, headers=dict(auth), params=params, timeout=self.timeout)
        except requests.RequestException as exc:
            raise TransientError(f"{url.split('/v1/')[0]} is unreachable: {exc}") from None
        if answer.status_code in (401, 403):
            raise TransientError(f"{url} refused the caller's credentials ({answer.status_code})")
        return answer

    def documents_of(
        self, candidate_ref: str, agreement_id: str, auth: Mapping[str, str]
    ) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        url: str | None = f"{self.evidence_url}/v1/documents"
        params: dict[str, Any] = {"candidate_ref": candidate_ref, "limit": 500}
        while url:
            answer = self._get(url, auth, **params)
            if answer.status_code != 200:
                raise TransientError(f"the evidence service answered {answer.status_code}")
            body = answer.json()
            items.extend(i for i in body["items"] if i.get("agreement_id") == agreement_id)
            following = body.get("next")
            url, params = (f"{self.evidence_url}{following}", {}) if following else (None, {})
        return items

    def content(self, document_id: str, auth: Mapping[str, str]) -> bytes:
        answer = self._get(f"{self.evidence_url}/v1/documents/{document_id}/content", auth)
        if answer.status_code != 200:
            raise TransientError(f"the evidence service answered {answer.status_code}")
        return bytes(answer.content)

    def proof(self, document_id: str, auth: Mapping[str, str]) -> dict[str, Any] | None:
        answer = self._get(f"{self.evidence_url}/v1/documents/{document_id}/proof", auth)
        if answer.status_code == 409:
            return None
        if answer.status_code != 200:
            raise TransientError(f"the evidence service answered {answer.status_code}")
        bundle: dict[str, Any] = answer.json()
        return bundle

    def deposit_record(self, token: str, filename: str, content: bytes) -> dict[str, Any]:
        try:
            answer = requests.post(
                f"{self.evidence_url}/v1/documents/records/{token}",
                files={"file": (filename, content, "application/json")},
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise TransientError(f"the evidence service is unreachable: {exc}") from None
        if answer.status_code != 201:
            raise TransientError(f"the evidence service answered {answer.status_code}")
        body: dict[str, Any] = answer.json()
        return body

    def touchpoints(
        self, candidate_ref: str, agreement_id: str, auth: Mapping[str, str]
    ) -> list[dict[str, Any]]:
        answer = self._get(
            f"{self.notify_url}/v1/candidates/{candidate_ref}/touchpoints",
            auth,
            attempts="true",
            agreement_id=agreement_id,
        )
        if answer.status_code == 404:
            return []
        if answer.status_code != 200:
            raise TransientError(f"the notify service answered {answer.status_code}")
        items: list[dict[str, Any]] = answer.json()["items"]
        return items

    def verifier_html(self, lang: str) -> bytes | None:
        if not self.portal_url:
            return None
        try:
            answer = requests.get(
                f"{self.portal_url}/verify/verifier.html",
                params={"lang": lang},
                timeout=self.timeout,
            )
        except requests.RequestException:
            return None
        return bytes(answer.content) if answer.status_code == 200 else None

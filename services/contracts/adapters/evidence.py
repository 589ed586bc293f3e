"""The evidence service over HTTP: the anchored proof of a document, fetched with the caller's
own credentials (so the evidence service decides whether the tenant may see it)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import requests

from ...shared.errors import Conflict, TransientError, ValidationFailed
from ...shared.peers import call, post_file


class EvidenceClient:
    def __init__(self, base_url: str, timeout: float = 15) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def milestone_evidence(self, document_id: str, authorization: str) -> dict[str, Any]:
        """`document_id`, `leaf`, `root` and `proof` of an anchored document of the tenant."""
        answer = call(
            "GET",
            f"{self.base_url}/v1/documents/{document_id}/proof",
            service="evidence",
            timeout=self.timeout,
            headers={"Authorization": authorization},
            errors={
                404: lambda: ValidationFailed("document_id", "no such document for this tenant"),
                409: lambda: Conflict("the document is not anchored yet; retry in a few seconds"),
            },
        )
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
        return post_file(
            f"{self.base_url}/v1/uploads/{token}",
            service="evidence",
            timeout=self.timeout,
            filename=filename,
            content=content,
            content_type=content_type,
        )


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

    def _get(
        self,
        url: str,
        auth: Mapping[str, str],
        service: str = "evidence",
        accept: tuple[int, ...] = (200,),
        **params: Any,
    ) -> requests.Response:
        def refused(status: int) -> Callable[[], BaseException]:
            return lambda: TransientError(f"{url} refused the caller's credentials ({status})")

        return call(
            "GET",
            url,
            service=service,
            timeout=self.timeout,
            accept=accept,
            errors={401: refused(401), 403: refused(403)},
            headers=dict(auth),
            params=params,
        )

    def documents_of(
        self, candidate_ref: str, agreement_id: str, auth: Mapping[str, str]
    ) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        url: str | None = f"{self.evidence_url}/v1/documents"
        params: dict[str, Any] = {"candidate_ref": candidate_ref, "limit": 500}
        while url:
            body = self._get(url, auth, **params).json()
            items.extend(i for i in body["items"] if i.get("agreement_id") == agreement_id)
            following = body.get("next")
            url, params = (f"{self.evidence_url}{following}", {}) if following else (None, {})
        return items

    def content(self, document_id: str, auth: Mapping[str, str]) -> bytes:
        answer = self._get(f"{self.evidence_url}/v1/documents/{document_id}/content", auth)
        return bytes(answer.content)

    def proof(self, document_id: str, auth: Mapping[str, str]) -> dict[str, Any] | None:
        answer = self._get(
            f"{self.evidence_url}/v1/documents/{document_id}/proof", auth, accept=(200, 409)
        )
        if answer.status_code == 409:
            return None
        bundle: dict[str, Any] = answer.json()
        return bundle

    def deposit_record(self, token: str, filename: str, content: bytes) -> dict[str, Any]:
        return post_file(
            f"{self.evidence_url}/v1/documents/records/{token}",
            service="evidence",
            timeout=self.timeout,
            filename=filename,
            content=content,
            content_type="application/json",
        )

    def touchpoints(
        self, candidate_ref: str, agreement_id: str, auth: Mapping[str, str]
    ) -> list[dict[str, Any]]:
        answer = self._get(
            f"{self.notify_url}/v1/candidates/{candidate_ref}/touchpoints",
            auth,
            service="notify",
            accept=(200, 404),
            attempts="true",
            agreement_id=agreement_id,
        )
        if answer.status_code == 404:
            return []
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

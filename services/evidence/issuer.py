"""Issues evidence certificates: the tenant-checked description and proof of a document, laid
out (`certificate`) and signed (`shared.pdf`). The HTTP route and the CLI call `issue`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from .. import __version__
from ..shared.auth import READ_ROLES, Principal
from ..shared.errors import ValidationFailed
from ..shared.pdf import PdfSigningKey, sign_pdf
from .certificate import LANGS, NotAnchored, certificate_facts, render_certificate
from .errors import CertificatePending, ProofPending
from .service import EvidenceService


@dataclass
class CertificateIssuer:
    service: EvidenceService
    key: PdfSigningKey
    verify_url: str
    timestamp_url: str | None = None
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))

    def issue(self, principal: Principal, document_id: str, lang: str) -> bytes:
        """The signed certificate PDF of an anchored document (409 before it is anchored)."""
        if lang not in LANGS:
            raise ValidationFailed("lang", f"must be one of {', '.join(LANGS)}")
        principal.require(*READ_ROLES)
        description = self.service.get(principal, document_id)  # 404 for another tenant
        try:
            bundle = self.service.proof(principal, document_id)
            facts = certificate_facts(description, bundle)
        except (ProofPending, NotAnchored):
            raise CertificatePending(
                "the document is not anchored yet: its certificate can be issued once its batch "
                "is on chain (its status is "
                f"{description.get('status')!r}); retry after a few seconds",
                retry_after=1,
            ) from None
        pdf = render_certificate(
            facts,
            lang=lang,
            verify_url=self.verify_url,
            software=f"OfferSeal {__version__}",
            issued_at=self.clock(),
        )
        return sign_pdf(
            pdf,
            self.key,
            timestamp_url=self.timestamp_url,
            reason=f"OfferSeal evidence certificate {document_id}",
        )

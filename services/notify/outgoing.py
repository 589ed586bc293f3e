"""What a touchpoint says: its text (the tenant's template or the built-in one), its signed
links (reply, upload, unsubscribe; valid for the configured link lifetime) and its stable
Message-ID. Whether and when it is sent is decided in `dispatch.py`.
"""

from __future__ import annotations

import time

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..shared import messages
from ..shared.links import PURPOSE_REPLY, PURPOSE_UNSUBSCRIBE, PURPOSE_UPLOAD, Link, LinkSigner
from .adapters.channels import Outgoing
from .domain import schedule
from .domain.templates import Override, render
from .models import FollowedAgreement, NotifyCandidate, TenantTemplate, Touchpoint

Overrides = dict[tuple[str, str, str], Override]  # (tenant, kind, language) -> its own text


def overrides_of(session: Session, tenants: set[str]) -> Overrides:
    """The tenants' own templates, one query per batch."""
    return {
        (t.tenant, t.kind, t.language): Override(t.subject, t.text)
        for t in session.execute(
            select(TenantTemplate).where(TenantTemplate.tenant.in_(tenants))
        ).scalars()
    }


class Composer:
    def __init__(
        self,
        links: LinkSigner,
        *,
        public_url: str,
        evidence_url: str,
        mail_domain: str,
        link_ttl: float,
    ) -> None:
        self.links = links
        self.public_url = public_url.rstrip("/")
        self.evidence_url = evidence_url.rstrip("/")
        self.mail_domain = mail_domain
        self.link_ttl = link_ttl

    def token_for(self, tp: Touchpoint, purpose: str, subject: str) -> str:
        """A single-purpose link token for the touchpoint, as its e-mail carries one."""
        return self._token(tp, purpose, subject)

    def _token(self, tp: Touchpoint, purpose: str, subject: str) -> str:
        return self.links.issue(
            Link(
                tp.tenant,
                tp.agreement_id,
                tp.candidate_ref,
                purpose,
                int(time.time() + self.link_ttl),
                subject,
            )
        )

    def _link(self, tp: Touchpoint, purpose: str, subject: str) -> str:
        token = self._token(tp, purpose, subject)
        path = "replies" if purpose == PURPOSE_REPLY else "unsubscribe"
        return f"{self.public_url}/v1/{path}/{token}"

    def outgoing(
        self,
        tp: Touchpoint,
        candidate: NotifyCandidate,
        followed: FollowedAgreement,
        overrides: Overrides,
    ) -> Outgoing:
        links: dict[str, str] = {}
        data = {k: str(v) for k, v in (tp.data or {}).items()}
        data.setdefault("employer", followed.employer_name)
        data.setdefault("position", followed.position)
        if tp.kind in (schedule.INVITATION, schedule.AMENDMENT):
            links["sign"] = data["sign"]
        if tp.kind == schedule.CHECKIN:
            base = self._link(tp, PURPOSE_REPLY, tp.id)
            for answer in messages.CHECKIN_ANSWERS:
                links[f"reply_{answer}"] = f"{base}?answer={answer}"
        if tp.kind == schedule.MILESTONE_REQUEST:
            token = self._token(tp, PURPOSE_UPLOAD, data.get("milestone", ""))
            links["upload"] = f"{self.evidence_url}/v1/uploads/{token}"
        unsubscribe = None
        if not tp.essential:
            unsubscribe = self._link(tp, PURPOSE_UNSUBSCRIBE, tp.candidate_ref)
            links["unsubscribe"] = unsubscribe
        language = candidate.language or followed.language
        rendered = render(
            tp.kind, language, data, links, overrides.get((tp.tenant, tp.kind, language))
        )
        return Outgoing(
            touchpoint_id=tp.id,
            message_id=f"<{tp.id}@{self.mail_domain}>",
            to_email=candidate.email,
            rendered=rendered,
            essential=tp.essential,
            unsubscribe_url=unsubscribe,
            payload={
                "touchpoint_id": tp.id,
                "kind": tp.kind,
                "agreement_id": tp.agreement_id,
                "candidate_ref": tp.candidate_ref,
                "phone": candidate.phone,
                "language": candidate.language,
                "subject": rendered.subject,
                "text": rendered.text,
                "links": links,
            },
        )

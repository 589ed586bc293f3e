"""What a touchpoint says: its text (the tenant's template or the built-in one) in the tenant's
brand, its signed links (reply, upload, unsubscribe; valid for the configured link lifetime),
each shown as a short link on the people's origin, and its stable Message-ID. Whether and when
it is sent is decided in `dispatch.py`.
"""

from __future__ import annotations

import datetime as dt
import time

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..shared import messages
from ..shared.links import (
    PURPOSE_REPLY,
    PURPOSE_SIGN,
    PURPOSE_UNSUBSCRIBE,
    PURPOSE_UPLOAD,
    Link,
    LinkSigner,
)
from ..shared.shortlinks import Shortener, Wanted
from .adapters.channels import Outgoing
from .domain import schedule
from .domain.overrides import Override
from .domain.templates import Brand, format_moment, sms_link, sms_values
from .layout import render
from .models import (
    FollowedAgreement,
    NotifyCandidate,
    TenantBranding,
    TenantTemplate,
    Touchpoint,
)

Overrides = dict[tuple[str, str, str], Override]  # (tenant, kind, language) -> its own text
Brands = dict[str, Brand]  # tenant -> its look


def brands_of(session: Session, tenants: set[str]) -> Brands:
    """The tenants' branding, one query per batch."""
    return {
        b.tenant: Brand(b.display_name, b.logo_url, b.accent_colour, b.reply_to)
        for b in session.execute(
            select(TenantBranding).where(TenantBranding.tenant.in_(tenants))
        ).scalars()
    }


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
        shortener: Shortener | None = None,
        checkin_interval: float = 48 * 3600.0,
    ) -> None:
        self.links = links
        self.public_url = public_url.rstrip("/")
        self.evidence_url = evidence_url.rstrip("/")
        self.mail_domain = mail_domain
        self.link_ttl = link_ttl
        self.shortener = shortener  # None: messages show the full links (service-layer tests)
        self.checkin_interval = checkin_interval

    def token_for(self, tp: Touchpoint, purpose: str, subject: str) -> str:
        """A single-purpose link token for the touchpoint, as its e-mail carries one."""
        return self._issue(tp, purpose, subject)[0]

    def _issue(self, tp: Touchpoint, purpose: str, subject: str) -> tuple[str, Link]:
        link = Link(
            tp.tenant,
            tp.agreement_id,
            tp.candidate_ref,
            purpose,
            int(time.time() + self.link_ttl),
            subject,
            int(time.time()),
        )
        return self.links.issue(link), link

    def _link(self, tp: Touchpoint, purpose: str, subject: str) -> tuple[str, Link]:
        token, link = self._issue(tp, purpose, subject)
        path = "replies" if purpose == PURPOSE_REPLY else "unsubscribe"
        return f"{self.public_url}/v1/{path}/{token}", link

    def _dates(self, tp: Touchpoint, data: dict[str, str], timezone: str, language: str) -> None:
        """Dates as the candidate reads them, in their time zone (long for e-mail, short for
        SMS)."""
        due = data.get("due_at", "")
        if tp.kind == schedule.CHECKIN and not due:
            due = (
                dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.checkin_interval)
            ).isoformat()
        if due:
            data["due_at"] = format_moment(due, timezone, language)
            data["due_short"] = format_moment(due, timezone, language, short=True)
        if data.get("bound_at"):
            data["bound_at"] = format_moment(data["bound_at"], timezone, language)
        start = data.get("start_at", "")
        if start:
            data["start_at"] = format_moment(start, timezone, language)
            data["start_short"] = format_moment(start, timezone, language, short=True)

    def outgoing(
        self,
        tp: Touchpoint,
        candidate: NotifyCandidate,
        followed: FollowedAgreement,
        overrides: Overrides,
        brands: Brands | None = None,
    ) -> Outgoing:
        full: dict[str, tuple[str, Link]] = {}  # purpose key -> (signed URL, its link)
        data = {k: str(v) for k, v in (tp.data or {}).items()}
        # Addressed by the sender: the offer's own contact, never the reference's stored one.
        to = data.pop("to", None) if tp.kind in schedule.ADDRESSED else None
        to_email = (to if data.get("channel") != "sms" else None) if to else candidate.email
        phone = (to if data.get("channel") == "sms" else None) if to else candidate.phone
        data.setdefault("employer", followed.employer_name)
        data.setdefault("position", followed.position)
        language = candidate.language or followed.language
        if tp.kind in (schedule.INVITATION, schedule.AMENDMENT):
            # Built by the contracts service; its token says what it is for.
            sign = data.pop("sign")
            fallback = Link(
                tp.tenant,
                tp.agreement_id,
                tp.candidate_ref,
                PURPOSE_SIGN,
                int(time.time() + self.link_ttl),
                "",
                int(time.time()),
            )
            full["sign"] = (sign, fallback)
        if tp.kind == schedule.CHECKIN:
            base, link = self._link(tp, PURPOSE_REPLY, tp.id)
            full["reply"] = (base, link)
            for answer in messages.CHECKIN_ANSWERS:
                full[f"reply_{answer}"] = (f"{base}?answer={answer}", link)
        if tp.kind == schedule.MILESTONE_REQUEST:
            token, link = self._issue(tp, PURPOSE_UPLOAD, data.get("milestone", ""))
            full["upload"] = (f"{self.evidence_url}/v1/uploads/{token}", link)
        unsubscribe_full = None
        if not tp.essential:
            unsubscribe_full, link = self._link(tp, PURPOSE_UNSUBSCRIBE, tp.candidate_ref)
            full["unsubscribe"] = (unsubscribe_full, link)
        links = self._shorten(full)
        self._dates(tp, data, candidate.timezone, language)
        rendered = render(
            tp.kind,
            language,
            data,
            links,
            overrides.get((tp.tenant, tp.kind, language)),
            (brands or {}).get(tp.tenant),
        )
        brand = (brands or {}).get(tp.tenant) or Brand()
        return Outgoing(
            touchpoint_id=tp.id,
            message_id=f"<{tp.id}@{self.mail_domain}>",
            to_email=to_email,
            rendered=rendered,
            essential=tp.essential,
            # the header a mail client calls for one-click opt-out (RFC 8058): the full link
            unsubscribe_url=unsubscribe_full,
            employer=brand.display_name or data.get("employer", ""),
            reply_to=brand.reply_to,
            tenant=tp.tenant,
            phone=phone,
            sms_params=sms_values(
                language,
                {**data, "employer": brand.display_name or data.get("employer", "")},
                sms_link(tp.kind, links),
            ),
            payload={
                "touchpoint_id": tp.id,
                "kind": tp.kind,
                "agreement_id": tp.agreement_id,
                "candidate_ref": tp.candidate_ref,
                "phone": phone,
                "language": candidate.language,
                "subject": rendered.subject,
                "text": rendered.text,
                "sms": rendered.sms,
                "links": links,
            },
        )

    def _shorten(self, full: dict[str, tuple[str, Link]]) -> dict[str, str]:
        """Short links for the signed URLs, one row each (written in one transaction)."""
        if self.shortener is None or not full:
            return {key: url for key, (url, _) in full.items()}
        shortener = self.shortener
        wanted = [
            # the signing link's token (built by contracts) decides its scope and expiry
            shortener.wanted(url, link) if key == "sign" else Wanted(url, link)
            for key, (url, link) in full.items()
        ]
        return dict(zip(full, shortener.shorten(wanted), strict=True))

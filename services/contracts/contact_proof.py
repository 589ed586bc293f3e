"""Proving the contact written in the offer: a one-time code sent there (and nowhere else),
checked against every live code of the offer, within limits over the offer's life; a right
code opens an enrolment session held by the browser that proved it (only its keyed hash is
stored). The code's delivery evidence comes back from notify into the journal."""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..shared import messages
from ..shared.broker import enqueue
from ..shared.db import Database
from ..shared.errors import (
    Forbidden,
    TooManyRequests,
    ValidationFailed,
)
from ..shared.links import Link, LinkExpired, LinkSigner
from ..shared.models import aware, iso, utcnow
from .errors import ContractsError
from .journal import (
    PortalConflict,
    Visitor,
    event,
    lock,
    require_open,
)
from .models import (
    Agreement,
    CandidateCode,
)
from .records import load, reader

log = logging.getLogger(__name__)
CODE_TTL = dt.timedelta(minutes=10)
CODE_ATTEMPTS = 5  # wrong codes before the code is spent
CODES_PER_HOUR = 5  # codes sent per agreement per hour
CODES_PER_AGREEMENT = 10  # codes over the offer's whole life: 50 guesses of 10**6 at the most
CODE_RESEND_AFTER = dt.timedelta(minutes=1)  # a new code never cancels one just sent
ENROL_WITHIN = dt.timedelta(minutes=30)  # a verified code allows binding a signer this long
SESSION_TTL = dt.timedelta(hours=12)  # the browser that proved the code is known this long
SESSION_COOKIE = "offerseal_enrolment"


class CodeRefused(ContractsError, ValidationFailed):
    """The code is wrong (422, naming `code`, with the attempts left)."""


class CodeExpired(ContractsError, LinkExpired):
    title = "Code expired"


class NotProven(ContractsError, Forbidden):
    """A signer is bound only from the browser that proved the one-time code (its enrolment
    session cookie); the link alone never decides who signs."""

    title = "Prove your contact in this browser"


@dataclass(frozen=True)
class CodeVerified:
    verified: bool
    channel: str
    destination: str  # masked


@dataclass(frozen=True)
class Proven:
    """A verified code: the answer, and the enrolment session's secret for the browser that
    proved it (an HttpOnly cookie; only its keyed hash is stored)."""

    answer: CodeVerified
    session: str


@dataclass(frozen=True)
class CodeSent:
    channel: str
    destination: str  # masked
    expires_at: str
    next_code_at: str


def mask_email(email: str) -> str:
    name, _, domain = email.partition("@")
    return f"{name[:1]}***@{domain}" if domain else "***"


def mask_phone(phone: str) -> str:
    digits = [c for c in phone if c.isdigit()]
    return f"*** **** {''.join(digits[-4:])}" if len(digits) >= 4 else "***"


class ContactProof:
    def __init__(self, db: Database, links: LinkSigner) -> None:
        self.db = db
        self.links = links

    # ---- one-time codes ------------------------------------------------------------------

    def request_code(self, link: Link, agreement_id: str, channel: str, who: Visitor) -> CodeSent:
        """Send a code to the contact written in the offer (never to an address kept
        elsewhere for the candidate reference), within the limits: 5 an hour, 10 over the
        offer's life, and not within a minute of the last one (which it would cancel)."""
        now = utcnow()
        code = f"{secrets.randbelow(10**6):06d}"
        with self.db.transaction() as session:
            a = load(session, reader(None, link, agreement_id), agreement_id)
            if a.state != "offered":
                raise PortalConflict(f"the agreement is {a.state}: there is nothing to enrol for")
            lock(session, a.id)
            require_open(session, a)
            to, masked = self._destination(a, channel)
            sent = session.execute(
                select(CandidateCode.created_at)
                .where(CandidateCode.agreement_id == a.id)
                .order_by(CandidateCode.created_at)
            ).scalars()
            times = [aware(t) for t in sent]
            if len(times) >= CODES_PER_AGREEMENT:
                raise TooManyRequests(
                    f"{CODES_PER_AGREEMENT} codes were sent for this offer, the most it allows: "
                    "ask the HR team to send you a new invitation"
                )
            hour = [t for t in times if t > now - dt.timedelta(hours=1)]
            wait = dt.timedelta(0)
            if len(hour) >= CODES_PER_HOUR:
                wait = hour[0] + dt.timedelta(hours=1) - now
            elif times and times[-1] > now - CODE_RESEND_AFTER:
                wait = times[-1] + CODE_RESEND_AFTER - now
            if wait > dt.timedelta(0):
                retry = max(1, int(wait.total_seconds() + 0.999))
                raise TooManyRequests(
                    f"a new code can be sent in {retry} seconds; the last one stays valid",
                    next_code_at=iso(now + dt.timedelta(seconds=retry)),
                    headers={"Retry-After": str(retry)},
                )
            row = CandidateCode(
                id=str(uuid.uuid4()),
                agreement_id=a.id,
                channel=channel,
                destination=masked,
                destination_hash=self.destination_hash(to),
                code_hash=self.links.keyed_hash(f"{a.id}:{code}"),
                attempts=0,
                created_at=now,
                expires_at=now + CODE_TTL,
            )
            session.add(row)
            enqueue(
                session,
                [
                    messages.build(
                        messages.CANDIDATE_CODE_REQUESTED,
                        a.tenant,
                        {
                            "agreement_id": a.id,
                            "candidate_ref": a.candidate_ref,
                            "channel": channel,
                            "destination": to,
                            "code_id": row.id,
                            "code": code,
                            "expires_at": row.expires_at,
                        },
                    )
                ],
            )
            event(
                session,
                a.id,
                "code_sent",
                {
                    "channel": channel,
                    "destination": masked,
                    "destination_hash": row.destination_hash,
                    "code_id": row.id,
                },
                who,
            )
            return CodeSent(
                channel=channel,
                destination=masked,
                expires_at=str(iso(row.expires_at)),
                next_code_at=str(iso(now + CODE_RESEND_AFTER)),
            )

    def destination_hash(self, contact: str) -> str:
        """A keyed hash of a contact (lower-cased e-mail, or the phone's digits): the record
        can show that two codes went to the same place without showing the place."""
        normal = contact.strip().lower()
        if "@" not in normal:
            normal = "+" + "".join(c for c in normal if c.isdigit())
        return self.links.keyed_hash(f"contact:{normal}")

    @staticmethod
    def _destination(a: Agreement, channel: str) -> tuple[str, str]:
        """The offer's own contact for the channel, and how the page shows it."""
        contact = a.contact or {}
        if channel == "email" and contact.get("email"):
            return str(contact["email"]), mask_email(str(contact["email"]))
        if channel == "sms" and contact.get("phone"):
            return str(contact["phone"]), mask_phone(str(contact["phone"]))
        raise ValidationFailed("channel", f"HR gave no {channel} contact for this offer")

    def verify_code(self, link: Link, agreement_id: str, code: str, who: Visitor) -> Proven:
        """Check the code against every live code of the offer (a newer code does not void
        the one being typed). A right code opens an enrolment session that only this browser
        holds: binding a signer needs it."""
        now = utcnow()
        with self.db.transaction() as session:
            a = load(session, reader(None, link, agreement_id), agreement_id)
            lock(session, a.id)
            require_open(session, a)
            rows = (
                session.execute(
                    select(CandidateCode)
                    .where(CandidateCode.agreement_id == a.id, CandidateCode.verified_at.is_(None))
                    .order_by(CandidateCode.created_at.desc())
                )
                .scalars()
                .all()
            )
            live = [r for r in rows if aware(r.expires_at) >= now and r.attempts < CODE_ATTEMPTS]
            if not live:
                latest = session.execute(
                    select(CandidateCode.verified_at)
                    .where(CandidateCode.agreement_id == a.id)
                    .order_by(CandidateCode.created_at.desc())
                    .limit(1)
                ).first()
                if latest is None:
                    raise PortalConflict("ask for a code first")
                if latest.verified_at is not None:
                    raise PortalConflict("this code was already used; ask for a new one if needed")
                raise CodeExpired("this code has expired or was tried too often; ask for a new one")
            wanted = self.links.keyed_hash(f"{a.id}:{code}")
            match = next((r for r in live if secrets.compare_digest(r.code_hash, wanted)), None)
            if match is None:
                for r in live:
                    r.attempts += 1
                left = max(CODE_ATTEMPTS - r.attempts for r in live)
                event(session, a.id, "code_failed", {"attempts_left": left}, who)
                session.commit()
                raise CodeRefused("code", f"wrong code; {left} attempts left")
            secret = secrets.token_urlsafe(32)
            match.verified_at = now
            match.session_hash = self.links.keyed_hash(f"session:{secret}")
            for r in live:  # the other live codes are spent: one proof, one session
                if r is not match:
                    r.expires_at = now
            event(
                session,
                a.id,
                "code_verified",
                {
                    "channel": match.channel,
                    "destination": match.destination,
                    "destination_hash": match.destination_hash,
                    "code_id": match.id,
                    "session": match.id,
                },
                who,
            )
            answer = CodeVerified(True, match.channel, match.destination)
            return Proven(answer, secret)

    def session_code(
        self, session: Session, agreement_id: str, secret: str | None
    ) -> CandidateCode | None:
        """The verified code whose enrolment session this browser holds (None: a bare link)."""
        if not secret:
            return None
        row = session.execute(
            select(CandidateCode).where(
                CandidateCode.agreement_id == agreement_id,
                CandidateCode.session_hash == self.links.keyed_hash(f"session:{secret}"),
            )
        ).scalar_one_or_none()
        if row is None or row.verified_at is None:
            return None
        if aware(row.verified_at) < utcnow() - SESSION_TTL:
            return None
        return row

    def on_delivery(self, session: Session, message: messages.Message) -> None:
        """Consumer: notify's answer for a one-time code (sent with its Message-ID and the
        server's answer, or failed), kept in the journal as the code's delivery evidence."""
        p = message.payload
        if p.get("kind") != "code" or not p.get("reference"):
            return
        code = session.get(CandidateCode, p["reference"])
        if code is None or code.agreement_id != p["agreement_id"]:
            return
        agreement = session.get(Agreement, code.agreement_id)
        if agreement is None or agreement.tenant != message.tenant:
            return
        event(
            session,
            code.agreement_id,
            "code_delivered" if message.type is messages.TOUCHPOINT_SENT else "code_undelivered",
            {
                "code_id": code.id,
                "channel": p.get("channel"),
                "message_id": p.get("message_id"),
                "answer": p.get("detail"),
            },
            Visitor(None, None),
        )

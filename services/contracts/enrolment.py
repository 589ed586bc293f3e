"""The candidate's portal, what it decides: proving the contact HR gave with a one-time code,
binding a signer (a passkey or a wallet) to the offer once that is proved, turning a browser's
passkey assertion into the signature the contract checks, and the journal of what the candidate
did, from which their signing record is made. No key that can sign for the candidate is ever
here: a passkey's private key stays in the candidate's authenticator, and the contract checks
every assertion itself."""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from ..shared import messages
from ..shared.auth import Principal
from ..shared.broker import enqueue
from ..shared.db import Database
from ..shared.errors import (
    Conflict,
    Forbidden,
    OfferSealError,
    TooManyRequests,
    ValidationFailed,
)
from ..shared.links import PURPOSE_UPLOAD, Link, LinkExpired, LinkSigner
from ..shared.models import aware, iso, utcnow
from .domain import passkeys
from .domain.agreements import ARRIVAL_LEAD
from .domain.ceremony import Ceremony, JournalEntry, bounded_seconds, build_ceremony
from .errors import AgreementNotFound, ContractsError
from .models import (
    Agreement,
    AgreementAmendment,
    CandidateCode,
    CandidateEvent,
    CandidateSigner,
    ChainOp,
)
from .ports import AgreementsChain, EvidenceSource
from .records import CandidateLinks, describe, load, reader
from .transactions import TransactionPath

log = logging.getLogger(__name__)
SIGNING_RECORD = "signing_record"  # the evidence document's subject (not a milestone)
CODE_TTL = dt.timedelta(minutes=10)
CODE_ATTEMPTS = 5  # wrong codes before the code is spent
CODES_PER_HOUR = 5  # codes sent per agreement per hour
CODES_PER_AGREEMENT = 10  # codes over the offer's whole life: 50 guesses of 10**6 at the most
CODE_RESEND_AFTER = dt.timedelta(minutes=1)  # a new code never cancels one just sent
ENROL_WITHIN = dt.timedelta(minutes=30)  # a verified code allows binding a signer this long
SESSION_TTL = dt.timedelta(hours=12)  # the browser that proved the code is known this long
SESSION_COOKIE = "offerseal_enrolment"
EVENT_KINDS = frozenset({"text_opened", "text_read", "consent"})
CEREMONY_SIGNED = "ceremony_signed"  # the journal's last word: the record is frozen after it


class CodeRefused(ContractsError, ValidationFailed):
    """The code is wrong (422, naming `code`, with the attempts left)."""


class CodeExpired(ContractsError, LinkExpired):
    title = "Code expired"


class PortalConflict(ContractsError, Conflict):
    title = "Not possible now"


class NotProven(ContractsError, Forbidden):
    """A signer is bound only from the browser that proved the one-time code (its enrolment
    session cookie); the link alone never decides who signs."""

    title = "Prove your contact in this browser"


class RecordFrozen(ContractsError, Conflict):
    title = "The signing record is closed"


@dataclass(frozen=True)
class Proven:
    """A verified code: the answer, and the enrolment session's secret for the browser that
    proved it (an HttpOnly cookie; only its keyed hash is stored)."""

    answer: dict[str, Any]
    session: str


def mask_email(email: str) -> str:
    name, _, domain = email.partition("@")
    return f"{name[:1]}***@{domain}" if domain else "***"


def mask_phone(phone: str) -> str:
    digits = [c for c in phone if c.isdigit()]
    return f"*** **** {''.join(digits[-4:])}" if len(digits) >= 4 else "***"


@dataclass(frozen=True)
class Visitor:
    """Who is at the page: their address and browser, for the record."""

    ip: str | None
    user_agent: str | None


class Enrolment:
    def __init__(
        self,
        db: Database,
        chain: AgreementsChain,
        tx: TransactionPath,
        links: LinkSigner,
        candidate_links: CandidateLinks,
    ) -> None:
        self.candidate_links = candidate_links
        self.db = db
        self.chain = chain
        self.tx = tx
        self.links = links

    # ---- the journal ---------------------------------------------------------------------

    @staticmethod
    def _event(
        session: Session, agreement_id: str, kind: str, detail: dict[str, Any], who: Visitor
    ) -> None:
        session.add(
            CandidateEvent(
                id=str(uuid.uuid4()),
                agreement_id=agreement_id,
                kind=kind,
                detail=detail,
                ip=who.ip,
                user_agent=(who.user_agent or "")[:400] or None,
                created_at=utcnow(),
            )
        )

    @staticmethod
    def _require_open(session: Session, a: Agreement) -> None:
        """Nothing joins or changes the ceremony once the candidate signed it."""
        frozen = session.execute(
            select(CandidateEvent.id).where(
                CandidateEvent.agreement_id == a.id, CandidateEvent.kind == CEREMONY_SIGNED
            )
        ).first()
        if frozen is not None or a.state not in ("offering", "offered"):
            raise RecordFrozen("the agreement is signed: its signing record no longer changes")

    def record(
        self,
        link: Link,
        agreement_id: str,
        kind: str,
        seconds: int,
        who: Visitor,
        session_secret: str | None = None,
    ) -> None:
        """The candidate opened the text, read it to the end (and for how long, as their
        browser counted it: bounded and labelled so), or ticked the consent. Only events from
        the browser that proved the code (its enrolment session) enter the ceremony; a bare
        link holder's are kept, marked unproven. Refused once the ceremony is signed."""
        if kind not in EVENT_KINDS:
            raise ValidationFailed("kind", f"one of {', '.join(sorted(EVENT_KINDS))}")
        with self.db.transaction() as session:
            a = load(session, reader(None, link, agreement_id), agreement_id)
            self._require_open(session, a)
            proven = self._session_code(session, a.id, session_secret)
            detail: dict[str, Any] = {
                "seconds": bounded_seconds(seconds),
                "seconds_reported_by": "browser",
                "session": proven.id if proven is not None else None,
            }
            self._event(session, agreement_id, kind, detail, who)

    # ---- one-time codes ------------------------------------------------------------------

    @staticmethod
    def _lock(session: Session, agreement_id: str) -> None:
        """Codes of one agreement are counted and issued one request at a time (a row lock on
        PostgreSQL; SQLite's write transactions are serial already)."""
        session.execute(
            select(Agreement.id).where(Agreement.id == agreement_id).with_for_update()
        ).first()

    def request_code(
        self, link: Link, agreement_id: str, channel: str, who: Visitor
    ) -> dict[str, Any]:
        """Send a code to the contact written in the offer (never to an address kept
        elsewhere for the candidate reference), within the limits: 5 an hour, 10 over the
        offer's life, and not within a minute of the last one (which it would cancel)."""
        now = utcnow()
        code = f"{secrets.randbelow(10**6):06d}"
        with self.db.transaction() as session:
            a = load(session, reader(None, link, agreement_id), agreement_id)
            if a.state != "offered":
                raise PortalConflict(f"the agreement is {a.state}: there is nothing to enrol for")
            self._lock(session, a.id)
            self._require_open(session, a)
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
            self._event(
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
            return {
                "channel": channel,
                "destination": masked,
                "expires_at": iso(row.expires_at),
                "next_code_at": iso(now + CODE_RESEND_AFTER),
            }

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
            self._lock(session, a.id)
            self._require_open(session, a)
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
                self._event(session, a.id, "code_failed", {"attempts_left": left}, who)
                session.commit()
                raise CodeRefused("code", f"wrong code; {left} attempts left")
            secret = secrets.token_urlsafe(32)
            match.verified_at = now
            match.session_hash = self.links.keyed_hash(f"session:{secret}")
            for r in live:  # the other live codes are spent: one proof, one session
                if r is not match:
                    r.expires_at = now
            self._event(
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
            answer = {"verified": True, "channel": match.channel, "destination": match.destination}
            return Proven(answer, secret)

    def _session_code(
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
        self._event(
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

    # ---- binding a signer ----------------------------------------------------------------

    def enrol(
        self,
        link: Link,
        agreement_id: str,
        signer: dict[str, Any],
        who: Visitor,
        session_secret: str | None = None,
    ) -> dict[str, Any]:
        """Bind a passkey (`public_key`: SubjectPublicKeyInfo, base64url) or a wallet
        (`address`) as the candidate; relayed to bindCandidate(). Only from the browser that
        proved a code (its enrolment session), within 30 minutes of the proof, and once per
        proof: replacing a bound signer needs a fresh code. Every binding is announced to the
        candidate on each contact of the offer, and a replacement delays any commitment on
        chain (IntentAgreements.REBIND_DELAY)."""
        if signer["kind"] == "passkey":
            try:
                key = passkeys.public_key_from_spki(
                    passkeys.unb64url(signer["public_key"], "public_key")
                )
            except passkeys.PasskeyError as exc:
                raise ValidationFailed(exc.field, str(exc)) from None
            address = key.address
            x, y = key.hex()["x"], key.hex()["y"]
        else:
            key, address, x, y = None, signer["address"], None, None
        now = utcnow()
        with self.db.transaction() as session:
            a = load(session, reader(None, link, agreement_id), agreement_id)
            if a.state != "offered":
                raise PortalConflict(f"the agreement is {a.state}: its signer cannot change")
            self._lock(session, a.id)
            self._require_open(session, a)
            code = self._session_code(session, a.id, session_secret)
            if code is None:
                raise NotProven(
                    "prove your contact with a one-time code in this browser first: the link "
                    "alone does not allow binding a signer"
                )
            if code.used_at is not None:
                raise PortalConflict(
                    "this code already bound a signer; ask for a new code to change it"
                )
            if aware(code.verified_at) < now - ENROL_WITHIN:  # type: ignore[arg-type]
                raise PortalConflict("the code was proved too long ago; ask for a new one")
            code.used_at = now  # claimed: one proof binds one signer
            current = session.execute(
                select(CandidateSigner.address).where(
                    CandidateSigner.agreement_id == a.id, CandidateSigner.active.is_(True)
                )
            ).scalar_one_or_none()
            replaces = current or a.candidate_address
            code_id, onchain_id = code.id, a.onchain_id
            announce = self._announcement(a, signer["kind"], replaces, now)
        signer_id = str(uuid.uuid4())

        def before(session: Session) -> None:
            session.execute(
                update(CandidateSigner)
                .where(CandidateSigner.agreement_id == agreement_id)
                .values(active=False)
            )
            session.add(
                CandidateSigner(
                    id=signer_id,
                    agreement_id=agreement_id,
                    kind=signer["kind"],
                    address=address,
                    credential_id=signer.get("credential_id"),
                    public_key_x=x,
                    public_key_y=y,
                    code_id=code_id,
                    created_at=utcnow(),
                    active=True,
                )
            )
            self._event(
                session,
                agreement_id,
                "signer_bound",
                {
                    "kind": signer["kind"],
                    "address": address,
                    "credential_id": signer.get("credential_id"),
                    "public_key": {"x": x, "y": y} if x else None,
                    "code_id": code_id,
                    "session": code_id,
                    "replaces": replaces,
                },
                who,
            )
            enqueue(session, [announce])

        try:
            self.tx.transact(
                agreement_id,
                "bind_candidate",
                self.chain.bind_candidate(onchain_id, address),
                {"address": address, "signer_id": signer_id},
                before=before,
            )
        except OfferSealError:
            # Refused before anything was sent: the proof may bind again.
            with self.db.transaction() as session:
                if session.get(CandidateSigner, signer_id) is None:
                    session.execute(
                        update(CandidateCode)
                        .where(CandidateCode.id == code_id)
                        .values(used_at=None)
                    )
            raise
        return {
            "kind": signer["kind"],
            "address": address,
            "credential_id": signer.get("credential_id"),
            "replaced": replaces is not None,
        }

    @staticmethod
    def _announcement(
        a: Agreement, kind: str, replaces: str | None, at: dt.datetime
    ) -> dict[str, Any]:
        """The candidate hears of every binding, on every contact the offer names."""
        contact = a.contact or {}
        return messages.build(
            messages.CANDIDATE_SIGNER_BOUND,
            a.tenant,
            {
                "agreement_id": a.id,
                "candidate_ref": a.candidate_ref,
                "kind": kind,
                "replaced": replaces is not None,
                "bound_at": at,
                "email": contact.get("email"),
                "phone": contact.get("phone"),
            },
        )

    def signer(self, agreement_id: str) -> CandidateSigner | None:
        with self.db.sessions() as session:
            return session.execute(
                select(CandidateSigner).where(
                    CandidateSigner.agreement_id == agreement_id, CandidateSigner.active.is_(True)
                )
            ).scalar_one_or_none()

    # ---- passkey assertions --------------------------------------------------------------

    def passkey_signature(
        self, link: Link, agreement_id: str, what: str, assertion: dict[str, str], who: Visitor
    ) -> bytes:
        """The browser's assertion as the contract's `bytes signature`, from the enrolled
        passkey only; recorded with its flags. The contract checks the signature itself."""
        with self.db.sessions() as session:
            load(session, reader(None, link, agreement_id), agreement_id)
        signer = self.signer(agreement_id)
        if signer is None or signer.kind != "passkey" or signer.public_key_x is None:
            raise PortalConflict("no passkey is enrolled for this agreement")
        if assertion["credential_id"] != signer.credential_id:
            raise ValidationFailed("passkey.credential_id", "not the passkey enrolled for you")
        try:
            authenticator_data = passkeys.unb64url(
                assertion["authenticator_data"], "authenticator_data"
            )
            client_data_json = passkeys.unb64url(assertion["client_data_json"], "client_data_json")
            signature = passkeys.unb64url(assertion["signature"], "signature")
            flags = passkeys.flags(authenticator_data)
            client_data = passkeys.client_data(client_data_json)
            key = passkeys.PublicKey(
                int(signer.public_key_x, 16), int(str(signer.public_key_y), 16)
            )
            encoded = passkeys.encode_signature(
                key, authenticator_data, client_data_json, signature
            )
        except (passkeys.PasskeyError, UnicodeDecodeError) as exc:
            field = exc.field if isinstance(exc, passkeys.PasskeyError) else "client_data_json"
            raise ValidationFailed(f"passkey.{field}", str(exc)) from None
        with self.db.transaction() as session:
            self._event(
                session,
                agreement_id,
                "passkey_assertion",
                {
                    "what": what,
                    "credential_id": signer.credential_id,
                    "flags": flags,
                    "client_data": client_data,
                    "authenticator_data": assertion["authenticator_data"],
                    "signature": assertion["signature"],
                },
                who,
            )
        return encoded

    def signed(self, agreement_id: str, what: str, tx_hash: str | None, who: Visitor) -> None:
        """A signature relayed and mined: recorded with its transaction (the last one mined
        for the agreement, which is the relayed signature's)."""
        with self.db.transaction() as session:
            if tx_hash is None:
                tx_hash = session.execute(
                    select(ChainOp.tx_hash)
                    .where(ChainOp.agreement_id == agreement_id, ChainOp.state == "mined")
                    .order_by(ChainOp.id.desc())
                    .limit(1)
                ).scalar_one_or_none()
            self._event(session, agreement_id, "signed", {"what": what, "tx_hash": tx_hash}, who)

    # ---- the signing record as evidence ---------------------------------------------------

    def anchor_signing_record(
        self, link: Link, agreement_id: str, evidence: EvidenceSource
    ) -> str | None:
        """Store the signing record through the evidence service as a document of the agreement
        (intake receipt, Merkle proof, anchored root), once per agreement; the document's id.
        The evidence service being down never fails the signature: the next request of the
        record tries again."""
        reader(None, link, agreement_id)
        done = self._anchored_record(agreement_id)
        if done is not None:
            return done
        record = self._record(agreement_id)
        if record["state"] == "offered":
            return None
        token = self.links.issue(
            Link(
                link.tenant,
                agreement_id,
                link.candidate_ref,
                PURPOSE_UPLOAD,
                int(time.time()) + 3600,
                SIGNING_RECORD,
            )
        )
        content = json.dumps(record, ensure_ascii=False, indent=2, sort_keys=True).encode()
        try:
            stored = evidence.upload_through_link(
                token, f"signing-record-{agreement_id}.json", content, "application/json"
            )
        except OfferSealError as exc:
            log.warning("signing record of %s not anchored yet: %s", agreement_id, exc.detail)
            return None
        with self.db.transaction() as session:
            self._event(
                session,
                agreement_id,
                "record_anchored",
                {"document_id": stored["id"], "sha256": stored["sha256"]},
                Visitor(None, None),
            )
        return str(stored["id"])

    def _anchored_record(self, agreement_id: str) -> str | None:
        with self.db.sessions() as session:
            event = session.execute(
                select(CandidateEvent).where(
                    CandidateEvent.agreement_id == agreement_id,
                    CandidateEvent.kind == "record_anchored",
                )
            ).scalar_one_or_none()
            return None if event is None else str(event.detail["document_id"])

    # ---- what the portal shows -----------------------------------------------------------

    def events(self, agreement_id: str) -> list[dict[str, Any]]:
        with self.db.sessions() as session:
            rows = session.execute(
                select(CandidateEvent)
                .where(CandidateEvent.agreement_id == agreement_id)
                .order_by(CandidateEvent.created_at, CandidateEvent.id)
            ).scalars()
            return [
                {
                    "kind": e.kind,
                    "at": iso(e.created_at),
                    "detail": e.detail,
                    "ip": e.ip,
                    "user_agent": e.user_agent,
                }
                for e in rows
            ]

    def status(
        self,
        principal: Principal | None,
        link: Link | None,
        agreement_id: str,
        session_secret: str | None = None,
    ) -> dict[str, Any]:
        """What the candidate's portal shows: their agreement (without HR's risk view), the
        transactions, amendments waiting for them, and, to HR or the browser that proved the
        code only, their enrolment (code proven, the bound signer). A bare link shows what the
        candidate must read, not how far the enrolment got."""
        with self.db.sessions() as session:
            a = load(session, reader(principal, link, agreement_id), agreement_id)
            view = describe(session, a, self.chain.address)
            view.pop("risk", None)
            ops = {
                op.op: op.tx_hash
                for op in session.execute(
                    select(ChainOp).where(ChainOp.agreement_id == a.id, ChainOp.state == "mined")
                ).scalars()
            }
            pending = [
                {
                    "id": row.id,
                    "number": row.number,
                    "start_at": iso(row.start_at),
                    "reason": row.reason,
                    "link": self.candidate_links.amendment(a, row),
                }
                for row in session.execute(
                    select(AgreementAmendment).where(
                        AgreementAmendment.agreement_id == a.id,
                        AgreementAmendment.state == "awaiting_signature",
                    )
                ).scalars()
            ]
            proven = self._session_code(session, a.id, session_secret)
            trusted = principal is not None or proven is not None or a.state != "offered"
            contact = a.contact or {}
            channels = [c for c, k in (("email", "email"), ("sms", "phone")) if contact.get(k)]
            can_bind = (
                proven is not None
                and proven.used_at is None
                and aware(proven.verified_at) > utcnow() - ENROL_WITHIN  # type: ignore[arg-type]
            )
        start = aware(a.start_at)
        return {
            "agreement": view,
            "transactions": ops,
            "amendments": pending,
            "arrival_opens_at": iso(start - dt.timedelta(seconds=ARRIVAL_LEAD)),
            # By the chain's clock, which decides.
            "arrival_open": view["state"] == "committed"
            and self.chain.chain_time() >= int(start.timestamp()) - ARRIVAL_LEAD,
            "chain_id": self.chain.chain_id(),
            "code_verified": proven is not None,
            "can_bind": can_bind,
            "channels": channels,
            "signer": self.signer_view(agreement_id) if trusted else None,
        }

    def signer_view(self, agreement_id: str) -> dict[str, Any] | None:
        signer = self.signer(agreement_id)
        if signer is None:
            return None
        return {
            "kind": signer.kind,
            "address": signer.address,
            "credential_id": signer.credential_id,
            "bound": signer.tx_hash is not None,
        }

    # ---- the ceremony the candidate's signature covers ------------------------------------

    def ceremony(self, agreement_id: str) -> Ceremony:
        """The ceremony as it stands now: what the candidate's commitment will cover."""
        with self.db.sessions() as session:
            a = session.get(Agreement, agreement_id)
            if a is None:
                raise AgreementNotFound(f"no agreement {agreement_id}")
            signer = session.execute(
                select(CandidateSigner).where(
                    CandidateSigner.agreement_id == a.id, CandidateSigner.active.is_(True)
                )
            ).scalar_one_or_none()
            journal = [
                JournalEntry(e.kind, str(iso(e.created_at)), dict(e.detail or {}))
                for e in session.execute(
                    select(CandidateEvent)
                    .where(CandidateEvent.agreement_id == a.id)
                    .order_by(CandidateEvent.created_at, CandidateEvent.id)
                ).scalars()
            ]
            code = session.get(CandidateCode, signer.code_id) if signer is not None else None
            bound = next(
                (
                    e
                    for e in reversed(journal)
                    if e.kind == "signer_bound"
                    and signer is not None
                    and e.detail.get("code_id") == signer.code_id
                ),
                None,
            )
            signer_part: dict[str, Any] = {
                "kind": signer.kind if signer is not None else "address",
                "address": (signer.address if signer is not None else a.candidate_address or "")
                .lower(),
                "credential_id": signer.credential_id if signer is not None else None,
                "public_key": (
                    {"x": signer.public_key_x, "y": signer.public_key_y}
                    if signer is not None and signer.public_key_x
                    else None
                ),
                "bound_at": iso(signer.created_at) if signer is not None else None,
                "replaces": (bound.detail.get("replaces") or None) if bound else None,
            }
            code_part = (
                {
                    "id": code.id,
                    "channel": code.channel,
                    "destination": code.destination,
                    "destination_hash": code.destination_hash,
                    "sent_at": iso(code.created_at),
                    "verified_at": iso(code.verified_at) if code.verified_at else None,
                }
                if code is not None
                else None
            )
            return build_ceremony(
                onchain_id=a.onchain_id or "",
                chain_id=self.chain.chain_id(),
                registry=self.chain.address,
                terms_hash=a.terms_hash,
                journal=journal,
                code=code_part,
                signer=signer_part,
            )

    def freeze(self, agreement_id: str, ceremony: Ceremony) -> Callable[[Session], None]:
        """What the signature's transaction also writes: the ceremony as signed, after which
        the journal takes nothing that could change it."""

        def write(session: Session) -> None:
            self._event(
                session,
                agreement_id,
                CEREMONY_SIGNED,
                {"ceremony": ceremony.record, "ceremony_hash": ceremony.hash},
                Visitor(None, None),
            )

        return write

    def thaw(self, agreement_id: str) -> None:
        """The commitment's transaction reverted in its block: nothing was signed on chain,
        so the ceremony written with it is taken back and the record is open again."""
        with self.db.transaction() as session:
            a = session.get(Agreement, agreement_id)
            if a is None or a.state != "offered":
                return
            session.execute(
                delete(CandidateEvent).where(
                    CandidateEvent.agreement_id == agreement_id,
                    CandidateEvent.kind == CEREMONY_SIGNED,
                )
            )

    def signing_record(
        self,
        principal: Principal | None,
        link: Link | None,
        agreement_id: str,
        session_secret: str | None = None,
    ) -> dict[str, Any]:
        """What e-signature platforms call the evidence of intent: the terms hash, when the
        text was opened and for how long, the consent, the code check, the passkey (credential
        id, public key, flags), the addresses and browsers, the signature and its transaction;
        and the ceremony as the candidate's signature covered it (`ceremony`, whose keccak256
        is `ceremony_hash`, stored on chain by commit()). Through the link alone it is shown
        only once signed: before that, to the browser that proved the code."""
        with self.db.sessions() as session:
            a = load(session, reader(principal, link, agreement_id), agreement_id)
            if (
                principal is None
                and a.state == "offered"
                and self._session_code(session, a.id, session_secret) is None
            ):
                raise NotProven("the signing record is shown to the browser that proved the code")
        return self._record(agreement_id)

    def _record(self, agreement_id: str) -> dict[str, Any]:
        with self.db.sessions() as session:
            a = session.get(Agreement, agreement_id)
            assert a is not None
            head = {
                "agreement_id": a.id,
                "onchain_id": a.onchain_id,
                "registry": self.chain.address,
                "chain_id": self.chain.chain_id(),
                "terms_hash": a.terms_hash,
                "candidate_address": a.candidate_address,
                "state": a.state,
            }
        events = [e for e in self.events(agreement_id) if e["kind"] != "record_anchored"]
        record: dict[str, Any] = {"format": "offerseal-signing-record/2", **head}
        signed = next((e for e in events if e["kind"] == CEREMONY_SIGNED), None)
        if signed is not None:
            record["ceremony"] = signed["detail"]["ceremony"]
            record["ceremony_hash"] = signed["detail"]["ceremony_hash"]
        record["events"] = [e for e in events if e["kind"] != CEREMONY_SIGNED]
        anchored = self._anchored_record(agreement_id)
        if anchored is not None:  # the evidence document holding the record as it was then
            record["evidence_document_id"] = anchored
        return record

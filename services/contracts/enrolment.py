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
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..shared import messages
from ..shared.auth import Principal
from ..shared.broker import enqueue
from ..shared.db import Database
from ..shared.errors import Conflict, OfferSealError, TooManyRequests, ValidationFailed
from ..shared.links import PURPOSE_UPLOAD, Link, LinkExpired, LinkSigner
from ..shared.models import aware, iso, utcnow
from .domain import passkeys
from .domain.agreements import ARRIVAL_LEAD
from .errors import ContractsError
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
ENROL_WITHIN = dt.timedelta(minutes=30)  # a verified code allows enrolling this long
EVENT_KINDS = frozenset({"text_opened", "text_read", "consent"})


class CodeRefused(ContractsError, ValidationFailed):
    """The code is wrong (422, naming `code`, with the attempts left)."""


class CodeExpired(ContractsError, LinkExpired):
    title = "Code expired"


class PortalConflict(ContractsError, Conflict):
    title = "Not possible now"


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

    def record(self, link: Link, agreement_id: str, kind: str, seconds: int, who: Visitor) -> None:
        """The candidate opened the text, read it to the end (and for how long), or ticked the
        consent."""
        if kind not in EVENT_KINDS:
            raise ValidationFailed("kind", f"one of {', '.join(sorted(EVENT_KINDS))}")
        with self.db.transaction() as session:
            load(session, reader(None, link, agreement_id), agreement_id)
            self._event(session, agreement_id, kind, {"seconds": seconds}, who)

    # ---- one-time codes ------------------------------------------------------------------

    def request_code(
        self, link: Link, agreement_id: str, channel: str, who: Visitor
    ) -> dict[str, Any]:
        now = utcnow()
        code = f"{secrets.randbelow(10**6):06d}"
        with self.db.transaction() as session:
            a = load(session, reader(None, link, agreement_id), agreement_id)
            if a.state != "offered":
                raise PortalConflict(f"the agreement is {a.state}: there is nothing to enrol for")
            destination = self._destination(a, channel)
            recent = session.execute(
                select(CandidateCode.id).where(
                    CandidateCode.agreement_id == a.id,
                    CandidateCode.created_at > now - dt.timedelta(hours=1),
                )
            ).all()
            if len(recent) >= CODES_PER_HOUR:
                raise TooManyRequests("too many codes asked for in the last hour; try later")
            row = CandidateCode(
                id=str(uuid.uuid4()),
                agreement_id=a.id,
                channel=channel,
                destination=destination,
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
                            "code": code,
                            "expires_at": row.expires_at,
                        },
                    )
                ],
            )
            self._event(
                session, a.id, "code_sent", {"channel": channel, "destination": destination}, who
            )
            return {
                "channel": channel,
                "destination": destination,
                "expires_at": iso(row.expires_at),
            }

    @staticmethod
    def _destination(a: Agreement, channel: str) -> str:
        contact = a.contact or {}
        if channel == "email" and contact.get("email"):
            return mask_email(str(contact["email"]))
        if channel == "sms" and contact.get("phone"):
            return mask_phone(str(contact["phone"]))
        raise ValidationFailed("channel", f"HR gave no {channel} contact for this offer")

    def verify_code(self, link: Link, agreement_id: str, code: str, who: Visitor) -> dict[str, Any]:
        now = utcnow()
        with self.db.transaction() as session:
            a = load(session, reader(None, link, agreement_id), agreement_id)
            row = session.execute(
                select(CandidateCode)
                .where(CandidateCode.agreement_id == a.id)
                .order_by(CandidateCode.created_at.desc())
                .limit(1)
                .with_for_update()
            ).scalar_one_or_none()
            if row is None:
                raise PortalConflict("ask for a code first")
            if row.verified_at is not None:
                raise PortalConflict("this code was already used; ask for a new one if needed")
            if aware(row.expires_at) < now or row.attempts >= CODE_ATTEMPTS:
                raise CodeExpired("this code has expired or was tried too often; ask for a new one")
            row.attempts += 1
            if not secrets.compare_digest(row.code_hash, self.links.keyed_hash(f"{a.id}:{code}")):
                left = CODE_ATTEMPTS - row.attempts
                self._event(session, a.id, "code_failed", {"attempts_left": left}, who)
                session.commit()
                raise CodeRefused("code", f"wrong code; {left} attempts left")
            row.verified_at = now
            self._event(
                session,
                a.id,
                "code_verified",
                {"channel": row.channel, "destination": row.destination},
                who,
            )
            return {"verified": True, "channel": row.channel, "destination": row.destination}

    # ---- binding a signer ----------------------------------------------------------------

    def enrol(
        self, link: Link, agreement_id: str, signer: dict[str, Any], who: Visitor
    ) -> dict[str, Any]:
        """Bind a passkey (`public_key`: SubjectPublicKeyInfo, base64url) or a wallet
        (`address`) as the candidate, after a verified code; relayed to bindCandidate()."""
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
        with self.db.sessions() as session:
            a = load(session, reader(None, link, agreement_id), agreement_id)
            if a.state != "offered":
                raise PortalConflict(f"the agreement is {a.state}: its signer cannot change")
            code = session.execute(
                select(CandidateCode)
                .where(
                    CandidateCode.agreement_id == a.id,
                    CandidateCode.verified_at.is_not(None),
                )
                .order_by(CandidateCode.verified_at.desc())
                .limit(1)
            ).scalar_one_or_none()
            if code is None or aware(code.verified_at) < utcnow() - ENROL_WITHIN:  # type: ignore[arg-type]
                raise PortalConflict("prove your contact with a one-time code first")
            code_id, onchain_id = code.id, a.onchain_id
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
                },
                who,
            )

        self.tx.transact(
            agreement_id,
            "bind_candidate",
            self.chain.bind_candidate(onchain_id, address),
            {"address": address, "signer_id": signer_id},
            before=before,
        )
        return {
            "kind": signer["kind"],
            "address": address,
            "credential_id": signer.get("credential_id"),
        }

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
        done = self._anchored_record(agreement_id)
        if done is not None:
            return done
        record = self.signing_record(None, link, agreement_id)
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
                .order_by(CandidateEvent.created_at)
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
        self, principal: Principal | None, link: Link | None, agreement_id: str
    ) -> dict[str, Any]:
        """What the candidate's portal shows: their agreement (without HR's risk view), the
        transactions, amendments waiting for them, and their enrolment (HR may look too)."""
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
            verified = session.execute(
                select(CandidateCode.id).where(
                    CandidateCode.agreement_id == a.id,
                    CandidateCode.verified_at.is_not(None),
                    CandidateCode.verified_at > utcnow() - ENROL_WITHIN,
                )
            ).first()
            contact = a.contact or {}
            channels = [c for c, k in (("email", "email"), ("sms", "phone")) if contact.get(k)]
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
            "code_verified": verified is not None,
            "channels": channels,
            "signer": self.signer_view(agreement_id),
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

    def signing_record(
        self, principal: Principal | None, link: Link | None, agreement_id: str
    ) -> dict[str, Any]:
        """What e-signature platforms call the evidence of intent: the terms hash, when the
        text was opened and for how long, the consent, the code check, the passkey (credential
        id, public key, flags), the addresses and browsers, the signature and its transaction."""
        with self.db.sessions() as session:
            a = load(session, reader(principal, link, agreement_id), agreement_id)
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
        record = {"format": "offerseal-signing-record/1", **head, "events": events}
        anchored = self._anchored_record(agreement_id)
        if anchored is not None:  # the evidence document holding the record as it was then
            record["evidence_document_id"] = anchored
        return record

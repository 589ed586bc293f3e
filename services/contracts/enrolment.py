"""The candidate's portal, what it decides: the journal of what the candidate did (only a
proven browser's events enter the ceremony), binding a signer (a passkey or a wallet) once the
contact is proved in that browser, and turning a browser's passkey assertion into the signature
the contract checks. No key that can sign for the candidate is ever here: a passkey's private
key stays in the candidate's authenticator, and the contract checks every assertion itself.
Proving the contact is `contact_proof.py`; the record and its ceremony, `signing_records.py`."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..shared import messages
from ..shared.auth import Principal
from ..shared.broker import enqueue
from ..shared.db import Database
from ..shared.errors import (
    OfferSealError,
    ValidationFailed,
)
from ..shared.links import Link, LinkSigner
from ..shared.models import aware, iso, utcnow
from .contact_proof import (
    ENROL_WITHIN,
    ContactProof,
    NotProven,
)
from .domain import passkeys
from .domain.agreements import ARRIVAL_LEAD
from .domain.ceremony import bounded_seconds
from .journal import (
    PortalConflict,
    Visitor,
    event,
    lock,
    require_open,
)
from .models import (
    Agreement,
    AgreementAmendment,
    CandidateCode,
    CandidateSigner,
    ChainOp,
)
from .ports import AgreementsChain
from .records import CandidateLinks, describe, load, reader
from .transactions import TransactionPath

log = logging.getLogger(__name__)
EVENT_KINDS = frozenset({"text_opened", "text_read", "consent"})


class Enrolment:
    def __init__(
        self,
        db: Database,
        chain: AgreementsChain,
        tx: TransactionPath,
        links: LinkSigner,
        candidate_links: CandidateLinks,
        proof: ContactProof,
    ) -> None:
        self.proof = proof
        self.candidate_links = candidate_links
        self.db = db
        self.chain = chain
        self.tx = tx
        self.links = links

    # ---- the journal ---------------------------------------------------------------------

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
            require_open(session, a)
            proven = self.proof.session_code(session, a.id, session_secret)
            detail: dict[str, Any] = {
                "seconds": bounded_seconds(seconds),
                "seconds_reported_by": "browser",
                "session": proven.id if proven is not None else None,
            }
            event(session, agreement_id, kind, detail, who)

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
            lock(session, a.id)
            require_open(session, a)
            code = self.proof.session_code(session, a.id, session_secret)
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
            event(
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
            event(
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
            event(session, agreement_id, "signed", {"what": what, "tx_hash": tx_hash}, who)

    # ---- what the portal shows -----------------------------------------------------------

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
            proven = self.proof.session_code(session, a.id, session_secret)
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

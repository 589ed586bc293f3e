"""Amendments: new start and milestone dates with a re-issued text. Offered agreements are
amended on chain at once; committed ones only once the candidate signs the `Amendment`. Also
what an applied amendment changes, and which proposals it supersedes."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..shared import messages
from ..shared.auth import READ_ROLES, WRITE_ROLES, Principal
from ..shared.broker import enqueue
from ..shared.chain import typed_data_digest
from ..shared.db import Database
from ..shared.links import Link
from ..shared.models import aware, iso, utcnow
from .domain.agreements import amendment_typed_data
from .domain.dates import AMENDABLE_STATES, DateChange, DateRuleBroken, amended_dates
from .domain.passkeys import plausible_signature
from .domain.templates import agreement_text, terms_hash
from .errors import AgreementNotFound, ChainRefusal, Conflict, InvalidSignature, ValidationFailed
from .models import Agreement, AgreementAmendment, AgreementMilestone, ChainOp
from .ports import AgreementsChain
from .records import CandidateLinks, bound_candidate, load, milestones_of, reader
from .transactions import TransactionPath

AMENDMENT_TTL = 7 * 86400  # how long a proposed amendment can be signed


def amendment_tuple(row: AgreementAmendment) -> tuple[str, int, list[int]]:
    """The new terms hash, start and dues as the contract takes them."""
    return (
        row.terms_hash,
        int(aware(row.start_at).timestamp()),
        [int(dt.datetime.fromisoformat(d).timestamp()) for d in row.dues],
    )


def amendment_payload(
    a: Agreement, row: AgreementAmendment, milestones: list[AgreementMilestone]
) -> dict[str, Any]:
    return {
        "agreement_id": a.id,
        "candidate_ref": a.candidate_ref,
        "amendment_id": row.id,
        "number": row.number,
        "start_at": aware(row.start_at),
        "milestones": [
            {"index": m.idx, "kind": m.kind, "due_at": dt.datetime.fromisoformat(d)}
            for m, d in zip(milestones, row.dues, strict=True)
        ],
    }


def supersede(
    session: Session, agreement_id: str, keep: str | None = None, state: str = "superseded"
) -> None:
    """A newer proposal (or an applied one) replaces those still awaiting a signature; an
    agreement that ended voids them."""
    for other in session.execute(
        select(AgreementAmendment).where(
            AgreementAmendment.agreement_id == agreement_id,
            AgreementAmendment.state == "awaiting_signature",
            AgreementAmendment.id != (keep or ""),
        )
    ).scalars():
        other.state = state


def apply_amendment(session: Session, a: Agreement, op: ChainOp, links: CandidateLinks) -> None:
    """The `amend` transaction is mined: the agreement takes the new dates and text."""
    row = session.get(AgreementAmendment, op.args["amendment_id"])
    assert row is not None
    mutual = row.state == "awaiting_signature"
    row.state, row.tx_hash, row.applied_at = "applied", op.tx_hash, utcnow()
    supersede(session, a.id, keep=row.id)
    a.start_at, a.terms_text, a.terms_hash = row.start_at, row.terms_text, row.terms_hash
    milestones = milestones_of(session, a.id)
    for m, due in zip(milestones, row.dues, strict=True):
        moved = dt.datetime.fromisoformat(due)
        if aware(m.due_at) != moved:
            m.due_at, m.overdue_notified = moved, False
    enqueue(
        session,
        [
            messages.build(
                messages.AGREEMENT_AMENDED,
                a.tenant,
                {
                    **amendment_payload(a, row, milestones),
                    "terms_hash": row.terms_hash,
                    "tx_hash": op.tx_hash,
                    "mutual": mutual,
                    "signing_link": None if mutual else links.signing(a),
                },
            )
        ],
    )


def describe_amendment(row: AgreementAmendment) -> dict[str, Any]:
    return {
        "id": row.id,
        "agreement_id": row.agreement_id,
        "number": row.number,
        "state": row.state,
        "start_at": iso(row.start_at),
        "milestone_dues": list(row.dues),
        "terms_hash": row.terms_hash,
        "reason": row.reason,
        "deadline": iso(dt.datetime.fromtimestamp(row.deadline, dt.UTC)) if row.deadline else None,
        "tx_hash": row.tx_hash,
        "created_at": iso(row.created_at),
        "applied_at": iso(row.applied_at),
    }


class Amendments:
    def __init__(
        self, db: Database, chain: AgreementsChain, tx: TransactionPath, links: CandidateLinks
    ) -> None:
        self.db = db
        self.chain = chain
        self.tx = tx
        self.links = links

    def amend(self, principal: Principal, agreement_id: str, change: DateChange) -> dict[str, Any]:
        """New start and milestone dates with a re-issued text. Offered: applied on chain at
        once (the candidate signs the new terms when committing). Committed: proposed; the
        candidate gets a link to read and sign the `Amendment`, and nothing changes until then."""
        principal.require(*WRITE_ROLES)
        with self.db.sessions() as session:
            a = load(session, principal.tenant, agreement_id)
            milestones = milestones_of(session, a.id)
            number = 1 + int(
                session.execute(
                    select(func.max(AgreementAmendment.number)).where(
                        AgreementAmendment.agreement_id == a.id
                    )
                ).scalar()
                or 0
            )
        if a.state not in AMENDABLE_STATES:
            raise ChainRefusal(
                "InvalidState",
                (),
                f"the agreement is {a.state}; only offered or committed agreements can be amended",
            )
        try:
            start, dues = amended_dates(
                change,
                state=a.state,
                start=aware(a.start_at),
                offer_expires_at=aware(a.offer_expires_at),
                dues=[aware(m.due_at) for m in milestones],
                confirmed=[m.confirmed_at is not None for m in milestones],
                now=utcnow(),
            )
        except DateRuleBroken as exc:
            raise ValidationFailed(exc.field, exc.message) from None
        text = agreement_text(
            a.language,
            ZoneInfo(a.contact.get("timezone") or "UTC"),
            employer_name=a.employer_name,
            position=a.position,
            currency=a.currency,
            monthly_salary=a.monthly_salary,
            liquidated_damages=a.liquidated_damages,
            grace_days=a.grace_days,
            offer_expires_at=aware(a.offer_expires_at),
            start_at=start,
            milestones=tuple((m.kind, d) for m, d in zip(milestones, dues, strict=True)),
        )
        row = AgreementAmendment(
            id=str(uuid.uuid4()),
            agreement_id=a.id,
            number=number,
            start_at=start,
            dues=[d.isoformat() for d in dues],
            terms_text=text,
            terms_hash=terms_hash(text),
            deadline=0,
            reason=change.reason,
            state="pending",
            created_by=principal.key_id,
        )
        try:
            self._record(a, row, milestones)
        except IntegrityError:  # another amendment took this number a moment ago
            raise Conflict("another amendment of this agreement was just made; retry") from None
        return self.amendment(principal, a.id, row.id)

    def _record(
        self, a: Agreement, row: AgreementAmendment, milestones: list[AgreementMilestone]
    ) -> None:
        if a.state == "offered":
            call = self.chain.amend(a.onchain_id, *amendment_tuple(row), 0, b"")
            self.tx.transact(
                a.id,
                "amend",
                call,
                args={"amendment_id": row.id},
                before=lambda session: session.add(row),
            )
            return
        row.state = "awaiting_signature"
        row.deadline = self.chain.chain_time() + AMENDMENT_TTL
        with self.db.transaction() as session:
            supersede(session, a.id)
            session.add(row)
            session.flush()
            enqueue(
                session,
                [
                    messages.build(
                        messages.AGREEMENT_AMENDMENT_PROPOSED,
                        a.tenant,
                        {
                            **amendment_payload(a, row, milestones),
                            "signing_link": self.links.amendment(a, row),
                            "deadline": dt.datetime.fromtimestamp(row.deadline, dt.UTC),
                            "reason": row.reason,
                        },
                    )
                ],
            )

    # ---- reads, for HR and for the candidate's link -----------------------------------------

    @staticmethod
    def _reader(
        principal: Principal | None, link: Link | None, agreement_id: str, amendment_id: str
    ) -> str:
        if link is not None and link.subject != amendment_id:
            raise AgreementNotFound(f"no amendment {amendment_id}")
        return reader(principal, link, agreement_id)

    @staticmethod
    def _load(
        session: Session, tenant: str, agreement_id: str, amendment_id: str
    ) -> tuple[Agreement, AgreementAmendment]:
        a = load(session, tenant, agreement_id)
        row = session.get(AgreementAmendment, amendment_id)
        if row is None or row.agreement_id != a.id:
            raise AgreementNotFound(f"no amendment {amendment_id}")
        return a, row

    def amendment(
        self,
        principal: Principal | None,
        agreement_id: str,
        amendment_id: str,
        link: Link | None = None,
    ) -> dict[str, Any]:
        tenant = self._reader(principal, link, agreement_id, amendment_id)
        with self.db.sessions() as session:
            a, row = self._load(session, tenant, agreement_id, amendment_id)
            out = describe_amendment(row)
            if row.state == "awaiting_signature" and principal is not None:
                out["signing_link"] = self.links.amendment(a, row)
            return out

    def amendments(self, principal: Principal, agreement_id: str) -> list[dict[str, Any]]:
        principal.require(*READ_ROLES)
        with self.db.sessions() as session:
            a = load(session, principal.tenant, agreement_id)
            rows = session.execute(
                select(AgreementAmendment)
                .where(AgreementAmendment.agreement_id == a.id)
                .order_by(AgreementAmendment.number)
            ).scalars()
            return [describe_amendment(r) for r in rows]

    def amendment_terms(
        self, principal: Principal | None, link: Link | None, agreement_id: str, amendment_id: str
    ) -> tuple[str, str]:
        tenant = self._reader(principal, link, agreement_id, amendment_id)
        with self.db.sessions() as session:
            _, row = self._load(session, tenant, agreement_id, amendment_id)
            return row.terms_text, row.terms_hash

    # ---- the candidate's signature ----------------------------------------------------------

    def _typed(self, a: Agreement, row: AgreementAmendment) -> dict[str, Any]:
        terms_digest, start, dues = amendment_tuple(row)
        return amendment_typed_data(
            chain_id=self.chain.chain_id(),
            registry=self.chain.address,
            agreement_id=a.onchain_id,
            terms_hash=terms_digest,
            start_date=start,
            dues=dues,
            nonce=self.chain.nonce_of(bound_candidate(a)),
            deadline=int(row.deadline),
        )

    def amendment_typed_data(
        self, principal: Principal | None, link: Link | None, agreement_id: str, amendment_id: str
    ) -> dict[str, Any]:
        tenant = self._reader(principal, link, agreement_id, amendment_id)
        with self.db.sessions() as session:
            a, row = self._load(session, tenant, agreement_id, amendment_id)
            if row.state != "awaiting_signature":
                raise Conflict(f"the amendment is {row.state}; there is nothing to sign")
            return self._typed(a, row)

    def submit_amendment_signature(
        self,
        principal: Principal | None,
        link: Link | None,
        agreement_id: str,
        amendment_id: str,
        signature: bytes,
    ) -> dict[str, Any]:
        tenant = self._reader(principal, link, agreement_id, amendment_id)
        if principal is not None:
            principal.require(*WRITE_ROLES)
        with self.db.sessions() as session:
            a, row = self._load(session, tenant, agreement_id, amendment_id)
            if row.state != "awaiting_signature":
                raise Conflict(f"the amendment is {row.state}; there is nothing to sign")
            if a.state != "committed":
                raise ChainRefusal("InvalidState", (), f"the agreement is {a.state}")
            typed = self._typed(a, row)
            candidate, onchain_id = bound_candidate(a), a.onchain_id
            new_terms, deadline = amendment_tuple(row), int(row.deadline)
        if self.chain.chain_time() > typed["message"]["deadline"]:
            raise InvalidSignature("signature", "expired: this amendment can no longer be signed")
        if not plausible_signature(signature) and not self.chain.is_contract(candidate):
            raise InvalidSignature(
                "signature", "malformed: expected 65 bytes (r, s, v) or a passkey assertion"
            )
        if not self.chain.signed_by(candidate, typed_data_digest(typed), signature):
            raise InvalidSignature(
                "signature", "wrong signer: not the candidate's signature over this amendment"
            )
        call = self.chain.amend(onchain_id, *new_terms, deadline, signature)
        self.tx.transact(agreement_id, "amend", call, args={"amendment_id": amendment_id})
        with self.db.sessions() as session:
            _, row = self._load(session, tenant, agreement_id, amendment_id)
            return describe_amendment(row)

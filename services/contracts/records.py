"""What every part of the contracts service layer reads and writes alike: loading an agreement
for a tenant or a candidate's link, describing it for the API, the candidate's links, and the
messages that announce a milestone."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..shared import messages
from ..shared.auth import READ_ROLES, Principal
from ..shared.broker import enqueue
from ..shared.links import Link, LinkSigner
from ..shared.models import aware, iso
from .errors import AgreementNotFound, CandidateNotEnrolled
from .models import Agreement, AgreementAmendment, AgreementMilestone, ChainOp

SIGN_PURPOSE = "sign"
AMEND_PURPOSE = "amend"


def load(session: Session, tenant: str, agreement_id: str) -> Agreement:
    agreement = session.get(Agreement, agreement_id)
    if agreement is None or agreement.tenant != tenant:
        raise AgreementNotFound(f"no agreement {agreement_id}")
    return agreement


def bound_candidate(agreement: Agreement) -> str:
    """The candidate's address on chain; refused while the candidate has not enrolled."""
    if not agreement.candidate_address:
        raise CandidateNotEnrolled(
            "the candidate has not proved their contact and enrolled a passkey or a wallet yet"
        )
    return agreement.candidate_address


def milestones_of(session: Session, agreement_id: str) -> list[AgreementMilestone]:
    return list(
        session.execute(
            select(AgreementMilestone)
            .where(AgreementMilestone.agreement_id == agreement_id)
            .order_by(AgreementMilestone.idx)
        ).scalars()
    )


def reader(principal: Principal | None, link: Link | None, agreement_id: str) -> str:
    """The tenant a caller may read this agreement as: an API key's, or a candidate link's
    (which opens exactly one agreement)."""
    if principal is not None:
        principal.require(*READ_ROLES)
        return principal.tenant
    assert link is not None
    if link.agreement_id != agreement_id:
        raise AgreementNotFound(f"no agreement {agreement_id}")
    return link.tenant


def describe(session: Session, a: Agreement, contract: str) -> dict[str, Any]:
    """The agreement as the API shows it."""
    milestones = milestones_of(session, a.id)
    return {
        "id": a.id,
        "onchain_id": a.onchain_id,
        "state": a.state,
        "candidate_ref": a.candidate_ref,
        "candidate_address": a.candidate_address,
        "employer_name": a.employer_name,
        "employer_address": a.employer_address,
        "position": a.position,
        "currency": a.currency,
        "monthly_salary": a.monthly_salary,
        "liquidated_damages": a.liquidated_damages,
        "start_at": iso(a.start_at),
        "grace_days": a.grace_days,
        "offer_expires_at": iso(a.offer_expires_at),
        "language": a.language,
        "terms_hash": a.terms_hash,
        "contract": contract,
        "risk": {"level": a.risk_level, "score": a.risk_score, "reasons": a.risk_reasons},
        "arrival": {"arrived_at": iso(a.arrived_at), "disputed_at": iso(a.arrival_disputed_at)},
        "milestones": [
            {
                "index": m.idx,
                "kind": m.kind,
                "due_at": iso(m.due_at),
                "confirmed_at": iso(m.confirmed_at),
                "document_id": m.document_id,
                "tx_hash": m.tx_hash,
                "overdue": m.overdue_notified and m.confirmed_at is None,
            }
            for m in milestones
        ],
        "created_at": iso(a.created_at),
    }


def offer_transaction(session: Session, a: Agreement) -> dict[str, Any]:
    """The offer's transaction: `pending` (stored and sent, not in a block yet: the agreement
    is `offering`), `confirmed` or `failed`, with its hash and nonce."""
    op = session.execute(
        select(ChainOp)
        .where(ChainOp.agreement_id == a.id, ChainOp.op == "offer")
        .order_by(ChainOp.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    status = {"prepared": "pending", "mined": "confirmed"}.get(op.state, "failed") if op else None
    return {
        "status": status,
        "tx": op.tx_hash if op else None,
        "nonce": int(op.nonce) if op else None,
        "error": op.error if op else None,
    }


def announce(
    session: Session,
    message_type: messages.MessageType,
    agreement: Agreement,
    milestone: AgreementMilestone,
) -> None:
    """A milestone event (confirmed, overdue) into the outbox."""
    enqueue(
        session,
        [
            messages.build(
                message_type,
                agreement.tenant,
                {
                    "agreement_id": agreement.id,
                    "candidate_ref": agreement.candidate_ref,
                    "index": milestone.idx,
                    "kind": milestone.kind,
                    "due_at": aware(milestone.due_at),
                    "document_id": milestone.document_id,
                    "tx_hash": milestone.tx_hash,
                },
            )
        ],
    )


@dataclass(frozen=True)
class CandidateLinks:
    """Links a candidate opens without an API key: to sign the offer, or an amendment."""

    signer: LinkSigner
    public_url: str
    ttl: float
    # The people's origin: links open the candidate's portal there (which, asked for JSON,
    # still answers the typed data). Empty: the API's own links, as integrators used them.
    portal_url: str = ""

    def signing(self, a: Agreement) -> str:
        token = self.signer.issue(
            Link(a.tenant, a.id, a.candidate_ref, SIGN_PURPOSE, int(time.time() + self.ttl))
        )
        if self.portal_url:
            return f"{self.portal_url}/portal/{a.id}?token={token}"
        return f"{self.public_url}/v1/agreements/{a.id}/typed-data?token={token}"

    def amendment(self, a: Agreement, row: AgreementAmendment) -> str:
        token = self.signer.issue(
            Link(a.tenant, a.id, a.candidate_ref, AMEND_PURPOSE, int(row.deadline), row.id)
        )
        if self.portal_url:
            return f"{self.portal_url}/portal/{a.id}/amendments/{row.id}?token={token}"
        return (
            f"{self.public_url}/v1/agreements/{a.id}/amendments/{row.id}/typed-data?token={token}"
        )

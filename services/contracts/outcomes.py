"""What a mined (or reverted) chain operation does to its agreement, recorded with the messages
that announce it in the same database transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from ..shared import messages
from ..shared.broker import enqueue
from ..shared.models import aware, utcnow
from .amendments import apply_amendment, supersede
from .models import Agreement, AgreementAmendment, AgreementMilestone, ChainOp
from .records import CandidateLinks, announce, milestones_of
from .risk_tracking import refresh_risk

# The state an operation leads to, and the message announcing it.
TRANSITIONS = {
    "commit": "committed",
    "start": "fulfilled",
    "breach": "breached",
    "withdraw": "employer_breached",
    "cancel": "cancelled",
    "expire": "expired",
}


def offered_payload(session: Session, a: Agreement, links: CandidateLinks) -> dict[str, Any]:
    milestones = milestones_of(session, a.id)
    contact = dict(a.contact)
    contact.setdefault("language", a.language)
    return {
        "agreement_id": a.id,
        "onchain_id": a.onchain_id,
        "candidate_ref": a.candidate_ref,
        "candidate_contact": contact,
        "language": a.language,
        "position": a.position,
        "employer_name": a.employer_name,
        "start_at": aware(a.start_at),
        "offer_expires_at": aware(a.offer_expires_at),
        "signing_link": links.signing(a),
        "milestones": [{"kind": m.kind, "due_at": aware(m.due_at)} for m in milestones],
        "liquidated_damages": a.liquidated_damages,
        "currency": a.currency,
    }


class Outcomes:
    def __init__(self, links: CandidateLinks) -> None:
        self.links = links

    def reverted(self, session: Session, agreement: Agreement, op: ChainOp) -> None:
        if op.op == "offer":
            agreement.state = "failed"
        if op.op == "amend":
            amendment = session.get(AgreementAmendment, op.args["amendment_id"])
            if amendment is not None and amendment.state == "pending":
                # Only the employer's own amendment fails with its transaction; a
                # candidate's signature relayed twice leaves the first one applied.
                amendment.state = "failed"

    def mined(self, session: Session, agreement: Agreement, op: ChainOp) -> None:
        agreement.updated_at = utcnow()
        if op.op == "offer":
            agreement.state = "offered"
            enqueue(
                session,
                [
                    messages.build(
                        messages.AGREEMENT_OFFERED,
                        agreement.tenant,
                        offered_payload(session, agreement, self.links),
                    )
                ],
            )
        elif op.op == "confirm_milestone":
            milestone = session.get(AgreementMilestone, (agreement.id, int(op.args["index"])))
            assert milestone is not None
            milestone.confirmed_at = utcnow()
            milestone.tx_hash = op.tx_hash
            milestone.document_id = op.args.get("document_id")
            milestone.leaf, milestone.root = op.args["leaf"], op.args["root"]
            milestone.proof = op.args["proof"]
            announce(session, messages.MILESTONE_CONFIRMED, agreement, milestone)
        elif op.op == "amend":
            apply_amendment(session, agreement, op, self.links)
        else:
            self._transitioned(session, agreement, op)
        refresh_risk(session, agreement)

    @staticmethod
    def _transitioned(session: Session, agreement: Agreement, op: ChainOp) -> None:
        state = TRANSITIONS[op.op]
        agreement.state = state
        if state != "committed":
            supersede(session, agreement.id, state="void")
        enqueue(
            session,
            [
                messages.build(
                    messages.AGREEMENT_STATES[state],
                    agreement.tenant,
                    {
                        "agreement_id": agreement.id,
                        "onchain_id": agreement.onchain_id,
                        "candidate_ref": agreement.candidate_ref,
                        "state": state,
                        "tx_hash": op.tx_hash,
                        "liquidated_damages": agreement.liquidated_damages,
                        "currency": agreement.currency,
                        "start_at": aware(agreement.start_at),
                    },
                )
            ],
        )

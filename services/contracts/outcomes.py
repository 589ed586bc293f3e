"""What a mined (or reverted) chain operation does to its agreement, recorded with the messages
that announce it in the same database transaction; and what the chain says when it disagrees
with the database (someone else moved the agreement), recorded the same way."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from ..shared import messages
from ..shared.broker import enqueue
from ..shared.models import aware, utcnow
from .amendments import apply_amendment, supersede
from .models import Agreement, AgreementAmendment, AgreementMilestone, CandidateSigner, ChainOp
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
    "fulfil_by_arrival": "fulfilled",
}
# Operations that change no state: the candidate's arrival and the employer's dispute of it.
ARRIVAL_OPS = {"arrival", "dispute_arrival"}


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
            if op.args.get("values"):
                milestone.leaf_values = op.args["values"]
            milestone.proof = op.args["proof"]
            announce(session, messages.MILESTONE_CONFIRMED, agreement, milestone)
        elif op.op == "amend":
            apply_amendment(session, agreement, op, self.links)
        elif op.op == "arrival":
            at = op.args.get("at")
            agreement.arrived_at = agreement.arrived_at or (
                dt.datetime.fromtimestamp(int(at), dt.UTC) if at else utcnow()
            )
        elif op.op == "dispute_arrival":
            if agreement.arrival_disputed_at is None:
                agreement.arrival_disputed_at = utcnow()
                self._disputed(session, agreement)
        elif op.op == "bind_candidate":
            agreement.candidate_address = op.args["address"]
            signer = session.get(CandidateSigner, op.args["signer_id"])
            if signer is not None:
                signer.tx_hash = op.tx_hash
        elif agreement.state != TRANSITIONS[op.op]:  # not already followed from the chain
            self._transitioned(session, agreement, TRANSITIONS[op.op], op.tx_hash)
        refresh_risk(session, agreement)

    def converged(
        self,
        session: Session,
        agreement: Agreement,
        chain_state: str,
        arrival: tuple[int, bool],
    ) -> bool:
        """The chain holds `chain_state` (and the arrival `(arrived at, disputed)`) for an
        agreement the database still has offered or committed: someone else sent the
        transaction (anyone may commit, expire, declare a breach, record an arrival). Recorded
        with the message the state's own transaction would have sent; True when it changed."""
        changed = False
        arrived_at, disputed = arrival
        if arrived_at and agreement.arrived_at is None:
            agreement.arrived_at = dt.datetime.fromtimestamp(arrived_at, dt.UTC)
            changed = True
        if disputed and agreement.arrival_disputed_at is None:
            agreement.arrival_disputed_at = utcnow()
            self._disputed(session, agreement)
            changed = True
        if (
            agreement.state in ("offered", "committed")
            and chain_state != agreement.state
            and chain_state in TRANSITIONS.values()
        ):
            self._transitioned(session, agreement, chain_state, None)
            changed = True
        if changed:
            agreement.updated_at = utcnow()
            refresh_risk(session, agreement)
        return changed

    @staticmethod
    def _disputed(session: Session, agreement: Agreement) -> None:
        """The employer's dispute of the arrival is on chain: HR is told in its chat."""
        assert agreement.arrival_disputed_at is not None
        enqueue(
            session,
            [
                messages.build(
                    messages.AGREEMENT_ARRIVAL_DISPUTED,
                    agreement.tenant,
                    {
                        "agreement_id": agreement.id,
                        "candidate_ref": agreement.candidate_ref,
                        "arrived_at": aware(agreement.arrived_at) if agreement.arrived_at else None,
                        "disputed_at": aware(agreement.arrival_disputed_at),
                        "declarable_at": aware(agreement.start_at)
                        + dt.timedelta(days=agreement.grace_days),
                    },
                )
            ],
        )

    @staticmethod
    def _transitioned(
        session: Session, agreement: Agreement, state: str, tx_hash: str | None
    ) -> None:
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
                        "tx_hash": tx_hash,  # None: recorded from the chain's state
                        "liquidated_damages": agreement.liquidated_damages,
                        "currency": agreement.currency,
                        "start_at": aware(agreement.start_at),
                    },
                )
            ],
        )

"""Milestones confirmed on chain with anchored evidence: asked for by HR with a document id (the
proof fetched from the evidence service), or recorded from `evidence.anchored` messages and
confirmed by the worker. The contract computes the leaf from the document's [sha256, salt], so
evidence without those values (a message that carries only the leaf) waits for HR's request."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..shared import messages
from ..shared.auth import WRITE_ROLES, Principal
from ..shared.db import Database
from .errors import AgreementNotFound, ChainRefusal
from .models import Agreement, AgreementMilestone
from .policy import Policies
from .ports import AgreementsChain, EvidenceSource
from .records import describe, load, milestones_of
from .transactions import TransactionPath

log = logging.getLogger(__name__)


class Milestones:
    def __init__(
        self,
        db: Database,
        chain: AgreementsChain,
        tx: TransactionPath,
        policies: Policies | None = None,
    ) -> None:
        self.db = db
        self.chain = chain
        self.tx = tx
        self.policies = policies  # whether a candidate's own upload confirms by itself

    def confirm_with_document(
        self,
        principal: Principal,
        agreement_id: str,
        kind: str,
        document_id: str,
        *,
        evidence: EvidenceSource,
        authorization: str,
    ) -> dict[str, Any]:
        """Confirm the next open `kind` milestone with an anchored document, whose proof the
        evidence service gives to the caller's credentials (so only its own tenant's)."""
        bundle = evidence.milestone_evidence(document_id, authorization)
        return self.confirm_milestone(principal, agreement_id, kind, bundle)

    def confirm_milestone(
        self, principal: Principal, agreement_id: str, kind: str, evidence: dict[str, Any]
    ) -> dict[str, Any]:
        """`evidence`: the evidence service's proof bundle (already checked to belong to the
        caller's tenant by the evidence service) plus the document id."""
        principal.require(*WRITE_ROLES)
        with self.db.sessions() as session:
            a = load(session, principal.tenant, agreement_id)
            milestone = (
                session.execute(
                    select(AgreementMilestone)
                    .where(
                        AgreementMilestone.agreement_id == a.id,
                        AgreementMilestone.kind == kind,
                        AgreementMilestone.confirmed_at.is_(None),
                    )
                    .order_by(AgreementMilestone.idx)
                )
                .scalars()
                .first()
            )
            onchain_id = a.onchain_id
        if milestone is None:
            with self.db.sessions() as session:
                kinds = {m.kind for m in milestones_of(session, agreement_id)}
            if kind in kinds:
                # confirmed already (perhaps a moment ago, by an anchored upload)
                raise ChainRefusal(
                    "MilestoneAlreadyConfirmed", (), f"the {kind} milestone is already confirmed"
                )
            raise AgreementNotFound(f"agreement {agreement_id} has no {kind} milestone")
        self._confirm(agreement_id, onchain_id, milestone.idx, evidence)
        with self.db.sessions() as session:
            return describe(
                session, load(session, principal.tenant, agreement_id), self.chain.address
            )

    def _confirm(
        self, agreement_id: str, onchain_id: str, index: int, evidence: dict[str, Any]
    ) -> None:
        call = self.chain.confirm_milestone(
            onchain_id, index, evidence["root"], evidence["values"], evidence["proof"]
        )
        self.tx.transact(
            agreement_id,
            "confirm_milestone",
            call,
            args={
                "index": index,
                "document_id": evidence.get("document_id"),
                "root": evidence["root"],
                "leaf": evidence["leaf"],
                "values": list(evidence["values"]),
                "proof": evidence["proof"],
            },
        )

    def on_evidence_anchored(self, session: Session, message: messages.Message) -> None:
        """Consumer: evidence tied to an agreement milestone is anchored. Recorded here; the
        worker sends the confirmation (no chain call inside a consumer's transaction)."""
        p = message.payload
        if not p.get("agreement_id") or not p.get("milestone"):
            return
        agreement = session.get(Agreement, p["agreement_id"])
        if agreement is None or agreement.tenant != message.tenant:
            log.warning("evidence for unknown agreement %s ignored", p["agreement_id"])
            return
        milestone = (
            session.execute(
                select(AgreementMilestone)
                .where(
                    AgreementMilestone.agreement_id == agreement.id,
                    AgreementMilestone.kind == p["milestone"],
                    AgreementMilestone.confirmed_at.is_(None),
                    AgreementMilestone.leaf.is_(None),
                )
                .order_by(AgreementMilestone.idx)
            )
            .scalars()
            .first()
        )
        if milestone is None:
            return
        milestone.document_id = p["document_id"]
        if (
            p.get("via_candidate_link")
            and self.policies is not None
            and self.policies.of(session, agreement.tenant).candidate_uploads == "review"
        ):  # the candidate's upload waits for HR: POST .../milestones/{kind}/evidence
            log.info("upload for %s/%s awaits HR's review", agreement.id, milestone.kind)
            return
        milestone.leaf, milestone.root, milestone.proof = p["leaf"], p["root"], p["proof"]
        if p.get("values"):  # (unset stays SQL NULL: a JSON column stores None as 'null')
            milestone.leaf_values = p["values"]

    def confirm_recorded_evidence(self) -> int:
        """Worker: confirm on chain the milestones whose evidence arrived by message."""
        with self.db.sessions() as session:
            rows = session.execute(
                select(
                    AgreementMilestone.agreement_id,
                    AgreementMilestone.idx,
                    AgreementMilestone.document_id,
                    AgreementMilestone.leaf,
                    AgreementMilestone.leaf_values,
                    AgreementMilestone.root,
                    AgreementMilestone.proof,
                    Agreement.onchain_id,
                )
                .join(Agreement, Agreement.id == AgreementMilestone.agreement_id)
                .where(
                    AgreementMilestone.leaf.is_not(None),
                    AgreementMilestone.leaf_values.is_not(None),
                    AgreementMilestone.confirmed_at.is_(None),
                    Agreement.state == "committed",
                )
            ).all()
        done = 0
        for agreement_id, idx, document_id, leaf, values, root, proof, onchain_id in rows:
            try:
                self._confirm(
                    agreement_id,
                    onchain_id,
                    idx,
                    {
                        "document_id": document_id,
                        "leaf": leaf,
                        "values": values,
                        "root": root,
                        "proof": proof,
                    },
                )
                done += 1
            except ChainRefusal as exc:
                log.warning("milestone %s of %s not confirmed: %s", idx, agreement_id, exc.detail)
        return done

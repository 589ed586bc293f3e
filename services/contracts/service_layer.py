"""The contracts service layer assembled from its parts, each deciding one thing. The HTTP layer
calls the parts directly; the worker and the consumer use the few entry points below."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from ..shared import messages
from ..shared.db import Database
from ..shared.links import LinkSigner
from ..shared.transactions import SigningChain
from .amendments import Amendments
from .arrivals import Arrivals
from .contact_proof import ContactProof
from .enrolment import Enrolment
from .follower import ChainFollower
from .milestones import Milestones
from .outcomes import Outcomes
from .policy import Policies, Policy
from .ports import AgreementHistory, AgreementsChain
from .records import CandidateLinks
from .risk_tracking import RiskTracking
from .service import AgreementService
from .signatures import Ceremonies, Signatures
from .signing_records import SigningRecords
from .sweeper import Sweeper
from .transactions import TransactionPath


@dataclass(frozen=True)
class ContractsService:
    client: AgreementsChain
    transactions: TransactionPath
    history: AgreementHistory | None  # the dossier's view (None: no dossiers here)
    agreements: AgreementService
    signatures: Signatures
    milestones: Milestones
    amendments: Amendments
    arrivals: Arrivals
    risk: RiskTracking
    sweeper: Sweeper
    policies: Policies
    follower: ChainFollower
    enrolment: Enrolment
    contact_proof: ContactProof
    signing_records: SigningRecords

    @classmethod
    def build(
        cls,
        db: Database,
        chain: AgreementsChain,
        links: LinkSigner,
        *,
        signing: SigningChain,
        history: AgreementHistory | None = None,
        public_url: str,
        link_ttl: float,
        portal_url: str = "",
        policy: Policy | None = None,
        tx_options: dict[str, float] | None = None,
        breach_alert_lead: float = 2 * 86400.0,
    ) -> ContractsService:
        candidate_links = CandidateLinks(
            links, public_url.rstrip("/"), link_ttl, portal_url.rstrip("/")
        )
        options = tx_options or {}
        tx = TransactionPath(
            db,
            chain,
            signing,
            Outcomes(candidate_links),
            stuck_blocks=int(options.get("stuck_blocks", 3)),
            stuck_seconds=options.get("stuck_seconds", 90.0),
            poll=options.get("poll", 0.1),
        )
        agreements = AgreementService(db, chain, tx, candidate_links)
        contact_proof = ContactProof(db, links)
        enrolment = Enrolment(db, chain, tx, links, candidate_links, contact_proof)
        signing_records = SigningRecords(db, chain, links, contact_proof)
        policies = Policies(db, policy or Policy(auto_breach=True, candidate_uploads="review"))
        return cls(
            client=chain,
            transactions=tx,
            history=history,
            agreements=agreements,
            signatures=Signatures(
                db,
                chain,
                tx,
                Ceremonies(signing_records.ceremony, signing_records.freeze, signing_records.thaw),
            ),
            milestones=Milestones(db, chain, tx, policies),
            amendments=Amendments(db, chain, tx, candidate_links),
            arrivals=Arrivals(db, chain, tx),
            risk=RiskTracking(db),
            sweeper=Sweeper(db, chain, agreements.transition, policies, breach_alert_lead),
            policies=policies,
            follower=ChainFollower(db, chain, tx),
            enrolment=enrolment,
            contact_proof=contact_proof,
            signing_records=signing_records,
        )

    # ---- for the worker, the consumer and the health check (delegation only) ----------------

    def recover(self) -> int:
        return self.transactions.recover()

    def confirm(self) -> int:
        return self.transactions.confirm()

    def pending_count(self) -> int:
        return self.transactions.pending_count()

    def confirm_recorded_evidence(self) -> int:
        return self.milestones.confirm_recorded_evidence()

    def sweep(self) -> dict[str, int]:
        return self.sweeper.sweep()

    def follow(self) -> int:
        return self.follower.follow()

    def on_evidence_anchored(self, session: Session, message: messages.Message) -> None:
        self.milestones.on_evidence_anchored(session, message)

    def on_touchpoint(self, session: Session, message: messages.Message) -> None:
        self.risk.on_touchpoint(session, message)

"""Risk tracking: the signals an agreement has given (check-in replies, missed check-ins,
milestones on time or overdue, amendments agreed), the traffic light they add up to, and the
`risk.changed` message when it changes."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..shared import messages
from ..shared.auth import READ_ROLES, Principal
from ..shared.broker import enqueue
from ..shared.db import Database
from ..shared.models import aware
from .domain import risk as risk_rules
from .domain.agreements import damages_cap
from .models import Agreement, AgreementAmendment, AgreementSignal, RiskChange
from .records import load, milestones_of

log = logging.getLogger(__name__)


def signals(session: Session, a: Agreement) -> risk_rules.Signals:
    rows = (
        session.execute(
            select(AgreementSignal)
            .where(AgreementSignal.agreement_id == a.id)
            .order_by(AgreementSignal.id)
        )
        .scalars()
        .all()
    )
    replies = [r for r in rows if r.kind == "replied"]
    latest = replies[-1].answer if replies else None
    last_agreed = session.execute(
        select(func.max(AgreementAmendment.applied_at)).where(
            AgreementAmendment.agreement_id == a.id,
            AgreementAmendment.state == "applied",
            AgreementAmendment.deadline > 0,  # signed by the candidate (once committed)
        )
    ).scalar()
    milestones = milestones_of(session, a.id)
    overdue = sum(1 for m in milestones if m.overdue_notified and m.confirmed_at is None)
    on_time = sum(
        1
        for m in milestones
        if m.confirmed_at is not None and aware(m.confirmed_at) <= aware(m.due_at)
    )
    return risk_rules.Signals(
        non_compete=a.non_compete,
        project_wrap_up=a.project_wrap_up,
        replacement_days=a.replacement_days,
        overdue_milestones=overdue,
        milestones_on_time=on_time,
        checkins_answered=len(replies),
        checkins_missed=sum(1 for r in rows if r.kind == "missed"),
        reply_delays_hours=tuple(r.delay_hours for r in replies if r.delay_hours is not None),
        reported_delay=latest == "delayed",
        delay_agreed=latest == "delayed"
        and last_agreed is not None
        and aware(last_agreed) >= aware(replies[-1].occurred_at),
        reported_withdrawal=latest == "withdrawing",
        asked_for_help=latest == "need_help",
        documents_submitted=sum(1 for m in milestones if m.document_id),
    )


def refresh_risk(session: Session, a: Agreement) -> None:
    """Assess the agreement again; announce the change while the agreement is still open."""
    assessed = risk_rules.assess(signals(session, a))
    previous = a.risk_level
    changed = assessed.level != previous or list(assessed.reasons) != list(a.risk_reasons or [])
    a.risk_level, a.risk_score, a.risk_reasons = (
        assessed.level,
        assessed.score,
        list(assessed.reasons),
    )
    if changed:
        session.add(
            RiskChange(
                agreement_id=a.id,
                previous=previous,
                level=assessed.level,
                score=assessed.score,
                reasons=list(assessed.reasons),
            )
        )
    if changed and a.state not in messages.FINAL_STATES:
        enqueue(
            session,
            [
                messages.build(
                    messages.RISK_CHANGED,
                    a.tenant,
                    {
                        "agreement_id": a.id,
                        "candidate_ref": a.candidate_ref,
                        "level": assessed.level,
                        "previous": previous,
                        "reasons": list(assessed.reasons),
                        "response": assessed.response,
                        "score": assessed.score,
                    },
                )
            ],
        )


@dataclass(frozen=True)
class RiskView:
    """HR's view of an agreement's risk: the traffic light with its reasons and response, the
    stability score with its factors, and what a breach would cost."""

    agreement_id: str
    level: str
    reasons: list[str]
    response: str
    stability_score: int
    score_factors: list[str]
    exposure: dict[str, Any]


class RiskTracking:
    def __init__(self, db: Database) -> None:
        self.db = db

    def risk(self, principal: Principal, agreement_id: str) -> RiskView:
        principal.require(*READ_ROLES)
        with self.db.sessions() as session:
            a = load(session, principal.tenant, agreement_id)
            assessed = risk_rules.assess(signals(session, a))
            declarable = aware(a.start_at) + dt.timedelta(days=a.grace_days)
            return RiskView(
                agreement_id=a.id,
                level=assessed.level,
                reasons=list(assessed.reasons),
                response=assessed.response,
                stability_score=assessed.score,
                score_factors=list(assessed.score_factors),
                exposure={
                    **risk_rules.exposure(
                        liquidated_damages=a.liquidated_damages,
                        monthly_salary=a.monthly_salary,
                        cap=damages_cap(a.monthly_salary),
                        breach_declarable_after=declarable,
                    ),
                    "currency": a.currency,
                },
            )

    def on_touchpoint(self, session: Session, message: messages.Message) -> None:
        """Consumer: the candidate answered or missed a check-in; risk follows."""
        p = message.payload
        agreement = session.get(Agreement, p["agreement_id"])
        if agreement is None or agreement.tenant != message.tenant:
            log.warning("touchpoint for unknown agreement %s ignored", p["agreement_id"])
            return
        if message.type is messages.TOUCHPOINT_REPLIED:
            delay = (p["replied_at"] - p["sent_at"]).total_seconds() / 3600
            session.add(
                AgreementSignal(
                    agreement_id=agreement.id,
                    kind="replied",
                    answer=p["answer"],
                    new_date=p["new_date"].isoformat() if p.get("new_date") else None,
                    delay_hours=max(0.0, delay),
                    occurred_at=p["replied_at"],
                )
            )
        else:
            session.add(
                AgreementSignal(agreement_id=agreement.id, kind="missed", occurred_at=p["sent_at"])
            )
        session.flush()
        refresh_risk(session, agreement)

"""HR's side of a candidate: their delivery preferences (channels, language, time zone, quiet
hours, opt-out) and everything planned, sent or answered for them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..shared.auth import READ_ROLES, WRITE_ROLES, Principal
from ..shared.db import Database
from ..shared.errors import ValidationFailed
from ..shared.models import iso, utcnow
from .domain import schedule
from .errors import CandidateNotFound, TouchpointNotFound
from .models import DeliveryAttempt, NotifyCandidate, SmsSend, Touchpoint


def describe(session: Session, tp: Touchpoint, attempts: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": tp.id,
        "agreement_id": tp.agreement_id,
        "candidate_ref": tp.candidate_ref,
        "kind": tp.kind,
        "occurrence": tp.occurrence,
        "essential": tp.essential,
        "state": tp.state,
        "due_at": iso(tp.due_at),
        "sent_at": iso(tp.sent_at),
        "channel": tp.channel,
        "message_id": tp.message_id,
        "answer": tp.answer,
        "new_date": tp.new_date,
        "answered_at": iso(tp.answered_at),
        "missed": tp.missed,
        "detail": tp.detail,
    }
    if attempts:
        rows = session.execute(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.touchpoint_id == tp.id)
            .order_by(DeliveryAttempt.id)
        ).scalars()
        out["attempts"] = [
            {"at": iso(a.at), "channel": a.channel, "outcome": a.outcome, "detail": a.detail}
            for a in rows
        ]
        # proof of notice by SMS: each provider's whole answer and its delivery report
        out["sms"] = [
            {
                "at": iso(m.at),
                "provider": m.provider,
                "phone": m.phone,
                "sign_name": m.sign_name,
                "template": m.template,
                "outcome": m.outcome,
                "code": m.code,
                "request_id": m.request_id,
                "message_ref": m.message_ref,
                "answer": m.answer,
                "report_status": m.report_status,
                "report_code": m.report_code,
                "report_at": iso(m.report_at),
                "report": m.report,
            }
            for m in session.execute(
                select(SmsSend).where(SmsSend.touchpoint_id == tp.id).order_by(SmsSend.id)
            ).scalars()
        ]
    return out


class Candidates:
    def __init__(self, db: Database) -> None:
        self.db = db

    def preferences(self, principal: Principal, candidate_ref: str) -> dict[str, Any]:
        principal.require(*READ_ROLES)
        with self.db.sessions() as session:
            c = session.get(NotifyCandidate, (principal.tenant, candidate_ref))
            if c is None:
                raise CandidateNotFound(f"no candidate {candidate_ref}")
            return {
                "candidate_ref": c.candidate_ref,
                "channels": c.channels,
                "language": c.language,
                "timezone": c.timezone,
                "quiet_hours": c.quiet_hours,
                "opted_out": c.opted_out,
                "email": c.email,
                "phone": c.phone,
            }

    def set_preferences(
        self, principal: Principal, candidate_ref: str, changes: dict[str, Any]
    ) -> dict[str, Any]:
        principal.require(*WRITE_ROLES)
        if "quiet_hours" in changes:
            try:
                schedule.QuietHours.parse(changes["quiet_hours"])
            except ValueError as exc:
                raise ValidationFailed("quiet_hours", str(exc)) from None
        with self.db.transaction() as session:
            c = session.get(NotifyCandidate, (principal.tenant, candidate_ref))
            if c is None:
                raise CandidateNotFound(f"no candidate {candidate_ref}")
            for key, value in changes.items():
                setattr(c, key, value)
            c.updated_at = utcnow()
        return self.preferences(principal, candidate_ref)

    def touchpoints(
        self, principal: Principal, candidate_ref: str, attempts: bool = False
    ) -> list[dict[str, Any]]:
        principal.require(*READ_ROLES)
        with self.db.sessions() as session:
            rows = (
                session.execute(
                    select(Touchpoint)
                    .where(
                        Touchpoint.tenant == principal.tenant,
                        Touchpoint.candidate_ref == candidate_ref,
                    )
                    .order_by(Touchpoint.due_at)
                )
                .scalars()
                .all()
            )
            return [describe(session, tp, attempts=attempts) for tp in rows]

    def touchpoint(self, principal: Principal, touchpoint_id: str) -> dict[str, Any]:
        principal.require(*READ_ROLES)
        with self.db.sessions() as session:
            tp = session.get(Touchpoint, touchpoint_id)
            if tp is None or tp.tenant != principal.tenant:
                raise TouchpointNotFound(f"no touchpoint {touchpoint_id}")
            return describe(session, tp, attempts=True)

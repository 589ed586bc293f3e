"""What the console reads from the shared database, in-process: the board's facts for one
tenant in a handful of set queries (no query per row), one agreement's timeline, and the
weekly report's counts. Every query is bound to the caller's tenant."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from ...contracts.models import (
    Agreement,
    AgreementAmendment,
    AgreementMilestone,
    AgreementSignal,
    ChainOp,
    RiskChange,
)
from ...evidence.domain.documents import ANCHORED, status_of
from ...evidence.models import Batch, Document
from ...notify.models import DeliveryAttempt, EmployerConfirmation, Touchpoint
from ...shared.auth import READ_ROLES, Principal
from ...shared.db import Database
from ...shared.errors import NotFound
from ...shared.models import LinkRevocation, aware
from . import checkpoints as cp


def derive_rows(session: Session, condition: Any, now: dt.datetime) -> list[cp.Row]:
    """The board's rows of the active agreements matching `condition` (a clause on
    `Agreement`), derived from the facts in a handful of set queries (no query per row)."""
    active = and_(condition, Agreement.state.in_(cp.ACTIVE_STATES))
    # Plain rows of the columns the board shows (no ORM objects, no agreement text).
    agreements = session.execute(
        select(
            Agreement.id,
            Agreement.tenant,
            Agreement.state,
            Agreement.candidate_ref,
            Agreement.contact,
            Agreement.position,
            Agreement.currency,
            Agreement.monthly_salary,
            Agreement.liquidated_damages,
            Agreement.start_at,
            Agreement.offer_expires_at,
            Agreement.arrived_at,
            Agreement.risk_level,
            Agreement.risk_score,
            Agreement.risk_reasons,
        ).where(active)
    ).all()
    if not agreements:
        return []
    milestones: dict[str, list[cp.Milestone]] = defaultdict(list)
    for m in session.execute(
        select(
            AgreementMilestone.agreement_id,
            AgreementMilestone.kind,
            AgreementMilestone.due_at,
            AgreementMilestone.confirmed_at,
            AgreementMilestone.document_id,
            AgreementMilestone.tx_hash,
            AgreementMilestone.overdue_notified,
        )
        .join(Agreement, Agreement.id == AgreementMilestone.agreement_id)
        .where(active)
        .order_by(AgreementMilestone.agreement_id, AgreementMilestone.idx)
    ):
        milestones[m.agreement_id].append(_milestone(m))
    commits = {
        row.agreement_id: (row.finished_at, row.tx_hash)
        for row in session.execute(
            select(ChainOp.agreement_id, ChainOp.finished_at, ChainOp.tx_hash)
            .join(Agreement, Agreement.id == ChainOp.agreement_id)
            .where(active, ChainOp.op == "commit", ChainOp.state == "mined")
        )
    }
    last_reply: dict[str, tuple[str | None, dt.datetime]] = {}
    latest = (
        select(func.max(AgreementSignal.id).label("id"))
        .join(Agreement, Agreement.id == AgreementSignal.agreement_id)
        .where(active, AgreementSignal.kind == "replied")
        .group_by(AgreementSignal.agreement_id)
        .subquery()
    )
    for signal in session.execute(
        select(
            AgreementSignal.agreement_id, AgreementSignal.answer, AgreementSignal.occurred_at
        ).join(latest, latest.c.id == AgreementSignal.id)
    ):
        last_reply[signal.agreement_id] = (signal.answer, aware(signal.occurred_at))
    next_due = (
        select(Touchpoint.agreement_id, func.min(Touchpoint.due_at).label("due_at"))
        .join(Agreement, Agreement.id == Touchpoint.agreement_id)
        .where(active, Touchpoint.tenant == Agreement.tenant, Touchpoint.state == "planned")
        .group_by(Touchpoint.agreement_id)
        .subquery()
    )
    planned: dict[str, tuple[str, dt.datetime]] = {}
    for agreement_id, kind, due_at in session.execute(
        select(Touchpoint.agreement_id, Touchpoint.kind, Touchpoint.due_at)
        .join(
            next_due,
            and_(
                next_due.c.agreement_id == Touchpoint.agreement_id,
                next_due.c.due_at == Touchpoint.due_at,
            ),
        )
        .where(Touchpoint.state == "planned")
        .order_by(Touchpoint.id)
    ):
        planned.setdefault(agreement_id, (kind, aware(due_at)))
    uploads: dict[str, list[cp.Upload]] = defaultdict(list)
    for d in session.execute(
        select(
            Document.id,
            Document.agreement_id,
            Document.kind,
            Document.milestone,
            Document.received_at,
            Batch.state,
        )
        .join(Agreement, Agreement.id == Document.agreement_id)
        .outerjoin(Batch, Batch.id == Document.batch_id)
        .where(active, Document.tenant == Agreement.tenant)
    ):
        uploads[d.agreement_id].append(
            cp.Upload(d.id, d.kind, d.milestone, aware(d.received_at), status_of(d.state))
        )
    rows = []
    for a in agreements:
        committed = commits.get(a.id)
        facts = cp.Facts(
            state=a.state,
            offer_expires_at=aware(a.offer_expires_at),
            start_at=aware(a.start_at),
            committed_at=aware(committed[0]) if committed and committed[0] else None,
            commit_tx=committed[1] if committed else None,
            arrived_at=aware(a.arrived_at) if a.arrived_at else None,
            milestones=tuple(milestones.get(a.id, ())),
            uploads=tuple(uploads.get(a.id, ())),
        )
        answer = last_reply.get(a.id)
        touch = planned.get(a.id)
        zone = _zone(a)
        rows.append(
            cp.Row(
                agreement_id=a.id,
                candidate_ref=a.candidate_ref,
                candidate_name=str((a.contact or {}).get("email") or ""),
                position=a.position,
                state=a.state,
                risk_level=a.risk_level,
                risk_score=a.risk_score,
                risk_reasons=tuple(a.risk_reasons or ()),
                start_at=aware(a.start_at),
                days_to_start=cp.days_between(now, aware(a.start_at), zone),
                currency=a.currency,
                monthly_salary=a.monthly_salary,
                liquidated_damages=a.liquidated_damages,
                cells=cp.derive(facts, now),
                last_answer=answer[0] if answer else None,
                last_answer_at=answer[1] if answer else None,
                next_touchpoint=touch[0] if touch else None,
                next_touchpoint_at=touch[1] if touch else None,
                extra={"tenant": a.tenant, "zone": str(zone)},
            )
        )
    return rows


def _zone(a: Any) -> dt.tzinfo:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(str((a.contact or {}).get("timezone") or "UTC"))
    except (ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def _milestone(m: Any) -> cp.Milestone:
    """A milestone (an ORM object or a row of its columns) as the checkpoints see it."""
    return cp.Milestone(
        kind=m.kind,
        due_at=aware(m.due_at),
        confirmed_at=aware(m.confirmed_at) if m.confirmed_at else None,
        document_id=m.document_id,
        tx_hash=m.tx_hash,
        flagged_overdue=bool(m.overdue_notified),
    )


def load_agreement(session: Session, principal: Principal, agreement_id: str) -> Agreement:
    """The agreement if it is the caller's tenant's; 404 otherwise, exactly like the API."""
    principal.require(*READ_ROLES)
    agreement = session.get(Agreement, agreement_id) if len(agreement_id) <= 36 else None
    if agreement is None or agreement.tenant != principal.tenant:
        raise NotFound(f"no agreement {agreement_id}")
    return agreement


def agreement_facts(
    db: Database, principal: Principal, agreement_id: str, now: dt.datetime
) -> tuple[Agreement, tuple[cp.Cell, ...]]:
    with db.sessions() as session:
        a = load_agreement(session, principal, agreement_id)
        rows = session.execute(
            select(AgreementMilestone)
            .where(AgreementMilestone.agreement_id == a.id)
            .order_by(AgreementMilestone.idx)
        ).scalars()
        milestones = tuple(_milestone(m) for m in rows)
        commit = session.execute(
            select(ChainOp.finished_at, ChainOp.tx_hash).where(
                ChainOp.agreement_id == a.id, ChainOp.op == "commit", ChainOp.state == "mined"
            )
        ).first()
        uploads = tuple(
            cp.Upload(d.id, d.kind, d.milestone, aware(d.received_at), status_of(state))
            for d, state in session.execute(
                select(Document, Batch.state)
                .outerjoin(Batch, Batch.id == Document.batch_id)
                .where(Document.tenant == a.tenant, Document.agreement_id == a.id)
            ).all()
        )
        fulfilled = session.execute(
            select(ChainOp.finished_at).where(
                ChainOp.agreement_id == a.id,
                ChainOp.op.in_(("start", "fulfil_by_arrival")),
                ChainOp.state == "mined",
            )
        ).scalar()
    facts = cp.Facts(
        state=a.state,
        offer_expires_at=aware(a.offer_expires_at),
        start_at=aware(a.start_at),
        committed_at=aware(commit[0]) if commit and commit[0] else None,
        commit_tx=commit[1] if commit else None,
        fulfilled_at=aware(fulfilled) if fulfilled else None,
        arrived_at=aware(a.arrived_at) if a.arrived_at else None,
        milestones=milestones,
        uploads=uploads,
    )
    return a, cp.derive(facts, now)


# ---- the timeline ------------------------------------------------------------------------


def timeline(db: Database, principal: Principal, agreement_id: str) -> list[dict[str, Any]]:
    """Everything the services recorded about one agreement, oldest first. Each event:
    `at`, `kind` (a message key), `source`, `params` (for the text) and `detail`."""
    events: list[dict[str, Any]] = []

    def add(at: dt.datetime | None, kind: str, source: str, **params: Any) -> None:
        if at is not None:
            events.append({"at": aware(at), "kind": kind, "source": source, "params": params})

    with db.sessions() as session:
        a = load_agreement(session, principal, agreement_id)
        add(a.created_at, "offered", "contracts", position=a.position, by=a.created_by)
        for op in session.execute(
            select(ChainOp).where(ChainOp.agreement_id == a.id).order_by(ChainOp.id)
        ).scalars():
            add(
                op.finished_at or op.created_at,
                f"chain.{op.state}",
                "chain",
                op=op.op,
                tx=op.tx_hash,
                error=op.error or "",
            )
        for m in session.execute(
            select(AgreementMilestone).where(AgreementMilestone.agreement_id == a.id)
        ).scalars():
            add(
                m.confirmed_at,
                "milestone.confirmed",
                "chain",
                milestone=m.kind,
                document=m.document_id or "",
                tx=m.tx_hash or "",
            )
            if m.overdue_notified and m.confirmed_at is None:
                add(m.due_at, "milestone.overdue", "contracts", milestone=m.kind)
        for s in session.execute(
            select(AgreementSignal).where(AgreementSignal.agreement_id == a.id)
        ).scalars():
            if s.kind == "replied":
                add(
                    s.occurred_at,
                    "checkin.replied",
                    "candidate",
                    answer=s.answer or "",
                    new_date=s.new_date or "",
                )
            else:
                add(s.occurred_at, "checkin.missed", "notify")
        for am in session.execute(
            select(AgreementAmendment).where(AgreementAmendment.agreement_id == a.id)
        ).scalars():
            add(
                am.created_at,
                "amendment.proposed",
                "contracts",
                number=am.number,
                state=am.state,
                reason=am.reason or "",
                start=am.start_at.date().isoformat(),
            )
            add(am.applied_at, "amendment.applied", "chain", number=am.number, tx=am.tx_hash or "")
        documents = session.execute(
            select(Document, Batch)
            .outerjoin(Batch, Batch.id == Document.batch_id)
            .where(Document.tenant == a.tenant, Document.agreement_id == a.id)
        ).all()
        for doc, batch in documents:
            add(
                doc.received_at,
                "document.received",
                "evidence",
                document_kind=doc.kind,
                document=doc.id,
                uploader=doc.api_key_id,
            )
            if batch is not None and status_of(batch.state) == ANCHORED:
                add(
                    batch.anchored_at,
                    "document.anchored",
                    "chain",
                    document_kind=doc.kind,
                    document=doc.id,
                    tx=batch.tx_hash or "",
                )
        touchpoints = (
            session.execute(
                select(Touchpoint).where(
                    Touchpoint.tenant == a.tenant, Touchpoint.agreement_id == a.id
                )
            )
            .scalars()
            .all()
        )
        attempts: dict[str, list[DeliveryAttempt]] = defaultdict(list)
        if touchpoints:
            for attempt in session.execute(
                select(DeliveryAttempt).where(
                    DeliveryAttempt.touchpoint_id.in_([t.id for t in touchpoints])
                )
            ).scalars():
                attempts[attempt.touchpoint_id].append(attempt)
        for t in touchpoints:
            if t.state in {"sent", "failed", "skipped"}:
                last = max(attempts.get(t.id, []), key=lambda x: x.id, default=None)
                add(
                    t.sent_at or (last.at if last else t.due_at),
                    "message." + t.state,
                    "notify",
                    message_kind=t.kind,
                    channel=t.channel or (last.channel if last else ""),
                    detail=(t.detail or (last.detail if last else "") or "")[:200],
                )
            elif t.state == "planned":
                add(t.due_at, "message.planned", "notify", message_kind=t.kind)
        for c in session.execute(
            select(EmployerConfirmation).where(
                EmployerConfirmation.tenant == a.tenant, EmployerConfirmation.agreement_id == a.id
            )
        ).scalars():
            add(
                c.requested_at,
                "confirmation.requested",
                "notify",
                document_kind=c.document_kind,
                employer=c.employer_email,
            )
            add(
                c.answered_at,
                f"confirmation.{c.answer}",
                "employer",
                employer=c.employer_domain,
                via=c.answered_via or "",
                dkim=((c.reply or {}).get("dkim") or {}).get("result", "-"),
                document=c.attestation_document_id or "",
            )
        for r in session.execute(
            select(LinkRevocation).where(
                LinkRevocation.tenant == a.tenant, LinkRevocation.agreement_id == a.id
            )
        ).scalars():
            add(r.revoked_at, "links.revoked", "contracts", reason=r.reason)
        for change in session.execute(
            select(RiskChange).where(RiskChange.agreement_id == a.id)
        ).scalars():
            add(
                change.at,
                "risk.changed" if change.level != change.previous else "risk.assessed",
                "contracts",
                level=change.level,
                previous=change.previous,
                score=change.score,
                reasons="; ".join(change.reasons or []),
            )
    events.sort(key=lambda e: e["at"])
    return events


# ---- the weekly report ---------------------------------------------------------------------


def report_inputs(db: Database, principal: Principal) -> dict[str, Any]:
    """The tenant's agreements (state, risk, dates), the outcome times, the candidates'
    answers and the milestones, for the report's maths (`report.py`)."""
    principal.require(*READ_ROLES)
    tenant = principal.tenant
    with db.sessions() as session:
        agreements = [
            {
                "id": row.id,
                "state": row.state,
                "risk": row.risk_level,
                "created_at": aware(row.created_at),
                "start_at": aware(row.start_at),
                "updated_at": aware(row.updated_at),
            }
            for row in session.execute(
                select(
                    Agreement.id,
                    Agreement.state,
                    Agreement.risk_level,
                    Agreement.created_at,
                    Agreement.start_at,
                    Agreement.updated_at,
                ).where(Agreement.tenant == tenant)
            )
        ]
        submitted = {
            row.agreement_id
            for row in session.execute(
                select(AgreementMilestone.agreement_id)
                .join(Agreement, Agreement.id == AgreementMilestone.agreement_id)
                .where(
                    Agreement.tenant == tenant,
                    AgreementMilestone.kind == "resignation_submitted",
                    AgreementMilestone.confirmed_at.is_not(None),
                )
            )
        }
        answers = [
            (row.answer, aware(row.occurred_at))
            for row in session.execute(
                select(AgreementSignal.answer, AgreementSignal.occurred_at)
                .join(Agreement, Agreement.id == AgreementSignal.agreement_id)
                .where(Agreement.tenant == tenant, AgreementSignal.kind == "replied")
            )
        ]
    return {"agreements": agreements, "submitted": submitted, "answers": answers}


def ids_of(rows: Sequence[cp.Row]) -> list[str]:
    return [r.agreement_id for r in rows]

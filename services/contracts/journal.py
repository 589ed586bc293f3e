"""The candidate's portal journal: what the candidate (or anyone holding the link) did, kept
as rows from which the signing record and the ceremony are made; and the rule that nothing joins
the journal once the ceremony is signed."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..shared.errors import Conflict
from ..shared.models import utcnow
from .errors import ContractsError
from .models import Agreement, CandidateEvent

CEREMONY_SIGNED = "ceremony_signed"  # the journal's last word: the record is frozen after it


class PortalConflict(ContractsError, Conflict):
    title = "Not possible now"


class RecordFrozen(ContractsError, Conflict):
    title = "The signing record is closed"


@dataclass(frozen=True)
class Visitor:
    """Who is at the page: their address and browser, for the record."""

    ip: str | None
    user_agent: str | None


def event(
    session: Session, agreement_id: str, kind: str, detail: dict[str, Any], who: Visitor
) -> None:
    session.add(
        CandidateEvent(
            id=str(uuid.uuid4()),
            agreement_id=agreement_id,
            kind=kind,
            detail=detail,
            ip=who.ip,
            user_agent=(who.user_agent or "")[:400] or None,
            created_at=utcnow(),
        )
    )


def require_open(session: Session, a: Agreement) -> None:
    """Nothing joins or changes the ceremony once the candidate signed it."""
    frozen = session.execute(
        select(CandidateEvent.id).where(
            CandidateEvent.agreement_id == a.id, CandidateEvent.kind == CEREMONY_SIGNED
        )
    ).first()
    if frozen is not None or a.state not in ("offering", "offered"):
        raise RecordFrozen("the agreement is signed: its signing record no longer changes")


def lock(session: Session, agreement_id: str) -> None:
    """An agreement's codes and bindings are decided one request at a time (a row lock on
    PostgreSQL; SQLite's write transactions are serial already)."""
    session.execute(
        select(Agreement.id).where(Agreement.id == agreement_id).with_for_update()
    ).first()

"""Withdrawn candidate links: the one place that records and answers whether a link is dead.

Links are stateless signed tokens, so withdrawing one is a row here: a scope (tenant and
agreement, optionally candidate, purpose and subject) and the moment. A link in that scope
issued before the moment (or in the same second) is refused; a link issued afterwards (a
corrected invitation) works.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from .db import Database
from .links import PURPOSE_RECORD, Link
from .models import LinkRevocation, utcnow


def revoke(
    session: Session,
    *,
    tenant: str,
    agreement_id: str,
    reason: str,
    by: str,
    candidate_ref: str | None = None,
    purpose: str | None = None,
    subject: str | None = None,
) -> None:
    """Withdraw every link of the scope issued until now (in the caller's transaction)."""
    session.add(
        LinkRevocation(
            tenant=tenant,
            agreement_id=agreement_id,
            candidate_ref=candidate_ref,
            purpose=purpose,
            subject=subject,
            revoked_at=utcnow(),
            reason=reason[:200],
            revoked_by=by[:64],
        )
    )


def is_revoked(session: Session, link: Link) -> bool:
    if link.purpose == PURPOSE_RECORD:
        # OfferSeal's own short-lived credential between its services (the dossier's manifest),
        # never a candidate's: a dossier is wanted most after the agreement ended.
        return False
    # a link issued in the same second as a revocation counts as issued before it
    issued = dt.datetime.fromtimestamp(link.issued_at, dt.UTC)
    row = session.execute(
        select(LinkRevocation.id)
        .where(
            LinkRevocation.tenant == link.tenant,
            LinkRevocation.agreement_id == link.agreement_id,
            or_(
                LinkRevocation.candidate_ref.is_(None),
                LinkRevocation.candidate_ref == link.candidate_ref,
            ),
            or_(LinkRevocation.purpose.is_(None), LinkRevocation.purpose == link.purpose),
            or_(LinkRevocation.subject.is_(None), LinkRevocation.subject == link.subject),
            LinkRevocation.revoked_at >= issued,
        )
        .limit(1)
    ).first()
    return row is not None


def checker(db: Database) -> Callable[[Link], bool]:
    """For LinkSigner: asks the database about each link that is otherwise valid."""

    def check(link: Link) -> bool:
        with db.sessions() as session:
            return is_revoked(session, link)

    return check

"""The candidate's side, reached through signed single-purpose links: a check-in answered once
(a second use of the link is refused), and opting out of non-essential mail."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from sqlalchemy.exc import IntegrityError

from ..shared import messages
from ..shared.broker import enqueue
from ..shared.db import Database
from ..shared.errors import ValidationFailed
from ..shared.links import PURPOSE_REPLY, PURPOSE_UNSUBSCRIBE, Link, LinkSigner
from ..shared.models import aware, utcnow
from .errors import AlreadyUsed, CandidateNotFound, TouchpointNotFound
from .models import NotifyCandidate, Touchpoint, UsedToken


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Replies:
    def __init__(self, db: Database, links: LinkSigner) -> None:
        self.db = db
        self.links = links

    def open_reply(self, token: str) -> tuple[Link, Touchpoint]:
        link = self.links.verify(token, PURPOSE_REPLY)
        with self.db.sessions() as session:
            if session.get(UsedToken, _digest(token)) is not None:
                raise AlreadyUsed("this link was already used; your answer is recorded")
            tp = session.get(Touchpoint, link.subject)
            if tp is None or tp.agreement_id != link.agreement_id:
                raise TouchpointNotFound("no such check-in")
            return link, tp

    def reply(self, token: str, answer: str, new_date: dt.date | None) -> dict[str, Any]:
        if answer not in messages.CHECKIN_ANSWERS:
            raise ValidationFailed("answer", f"one of {', '.join(messages.CHECKIN_ANSWERS)}")
        if answer == "delayed" and new_date is None:
            raise ValidationFailed("new_date", "required when the answer is delayed")
        link, _ = self.open_reply(token)
        now = utcnow()
        try:
            with self.db.transaction() as session:
                session.add(UsedToken(digest=_digest(token)))
                session.flush()
                tp = session.get(Touchpoint, link.subject)
                assert tp is not None
                tp.answer, tp.answered_at = answer, now
                tp.new_date = new_date.isoformat() if new_date else None
                enqueue(
                    session,
                    [
                        messages.build(
                            messages.TOUCHPOINT_REPLIED,
                            tp.tenant,
                            {
                                "touchpoint_id": tp.id,
                                "agreement_id": tp.agreement_id,
                                "candidate_ref": tp.candidate_ref,
                                "kind": tp.kind,
                                "answer": answer,
                                "new_date": new_date,
                                "sent_at": aware(tp.sent_at or now),
                                "replied_at": now,
                            },
                        )
                    ],
                )
        except IntegrityError:
            raise AlreadyUsed("this link was already used; your answer is recorded") from None
        return {
            "touchpoint_id": link.subject,
            "answer": answer,
            "new_date": new_date.isoformat() if new_date else None,
        }

    def unsubscribe(self, token: str) -> dict[str, Any]:
        link = self.links.verify(token, PURPOSE_UNSUBSCRIBE)
        with self.db.transaction() as session:
            candidate = session.get(NotifyCandidate, (link.tenant, link.candidate_ref))
            if candidate is None:
                raise CandidateNotFound("unknown candidate")
            candidate.opted_out, candidate.updated_at = True, utcnow()
        return {"candidate_ref": link.candidate_ref, "opted_out": True}

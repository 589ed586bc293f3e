"""The candidate's side of notify, for their portal (through the link that opens it): what
OfferSeal sent them and when, the check-in waiting for an answer and the documents asked for
(each with its own single-purpose link, as the e-mails carry them), and whether non-essential
mail reaches them. One-time codes are listed without the code."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ..shared.db import Database
from ..shared.errors import ValidationFailed
from ..shared.links import PURPOSE_REPLY, PURPOSE_SIGN, PURPOSE_UPLOAD, LinkSigner
from ..shared.models import iso
from .domain import schedule
from .models import NotifyCandidate, Touchpoint
from .outgoing import Composer

SHOWN = ("sent", "failed", "planned", "deferred")


class Inbox:
    def __init__(self, db: Database, links: LinkSigner, composer: Composer) -> None:
        self.db = db
        self.links = links
        self.composer = composer

    def view(self, token: str) -> dict[str, Any]:
        link = self.links.verify(token, PURPOSE_SIGN)
        with self.db.sessions() as session:
            rows = list(
                session.execute(
                    select(Touchpoint)
                    .where(
                        Touchpoint.tenant == link.tenant,
                        Touchpoint.agreement_id == link.agreement_id,
                    )
                    .order_by(Touchpoint.due_at)
                ).scalars()
            )
            candidate = session.get(NotifyCandidate, (link.tenant, link.candidate_ref))
            messages = [
                {
                    "kind": tp.kind,
                    "state": tp.state,
                    "due_at": iso(tp.due_at),
                    "sent_at": iso(tp.sent_at),
                    "channel": tp.channel,
                    "answer": tp.answer,
                    "essential": tp.essential,
                }
                for tp in rows
                if tp.state in SHOWN or tp.sent_at is not None
            ]
            sent = [tp for tp in rows if tp.state == "sent"]
            open_checkins = [
                tp for tp in sent if tp.kind == schedule.CHECKIN and tp.answered_at is None
            ]
            checkin = None
            if open_checkins:
                tp = open_checkins[-1]
                checkin = {
                    "sent_at": iso(tp.sent_at),
                    "reply": "/v1/replies/" + self.composer.token_for(tp, PURPOSE_REPLY, tp.id),
                }
            uploads = [
                {
                    "milestone": (tp.data or {}).get("milestone", ""),
                    "due_at": (tp.data or {}).get("due_at", ""),
                    "upload": "/v1/uploads/"
                    + self.composer.token_for(
                        tp, PURPOSE_UPLOAD, (tp.data or {}).get("milestone", "")
                    ),
                }
                for tp in sent
                if tp.kind == schedule.MILESTONE_REQUEST
            ]
            return {
                "messages": messages,
                "checkin": checkin,
                "uploads": uploads,
                "opted_out": bool(candidate.opted_out) if candidate else False,
                "reminders": reminders_of(candidate),
            }

    def set_opted_out(self, token: str, opted_out: bool) -> dict[str, Any]:
        """The candidate's own choice about non-essential mail (essential mail always goes)."""
        link = self.links.verify(token, PURPOSE_SIGN)
        with self.db.transaction() as session:
            candidate = session.get(NotifyCandidate, (link.tenant, link.candidate_ref))
            if candidate is not None:
                candidate.opted_out = opted_out
        return {"opted_out": opted_out}

    def set_reminders(self, token: str, reminders: list[str]) -> dict[str, Any]:
        """The candidate picks e-mail, SMS or both for their reminders (check-ins, requests,
        updates). A one-time code still goes to the contact written in the offer."""
        link = self.links.verify(token, PURPOSE_SIGN)
        chosen = [c for c in REMINDER_CHANNELS if c in reminders]
        if not chosen:
            raise ValidationFailed("reminders", "e-mail, SMS or both")
        with self.db.transaction() as session:
            candidate = session.get(NotifyCandidate, (link.tenant, link.candidate_ref))
            if candidate is not None:
                if "sms" in chosen and not candidate.phone:
                    raise ValidationFailed("reminders", "no phone number is known for SMS")
                # the webhook (a tenant's own gateway) stays last, as before
                candidate.channels = [*chosen, "webhook"]
        return {"reminders": chosen}


REMINDER_CHANNELS = ("email", "sms")


def reminders_of(candidate: NotifyCandidate | None) -> list[str]:
    if candidate is None:
        return ["email"]
    chosen = [c for c in (candidate.channels or ["email"]) if c in REMINDER_CHANNELS]
    return chosen or ["email"]

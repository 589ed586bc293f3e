"""Planning from the agreements' messages: which touchpoints an agreement gets, when, and what
moves or stops when its state or its dates change. Nothing is sent from here.

Every touchpoint has a key (agreement, kind, occurrence), so planning the same message twice
plans nothing new.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..shared import messages, revocations
from ..shared.broker import enqueue
from ..shared.links import PURPOSE_UPLOAD
from ..shared.messages import FINAL_STATES
from ..shared.models import aware, utcnow
from .calendars import calendar_of
from .domain import alerts, schedule, workdays
from .models import FollowedAgreement, NotifyCandidate, Touchpoint

log = logging.getLogger(__name__)


def zone(name: str, default: str) -> ZoneInfo:
    """The candidate's time zone, or the default one if the name is unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(default)


class Planner:
    """Consumes the agreements' messages (each handler runs in the consumer's transaction)."""

    def __init__(
        self,
        *,
        checkin_interval: float,
        quiet_hours: str,
        default_timezone: str,
    ) -> None:
        self.checkin_interval = dt.timedelta(seconds=checkin_interval)
        self.default_quiet = schedule.QuietHours.parse(quiet_hours)
        self.default_timezone = default_timezone
        # raises HR alerts in the consumer's transaction (set by the service when it has one)
        self.alerts: Callable[..., None] | None = None

    def _alert(
        self,
        session: Session,
        tenant: str,
        kind: str,
        agreement_id: str,
        detail: str | Callable[[str], str],
    ) -> None:
        if self.alerts is not None:
            self.alerts(session, tenant, kind, agreement_id, detail)

    def on_risk_changed(self, session: Session, message: messages.Message) -> None:
        """A risk that turns red is an HR alert (the chat robots)."""
        p = message.payload
        if p["level"] == "red" and p.get("previous") != "red":
            followed = self._followed(session, message)
            if followed is not None:
                detail = "; ".join(p.get("reasons") or [])
                self._alert(session, message.tenant, alerts.RISK_RED, followed.agreement_id, detail)

    def on_milestone_overdue(self, session: Session, message: messages.Message) -> None:
        p = message.payload
        followed = self._followed(session, message)
        if followed is not None:
            detail = f"#{int(p['index']) + 1} {p['kind']}, {aware(p['due_at']).date().isoformat()}"
            self._alert(
                session, message.tenant, alerts.MILESTONE_OVERDUE, followed.agreement_id, detail
            )

    def on_breach_due(self, session: Session, message: messages.Message) -> None:
        """A breach becomes declarable soon and the candidate has not arrived: HR is alerted."""
        p = message.payload
        followed = self._followed(session, message)
        if followed is None:
            return

        def detail(language: str) -> str:
            return alerts.detail(
                alerts.BREACH_DUE,
                language,
                at=p["declarable_at"],
                automatic=p["automatic"],
                damages=p["liquidated_damages"],
                currency=p["currency"],
            )

        self._alert(session, message.tenant, alerts.BREACH_DUE, followed.agreement_id, detail)

    def on_arrival_disputed(self, session: Session, message: messages.Message) -> None:
        """The employer disputed the candidate's arrival on chain: HR is alerted."""
        p = message.payload
        followed = self._followed(session, message)
        if followed is None:
            return

        def detail(language: str) -> str:
            return alerts.detail(
                alerts.ARRIVAL_DISPUTED,
                language,
                at=p["declarable_at"],
                arrived=p.get("arrived_at"),
                disputed=p["disputed_at"],
            )

        self._alert(session, message.tenant, alerts.ARRIVAL_DISPUTED, followed.agreement_id, detail)

    def plan(
        self, session: Session, followed: FollowedAgreement, items: list[schedule.Planned]
    ) -> int:
        """Insert touchpoints; the key (agreement, kind, occurrence) makes this idempotent."""
        keys = [f"{followed.agreement_id}:{p.kind}:{p.occurrence}" for p in items]
        existing = (
            set(session.execute(select(Touchpoint.key).where(Touchpoint.key.in_(keys))).scalars())
            if keys
            else set()
        )
        added = 0
        for key, item in zip(keys, items, strict=True):
            if key in existing:
                continue
            session.add(
                Touchpoint(
                    id=str(uuid.uuid4()),
                    key=key,
                    tenant=followed.tenant,
                    agreement_id=followed.agreement_id,
                    candidate_ref=followed.candidate_ref,
                    kind=item.kind,
                    occurrence=item.occurrence,
                    essential=item.essential,
                    due_at=item.due_at,
                    data=item.data,
                )
            )
            added += 1
        session.flush()
        return added

    def on_offered(self, session: Session, message: messages.Message) -> None:
        p = message.payload
        contact = p["candidate_contact"]
        candidate = session.get(NotifyCandidate, (message.tenant, p["candidate_ref"]))
        if candidate is None:
            candidate = NotifyCandidate(
                tenant=message.tenant,
                candidate_ref=p["candidate_ref"],
                timezone=contact.get("timezone") or self.default_timezone,
                language=contact.get("language") or p["language"],
                quiet_hours=str(self.default_quiet),
                channels=["email", "webhook"],
                opted_out=False,
            )
            session.add(candidate)
        candidate.email = contact.get("email") or candidate.email
        candidate.phone = contact.get("phone") or candidate.phone
        followed = session.get(FollowedAgreement, p["agreement_id"])
        if followed is None:
            followed = FollowedAgreement(
                agreement_id=p["agreement_id"],
                tenant=message.tenant,
                candidate_ref=p["candidate_ref"],
                language=p["language"],
                employer_name=p["employer_name"],
                position=p["position"],
                start_at=p["start_at"],
                state="offered",
                milestones=[
                    {"kind": m["kind"], "due_at": m["due_at"].isoformat()} for m in p["milestones"]
                ],
            )
            session.add(followed)
        session.flush()
        self.plan(
            session,
            followed,
            [
                schedule.Planned(
                    schedule.INVITATION,
                    1,
                    message.occurred_at,
                    {
                        "sign": p["signing_link"],
                        "employer": p["employer_name"],
                        "position": p["position"],
                        "due_at": p["offer_expires_at"].isoformat(),
                        "start_at": p["start_at"].isoformat(),
                    },
                )
            ],
        )

    @staticmethod
    def _followed(session: Session, message: messages.Message) -> FollowedAgreement | None:
        """The agreement a message is about, if notify follows it for that tenant."""
        agreement_id = message.payload["agreement_id"]
        followed = session.get(FollowedAgreement, agreement_id)
        if followed is None or followed.tenant != message.tenant:
            log.warning(
                "%s for an agreement notify does not follow: %s", message.type.name, agreement_id
            )
            return None
        return followed

    def on_agreement_state(self, session: Session, message: messages.Message) -> None:
        p = message.payload
        followed = self._followed(session, message)
        if followed is None:
            return
        followed.state = p["state"]
        if p["state"] == "committed":
            self.plan(
                session,
                followed,
                schedule.plan_after_commitment(
                    committed_at=message.occurred_at,
                    start_at=aware(followed.start_at),
                    checkin_interval=self.checkin_interval,
                    milestones=[
                        (m["kind"], dt.datetime.fromisoformat(m["due_at"]))
                        for m in followed.milestones
                    ],
                    request=self._request_at(session, followed),
                ),
            )
        elif p["state"] in FINAL_STATES:
            # Every link sent so far dies with the agreement; everything still planned stops;
            # one closing message says what happened.
            revocations.revoke(
                session,
                tenant=message.tenant,
                agreement_id=followed.agreement_id,
                reason=f"agreement {p['state']}",
                by="notify",
            )
            session.execute(
                update(Touchpoint)
                .where(
                    Touchpoint.agreement_id == followed.agreement_id, Touchpoint.state == "planned"
                )
                .values(state="cancelled", detail=f"agreement {p['state']}")
            )
            self.plan(
                session,
                followed,
                [schedule.Planned(schedule.CLOSING, 1, message.occurred_at, {"state": p["state"]})],
            )

    def on_code_requested(self, session: Session, message: messages.Message) -> None:
        """A one-time code the candidate asked for in the portal: due now. The code is kept
        only until it expires (the retention sweep forgets the touchpoint's data)."""
        p = message.payload
        followed = self._followed(session, message)
        if followed is None:
            return
        occurrence = int(message.occurred_at.timestamp() * 1000) % 2_000_000_000
        self.plan(
            session,
            followed,
            [
                schedule.Planned(
                    schedule.CODE,
                    occurrence,
                    message.occurred_at,
                    {
                        "code": p["code"],
                        "code_id": p["code_id"],
                        "channel": p["channel"],
                        "to": p["destination"],
                        "expires_at": p["expires_at"].isoformat(),
                    },
                )
            ],
        )

    def on_signer_bound(self, session: Session, message: messages.Message) -> None:
        """A key was bound to sign for the candidate: they hear of it at once on every contact
        the offer names, so a binding they did not make cannot pass unnoticed."""
        p = message.payload
        followed = self._followed(session, message)
        if followed is None:
            return
        occurrence = int(message.occurred_at.timestamp() * 1000) % 2_000_000_000
        base = {
            "signer_kind": p["kind"],
            "replaced": "yes" if p["replaced"] else "",
            "bound_at": p["bound_at"].isoformat(),
        }
        planned = [
            schedule.Planned(
                schedule.SIGNER_BOUND,
                occurrence + i,
                message.occurred_at,
                {**base, "channel": channel, "to": str(p[field])},
            )
            for i, (channel, field) in enumerate((("email", "email"), ("sms", "phone")))
            if p.get(field)
        ]
        self.plan(session, followed, planned)

    def on_amendment_proposed(self, session: Session, message: messages.Message) -> None:
        """New dates await the candidate's signature: an essential message with the link."""
        p = message.payload
        followed = self._followed(session, message)
        if followed is None:
            return
        self._plan_amendment(session, followed, message, p["signing_link"], p.get("reason"))

    def _plan_amendment(
        self,
        session: Session,
        followed: FollowedAgreement,
        message: messages.Message,
        link: str,
        reason: str | None,
    ) -> None:
        """The essential message that new dates are to be read (and signed)."""
        p = message.payload
        tz = zone(self._timezone_of(session, followed), self.default_timezone)
        self.plan(
            session,
            followed,
            [
                schedule.Planned(
                    schedule.AMENDMENT,
                    p["number"],
                    message.occurred_at,
                    {
                        "sign": link,
                        "start_at": p["start_at"].astimezone(tz).date().isoformat(),
                        "reason": reason or "",
                        "stage": followed.state,
                    },
                )
            ],
        )

    def on_amended(self, session: Session, message: messages.Message) -> None:
        """The chain holds new dates: what is still planned moves with them."""
        p = message.payload
        followed = self._followed(session, message)
        if followed is None:
            return
        followed.start_at = p["start_at"]
        followed.milestones = [
            {"kind": m["kind"], "due_at": m["due_at"].isoformat()}
            for m in sorted(p["milestones"], key=lambda m: m["index"])
        ]
        # A signed or superseded proposal's message is no longer needed.
        session.execute(
            update(Touchpoint)
            .where(
                Touchpoint.agreement_id == followed.agreement_id,
                Touchpoint.kind == schedule.AMENDMENT,
                Touchpoint.state == "planned",
            )
            .values(state="cancelled", detail=f"amendment {p['number']} applied")
        )
        if followed.state == "offered" and p.get("signing_link"):
            # Not signed yet: the candidate is told the terms changed before they sign.
            self._plan_amendment(session, followed, message, p["signing_link"], None)
        if followed.state != "committed":
            return
        rows = {
            (t.kind, t.occurrence): t
            for t in session.execute(
                select(Touchpoint).where(Touchpoint.agreement_id == followed.agreement_id)
            ).scalars()
        }
        plan = schedule.replan(
            now=utcnow(),
            start_at=aware(followed.start_at),
            milestones=[
                (m["kind"], dt.datetime.fromisoformat(m["due_at"])) for m in followed.milestones
            ],
            checkin_interval=self.checkin_interval,
            existing=[
                schedule.Existing(
                    t.kind,
                    t.occurrence,
                    t.state,
                    aware(t.due_at),
                    aware(t.sent_at) if t.sent_at else None,
                )
                for t in rows.values()
            ],
            request=self._request_at(session, followed),
        )
        reason = f"dates amended ({p['number']})"
        for key, (due, data) in plan.moves.items():
            tp = rows[key]
            tp.due_at, tp.data, tp.detail = due, {**(tp.data or {}), **data}, reason
        for key in plan.cancels:
            rows[key].state, rows[key].detail = "cancelled", reason
        self.plan(session, followed, plan.adds)

    def _request_at(self, session: Session, followed: FollowedAgreement) -> schedule.RequestAt:
        """Document requests count working days when the tenant uses a holiday calendar."""
        calendar = calendar_of(session, followed.tenant)
        if calendar is None:
            return schedule.request_at
        tz = zone(self._timezone_of(session, followed), self.default_timezone)
        return workdays.request_at_on(calendar, tz, lambda kind: schedule.lead_for(kind).days)

    def _timezone_of(self, session: Session, followed: FollowedAgreement) -> str:
        candidate = session.get(NotifyCandidate, (followed.tenant, followed.candidate_ref))
        return candidate.timezone if candidate is not None else self.default_timezone

    def on_milestone_confirmed(self, session: Session, message: messages.Message) -> None:
        """The document arrived: its pending request is no longer needed, and the upload links
        for that stage stop working (a leaked link cannot add evidence afterwards)."""
        p = message.payload
        if self._followed(session, message) is None:  # another tenant's agreement id
            return
        revocations.revoke(
            session,
            tenant=message.tenant,
            agreement_id=p["agreement_id"],
            purpose=PURPOSE_UPLOAD,
            subject=p["kind"],
            reason="milestone confirmed",
            by="notify",
        )
        session.execute(
            update(Touchpoint)
            .where(
                Touchpoint.agreement_id == p["agreement_id"],
                Touchpoint.kind == schedule.MILESTONE_REQUEST,
                Touchpoint.occurrence == p["index"],
                Touchpoint.state == "planned",
            )
            .values(state="cancelled", detail="evidence received")
        )

    # ---- after a check-in went out (called in the transaction that records it) ------------

    def checkin_sent(self, session: Session, tp: Touchpoint) -> None:
        """Earlier check-ins left unanswered are missed; the next one is planned from now."""
        self._mark_missed(session, tp)
        self._plan_next_checkin(session, tp)

    def _mark_missed(self, session: Session, tp: Touchpoint) -> None:
        """A check-in not answered before the next one goes out is a missed check-in."""
        previous = (
            session.execute(
                select(Touchpoint).where(
                    Touchpoint.agreement_id == tp.agreement_id,
                    Touchpoint.kind == schedule.CHECKIN,
                    Touchpoint.occurrence < tp.occurrence,
                    Touchpoint.state == "sent",
                    Touchpoint.answered_at.is_(None),
                    Touchpoint.missed.is_(False),
                )
            )
            .scalars()
            .all()
        )
        for missed in previous:
            missed.missed = True
            sent = aware(missed.sent_at or utcnow()).date().isoformat()
            self._alert(session, missed.tenant, alerts.CHECKIN_MISSED, missed.agreement_id, sent)
            enqueue(
                session,
                [
                    messages.build(
                        messages.TOUCHPOINT_MISSED,
                        missed.tenant,
                        {
                            "touchpoint_id": missed.id,
                            "agreement_id": missed.agreement_id,
                            "candidate_ref": missed.candidate_ref,
                            "kind": missed.kind,
                            "sent_at": aware(missed.sent_at or utcnow()),
                        },
                    )
                ],
            )

    def _plan_next_checkin(self, session: Session, tp: Touchpoint) -> None:
        followed = session.get(FollowedAgreement, tp.agreement_id)
        if followed is None or followed.state != "committed":
            return
        upcoming = schedule.next_checkin(
            tp.occurrence, utcnow(), self.checkin_interval, aware(followed.start_at)
        )
        if upcoming is not None:
            self.plan(session, followed, [upcoming])

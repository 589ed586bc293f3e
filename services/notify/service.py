"""Notify service layer: plans touchpoints from the agreements' messages, dispatches them when
due (quiet hours, opt-out, retries) and records the candidate's replies. Independent of HTTP.

Delivery: a row is claimed (`sending`) in its own transaction before the channel is called and
marked `sent` after it (outcomes are committed GROUP at a time). A crash before sending sends it
once after the restart; a message the channel accepted is first written to the sent journal
(`journal.py`), so a dispatcher killed before the commit is followed by one that records it as
sent instead of sending it again. Every message keeps a stable Message-ID
(`<touchpoint-id@domain>`), so the one duplicate a power cut at that instant could cause is
recognisable.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
import uuid
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..shared import failpoints, messages
from ..shared.auth import READ_ROLES, WRITE_ROLES, Principal
from ..shared.broker import enqueue
from ..shared.config import Settings
from ..shared.db import Database, is_sqlite
from ..shared.errors import ValidationFailed
from ..shared.links import (
    PURPOSE_REPLY,
    PURPOSE_UNSUBSCRIBE,
    PURPOSE_UPLOAD,
    Link,
    LinkSigner,
)
from ..shared.messages import FINAL_STATES
from ..shared.models import aware, iso, utcnow
from .adapters.channels import Outgoing
from .adapters.journal import Accepted, SentJournal
from .domain import schedule, templates
from .domain.templates import Override, TemplateError, render
from .errors import (
    AlreadyUsed,
    CandidateNotFound,
    Rejected,
    RetryLater,
    TemplateNotFound,
    TouchpointNotFound,
)
from .models import (
    DeliveryAttempt,
    FollowedAgreement,
    NotifyCandidate,
    TenantTemplate,
    Touchpoint,
    UsedToken,
)

log = logging.getLogger(__name__)
# Outcomes committed per transaction while dispatching (the sent journal covers the gap).
GROUP = 50


class NotifyService:
    def __init__(
        self,
        db: Database,
        links: LinkSigner,
        channels: dict[str, Any],
        *,
        public_url: str,
        evidence_url: str,
        checkin_interval: float,
        quiet_hours: str,
        default_timezone: str,
        mail_domain: str,
        link_ttl: float = Settings.link_ttl,
        journal: SentJournal | None = None,
    ) -> None:
        self.db = db
        self.journal = journal
        self.links = links
        self.channels = channels  # "email" and/or "webhook"
        self.public_url = public_url.rstrip("/")
        self.evidence_url = evidence_url.rstrip("/")
        self.checkin_interval = dt.timedelta(seconds=checkin_interval)
        self.default_quiet = schedule.QuietHours.parse(quiet_hours)
        self.default_timezone = default_timezone
        self.mail_domain = mail_domain
        self.link_ttl = link_ttl  # how long a candidate link stays valid
        self._outcomes: list[
            tuple[str, str, str | None, str | None, str | None, Touchpoint | None]
        ] = []
        self._grouping = False

    # ---- planning, from the agreements' messages -----------------------------------------

    def _plan(
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
        self._plan(
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
            self._plan(
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
                ),
            )
        elif p["state"] in FINAL_STATES:
            # Everything still planned stops; one closing message says what happened.
            session.execute(
                update(Touchpoint)
                .where(
                    Touchpoint.agreement_id == followed.agreement_id, Touchpoint.state == "planned"
                )
                .values(state="cancelled", detail=f"agreement {p['state']}")
            )
            self._plan(
                session,
                followed,
                [schedule.Planned(schedule.CLOSING, 1, message.occurred_at, {"state": p["state"]})],
            )

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
        zone = self._zone(self._timezone_of(session, followed))
        self._plan(
            session,
            followed,
            [
                schedule.Planned(
                    schedule.AMENDMENT,
                    p["number"],
                    message.occurred_at,
                    {
                        "sign": link,
                        "start_at": p["start_at"].astimezone(zone).date().isoformat(),
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
        )
        reason = f"dates amended ({p['number']})"
        for key, (due, data) in plan.moves.items():
            tp = rows[key]
            tp.due_at, tp.data, tp.detail = due, {**(tp.data or {}), **data}, reason
        for key in plan.cancels:
            rows[key].state, rows[key].detail = "cancelled", reason
        self._plan(session, followed, plan.adds)

    def _timezone_of(self, session: Session, followed: FollowedAgreement) -> str:
        candidate = session.get(NotifyCandidate, (followed.tenant, followed.candidate_ref))
        return candidate.timezone if candidate is not None else self.default_timezone

    def on_milestone_confirmed(self, session: Session, message: messages.Message) -> None:
        """The document arrived: its pending request is no longer needed."""
        p = message.payload
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

    # ---- dispatch ---------------------------------------------------------------------------

    def claim(self, limit: int = 100) -> list[str]:
        """Due rows, claimed in their own transaction: SKIP LOCKED on PostgreSQL (several
        workers may run); SQLite has one writer at a time anyway."""
        now = utcnow()
        with self.db.transaction() as session:
            query = (
                select(Touchpoint.id)
                .where(Touchpoint.state == "planned", Touchpoint.due_at <= now)
                .order_by(Touchpoint.due_at)
                .limit(limit)
            )
            if not is_sqlite(self.db.engine):
                query = query.with_for_update(skip_locked=True)
            ids = list(session.execute(query).scalars())
            if ids:
                session.execute(
                    update(Touchpoint)
                    .where(Touchpoint.id.in_(ids))
                    .values(state="sending", claimed_at=now)
                )
        return ids

    def settle_journal(self) -> int:
        """At start: messages a killed predecessor handed to a channel but never recorded are
        recorded as sent now, not sent again. Runs before stale claims are released."""
        if self.journal is None:
            return 0
        leftovers = self.journal.leftovers()
        if leftovers:
            with self.db.sessions() as session:
                sending = set(
                    session.execute(
                        select(Touchpoint.id).where(
                            Touchpoint.id.in_([a.touchpoint_id for a in leftovers]),
                            Touchpoint.state == "sending",
                        )
                    ).scalars()
                )
            self._grouping = True
            try:
                for a in leftovers:
                    if a.touchpoint_id in sending:
                        sending.discard(a.touchpoint_id)
                        self._finish(
                            a.touchpoint_id,
                            "sent",
                            a.channel,
                            f"{a.detail} (recorded after a restart)",
                            message_id=a.message_id,
                        )
            finally:
                self._grouping = False
                self._flush()
            log.info("recorded %d message(s) a previous dispatcher had sent", len(leftovers))
        self.journal.clear()
        return len(leftovers)

    def release_stale(self, older_than: float = 300.0) -> int:
        """Rows a crashed worker claimed: back to planned (sent again, same Message-ID)."""
        cutoff = utcnow() - dt.timedelta(seconds=older_than)
        with self.db.transaction() as session:
            result = session.execute(
                update(Touchpoint)
                .where(Touchpoint.state == "sending", Touchpoint.claimed_at < cutoff)
                .values(state="planned")
            )
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

    def dispatch_once(self, limit: int = 100) -> int:
        self._flush()  # outcomes a failed commit kept: recorded before anything else
        ids = self.claim(limit)
        if not ids:
            return 0
        self._grouping = True
        try:
            self._dispatch(ids)
        finally:
            self._grouping = False
            self._flush()
        return len(ids)

    def _dispatch(self, ids: list[str]) -> None:
        # One query each for the rows, their candidates and their agreements.
        with self.db.sessions() as session:
            rows = list(
                session.execute(
                    select(Touchpoint).where(Touchpoint.id.in_(ids)).order_by(Touchpoint.due_at)
                ).scalars()
            )
            candidates = {
                (c.tenant, c.candidate_ref): c
                for c in session.execute(
                    select(NotifyCandidate).where(
                        NotifyCandidate.candidate_ref.in_({r.candidate_ref for r in rows})
                    )
                ).scalars()
            }
            agreements = {
                a.agreement_id: a
                for a in session.execute(
                    select(FollowedAgreement).where(
                        FollowedAgreement.agreement_id.in_({r.agreement_id for r in rows})
                    )
                ).scalars()
            }
            overrides = self._overrides(session, {r.tenant for r in rows})
        for tp in rows:
            try:
                self._deliver(
                    tp,
                    candidates.get((tp.tenant, tp.candidate_ref)),
                    agreements.get(tp.agreement_id),
                    overrides,
                )
            except Exception:
                log.exception("delivering touchpoint %s failed; it will be retried", tp.id)
                self._reschedule(tp.id, "internal error", None)

    def deliver(self, touchpoint_id: str) -> str:
        with self.db.sessions() as session:
            tp = session.get(Touchpoint, touchpoint_id)
            assert tp is not None
            return self._deliver(
                tp,
                self._candidate(session, tp),
                session.get(FollowedAgreement, tp.agreement_id),
                self._overrides(session, {tp.tenant}),
            )

    @staticmethod
    def _overrides(session: Session, tenants: set[str]) -> dict[tuple[str, str, str], Override]:
        """The tenants' own templates, one query per batch."""
        return {
            (t.tenant, t.kind, t.language): Override(t.subject, t.text)
            for t in session.execute(
                select(TenantTemplate).where(TenantTemplate.tenant.in_(tenants))
            ).scalars()
        }

    def _candidate(self, session: Session, tp: Touchpoint) -> NotifyCandidate | None:
        return session.get(NotifyCandidate, (tp.tenant, tp.candidate_ref))

    def _deliver(
        self,
        tp: Touchpoint,
        candidate: NotifyCandidate | None,
        followed: FollowedAgreement | None,
        overrides: dict[tuple[str, str, str], Override],
    ) -> str:
        touchpoint_id = tp.id
        if candidate is None or followed is None:
            return self._finish(touchpoint_id, "skipped", None, "no contact data for the candidate")
        if not tp.essential and candidate.opted_out:
            return self._finish(touchpoint_id, "skipped", None, "candidate opted out")
        tz = self._zone(candidate.timezone)
        now = utcnow()
        allowed = schedule.QuietHours.parse(candidate.quiet_hours).next_allowed(now, tz)
        if allowed > now:
            self._defer(touchpoint_id, allowed)
            return "deferred"
        channel_name = self._channel_for(candidate)
        if channel_name is None:
            reason = (
                "no delivery channel is configured (OFFERSEAL_SMTP_URL, OFFERSEAL_WEBHOOK_URL "
                "or OFFERSEAL_NOTIFY_OUTBOX_DIR)"
                if not self.channels
                else "no channel reaches the candidate (no e-mail address, no webhook)"
            )
            return self._finish(touchpoint_id, "skipped", None, reason)
        outgoing = self._outgoing(tp, candidate, followed, overrides)
        failpoints.hit("notify.before_send")
        try:
            detail = self.channels[channel_name].send(outgoing)
        except RetryLater as exc:
            return self._reschedule(touchpoint_id, str(exc), channel_name)
        except Rejected as exc:
            return self._finish(touchpoint_id, "failed", channel_name, str(exc))
        if self.journal is not None:
            self.journal.record(Accepted(touchpoint_id, outgoing.message_id, channel_name, detail))
        failpoints.hit("notify.after_send")
        return self._finish(
            touchpoint_id,
            "sent",
            channel_name,
            detail,
            message_id=outgoing.message_id,
            touchpoint=tp,
        )

    def _zone(self, name: str) -> ZoneInfo:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            return ZoneInfo(self.default_timezone)

    def _channel_for(self, candidate: NotifyCandidate) -> str | None:
        for name in candidate.channels or ["email", "webhook"]:
            if name == "email" and candidate.email and "email" in self.channels:
                return "email"
            if name == "webhook" and "webhook" in self.channels:
                return "webhook"
        return None

    def _link(self, tp: Touchpoint, purpose: str, subject: str) -> str:
        token = self.links.issue(
            Link(
                tp.tenant,
                tp.agreement_id,
                tp.candidate_ref,
                purpose,
                int(time.time() + self.link_ttl),
                subject,
            )
        )
        path = "replies" if purpose == PURPOSE_REPLY else "unsubscribe"
        return f"{self.public_url}/v1/{path}/{token}"

    def _outgoing(
        self,
        tp: Touchpoint,
        candidate: NotifyCandidate,
        followed: FollowedAgreement,
        overrides: dict[tuple[str, str, str], Override],
    ) -> Outgoing:
        links: dict[str, str] = {}
        data = {k: str(v) for k, v in (tp.data or {}).items()}
        data.setdefault("employer", followed.employer_name)
        data.setdefault("position", followed.position)
        if tp.kind in (schedule.INVITATION, schedule.AMENDMENT):
            links["sign"] = data["sign"]
        if tp.kind == schedule.CHECKIN:
            base = self._link(tp, PURPOSE_REPLY, tp.id)
            for answer in messages.CHECKIN_ANSWERS:
                links[f"reply_{answer}"] = f"{base}?answer={answer}"
        if tp.kind == schedule.MILESTONE_REQUEST:
            token = self.links.issue(
                Link(
                    tp.tenant,
                    tp.agreement_id,
                    tp.candidate_ref,
                    PURPOSE_UPLOAD,
                    int(time.time() + self.link_ttl),
                    data.get("milestone", ""),
                )
            )
            links["upload"] = f"{self.evidence_url}/v1/uploads/{token}"
        unsubscribe = None
        if not tp.essential:
            unsubscribe = self._link(tp, PURPOSE_UNSUBSCRIBE, tp.candidate_ref)
            links["unsubscribe"] = unsubscribe
        language = candidate.language or followed.language
        rendered = render(
            tp.kind, language, data, links, overrides.get((tp.tenant, tp.kind, language))
        )
        return Outgoing(
            touchpoint_id=tp.id,
            message_id=f"<{tp.id}@{self.mail_domain}>",
            to_email=candidate.email,
            rendered=rendered,
            essential=tp.essential,
            unsubscribe_url=unsubscribe,
            payload={
                "touchpoint_id": tp.id,
                "kind": tp.kind,
                "agreement_id": tp.agreement_id,
                "candidate_ref": tp.candidate_ref,
                "phone": candidate.phone,
                "language": candidate.language,
                "subject": rendered.subject,
                "text": rendered.text,
                "links": links,
            },
        )

    def _attempt(
        self,
        session: Session,
        tp: Touchpoint,
        channel: str | None,
        outcome: str,
        detail: str | None,
    ) -> None:
        session.add(
            DeliveryAttempt(
                touchpoint_id=tp.id, channel=channel or "-", outcome=outcome, detail=detail
            )
        )

    def _finish(
        self,
        touchpoint_id: str,
        state: str,
        channel: str | None,
        detail: str | None,
        message_id: str | None = None,
        touchpoint: Touchpoint | None = None,
    ) -> str:
        """Record an outcome. Within `dispatch_once` outcomes are committed together every
        GROUP messages (one transaction instead of one each); elsewhere at once."""
        self._outcomes.append((touchpoint_id, state, channel, detail, message_id, touchpoint))
        if not self._grouping:
            self._flush()
        elif len(self._outcomes) >= GROUP:
            try:
                self._flush()
            except Exception as exc:  # kept (and journaled): committed by a later flush
                log.warning("recording %d outcome(s) failed (%s); kept", len(self._outcomes), exc)
        return state

    def _flush(self) -> None:
        outcomes, self._outcomes = self._outcomes, []
        if not outcomes:
            return
        try:
            self._commit_outcomes(outcomes)
        except Exception:
            # The database refused (down, say): keep them for the next flush, so that what
            # the journal holds is committed before the journal is emptied.
            self._outcomes = outcomes + self._outcomes
            raise
        if self.journal is not None:
            self.journal.clear()  # every accepted message so far is committed

    def _commit_outcomes(
        self,
        outcomes: list[tuple[str, str, str | None, str | None, str | None, Touchpoint | None]],
    ) -> None:
        now = utcnow()
        with self.db.transaction() as session:
            envelopes = []
            changes: list[dict[str, Any]] = []
            for touchpoint_id, state, channel, detail, message_id, tp in outcomes:
                tp = tp or session.get(Touchpoint, touchpoint_id)
                assert tp is not None
                # The row is ours (claimed as `sending`): its attempts cannot move meanwhile.
                changes.append(
                    {
                        "id": touchpoint_id,
                        "state": state,
                        "channel": channel,
                        "detail": detail,
                        "attempts": (tp.attempts or 0) + 1,
                        "sent_at": now if state == "sent" else tp.sent_at,
                        "message_id": message_id if state == "sent" else tp.message_id,
                    }
                )
                payload = {
                    "touchpoint_id": touchpoint_id,
                    "agreement_id": tp.agreement_id,
                    "candidate_ref": tp.candidate_ref,
                    "kind": tp.kind,
                    "channel": channel,
                    "detail": detail,
                }
                if state == "sent":
                    envelopes.append(messages.build(messages.TOUCHPOINT_SENT, tp.tenant, payload))
                    if tp.kind == schedule.CHECKIN:
                        self._mark_missed(session, tp)
                        self._plan_next_checkin(session, tp)
                elif state == "failed":
                    envelopes.append(messages.build(messages.TOUCHPOINT_FAILED, tp.tenant, payload))
            session.execute(update(Touchpoint), changes)  # one executemany by primary key
            session.execute(
                insert(DeliveryAttempt),
                [
                    {
                        "touchpoint_id": o[0],
                        "channel": o[2] or "-",
                        "outcome": o[1],
                        "detail": o[3],
                        "at": now,
                    }
                    for o in outcomes
                ],
            )
            enqueue(session, envelopes)

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
            self._plan(session, followed, [upcoming])

    def _reschedule(self, touchpoint_id: str, detail: str, channel: str | None) -> str:
        with self.db.transaction() as session:
            tp = session.get(Touchpoint, touchpoint_id)
            assert tp is not None
            tp.attempts += 1
            tp.state, tp.detail = "planned", detail
            tp.due_at = utcnow() + schedule.retry_delay(tp.attempts)
            self._attempt(session, tp, channel, "retry", detail)
        return "retry"

    def _defer(self, touchpoint_id: str, until: dt.datetime) -> None:
        """Quiet hours: wait until they end. The next check-in is planned from the moment this
        one really goes out, so the rhythm is kept from the deferred time."""
        with self.db.transaction() as session:
            tp = session.get(Touchpoint, touchpoint_id)
            assert tp is not None
            tp.state, tp.due_at = "planned", until
            self._attempt(session, tp, None, "deferred", f"quiet hours until {until.isoformat()}")

    # ---- replies and preferences ----------------------------------------------------------

    def open_reply(self, token: str) -> tuple[Link, Touchpoint]:
        link = self.links.verify(token, PURPOSE_REPLY)
        with self.db.sessions() as session:
            if session.get(UsedToken, hashlib.sha256(token.encode()).hexdigest()) is not None:
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
                session.add(UsedToken(digest=hashlib.sha256(token.encode()).hexdigest()))
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

    def _describe(self, session: Session, tp: Touchpoint, attempts: bool) -> dict[str, Any]:
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
        return out

    def touchpoints(self, principal: Principal, candidate_ref: str) -> list[dict[str, Any]]:
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
            return [self._describe(session, tp, attempts=False) for tp in rows]

    def touchpoint(self, principal: Principal, touchpoint_id: str) -> dict[str, Any]:
        principal.require(*READ_ROLES)
        with self.db.sessions() as session:
            tp = session.get(Touchpoint, touchpoint_id)
            if tp is None or tp.tenant != principal.tenant:
                raise TouchpointNotFound(f"no touchpoint {touchpoint_id}")
            return self._describe(session, tp, attempts=True)

    # ---- the tenant's own templates ---------------------------------------------------------

    def _template_out(self, kind: str, language: str, row: TenantTemplate | None) -> dict[str, Any]:
        override = Override(row.subject, row.text) if row else None
        sample_links = {
            "sign": "https://example.invalid/sign",
            "upload": "https://example.invalid/upload",
            **{
                f"reply_{a}": f"https://example.invalid/reply?answer={a}"
                for a in messages.CHECKIN_ANSWERS
            },
        }
        preview = render(kind, language, templates.SAMPLE, sample_links, override)
        return {
            "kind": kind,
            "language": language,
            "source": "tenant" if row else "default",
            "subject": row.subject if row else None,
            "text": row.text if row else None,
            "placeholders": sorted(templates.COMMON_FIELDS + templates.FIELDS[kind]),
            "required": list(templates.REQUIRED[kind]),
            "updated_at": iso(row.updated_at) if row else None,
            "preview": {"subject": preview.subject, "text": preview.text},
        }

    @staticmethod
    def _check_kind(kind: str, language: str) -> None:
        if kind not in templates.FIELDS:
            raise TemplateNotFound(
                f"no touchpoint kind {kind!r} (one of {', '.join(templates.FIELDS)})"
            )
        if language not in templates.LANGUAGES:
            raise TemplateNotFound(
                f"no language {language!r} (one of {', '.join(templates.LANGUAGES)})"
            )

    def list_templates(self, principal: Principal) -> list[dict[str, Any]]:
        principal.require(*READ_ROLES)
        with self.db.sessions() as session:
            rows = {
                (t.kind, t.language): t
                for t in session.execute(
                    select(TenantTemplate).where(TenantTemplate.tenant == principal.tenant)
                ).scalars()
            }
            return [
                self._template_out(kind, language, rows.get((kind, language)))
                for kind in templates.FIELDS
                for language in templates.LANGUAGES
            ]

    def get_template(self, principal: Principal, kind: str, language: str) -> dict[str, Any]:
        principal.require(*READ_ROLES)
        self._check_kind(kind, language)
        with self.db.sessions() as session:
            row = session.get(TenantTemplate, (principal.tenant, kind, language))
            return self._template_out(kind, language, row)

    def put_template(
        self, principal: Principal, kind: str, language: str, subject: str, text: str
    ) -> dict[str, Any]:
        """Takes effect for every touchpoint of this kind sent from now on."""
        principal.require(*WRITE_ROLES)
        self._check_kind(kind, language)
        try:
            templates.validate(kind, language, Override(subject, text))
        except TemplateError as exc:
            raise ValidationFailed(exc.field, str(exc)) from None
        with self.db.transaction() as session:
            row = session.get(TenantTemplate, (principal.tenant, kind, language))
            if row is None:
                row = TenantTemplate(tenant=principal.tenant, kind=kind, language=language)
                session.add(row)
            row.subject, row.text = subject, text
            row.updated_by, row.updated_at = principal.key_id, utcnow()
        return self.get_template(principal, kind, language)

    def delete_template(self, principal: Principal, kind: str, language: str) -> None:
        """Back to the built-in text."""
        principal.require(*WRITE_ROLES)
        self._check_kind(kind, language)
        with self.db.transaction() as session:
            row = session.get(TenantTemplate, (principal.tenant, kind, language))
            if row is None:
                raise TemplateNotFound(f"no {language} {kind} template of this tenant")
            session.delete(row)

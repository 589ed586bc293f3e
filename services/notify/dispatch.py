"""Dispatch: which due touchpoints go out now, on which channel, and how each outcome (sent,
failed, skipped, retried, deferred for quiet hours or opt-out) is recorded.

Delivery: a row is claimed (`sending`) in its own transaction before the channel is called and
marked `sent` after it (outcomes are committed GROUP at a time, as a `DispatchBatch`). A crash
before sending sends it once after the restart; a message the channel accepted is first written
to the sent journal (`adapters/journal.py`), so a dispatcher killed before the commit is
followed by one that records it as sent instead of sending it again. Every message keeps a
stable Message-ID (`<touchpoint-id@domain>`), so the one duplicate a power cut at that instant
could cause is recognisable.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from ..shared import failpoints, messages
from ..shared.broker import enqueue
from ..shared.db import Database, is_sqlite
from ..shared.models import utcnow
from ..shared.redact import redact_text
from .adapters.journal import Accepted, SentJournal
from .calendars import calendar_of, calendars_of
from .domain import schedule, workdays
from .domain.workdays import Calendar
from .errors import Postponed, Rejected, RetryLater
from .models import DeliveryAttempt, FollowedAgreement, NotifyCandidate, Touchpoint
from .outgoing import Brands, Composer, Overrides, brands_of, overrides_of
from .planning import Planner, zone

log = logging.getLogger(__name__)
# Outcomes committed per transaction while dispatching (the sent journal covers the gap).
GROUP = 50
# What waits out a public holiday when the tenant uses a holiday calendar: the messages that
# only keep the candidate company, not those they must act on by a date.
HOLIDAY_FREE = frozenset({schedule.CHECKIN, schedule.WEEKLY_UPDATE, schedule.WELCOME_PACKAGE})


@dataclass(frozen=True)
class Outcome:
    """What became of one claimed touchpoint (retries and deferrals are committed at once)."""

    touchpoint_id: str
    state: Literal["sent", "failed", "skipped"]
    channel: str | None
    detail: str | None
    message_id: str | None = None
    touchpoint: Touchpoint | None = None  # the row if already loaded (saves a query)


@dataclass
class DispatchBatch:
    """Outcomes decided but not committed yet, in the order they happened (their messages are
    published in that order). A batch whose commit failed is kept and committed first."""

    outcomes: list[Outcome] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.outcomes)

    def add(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)

    def take(self) -> list[Outcome]:
        taken, self.outcomes = self.outcomes, []
        return taken

    def keep(self, outcomes: list[Outcome]) -> None:
        """Outcomes whose commit failed: back in front of what was added since."""
        self.outcomes = outcomes + self.outcomes


class Dispatcher:
    def __init__(
        self,
        db: Database,
        channels: dict[str, Any],
        composer: Composer,
        planner: Planner,
        *,
        journal: SentJournal | None = None,
        max_attempts: int = 8,
    ) -> None:
        self.db = db
        self.max_attempts = max_attempts  # then failed, as a bounce is
        self.channels = channels  # "email", "webhook" and/or "sms"
        self.composer = composer
        self.planner = planner
        self.journal = journal
        self._pending = DispatchBatch()

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
                claimer = self.journal.claimer if self.journal is not None else None
                session.execute(
                    update(Touchpoint)
                    .where(Touchpoint.id.in_(ids))
                    .values(state="sending", claimed_at=now, claimed_by=claimer)
                )
        return ids

    def settle_journal(self, first: bool = True) -> int:
        """Messages a dead dispatcher on this host handed to a channel but never recorded are
        recorded as sent now, not sent again; the other rows it had claimed go back to the
        queue at once (not after the lease: on PostgreSQL a live worker's claims look the same
        by age). `first`: at start, before this dispatcher claims anything, its own slot's
        previous holder counts too; later (each release pass) only the slots no live process
        holds."""
        if self.journal is None:
            return 0
        leftovers = self.journal.leftovers(own=first)
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
            try:
                for a in leftovers:
                    if a.touchpoint_id in sending:
                        sending.discard(a.touchpoint_id)
                        self._finish(
                            Outcome(
                                a.touchpoint_id,
                                "sent",
                                a.channel,
                                f"{a.detail} (recorded after a restart)",
                                message_id=a.message_id,
                            )
                        )
            finally:
                self._flush()
            log.info("recorded %d message(s) a previous dispatcher had sent", len(leftovers))
        gone = self.journal.claimers_gone(own=first)  # their slots are held until let_go()
        if gone:
            with self.db.transaction() as session:
                released = session.execute(
                    update(Touchpoint)
                    .where(Touchpoint.state == "sending", Touchpoint.claimed_by.in_(gone))
                    .values(state="planned", claimed_by=None)
                ).rowcount  # type: ignore[attr-defined]
            if released:
                log.info("%d message(s) a stopped dispatcher had claimed go out again", released)
        self.journal.clear()
        self.journal.let_go()
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
        try:
            self._dispatch(ids)
        finally:
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
            overrides = overrides_of(session, {r.tenant for r in rows})
            brands = brands_of(session, {r.tenant for r in rows})
            calendars = calendars_of(session, {r.tenant for r in rows})
        for tp in rows:
            try:
                self._deliver(
                    tp,
                    candidates.get((tp.tenant, tp.candidate_ref)),
                    agreements.get(tp.agreement_id),
                    overrides,
                    brands,
                    calendars.get(tp.tenant),
                )
            except Exception:
                log.exception("delivering touchpoint %s failed; it will be retried", tp.id)
                self._reschedule(tp.id, "internal error", None)

    def deliver(self, touchpoint_id: str) -> str:
        """One touchpoint, its outcome committed before this returns."""
        with self.db.sessions() as session:
            tp = session.get(Touchpoint, touchpoint_id)
            assert tp is not None
            try:
                return self._deliver(
                    tp,
                    session.get(NotifyCandidate, (tp.tenant, tp.candidate_ref)),
                    session.get(FollowedAgreement, tp.agreement_id),
                    overrides_of(session, {tp.tenant}),
                    brands_of(session, {tp.tenant}),
                    calendar_of(session, tp.tenant),
                )
            finally:
                self._flush()

    def _deliver(
        self,
        tp: Touchpoint,
        candidate: NotifyCandidate | None,
        followed: FollowedAgreement | None,
        overrides: Overrides,
        brands: Brands | None = None,
        calendar: Calendar | None = None,
    ) -> str:
        touchpoint_id = tp.id
        if candidate is None or followed is None:
            return self._finish(
                Outcome(touchpoint_id, "skipped", None, "no contact data for the candidate")
            )
        if not tp.essential and candidate.opted_out:
            return self._finish(Outcome(touchpoint_id, "skipped", None, "candidate opted out"))
        tz = zone(candidate.timezone, self.planner.default_timezone)
        now = utcnow()
        quiet = schedule.QuietHours.parse(candidate.quiet_hours)
        allowed = quiet.next_allowed(now, tz)
        if allowed > now and tp.kind not in schedule.AT_ONCE:  # a code is awaited
            self._defer(touchpoint_id, allowed)
            return "deferred"
        if calendar is not None and tp.kind in HOLIDAY_FREE:
            after = workdays.after_holidays(now, tz, calendar, quiet.end)
            if after > now:  # a public holiday in the candidate's time zone: the day after
                self._defer(touchpoint_id, after, "public holiday")
                return "deferred"
        data = tp.data or {}
        channel_name = (
            self._addressed_channel(data, tp)
            if tp.kind in schedule.ADDRESSED
            else self._channel_for(candidate, data.get("channel"), tp)
        )
        if channel_name is None:
            reason = (
                "no delivery channel is configured (OFFERSEAL_SMTP_URL, OFFERSEAL_WEBHOOK_URL "
                "or OFFERSEAL_NOTIFY_OUTBOX_DIR)"
                if not self.channels
                else "no channel reaches the candidate (no e-mail address, no webhook)"
            )
            return self._finish(Outcome(touchpoint_id, "skipped", None, reason))
        outgoing = self.composer.outgoing(tp, candidate, followed, overrides, brands)
        failpoints.hit("notify.before_send")
        try:  # what a server answered may quote its URL: no credential is ever stored
            detail = redact_text(self.channels[channel_name].send(outgoing))
        except Postponed as exc:  # a provider's limit: moved, not a failed attempt
            return self._postpone(tp, exc.until, redact_text(str(exc)), channel_name)
        except RetryLater as exc:
            return self._reschedule(touchpoint_id, redact_text(str(exc)), channel_name)
        except Rejected as exc:
            failed = Outcome(touchpoint_id, "failed", channel_name, redact_text(str(exc)))
            return self._finish(failed)
        if self.journal is not None:
            self.journal.record(Accepted(touchpoint_id, outgoing.message_id, channel_name, detail))
        failpoints.hit("notify.after_send")
        if self._wants_copy(candidate, tp, channel_name):
            self._send_copy(tp, outgoing)
        return self._finish(
            Outcome(
                touchpoint_id,
                "sent",
                channel_name,
                detail,
                message_id=outgoing.message_id,
                touchpoint=tp,
            )
        )

    def _addressed_channel(self, data: dict[str, Any], tp: Touchpoint) -> str | None:
        """A touchpoint addressed by its sender (a code, a signer announcement) goes to the
        contact it carries: by e-mail, or by SMS through the SMS provider, else the webhook
        (a tenant's own SMS gateway)."""
        if not data.get("to"):
            return None
        if data.get("channel") == "sms":
            if self._sms_reaches(tp, str(data["to"])):
                return "sms"
            return "webhook" if "webhook" in self.channels else None
        return "email" if "email" in self.channels else None

    def _sms_reaches(self, tp: Touchpoint | None, phone: str | None) -> bool:
        channel = self.channels.get("sms")
        if channel is None or not phone or tp is None:
            return False
        return bool(channel.can_send(tp.tenant, tp.kind))

    def _channel_for(
        self, candidate: NotifyCandidate, asked: str | None = None, tp: Touchpoint | None = None
    ) -> str | None:
        if asked == "sms":  # a code asked for by SMS: the SMS provider, else the webhook gateway
            phone = (tp.data or {}).get("phone") if tp is not None else None
            phone = phone or candidate.phone
            if self._sms_reaches(tp, phone):
                return "sms"
            return "webhook" if "webhook" in self.channels and phone else None
        if asked == "email":
            email = ((tp.data or {}).get("email") if tp is not None else None) or candidate.email
            return "email" if email and "email" in self.channels else None
        for name in candidate.channels or ["email", "webhook"]:
            if name == "email" and candidate.email and "email" in self.channels:
                return "email"
            if name == "sms" and self._sms_reaches(tp, candidate.phone):
                return "sms"
            if name == "webhook" and not candidate.email and self._sms_reaches(tp, candidate.phone):
                return "sms"  # no e-mail address: the SMS provider before the tenant's gateway
            if name == "webhook" and "webhook" in self.channels:
                return "webhook"
        if "sms" in (candidate.channels or []) and candidate.email and "email" in self.channels:
            return "email"  # SMS was chosen but cannot carry this message (no template)
        return None

    def _wants_copy(self, candidate: NotifyCandidate, tp: Touchpoint, sent_on: str) -> bool:
        """The candidate asked for reminders by e-mail and SMS: what e-mail carried goes by SMS
        too (a code goes only where it was asked for)."""
        chosen = candidate.channels or []
        return (
            sent_on == "email"
            and tp.kind != schedule.CODE
            and "email" in chosen
            and "sms" in chosen
            and self._sms_reaches(tp, candidate.phone)
        )

    def _send_copy(self, tp: Touchpoint, outgoing: Any) -> None:
        """Best effort, recorded as its own attempt: the touchpoint's outcome is the e-mail's.
        A copy the SMS limits would refuse now is not sent (the e-mail went)."""
        try:
            outcome, detail = "sent", redact_text(self.channels["sms"].send(outgoing))
        except Postponed as exc:
            outcome, detail = "skipped", redact_text(f"copy not sent: {exc}")
        except (RetryLater, Rejected) as exc:
            outcome, detail = "failed", redact_text(f"copy: {exc}")
        except Exception:
            log.exception("the SMS copy of touchpoint %s failed", tp.id)
            outcome, detail = "failed", "copy: internal error"
        with self.db.transaction() as session:
            row = session.get(Touchpoint, tp.id)
            if row is not None:
                self._attempt(session, row, "sms", outcome, detail)

    # ---- recording outcomes ---------------------------------------------------------------

    @staticmethod
    def _attempt(
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

    def _reschedule(self, touchpoint_id: str, detail: str, channel: str | None) -> str:
        """Try again later, with backoff; after `max_attempts` the touchpoint has failed."""
        with self.db.sessions() as session:
            tp = session.get(Touchpoint, touchpoint_id)
            assert tp is not None
            attempts = tp.attempts or 0
        if attempts + 1 >= self.max_attempts:
            return self._finish(
                Outcome(
                    touchpoint_id,
                    "failed",
                    channel,
                    f"gave up after {attempts + 1} attempts: {detail}",
                )
            )
        with self.db.transaction() as session:
            tp = session.get(Touchpoint, touchpoint_id)
            assert tp is not None
            tp.attempts += 1
            tp.state, tp.detail = "planned", detail
            tp.due_at = utcnow() + schedule.retry_delay(tp.attempts)
            self._attempt(session, tp, channel, "retry", detail)
        return "retry"

    def _postpone(
        self, tp: Touchpoint, until: dt.datetime, detail: str, channel: str | None
    ) -> str:
        """A provider's limit (ours, before sending, or its throttled answer): the touchpoint
        is moved to when it may go, without counting as an attempt. A one-time code that could
        only go after it expires fails instead, saying when the next code may be asked."""
        expires = (tp.data or {}).get("expires_at")
        if tp.kind == schedule.CODE and expires and until > dt.datetime.fromisoformat(expires):
            return self._finish(
                Outcome(
                    tp.id,
                    "failed",
                    channel,
                    f"{detail}; the next code can be sent at {until.isoformat()}",
                )
            )
        with self.db.transaction() as session:
            row = session.get(Touchpoint, tp.id)
            assert row is not None
            row.state, row.due_at, row.detail = "planned", until, detail
            self._attempt(session, row, channel, "moved", f"{detail}; moved to {until.isoformat()}")
        return "moved"

    def _defer(self, touchpoint_id: str, until: dt.datetime, why: str = "quiet hours") -> None:
        """Quiet hours (or a public holiday): wait until they end. The next check-in is planned
        from the moment this one really goes out, so the rhythm is kept from the deferred
        time."""
        with self.db.transaction() as session:
            tp = session.get(Touchpoint, touchpoint_id)
            assert tp is not None
            tp.state, tp.due_at = "planned", until
            self._attempt(session, tp, None, "deferred", f"{why} until {until.isoformat()}")

    def _finish(self, outcome: Outcome) -> str:
        """Record an outcome: committed with the next GROUP (one transaction instead of one
        each), and at the latest when the operation that decided it ends."""
        self._pending.add(outcome)
        if len(self._pending) >= GROUP:
            try:
                self._flush()
            except Exception as exc:  # kept (and journaled): committed by a later flush
                log.warning("recording %d outcome(s) failed (%s); kept", len(self._pending), exc)
        return outcome.state

    def _flush(self) -> None:
        outcomes = self._pending.take()
        if not outcomes:
            return
        try:
            self._commit_outcomes(outcomes)
        except Exception:
            # The database refused (down, say): keep them for the next flush, so that what
            # the journal holds is committed before the journal is emptied.
            self._pending.keep(outcomes)
            raise
        if self.journal is not None:
            self.journal.clear()  # every accepted message so far is committed

    def _commit_outcomes(self, outcomes: list[Outcome]) -> None:
        now = utcnow()
        with self.db.transaction() as session:
            envelopes = []
            changes: list[dict[str, Any]] = []
            for o in outcomes:
                tp = o.touchpoint or session.get(Touchpoint, o.touchpoint_id)
                assert tp is not None
                sent = o.state == "sent"
                # The row is ours (claimed as `sending`): its attempts cannot move meanwhile.
                changes.append(
                    {
                        "id": o.touchpoint_id,
                        "state": o.state,
                        "channel": o.channel,
                        "detail": o.detail,
                        "attempts": (tp.attempts or 0) + 1,
                        "sent_at": now if sent else tp.sent_at,
                        "message_id": o.message_id if sent else tp.message_id,
                    }
                )
                payload = {
                    "touchpoint_id": o.touchpoint_id,
                    "agreement_id": tp.agreement_id,
                    "candidate_ref": tp.candidate_ref,
                    "kind": tp.kind,
                    "channel": o.channel,
                    "detail": o.detail,
                    "message_id": o.message_id if sent else None,
                    "reference": (tp.data or {}).get("code_id"),
                }
                if tp.kind in schedule.ADDRESSED and o.state in ("sent", "failed", "skipped"):
                    # A one-time code, and the contact it went to, are kept only until it is
                    # delivered (or cannot be).
                    kept = {k: v for k, v in (tp.data or {}).items() if k not in ("code", "to")}
                    session.execute(
                        update(Touchpoint).where(Touchpoint.id == o.touchpoint_id).values(data=kept)
                    )
                if sent:
                    envelopes.append(messages.build(messages.TOUCHPOINT_SENT, tp.tenant, payload))
                    if tp.kind == schedule.CHECKIN:
                        self.planner.checkin_sent(session, tp)
                elif o.state == "failed":
                    envelopes.append(messages.build(messages.TOUCHPOINT_FAILED, tp.tenant, payload))
            session.execute(update(Touchpoint), changes)  # one executemany by primary key
            session.execute(
                insert(DeliveryAttempt),
                [
                    {
                        "touchpoint_id": o.touchpoint_id,
                        "channel": o.channel or "-",
                        "outcome": o.state,
                        "detail": o.detail,
                        "at": now,
                    }
                    for o in outcomes
                ],
            )
            enqueue(session, envelopes)

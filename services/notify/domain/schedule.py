"""What is sent to a candidate, and when: the plan for an agreement, quiet hours, retries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

# Kinds of touchpoint. Essential ones (signing links, staged confirmations, check-ins, legal
# notices) always go; the others respect the candidate's opt-out.
INVITATION = "invitation"
MILESTONE_REQUEST = "milestone_request"
CHECKIN = "checkin"
WEEKLY_UPDATE = "weekly_update"
WELCOME_PACKAGE = "welcome_package"
CLOSING = "closing"
AMENDMENT = "amendment"  # new dates to read and sign
CODE = "code"  # a one-time code the candidate is waiting for: sent at once, even in quiet hours
SIGNER_BOUND = "signer_bound"  # "a key was bound to sign for you": at once, on every contact
NON_ESSENTIAL = frozenset({WEEKLY_UPDATE, WELCOME_PACKAGE})
# Sent at once, quiet hours or not.
AT_ONCE = frozenset({CODE, SIGNER_BOUND})
# Addressed by their sender to a contact written in the offer (`to` in the touchpoint's data),
# never to the address notify keeps for the candidate reference.
ADDRESSED = frozenset({CODE, SIGNER_BOUND})
KINDS = (
    INVITATION,
    MILESTONE_REQUEST,
    CHECKIN,
    WEEKLY_UPDATE,
    WELCOME_PACKAGE,
    CLOSING,
    AMENDMENT,
    CODE,
    SIGNER_BOUND,
)

MILESTONE_LEAD = dt.timedelta(days=2)  # ask for a stage's document two days before it is due
# DOMAIN.md stage 4: the social-insurance stop date is asked for three days before the last
# working day, which is that milestone's due date.
LEADS = {"social_insurance_stop": dt.timedelta(days=3)}


def lead_for(kind: str) -> dt.timedelta:
    """How long before a milestone's due date its document request goes out."""
    return LEADS.get(kind, MILESTONE_LEAD)


# When a milestone's document request goes out: its lead in calendar days by default; a tenant
# with a holiday calendar counts working days instead (`workdays.working_days_before`).
RequestAt = Callable[[str, dt.datetime], dt.datetime]


def request_at(kind: str, due: dt.datetime) -> dt.datetime:
    return due - lead_for(kind)


WELCOME_LEAD = dt.timedelta(days=3)
WEEK = dt.timedelta(days=7)


@dataclass(frozen=True)
class Planned:
    kind: str
    occurrence: int  # with (agreement, kind): the idempotency key of a touchpoint
    due_at: dt.datetime
    data: dict[str, str]

    @property
    def essential(self) -> bool:
        return self.kind not in NON_ESSENTIAL


def plan_after_commitment(
    *,
    committed_at: dt.datetime,
    start_at: dt.datetime,
    checkin_interval: dt.timedelta,
    milestones: list[tuple[str, dt.datetime]],
    request: RequestAt = request_at,
) -> list[Planned]:
    """The first check-in, a document request before each milestone, weekly updates and the
    welcome package. Later check-ins are planned one at a time as each goes out
    (`next_checkin`), so the rhythm runs from the moment a check-in was really sent."""
    out: list[Planned] = []
    first = next_checkin(0, committed_at, checkin_interval, start_at)
    if first is not None:
        out.append(first)
    for i, (kind, due) in enumerate(milestones):
        out.append(
            Planned(
                MILESTONE_REQUEST,
                i,
                max(committed_at, request(kind, due)),
                {"milestone": kind, "due_at": due.isoformat()},
            )
        )
    n, at = 1, committed_at + WEEK
    while at < start_at - WELCOME_LEAD:
        out.append(Planned(WEEKLY_UPDATE, n, at, {}))
        n, at = n + 1, at + WEEK
    out.append(Planned(WELCOME_PACKAGE, 1, max(committed_at, start_at - WELCOME_LEAD), {}))
    return sorted(out, key=lambda p: (p.due_at, p.kind, p.occurrence))


def next_checkin(
    previous: int, sent_at: dt.datetime, interval: dt.timedelta, start_at: dt.datetime
) -> Planned | None:
    """The check-in after `previous` (0: the first), one interval after it went out; none
    from the start date on."""
    due = sent_at + interval
    if due >= start_at:
        return None
    return Planned(CHECKIN, previous + 1, due, {})


@dataclass(frozen=True)
class Existing:
    """A touchpoint already in the schedule, as `replan` sees it."""

    kind: str
    occurrence: int
    state: str  # planned | sending | sent | ...
    due_at: dt.datetime
    sent_at: dt.datetime | None = None


@dataclass(frozen=True)
class Replan:
    moves: dict[tuple[str, int], tuple[dt.datetime, dict[str, str]]]  # new due, data changes
    cancels: list[tuple[str, int]]
    adds: list[Planned]


def replan(
    *,
    now: dt.datetime,
    start_at: dt.datetime,
    milestones: list[tuple[str, dt.datetime]],
    checkin_interval: dt.timedelta,
    existing: list[Existing],
    request: RequestAt = request_at,
) -> Replan:
    """New dates for a committed agreement: what is still planned moves with them (document
    requests, the welcome package), weekly updates and check-ins end before the new start and
    resume up to it when it moved later. Nothing already sent is touched."""
    moves: dict[tuple[str, int], tuple[dt.datetime, dict[str, str]]] = {}
    cancels: list[tuple[str, int]] = []
    adds: list[Planned] = []
    planned = {(e.kind, e.occurrence): e for e in existing if e.state == "planned"}
    for i, (kind, due) in enumerate(milestones):
        row = planned.get((MILESTONE_REQUEST, i))
        if row is not None:
            moves[(MILESTONE_REQUEST, i)] = (
                max(now, request(kind, due)),
                {"milestone": kind, "due_at": due.isoformat()},
            )
    welcome = planned.get((WELCOME_PACKAGE, 1))
    if welcome is not None:
        moves[(WELCOME_PACKAGE, 1)] = (max(now, start_at - WELCOME_LEAD), {})
    weekly = sorted((e for e in existing if e.kind == WEEKLY_UPDATE), key=lambda e: e.occurrence)
    for e in weekly:
        if e.state == "planned" and e.due_at >= start_at - WELCOME_LEAD:
            cancels.append((WEEKLY_UPDATE, e.occurrence))
    kept = [e for e in weekly if (e.kind, e.occurrence) not in cancels]
    n, at = (kept[-1].occurrence + 1, kept[-1].due_at + WEEK) if kept else (1, now + WEEK)
    while at < start_at - WELCOME_LEAD:
        adds.append(Planned(WEEKLY_UPDATE, n, at, {}))
        n, at = n + 1, at + WEEK
    checkins = sorted((e for e in existing if e.kind == CHECKIN), key=lambda e: e.occurrence)
    waiting = [e for e in checkins if e.state in ("planned", "sending")]
    for e in waiting:
        if e.state == "planned" and e.due_at >= start_at:
            cancels.append((CHECKIN, e.occurrence))
    if not [e for e in waiting if (e.kind, e.occurrence) not in cancels]:
        # The rhythm had stopped at the old start date: it resumes one interval after the last
        # check-in that went out (not before now), up to the new start.
        sent = [e.sent_at for e in checkins if e.sent_at is not None]
        last_occurrence = checkins[-1].occurrence if checkins else 0
        due = max(now, max(sent) + checkin_interval) if sent else now + checkin_interval
        if due < start_at:
            adds.append(Planned(CHECKIN, last_occurrence + 1, due, {}))
    return Replan(moves, cancels, adds)


@dataclass(frozen=True)
class QuietHours:
    start: dt.time = dt.time(21, 0)
    end: dt.time = dt.time(9, 0)

    @classmethod
    def parse(cls, text: str) -> QuietHours:
        """`21:00-09:00` (may wrap midnight)."""
        try:
            a, b = text.split("-")
            return cls(dt.time.fromisoformat(a.strip()), dt.time.fromisoformat(b.strip()))
        except ValueError:
            raise ValueError(f"quiet hours must look like 21:00-09:00, not {text!r}") from None

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    def quiet(self, local: dt.time) -> bool:
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def next_allowed(self, moment: dt.datetime, tz: ZoneInfo) -> dt.datetime:
        """`moment` itself when it is outside quiet hours, else the end of the quiet period in
        the candidate's time zone."""
        local = moment.astimezone(tz)
        if not self.quiet(local.time()):
            return moment
        end = local.replace(hour=self.end.hour, minute=self.end.minute, second=0, microsecond=0)
        if end <= local:
            end += dt.timedelta(days=1)
        return end.astimezone(dt.UTC)


def retry_delay(attempts: int, base: float = 5.0, cap: float = 600.0) -> dt.timedelta:
    """Exponential backoff for a channel that answered 'try later' (4xx, timeout, refused)."""
    return dt.timedelta(seconds=min(cap, base * 2 ** max(0, attempts - 1)))

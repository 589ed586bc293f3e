"""The board's pure core: the nine checkpoints of DOMAIN.md derived from what the services
record about an agreement (state, commitment, milestones, uploads), each cell's status, the
order of urgency, and the board's filters. Standard library only; the facts come from
`queries.py`, so every rule here is tested without a database."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

CHECKPOINTS = (
    "offer_accepted",
    "intent_signed",
    "resignation_submitted",
    "resignation_accepted",
    "handover_started",
    "handover_halfway",
    "last_working_day_fixed",
    "social_insurance_stop",
    "first_day",
)
# The milestone kinds (contracts) that stand for a checkpoint, first match wins: the expected
# resignation date (stage 1's written proof) stands in until a submission milestone exists.
MILESTONES: dict[str, tuple[str, ...]] = {
    "resignation_submitted": ("resignation_submitted", "expected_resignation_date"),
    "resignation_accepted": ("resignation_accepted",),
    "handover_started": ("handover_started",),
    "handover_halfway": ("handover_halfway",),
    "last_working_day_fixed": ("last_working_day_fixed",),
    "social_insurance_stop": ("social_insurance_stop",),
}
# Documents (evidence kinds) that are the staged confirmation of a checkpoint.
DOCUMENTS: dict[str, tuple[str, ...]] = {
    "resignation_submitted": ("resignation_application",),
    "resignation_accepted": ("resignation_acceptance",),
    "handover_halfway": ("handover_progress",),
    "social_insurance_stop": ("social_insurance_stop",),
}
DONE, PENDING, DUE_SOON, OVERDUE, NOT_PLANNED = (
    "done",
    "pending",
    "due_soon",
    "overdue",
    "not_planned",
)
DUE_SOON_WITHIN = dt.timedelta(days=3)
# "offering": the offer is accepted and waits for its block (the asynchronous offer)
ACTIVE_STATES = ("offering", "offered", "committed")
COMMITTED_OR_LATER = frozenset({"committed", "fulfilled", "breached", "employer_breached"})
RISK_ORDER = {"red": 0, "yellow": 1, "blue": 2}


@dataclass(frozen=True)
class Milestone:
    kind: str
    due_at: dt.datetime
    confirmed_at: dt.datetime | None = None
    document_id: str | None = None
    tx_hash: str | None = None
    flagged_overdue: bool = False  # the contracts sweeper announced it overdue


@dataclass(frozen=True)
class Upload:
    document_id: str
    kind: str
    milestone: str | None
    received_at: dt.datetime
    status: str  # pending | anchored


@dataclass(frozen=True)
class Facts:
    """What the services know about one agreement, as far as the checkpoints need it."""

    state: str
    offer_expires_at: dt.datetime
    start_at: dt.datetime
    committed_at: dt.datetime | None = None
    commit_tx: str | None = None
    fulfilled_at: dt.datetime | None = None
    arrived_at: dt.datetime | None = None
    milestones: tuple[Milestone, ...] = ()
    uploads: tuple[Upload, ...] = ()


@dataclass(frozen=True)
class Cell:
    checkpoint: str
    status: str
    due_at: dt.datetime | None = None
    done_at: dt.datetime | None = None
    evidence: str | None = None  # document id or transaction hash
    received: str | None = None  # an upload waiting for HR's review (document id)


def status_of(
    due_at: dt.datetime | None, done: bool, now: dt.datetime, flagged: bool = False
) -> str:
    if done:
        return DONE
    if due_at is None:
        return PENDING
    if flagged or due_at <= now:
        return OVERDUE
    if due_at - now <= DUE_SOON_WITHIN:
        return DUE_SOON
    return PENDING


def _upload_for(checkpoint: str, kinds: Sequence[str], uploads: Iterable[Upload]) -> Upload | None:
    """The latest upload that is this checkpoint's staged confirmation."""
    matching = [
        u
        for u in uploads
        if (u.milestone in kinds) or (u.kind in DOCUMENTS.get(checkpoint, ()) and not u.milestone)
    ]
    return max(matching, key=lambda u: u.received_at) if matching else None


def derive(facts: Facts, now: dt.datetime) -> tuple[Cell, ...]:
    """The nine cells of one agreement, in DOMAIN.md's order."""
    cells: list[Cell] = []
    signed = facts.state in COMMITTED_OR_LATER or facts.committed_at is not None
    ended_unsigned = not signed and facts.state not in ACTIVE_STATES
    for checkpoint in ("offer_accepted", "intent_signed"):
        # The candidate accepts the offer by signing the intent agreement (one EIP-712
        # commitment), so both cells follow the commitment; the offer's deadline is their due.
        if ended_unsigned:
            cells.append(Cell(checkpoint, NOT_PLANNED, facts.offer_expires_at))
            continue
        cells.append(
            Cell(
                checkpoint,
                status_of(facts.offer_expires_at, signed, now),
                facts.offer_expires_at,
                facts.committed_at,
                facts.commit_tx if checkpoint == "intent_signed" else None,
            )
        )
    for checkpoint, kinds in MILESTONES.items():
        milestone = next((m for kind in kinds for m in facts.milestones if m.kind == kind), None)
        upload = _upload_for(checkpoint, kinds, facts.uploads)
        if milestone is None:
            # Not a milestone of this agreement: an upload still shows it happened.
            if upload is not None:
                cells.append(Cell(checkpoint, DONE, None, upload.received_at, upload.document_id))
            else:
                cells.append(Cell(checkpoint, NOT_PLANNED))
            continue
        done = milestone.confirmed_at is not None
        cells.append(
            Cell(
                checkpoint,
                status_of(milestone.due_at, done, now, milestone.flagged_overdue),
                milestone.due_at,
                milestone.confirmed_at,
                milestone.document_id or milestone.tx_hash if done else None,
                upload.document_id if upload is not None and not done else None,
            )
        )
    arrived = facts.state == "fulfilled" or facts.arrived_at is not None
    first_day_at = facts.fulfilled_at or facts.arrived_at
    cells.append(
        Cell(
            "first_day",
            NOT_PLANNED if ended_unsigned else status_of(facts.start_at, arrived, now),
            facts.start_at,
            first_day_at if arrived else None,
        )
    )
    return tuple(cells)


def count(cells: Iterable[Cell], status: str) -> int:
    return sum(1 for c in cells if c.status == status)


@dataclass(frozen=True)
class Row:
    """One candidate on the board."""

    agreement_id: str
    candidate_ref: str
    candidate_name: str
    position: str
    state: str
    risk_level: str
    risk_score: int
    risk_reasons: tuple[str, ...]
    start_at: dt.datetime
    days_to_start: int
    currency: str
    monthly_salary: int
    liquidated_damages: int
    cells: tuple[Cell, ...]
    last_answer: str | None = None
    last_answer_at: dt.datetime | None = None
    next_touchpoint: str | None = None
    next_touchpoint_at: dt.datetime | None = None
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def overdue(self) -> int:
        return count(self.cells, OVERDUE)

    @property
    def due_soon(self) -> int:
        return count(self.cells, DUE_SOON)

    @property
    def start_week(self) -> str:
        year, week, _ = self.start_at.isocalendar()
        return f"{year}-W{week:02d}"


def days_between(now: dt.datetime, then: dt.datetime, zone: dt.tzinfo = dt.UTC) -> int:
    """Calendar days from today to `then` (negative once past), in `zone`."""
    return (then.astimezone(zone).date() - now.astimezone(zone).date()).days


def urgency_key(row: Row) -> tuple[int, int, int, int, int, str]:
    """Red before yellow before blue; within a colour, more overdue checkpoints first, then
    more due soon, then the lower stability score, then the nearer start."""
    return (
        RISK_ORDER.get(row.risk_level, 3),
        -row.overdue,
        -row.due_soon,
        row.risk_score,
        row.days_to_start,
        row.candidate_ref,
    )


def by_urgency(rows: Iterable[Row]) -> list[Row]:
    return sorted(rows, key=urgency_key)


SORTS = {
    "urgency": urgency_key,
    "start": lambda r: (r.start_at, r.candidate_ref),
    "score": lambda r: (r.risk_score, r.candidate_ref),
    "candidate": lambda r: (r.candidate_ref.lower(),),
}


@dataclass(frozen=True)
class Filters:
    risk: str = ""
    state: str = ""
    week: str = ""  # ISO week of the start date, e.g. 2027-W01
    position: str = ""
    q: str = ""
    sort: str = "urgency"

    def matches(self, row: Row) -> bool:
        if self.risk and row.risk_level != self.risk:
            return False
        if self.state and row.state != self.state:
            return False
        if self.week and row.start_week != self.week:
            return False
        if self.position and row.position != self.position:
            return False
        if self.q:
            needle = self.q.casefold()
            haystack = " ".join(
                (row.candidate_ref, row.candidate_name, row.position, row.agreement_id)
            ).casefold()
            if needle not in haystack:
                return False
        return True

    def apply(self, rows: Iterable[Row]) -> list[Row]:
        chosen = [r for r in rows if self.matches(r)]
        return sorted(chosen, key=SORTS.get(self.sort, urgency_key))

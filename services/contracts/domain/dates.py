"""The date rules of an agreement: when an offer's start, expiry and milestone dues are
acceptable, and which new dates an amendment may set. Pure; times are aware datetimes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

# Only these agreements can still be amended; the others have ended (or never began).
AMENDABLE_STATES = ("offered", "committed")


class DateRuleBroken(ValueError):
    """A date breaks a rule; `field` names the input it came from (as the API shows it)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class DateChange:
    """New dates HR asks for: the start, and milestones by index."""

    start_at: dt.datetime | None
    milestones: tuple[tuple[int, dt.datetime], ...]
    reason: str | None = None


def check_offer_dates(
    start: dt.datetime,
    offer_expires_at: dt.datetime,
    dues: Sequence[dt.datetime],
    now: dt.datetime,
) -> None:
    """An offer starts in the future, can be signed until no later than its start, and every
    milestone is due by the start."""
    if start <= now:
        raise DateRuleBroken("start_date", "must be in the future")
    if offer_expires_at <= now:
        raise DateRuleBroken("offer_expires_at", "must be in the future")
    if offer_expires_at > start:
        raise DateRuleBroken("offer_expires_at", "must not be after the start date")
    for i, due in enumerate(dues):
        if due > start:
            raise DateRuleBroken(f"milestones.{i}.due", "must not be after the start date")


def amended_dates(
    change: DateChange,
    *,
    state: str,
    start: dt.datetime,
    offer_expires_at: dt.datetime,
    dues: Sequence[dt.datetime],
    confirmed: Sequence[bool],
    now: dt.datetime,
) -> tuple[dt.datetime, list[dt.datetime]]:
    """The start and milestone dues (in UTC) after `change`, for an agreement in `state` whose
    milestones are due at `dues` (`confirmed` ones are fixed by their evidence on chain)."""
    new_start = (change.start_at or start).astimezone(dt.UTC)
    new_dues = list(dues)
    for i, (index, due) in enumerate(change.milestones):
        if not 0 <= index < len(dues):
            raise DateRuleBroken(
                f"milestones.{i}.index", f"the agreement has {len(dues)} milestone(s)"
            )
        if confirmed[index]:
            raise DateRuleBroken(
                f"milestones.{i}.index", "confirmed on chain with evidence: its date cannot change"
            )
        if due <= now:
            raise DateRuleBroken(f"milestones.{i}.due", "must be in the future")
        new_dues[index] = due.astimezone(dt.UTC)
    if change.start_at is not None and new_start <= now:
        raise DateRuleBroken("start_date", "must be in the future")
    if state == "offered" and new_start < offer_expires_at:
        raise DateRuleBroken("start_date", "must not be before the offer expires")
    for index, due in enumerate(new_dues):
        if due > new_start and not confirmed[index]:
            field = next(
                (f"milestones.{i}.due" for i, (j, _) in enumerate(change.milestones) if j == index),
                "start_date",
            )
            raise DateRuleBroken(field, f"milestone {index} would be due after the start date")
    if new_start == start and new_dues == list(dues):
        raise DateRuleBroken("start_date", "nothing changes: give new dates")
    return new_start, new_dues

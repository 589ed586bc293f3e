"""The date rules of an offer and of an amendment: what is accepted, what is refused and with
which field and message (as the API answers them)."""

from __future__ import annotations

import datetime as dt

import pytest

from offerseal.contracts.domain.dates import (
    DateChange,
    DateRuleBroken,
    amended_dates,
    check_offer_dates,
)

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def refused(exc: pytest.ExceptionInfo[DateRuleBroken]) -> tuple[str, str]:
    return exc.value.field, exc.value.message


# ---- an offer -----------------------------------------------------------------------------


def test_an_offer_that_expires_before_it_starts_with_milestones_before_the_start() -> None:
    check_offer_dates(NOW + 30 * DAY, NOW + 7 * DAY, [NOW + 10 * DAY, NOW + 30 * DAY], NOW)


def test_an_offer_may_expire_at_the_moment_it_starts() -> None:
    check_offer_dates(NOW + 30 * DAY, NOW + 30 * DAY, [], NOW)


@pytest.mark.parametrize(
    ("start", "expires", "dues", "field", "message"),
    [
        (NOW, NOW + DAY, [], "start_date", "must be in the future"),
        (NOW - DAY, NOW - 2 * DAY, [], "start_date", "must be in the future"),
        (NOW + 9 * DAY, NOW, [], "offer_expires_at", "must be in the future"),
        (NOW + 9 * DAY, NOW + 10 * DAY, [], "offer_expires_at", "must not be after the start date"),
        (
            NOW + 9 * DAY,
            NOW + DAY,
            [NOW + 2 * DAY, NOW + 10 * DAY],
            "milestones.1.due",
            "must not be after the start date",
        ),
    ],
)
def test_an_offer_is_refused(
    start: dt.datetime, expires: dt.datetime, dues: list[dt.datetime], field: str, message: str
) -> None:
    with pytest.raises(DateRuleBroken) as exc:
        check_offer_dates(start, expires, dues, NOW)
    assert refused(exc) == (field, message)
    assert str(exc.value) == f"{field}: {message}"


# ---- an amendment -------------------------------------------------------------------------

START = NOW + 60 * DAY
EXPIRES = NOW + 5 * DAY
DUES = [NOW + 20 * DAY, NOW + 40 * DAY]


def amend(
    change: DateChange,
    *,
    state: str = "committed",
    confirmed: tuple[bool, ...] = (False, False),
) -> tuple[dt.datetime, list[dt.datetime]]:
    return amended_dates(
        change,
        state=state,
        start=START,
        offer_expires_at=EXPIRES,
        dues=DUES,
        confirmed=confirmed,
        now=NOW,
    )


def test_a_later_start_keeps_the_dues() -> None:
    later = (START + 10 * DAY).astimezone(dt.timezone(dt.timedelta(hours=8)))
    start, dues = amend(DateChange(later, ()))
    assert start == later and start.tzinfo == dt.UTC
    assert dues == DUES


def test_a_milestone_moves_alone() -> None:
    start, dues = amend(DateChange(None, ((1, NOW + 50 * DAY),)))
    assert start == START
    assert dues == [DUES[0], NOW + 50 * DAY]


def test_a_confirmed_milestone_may_fall_after_a_new_start() -> None:
    start, dues = amend(DateChange(NOW + 30 * DAY, ()), confirmed=(False, True))
    assert start == NOW + 30 * DAY and dues == DUES


@pytest.mark.parametrize(
    ("change", "state", "confirmed", "field", "message"),
    [
        (
            DateChange(None, ((2, NOW + DAY),)),
            "committed",
            (False, False),
            "milestones.0.index",
            "the agreement has 2 milestone(s)",
        ),
        (
            DateChange(None, ((0, NOW + 2 * DAY), (1, NOW + 3 * DAY))),
            "committed",
            (False, True),
            "milestones.1.index",
            "confirmed on chain with evidence: its date cannot change",
        ),
        (
            DateChange(None, ((0, NOW),)),
            "committed",
            (False, False),
            "milestones.0.due",
            "must be in the future",
        ),
        (
            DateChange(NOW - DAY, ()),
            "committed",
            (False, False),
            "start_date",
            "must be in the future",
        ),
        (
            DateChange(NOW + 3 * DAY, ()),
            "offered",
            (False, False),
            "start_date",
            "must not be before the offer expires",
        ),
        (
            DateChange(NOW + 30 * DAY, ()),
            "committed",
            (False, False),
            "start_date",
            "milestone 1 would be due after the start date",
        ),
        (
            DateChange(None, ((1, START + DAY),)),
            "committed",
            (False, False),
            "milestones.0.due",
            "milestone 1 would be due after the start date",
        ),
        (
            DateChange(START, ((0, DUES[0]),)),
            "committed",
            (False, False),
            "start_date",
            "nothing changes: give new dates",
        ),
    ],
)
def test_an_amendment_is_refused(
    change: DateChange, state: str, confirmed: tuple[bool, ...], field: str, message: str
) -> None:
    with pytest.raises(DateRuleBroken) as exc:
        amend(change, state=state, confirmed=confirmed)
    assert refused(exc) == (field, message)


def test_an_offered_agreement_moves_its_start_to_after_the_offer_expiry() -> None:
    start, _ = amend(DateChange(NOW + 45 * DAY, ()), state="offered")
    assert start == NOW + 45 * DAY

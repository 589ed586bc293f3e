"""Mainland China's calendar in planning, over 2026 (the official arrangement, from
chinese-calendar) and 2027 (not published in the pinned package: statutory days computed, no
adjusted working days): no check-in on the first day of the Spring Festival, "N working days"
lands on a working day, the weekly report skips a holiday Monday, adjusted working days count."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from offerseal.notify.adapters.calendar_cn import ChinaCalendar
from offerseal.notify.domain import schedule
from offerseal.notify.domain.workdays import (
    Weekdays,
    add_working_days,
    after_holidays,
    first_working_day_of_week,
    request_at_on,
    working_days_before,
)

CN = ChinaCalendar()
SHANGHAI = ZoneInfo("Asia/Shanghai")
NINE = dt.time(9, 0)


def at(day: dt.date, hour: int = 10) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), SHANGHAI)


@pytest.mark.parametrize(
    ("first_day", "next_working_day"),
    [
        (dt.date(2026, 2, 17), dt.date(2026, 2, 24)),  # 2026: 15-23 February off
        # 2027: statutory only, the eve (Fri 5) to the third day (Mon 8)
        (dt.date(2027, 2, 6), dt.date(2027, 2, 9)),
    ],
)
def test_no_checkin_on_the_first_day_of_the_spring_festival(
    first_day: dt.date, next_working_day: dt.date
) -> None:
    assert CN.is_holiday(first_day)
    moved = after_holidays(at(first_day), SHANGHAI, CN, NINE).astimezone(SHANGHAI)
    assert moved.date() > first_day and not CN.is_holiday(moved.date())
    assert moved.time() == NINE
    assert moved.date() == next_working_day
    # an ordinary day is not moved; without a calendar nothing is
    ordinary = at(dt.date(first_day.year, 3, 10))
    assert after_holidays(ordinary, SHANGHAI, CN, NINE) == ordinary
    assert after_holidays(at(first_day), SHANGHAI, Weekdays(), NINE) == at(first_day)


def test_three_working_days_land_on_a_working_day_across_holidays_2026() -> None:
    # Thursday 30 Sep 2026 + 3 working days: 1-7 October off, so Thu 8, Fri 9, Sat 10 (an
    # adjusted working day in 2026)
    assert add_working_days(dt.date(2026, 9, 30), 3, CN) == dt.date(2026, 10, 10)
    assert CN.is_workday(dt.date(2026, 10, 10)) and dt.date(2026, 10, 10).weekday() == 5
    # the same three days without the calendar: Mon-Fri only
    assert add_working_days(dt.date(2026, 9, 30), 3, Weekdays()) == dt.date(2026, 10, 5)
    for start in (dt.date(2026, 1, 1) + dt.timedelta(days=i) for i in range(365)):
        assert CN.is_workday(add_working_days(start, 3, CN))


def test_three_working_days_land_on_a_working_day_in_2027() -> None:
    # Wed 3 Feb 2027 + 3 working days: Thu 4, then the Spring Festival's eve to its third day
    # (Fri 5 - Mon 8), so Tue 9, Wed 10
    assert add_working_days(dt.date(2027, 2, 3), 3, CN) == dt.date(2027, 2, 10)
    for start in (dt.date(2027, 1, 1) + dt.timedelta(days=i) for i in range(365)):
        landed = add_working_days(start, 3, CN)
        assert CN.is_workday(landed) and not CN.is_holiday(landed)
    assert CN.provisional(2027) and not CN.provisional(2026)


def test_a_document_request_goes_out_working_days_before_its_due_date() -> None:
    """The social-insurance stop is asked for three (working) days before the last working
    day: due Thursday 8 Oct 2026, asked on Sunday 27 Sep (an adjusted working day), not during
    the National Day holidays."""
    due = at(dt.date(2026, 10, 8), 18)
    request = request_at_on(CN, SHANGHAI, lambda kind: schedule.lead_for(kind).days)
    asked = request("social_insurance_stop", due).astimezone(SHANGHAI)
    assert asked.date() == dt.date(2026, 9, 28)
    assert CN.is_workday(asked.date()) and asked.time() == dt.time(18)
    assert working_days_before(due, 0, SHANGHAI, CN) == due
    # planned through the schedule
    planned = schedule.plan_after_commitment(
        committed_at=at(dt.date(2026, 9, 1)),
        start_at=at(dt.date(2026, 11, 2)),
        checkin_interval=dt.timedelta(hours=48),
        milestones=[("social_insurance_stop", due)],
        request=request,
    )
    [milestone] = [p for p in planned if p.kind == schedule.MILESTONE_REQUEST]
    assert milestone.due_at.astimezone(SHANGHAI).date() == dt.date(2026, 9, 28)


@pytest.mark.parametrize(
    ("monday", "first"),
    [
        (dt.date(2026, 10, 5), dt.date(2026, 10, 8)),  # National Day week 2026
        (dt.date(2026, 5, 4), dt.date(2026, 5, 6)),  # Labour Day 2026
        (dt.date(2027, 4, 5), dt.date(2027, 4, 6)),  # Qingming falls on Monday 5 Apr 2027
        (dt.date(2026, 3, 9), dt.date(2026, 3, 9)),  # an ordinary Monday
    ],
)
def test_the_weekly_report_skips_a_holiday_monday(monday: dt.date, first: dt.date) -> None:
    assert first_working_day_of_week(monday, CN) == first
    assert first_working_day_of_week(monday + dt.timedelta(days=2), CN) == first
    assert first_working_day_of_week(monday, Weekdays()) == monday


def test_adjusted_working_days_are_working_days_and_weekends_are_not_holidays() -> None:
    assert CN.is_workday(dt.date(2026, 2, 14))  # Saturday worked for the Spring Festival
    assert not CN.is_holiday(dt.date(2026, 3, 14))  # an ordinary Saturday: rest, not holiday
    assert not CN.is_workday(dt.date(2026, 3, 14))
    assert CN.is_holiday(dt.date(2026, 10, 3))  # a Saturday inside National Day
    for day in (dt.date(2027, 1, 1), dt.date(2027, 5, 1), dt.date(2027, 10, 1)):
        assert CN.is_holiday(day)
    assert CN.is_holiday(dt.date(2027, 6, 9)) and CN.is_holiday(dt.date(2027, 9, 15))
    assert CN.is_holiday(dt.date(2027, 4, 5))  # Qingming 2027

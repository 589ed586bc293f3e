"""Working days and public holidays for planning: a check-in does not go out on a public
holiday, a document request due "N working days" before a milestone lands on a working day, and
the weekly report waits for the first working day of the week. The calendar itself (mainland
China's, with its adjusted working days) is passed in (standard library only).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Protocol
from zoneinfo import ZoneInfo


class Calendar(Protocol):
    def is_workday(self, day: dt.date) -> bool:
        """A day people work: weekdays that are not holidays, and adjusted working days."""
        ...

    def is_holiday(self, day: dt.date) -> bool:
        """A public holiday (ordinary weekends are not)."""
        ...


class Weekdays:
    """No public holidays: Monday to Friday are working days (a tenant without a calendar)."""

    def is_workday(self, day: dt.date) -> bool:
        return day.weekday() < 5

    def is_holiday(self, day: dt.date) -> bool:
        return False


def add_working_days(start: dt.date, n: int, calendar: Calendar) -> dt.date:
    """The n-th working day after `start` (n < 0: before it); n == 0: `start` itself if it is a
    working day, else the next one."""
    day, step = start, 1 if n >= 0 else -1
    if n == 0:
        while not calendar.is_workday(day):
            day += dt.timedelta(days=1)
        return day
    left = abs(n)
    while left:
        day += dt.timedelta(days=step)
        if calendar.is_workday(day):
            left -= 1
    return day


def working_days_before(
    moment: dt.datetime, days: int, tz: ZoneInfo, calendar: Calendar
) -> dt.datetime:
    """`days` working days before `moment`, at the same local time (a document request before
    a milestone's due date)."""
    local = moment.astimezone(tz)
    day = add_working_days(local.date(), -days, calendar)
    return dt.datetime.combine(day, local.timetz()).astimezone(dt.UTC)


def after_holidays(
    moment: dt.datetime, tz: ZoneInfo, calendar: Calendar, at: dt.time
) -> dt.datetime:
    """`moment` if its local day is not a public holiday; else `at` (local) on the first day
    after the holidays."""
    local = moment.astimezone(tz)
    day = local.date()
    if not calendar.is_holiday(day):
        return moment
    while calendar.is_holiday(day):
        day += dt.timedelta(days=1)
    return dt.datetime.combine(day, at, tz).astimezone(dt.UTC)


def first_working_day_of_week(any_day: dt.date, calendar: Calendar) -> dt.date:
    """The week's first working day (its Monday, unless a holiday moves it later)."""
    monday = any_day - dt.timedelta(days=any_day.weekday())
    day = monday
    while not calendar.is_workday(day) and day < monday + dt.timedelta(days=6):
        day += dt.timedelta(days=1)
    return day


def request_at_on(
    calendar: Calendar, tz: ZoneInfo, lead_days: Callable[[str], int]
) -> Callable[[str, dt.datetime], dt.datetime]:
    """A milestone's document request `lead_days(kind)` working days before its due date."""

    def request(kind: str, due: dt.datetime) -> dt.datetime:
        return working_days_before(due, lead_days(kind), tz, calendar)

    return request

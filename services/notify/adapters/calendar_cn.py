"""Mainland China's calendar: public holidays and adjusted working days (调休) from the
maintained `chinese-calendar` package, which carries each year once the State Council publishes
it. For a later year it does not carry yet, the statutory holidays of the national holiday rules
(全国年节及纪念日放假办法, as revised in 2024) are computed (New Year's Day, the Spring Festival's
eve to its third day, Qingming, 1-2 May, the Dragon Boat and Mid-Autumn festivals, 1-3 October;
lunar dates with `lunardate`); weekends are rest days and no adjusted working day is known, so
such a year is `provisional` until the package is updated.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import chinese_calendar
from lunardate import LunarDate

FIRST_YEAR = 2004


@lru_cache(maxsize=32)
def _statutory(year: int) -> frozenset[dt.date]:
    """The days off the national rules give in `year`, without bridging or adjusted days."""
    days = {dt.date(year, 1, 1), dt.date(year, 5, 1), dt.date(year, 5, 2)}
    days |= {dt.date(year, 10, d) for d in (1, 2, 3)}
    spring = LunarDate(year, 1, 1).to_solar_date()
    days |= {spring + dt.timedelta(days=d) for d in (-1, 0, 1, 2)}
    days.add(LunarDate(year, 5, 5).to_solar_date())  # Dragon Boat
    days.add(LunarDate(year, 8, 15).to_solar_date())  # Mid-Autumn
    qingming = chinese_calendar.get_solar_terms(dt.date(year, 4, 1), dt.date(year, 4, 10))
    days |= {day for day, _ in qingming}
    return frozenset(days)


class ChinaCalendar:
    name = "cn"

    def __init__(self) -> None:
        self.last_year = max(day.year for day in chinese_calendar.holidays)

    def provisional(self, year: int) -> bool:
        """True for a year whose official arrangement the package does not carry yet."""
        return year > self.last_year

    def is_holiday(self, day: dt.date) -> bool:
        if day.year < FIRST_YEAR:
            return False
        if self.provisional(day.year):
            return day in _statutory(day.year)
        return day in chinese_calendar.holidays

    def is_workday(self, day: dt.date) -> bool:
        if day.year < FIRST_YEAR:
            return day.weekday() < 5
        if self.provisional(day.year):
            return day.weekday() < 5 and day not in _statutory(day.year)
        return bool(chinese_calendar.is_workday(day))

"""The SMS providers' documented default limits, decided before sending: Aliyun's verification
codes (1 a minute, 5 an hour, 10 a natural day per number) and notices (50 a natural day per
number and template), Tencent's same content once in 30 s. A message over a limit gets the
moment it may go, never a refusal; E.164 numbers; template parameters per kind."""

from __future__ import annotations

import datetime as dt

import pytest

from offerseal.notify.adapters.sms import InvalidPhone, e164
from offerseal.notify.domain import schedule
from offerseal.notify.domain.sms import (
    ALIYUN,
    BEIJING,
    TENCENT,
    Sent,
    content_digest,
    next_allowed,
    template_params,
)

PHONE = "+8613800138000"
# 10:00 in Beijing
NOON = dt.datetime(2026, 3, 10, 2, 0, tzinfo=dt.UTC)


def codes(*ago_seconds: float, phone: str = PHONE) -> list[Sent]:
    return [
        Sent(NOON - dt.timedelta(seconds=s), phone, "SMS_CODE", schedule.CODE, f"d{s}")
        for s in ago_seconds
    ]


def when(provider: str, history: list[Sent], kind: str = schedule.CODE, **kw: str) -> dt.datetime:
    return next_allowed(
        provider,
        history,
        now=NOON,
        phone=kw.get("phone", PHONE),
        kind=kind,
        template=kw.get("template", "SMS_CODE"),
        digest=kw.get("digest", "new"),
    ).at


def test_aliyun_one_code_a_minute() -> None:
    assert when(ALIYUN, []) == NOON
    assert when(ALIYUN, codes(20)) == NOON + dt.timedelta(seconds=40)
    assert when(ALIYUN, codes(60)) == NOON  # the minute has passed
    assert when(ALIYUN, codes(20, phone="+8613900139000")) == NOON  # another number


def test_aliyun_five_codes_an_hour() -> None:
    history = codes(3000, 2400, 1800, 1200, 600)
    # the oldest of the five leaves the hour 600 s from now
    assert when(ALIYUN, history) == NOON + dt.timedelta(seconds=600)


def test_aliyun_ten_codes_a_natural_day_in_beijing() -> None:
    # ten codes since midnight Beijing time, more than an hour apart within the day's window
    start = dt.datetime(2026, 3, 10, 0, 5, tzinfo=BEIJING)
    history = [
        Sent(start + dt.timedelta(minutes=55 * i), PHONE, "SMS_CODE", schedule.CODE, str(i))
        for i in range(10)
    ]
    now = start + dt.timedelta(hours=10)
    verdict = next_allowed(
        ALIYUN, history, now=now, phone=PHONE, kind=schedule.CODE, template="T", digest="x"
    )
    assert verdict.at.astimezone(BEIJING).date() == dt.date(2026, 3, 11)
    assert "10 verification codes a day" in verdict.why


def test_aliyun_fifty_notices_a_day_per_template() -> None:
    history = [
        Sent(NOON - dt.timedelta(minutes=i), PHONE, "SMS_CHECKIN", schedule.CHECKIN, str(i))
        for i in range(50)
    ]
    moved = when(ALIYUN, history, schedule.CHECKIN, template="SMS_CHECKIN")
    assert moved.astimezone(BEIJING).date() == dt.date(2026, 3, 11)
    # another template is counted apart; codes do not count against notices
    assert when(ALIYUN, history, schedule.INVITATION, template="SMS_INVITE") == NOON
    assert when(ALIYUN, history) == NOON


def test_tencent_same_content_once_in_30_seconds() -> None:
    history = [Sent(NOON - dt.timedelta(seconds=10), PHONE, "1110", schedule.CHECKIN, "same")]
    assert when(TENCENT, history, schedule.CHECKIN, digest="same") == NOON + dt.timedelta(
        seconds=20
    )
    assert when(TENCENT, history, schedule.CHECKIN, digest="other") == NOON


def test_content_is_the_template_with_its_parameters() -> None:
    a = content_digest("1110", [("code", "123456")])
    assert a == content_digest("1110", [("code", "123456")])
    assert a != content_digest("1110", [("code", "654321")])
    assert a != content_digest("1111", [("code", "123456")])


def test_each_kind_has_its_parameters_in_order_and_cut_to_a_variable() -> None:
    values = {"employer": "长" * 50, "link": "https://o.example/l/abc", "code": "123456"}
    assert [n for n, _ in template_params(schedule.CHECKIN, values)] == ["employer", "link"]
    (_, employer), (_, link) = template_params(schedule.CHECKIN, values)
    assert len(employer) == 35 and employer.endswith("…") and link == values["link"]
    assert template_params(schedule.CODE, values) == [("code", "123456")]


@pytest.mark.parametrize(
    ("raw", "number"),
    [
        ("13800138000", "+8613800138000"),
        ("+86 138 0013 8000", "+8613800138000"),
        ("008613800138000", "+8613800138000"),
        ("+852 5123 4567", "+85251234567"),
        ("+1 650-253-0000", "+16502530000"),
    ],
)
def test_numbers_become_e164(raw: str, number: str) -> None:
    assert e164(raw) == number


@pytest.mark.parametrize("raw", ["", "12345", "+86 123", "not a number", "+8613800"])
def test_invalid_numbers_are_refused(raw: str) -> None:
    with pytest.raises(InvalidPhone):
        e164(raw)


def test_next_code_possible_at() -> None:
    from offerseal.notify.domain.sms import next_code_at

    assert next_code_at(ALIYUN, [], NOON) == NOON
    assert next_code_at(ALIYUN, [NOON - dt.timedelta(seconds=15)], NOON) == NOON + dt.timedelta(
        seconds=45
    )
    five = [NOON - dt.timedelta(minutes=m) for m in (50, 40, 30, 20, 2)]
    assert next_code_at(ALIYUN, five, NOON) == NOON + dt.timedelta(minutes=10)
    assert next_code_at(TENCENT, [NOON - dt.timedelta(seconds=1)], NOON) == NOON

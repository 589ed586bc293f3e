"""The notify core: the plan after commitment, quiet hours in the candidate's zone, backoff,
and texts in both languages."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from offerseal.notify.domain import schedule
from offerseal.notify.domain.templates import render

UTC = dt.UTC
SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_plan_after_commitment() -> None:
    committed = dt.datetime(2026, 12, 1, 10, tzinfo=UTC)
    start = committed + dt.timedelta(days=20)
    plan = schedule.plan_after_commitment(
        committed_at=committed,
        start_at=start,
        checkin_interval=dt.timedelta(hours=48),
        milestones=[("resignation_submitted", committed + dt.timedelta(days=5))],
    )
    [checkin] = [p for p in plan if p.kind == schedule.CHECKIN]  # later ones one at a time
    assert checkin.due_at == committed + dt.timedelta(hours=48) and checkin.occurrence == 1
    sent = checkin.due_at + dt.timedelta(hours=11)  # deferred by quiet hours, say
    after = schedule.next_checkin(1, sent, dt.timedelta(hours=48), start)
    assert after is not None and after.occurrence == 2
    assert after.due_at == sent + dt.timedelta(hours=48)  # the rhythm runs from the real send
    assert (
        schedule.next_checkin(9, start - dt.timedelta(hours=1), dt.timedelta(hours=48), start)
        is None
    )
    [request] = [p for p in plan if p.kind == schedule.MILESTONE_REQUEST]
    assert request.due_at == committed + dt.timedelta(days=3) and request.essential
    weekly = [p for p in plan if p.kind == schedule.WEEKLY_UPDATE]
    assert len(weekly) == 2 and not weekly[0].essential
    [welcome] = [p for p in plan if p.kind == schedule.WELCOME_PACKAGE]
    assert welcome.due_at == start - dt.timedelta(days=3)
    assert plan == sorted(plan, key=lambda p: (p.due_at, p.kind, p.occurrence))


@pytest.mark.parametrize(
    "local,expected",
    [
        ((12, 0), None),  # day time: now
        ((22, 30), ((2026, 12, 2), 9)),  # evening: next morning
        ((3, 15), ((2026, 12, 1), 9)),  # night: this morning
        ((9, 0), None),  # the quiet period has just ended
    ],
)
def test_quiet_hours_defer_to_the_next_allowed_moment(
    local: tuple[int, int], expected: tuple[tuple[int, int, int], int] | None
) -> None:
    quiet = schedule.QuietHours.parse("21:00-09:00")
    moment = dt.datetime(2026, 12, 1, *local, tzinfo=SHANGHAI).astimezone(UTC)
    allowed = quiet.next_allowed(moment, SHANGHAI)
    if expected is None:
        assert allowed == moment
    else:
        (y, m, d), hour = expected
        assert allowed == dt.datetime(y, m, d, hour, tzinfo=SHANGHAI).astimezone(UTC)


def test_quiet_hours_parse_and_disable() -> None:
    assert str(schedule.QuietHours.parse("22:00-07:30")) == "22:00-07:30"
    off = schedule.QuietHours.parse("00:00-00:00")
    moment = dt.datetime(2026, 12, 1, 23, tzinfo=UTC)
    assert off.next_allowed(moment, SHANGHAI) == moment
    with pytest.raises(ValueError):
        schedule.QuietHours.parse("late")


def test_retry_backoff_grows_and_is_capped() -> None:
    delays = [schedule.retry_delay(n).total_seconds() for n in range(1, 12)]
    assert delays[:4] == [5, 10, 20, 40] and max(delays) == 600


@pytest.mark.parametrize("language,word", [("zh-CN", "离职进展"), ("en", "resignation")])
def test_checkin_text_offers_every_answer_as_a_link(language: str, word: str) -> None:
    links = {
        f"reply_{a}": f"https://n.example/v1/replies/t?answer={a}"
        for a in ("on_track", "delayed", "need_help", "withdrawing")
    }
    rendered = render(schedule.CHECKIN, language, {}, links)
    assert word in rendered.subject + rendered.text
    for url in links.values():
        assert url in rendered.text and f'href="{url}"' in rendered.html

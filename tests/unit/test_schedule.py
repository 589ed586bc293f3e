"""The notify core: the plan after commitment, quiet hours in the candidate's zone, backoff,
and texts in both languages."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from offerseal.notify.domain import schedule
from offerseal.notify.layout import render

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


# ---- new dates: what is still planned moves ----------------------------------------------

NOW = dt.datetime(2026, 12, 1, 10, tzinfo=UTC)
DAY = dt.timedelta(days=1)
H48 = dt.timedelta(hours=48)


def existing_after_commitment(start: dt.datetime) -> list[schedule.Existing]:
    plan = schedule.plan_after_commitment(
        committed_at=NOW,
        start_at=start,
        checkin_interval=H48,
        milestones=[("resignation_submitted", NOW + 5 * DAY), ("handover_done", NOW + 15 * DAY)],
    )
    return [schedule.Existing(p.kind, p.occurrence, "planned", p.due_at) for p in plan]


def test_a_later_start_moves_requests_and_welcome_and_adds_weekly_updates() -> None:
    old_start, new_start = NOW + 20 * DAY, NOW + 41 * DAY
    existing = existing_after_commitment(old_start)
    plan = schedule.replan(
        now=NOW,
        start_at=new_start,
        milestones=[("resignation_submitted", NOW + 5 * DAY), ("handover_done", NOW + 30 * DAY)],
        checkin_interval=H48,
        existing=existing,
    )
    due, data = plan.moves[(schedule.MILESTONE_REQUEST, 1)]
    assert due == NOW + 28 * DAY and data["due_at"] == (NOW + 30 * DAY).isoformat()
    assert plan.moves[(schedule.MILESTONE_REQUEST, 0)][0] == NOW + 3 * DAY  # unchanged date
    assert plan.moves[(schedule.WELCOME_PACKAGE, 1)][0] == new_start - 3 * DAY
    weekly = [p for p in existing if p.kind == schedule.WEEKLY_UPDATE]
    added = [p for p in plan.adds if p.kind == schedule.WEEKLY_UPDATE]
    assert [p.occurrence for p in added] == list(range(len(weekly) + 1, len(weekly) + 4))
    assert all(p.due_at < new_start - 3 * DAY for p in added)
    assert not plan.cancels
    assert not [p for p in plan.adds if p.kind == schedule.CHECKIN]  # one is still planned


def test_an_earlier_start_cancels_what_would_come_after_it() -> None:
    existing = existing_after_commitment(NOW + 30 * DAY)
    existing.append(schedule.Existing(schedule.CHECKIN, 2, "planned", NOW + 9 * DAY))
    existing = [e for e in existing if not (e.kind == schedule.CHECKIN and e.occurrence == 1)]
    new_start = NOW + 8 * DAY
    plan = schedule.replan(
        now=NOW,
        start_at=new_start,
        milestones=[("resignation_submitted", NOW + 5 * DAY), ("handover_done", NOW + 7 * DAY)],
        checkin_interval=H48,
        existing=existing,
    )
    assert (schedule.CHECKIN, 2) in plan.cancels
    cancelled_weekly = [o for k, o in plan.cancels if k == schedule.WEEKLY_UPDATE]
    assert cancelled_weekly == [1, 2, 3]  # all of them are now after start - 3 days
    # The check-in due after the new start is replaced by one that comes before it.
    [checkin] = [p for p in plan.adds if p.kind == schedule.CHECKIN]
    assert checkin.occurrence == 3 and checkin.due_at == NOW + H48
    assert plan.moves[(schedule.WELCOME_PACKAGE, 1)][0] == new_start - 3 * DAY


def test_sent_touchpoints_stay_and_stopped_check_ins_resume_up_to_the_new_start() -> None:
    sent_at = NOW - DAY
    existing = [
        schedule.Existing(schedule.MILESTONE_REQUEST, 0, "sent", NOW - 2 * DAY, NOW - 2 * DAY),
        schedule.Existing(schedule.CHECKIN, 1, "sent", NOW - 3 * DAY, NOW - 3 * DAY),
        schedule.Existing(schedule.CHECKIN, 2, "sent", sent_at, sent_at),
    ]
    plan = schedule.replan(
        now=NOW,
        start_at=NOW + 10 * DAY,
        milestones=[("resignation_submitted", NOW + 6 * DAY)],
        checkin_interval=H48,
        existing=existing,
    )
    assert (schedule.MILESTONE_REQUEST, 0) not in plan.moves  # already sent: not touched
    [checkin] = [p for p in plan.adds if p.kind == schedule.CHECKIN]
    assert checkin.occurrence == 3 and checkin.due_at == sent_at + H48


def test_the_social_insurance_stop_date_is_asked_for_three_days_before_the_last_day() -> None:
    last_day = NOW + 20 * DAY
    plan = schedule.plan_after_commitment(
        committed_at=NOW,
        start_at=NOW + 30 * DAY,
        checkin_interval=H48,
        milestones=[("handover_halfway", NOW + 10 * DAY), ("social_insurance_stop", last_day)],
    )
    requests = {p.occurrence: p for p in plan if p.kind == schedule.MILESTONE_REQUEST}
    assert requests[0].due_at == NOW + 8 * DAY
    assert requests[1].due_at == last_day - 3 * DAY

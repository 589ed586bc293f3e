"""HR alerts in the team's chat (DingTalk, WeCom, Feishu group robots): what each alert says,
in the tenant's language, several merged into one markdown message, and the robots' documented
rate limits (standard library only).

What each alert says, and the message's labels, are the catalogue's `notify.alert.*`.

Alerts are merged rather than dropped: whatever is waiting when a robot may post again goes out
as one message (DingTalk and WeCom advise exactly this for bursts).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ...shared import i18n

DINGTALK, WECOM, FEISHU = "dingtalk", "wecom", "feishu"
PLATFORMS = (DINGTALK, WECOM, FEISHU)

RISK_RED = "risk_red"
CHECKIN_MISSED = "checkin_missed"
MILESTONE_OVERDUE = "milestone_overdue"
BREACH_DUE = "breach_due"
ARRIVAL_DISPUTED = "arrival_disputed"
TEST = "test"
KINDS = (RISK_RED, CHECKIN_MISSED, MILESTONE_OVERDUE, BREACH_DUE, ARRIVAL_DISPUTED, TEST)

# (at most posts, in seconds) per robot, as each platform documents its custom robots.
LIMITS: dict[str, tuple[tuple[int, float], ...]] = {
    DINGTALK: ((20, 60.0),),  # 20 a minute (over it: throttled for 10 minutes)
    WECOM: ((20, 60.0),),  # 20 a minute
    FEISHU: ((100, 60.0), (5, 1.0)),  # 100 a minute and 5 a second
}
# How long a robot that answered "too fast" is left alone.
THROTTLED_PAUSE = {DINGTALK: 600.0, WECOM: 60.0, FEISHU: 60.0}
# A message's markdown stays under the smallest platform limit (WeCom: 4096 bytes).
MAX_BYTES = 3800
MAX_LISTED = 10

BEIJING = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")


def _moment(value: dt.datetime | None) -> str:
    return value.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M") if value else "-"


def _amount(minor: int, currency: str) -> str:
    return f"{minor / 100:,.2f} {currency}"


def detail(
    kind: str,
    language: str,
    *,
    at: dt.datetime | None = None,
    arrived: dt.datetime | None = None,
    disputed: dt.datetime | None = None,
    automatic: bool = True,
    damages: int = 0,
    currency: str = "",
) -> str:
    """The line of facts an alert of `kind` carries (a breach's date, the damages, who
    declares it; an arrival's and its dispute's times), from the catalogue's
    `notify.alert.detail.*` (times in Beijing time)."""
    lang = language if language in i18n.LANGUAGES else "zh-CN"
    if kind == BREACH_DUE:
        how = i18n.text(lang, f"notify.alert.how.{'automatic' if automatic else 'hr'}")
        return i18n.text(
            lang,
            "notify.alert.detail.breach_due",
            at=_moment(at),
            amount=_amount(damages, currency),
            how=how,
        )
    if kind == ARRIVAL_DISPUTED:
        return i18n.text(
            lang,
            "notify.alert.detail.arrival_disputed",
            arrived=_moment(arrived),
            disputed=_moment(disputed),
            at=_moment(at),
        )
    return ""


@dataclass(frozen=True)
class Alert:
    kind: str
    candidate_ref: str
    position: str
    link: str  # the console's timeline of the agreement
    detail: str = ""


def _clean(text: str) -> str:
    """One line of plain text in markdown: no markup a candidate's data could inject."""
    text = " ".join(str(text).split())
    for char in "*_`[]()#>|<~":
        text = text.replace(char, " ")
    return " ".join(text.split())[:160]


def render(alerts: Sequence[Alert], language: str) -> tuple[str, str]:
    """(title, markdown) of one message carrying the alerts, newest last."""
    lang = language if language in i18n.LANGUAGES else "zh-CN"
    labels = i18n.lookup(lang, "notify.alert.")
    title = (
        labels["title"]
        if len(alerts) == 1
        else f"{labels['title']} · " + i18n.text(lang, "notify.alert.count", n=len(alerts))
    )
    parts = [f"### {title}"]
    listed = list(alerts)[-MAX_LISTED:]
    hidden = len(alerts) - len(listed)
    for alert in listed:
        kind = alert.kind if alert.kind in KINDS else TEST
        happened, todo = labels[f"kind.{kind}.happened"], labels[f"kind.{kind}.todo"]
        block = [f"**{happened}**"]
        if alert.candidate_ref:
            block.append(f"- {labels['candidate']}: {_clean(alert.candidate_ref)}")
        if alert.position:
            block.append(f"- {labels['position']}: {_clean(alert.position)}")
        if alert.detail:
            block.append(f"- {_clean(alert.detail)}")
        block.append(f"- {labels['todo']}: {todo}")
        if alert.link:
            block.append(f"- [{labels['timeline']}]({alert.link})")
        candidate = "\n\n".join([*parts, "\n".join(block)])
        if len(candidate.encode()) > MAX_BYTES:
            hidden += 1
            continue
        parts.append("\n".join(block))
    if hidden:
        parts.append(i18n.text(lang, "notify.alert.more", n=hidden))
    return title, "\n\n".join(parts)


def next_post_at(platform: str, posts: Iterable[dt.datetime], now: dt.datetime) -> dt.datetime:
    """When the robot may post without exceeding its limits (`now` if at once)."""
    times = sorted(posts)
    moment = now
    for limit, seconds in LIMITS.get(platform, ()):
        span = dt.timedelta(seconds=seconds)
        counted = [t for t in times if moment - span < t <= moment]
        if len(counted) >= limit:
            moment = max(moment, counted[len(counted) - limit] + span)
    return moment

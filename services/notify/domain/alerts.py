"""HR alerts in the team's chat (DingTalk, WeCom, Feishu group robots): what each alert says,
in the tenant's language, several merged into one markdown message, and the robots' documented
rate limits (standard library only).

Alerts are merged rather than dropped: whatever is waiting when a robot may post again goes out
as one message (DingTalk and WeCom advise exactly this for bursts).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

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

TEXTS: dict[str, dict[str, tuple[str, str]]] = {
    # kind -> language -> (what happened, what to do)
    RISK_RED: {
        "zh-CN": ("风险转为红色", "启动备选方案，并请法务介入。"),
        "en": ("Risk turned red", "Start the backup plan and involve the legal team."),
    },
    CHECKIN_MISSED: {
        "zh-CN": ("候选人未回复进展确认", "请今天电话联系候选人，了解离职进展。"),
        "en": ("Check-in not answered", "Call the candidate today about the resignation."),
    },
    MILESTONE_OVERDUE: {
        "zh-CN": ("离职节点已逾期", "请联系候选人补交材料，或与其商定新的日期。"),
        "en": (
            "Milestone overdue",
            "Ask the candidate for the document, or agree a new date with them.",
        ),
    },
    BREACH_DUE: {
        "zh-CN": (
            "即将可宣告违约",
            "候选人尚未到岗。请在此之前联系候选人确认到岗安排，并与法务商定是否宣告违约。",
        ),
        "en": (
            "Breach coming due",
            "The candidate has not arrived. Call them before then about their first day, "
            "and agree with legal whether to declare the breach.",
        ),
    },
    ARRIVAL_DISPUTED: {
        "zh-CN": (
            "到岗记录已被提出异议",
            "请核实候选人是否到岗，保留证据并通知法务；可宣告违约前请与候选人沟通。",
        ),
        "en": (
            "Arrival disputed",
            "Check whether the candidate started, keep the evidence and tell legal; talk to "
            "the candidate before a breach can be declared.",
        ),
    },
    TEST: {
        "zh-CN": ("测试消息", "OfferSeal 已能向本群发送提醒。"),
        "en": ("Test message", "OfferSeal can post alerts to this group."),
    },
}
LABELS = {
    "zh-CN": {
        "title": "OfferSeal 提醒",
        "candidate": "候选人",
        "position": "职位",
        "todo": "建议",
        "timeline": "查看时间线",
        "more": "另有 {n} 条提醒，请在控制台查看。",
        "count": "{n} 条提醒",
    },
    "en": {
        "title": "OfferSeal alert",
        "candidate": "Candidate",
        "position": "Position",
        "todo": "To do",
        "timeline": "Open the timeline",
        "more": "{n} more alerts: see the console.",
        "count": "{n} alerts",
    },
}


# What an alert's facts say, in the tenant's language (times in Beijing time).
DETAILS: dict[str, dict[str, str]] = {
    BREACH_DUE: {
        "zh-CN": "可宣告违约时间：{at}（北京时间）；违约金 {amount}；{how}",
        "en": "Declarable from {at}, Beijing time; damages {amount}; {how}",
    },
    ARRIVAL_DISPUTED: {
        "zh-CN": "到岗记录 {arrived}，异议提出 {disputed}；可宣告违约时间：{at}（北京时间）",
        "en": "Arrival recorded {arrived}, disputed {disputed}; breach declarable from {at}, "
        "Beijing time",
    },
}
HOW = {
    "zh-CN": {True: "到期后系统将自动宣告", False: "由 HR 决定是否宣告"},
    "en": {True: "OfferSeal declares it by itself then", False: "HR decides whether to declare it"},
}
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
    declares it; an arrival's and its dispute's times)."""
    lang = language if language in LABELS else "zh-CN"
    template = DETAILS.get(kind, {}).get(lang, "")
    return template.format(
        at=_moment(at),
        arrived=_moment(arrived),
        disputed=_moment(disputed),
        amount=_amount(damages, currency),
        how=HOW[lang][automatic],
    )


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
    lang = language if language in LABELS else "zh-CN"
    labels = LABELS[lang]
    title = (
        labels["title"]
        if len(alerts) == 1
        else f"{labels['title']} · " + labels["count"].format(n=len(alerts))
    )
    parts = [f"### {title}"]
    listed = list(alerts)[-MAX_LISTED:]
    hidden = len(alerts) - len(listed)
    for alert in listed:
        happened, todo = TEXTS.get(alert.kind, TEXTS[TEST])[lang]
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
        parts.append(labels["more"].format(n=hidden))
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

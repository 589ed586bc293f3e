"""SMS in mainland China: what a template carries for each message kind, and the providers'
documented sending limits, decided before a message is handed over (standard library only).

Chinese SMS only carries templates the provider approved beforehand, under an approved sign
name: our texts become the template's parameters (`TEMPLATE_PARAMS`). The providers refuse a
message over their default limits (Aliyun's `isv.BUSINESS_LIMIT_CONTROL`, Tencent's
`LimitExceeded.*`); `next_allowed` says when a message may go instead, so the dispatcher moves
the touchpoint rather than dropping it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from . import schedule

ALIYUN = "aliyun"
TENCENT = "tencent"
PROVIDERS = (ALIYUN, TENCENT)

# Natural days are counted in Beijing time by both providers.
BEIJING = ZoneInfo("Asia/Shanghai")

# The parameters each kind's approved template receives, in this order (Tencent numbers them
# {1}, {2}, ...; Aliyun names them ${employer}, ${link}, ...). A tenant's template is approved
# with these, so that the same text reaches the candidate as by e-mail, shortened.
TEMPLATE_PARAMS: dict[str, tuple[str, ...]] = {
    schedule.INVITATION: ("employer", "by", "link"),
    schedule.CHECKIN: ("employer", "link"),
    schedule.MILESTONE_REQUEST: ("employer", "by", "link"),
    schedule.AMENDMENT: ("employer", "start", "link"),
    schedule.WEEKLY_UPDATE: ("employer", "link"),
    schedule.WELCOME_PACKAGE: ("employer", "link"),
    schedule.CLOSING: ("employer", "outcome", "link"),
    schedule.CODE: ("code",),
}
# Aliyun: a variable of a notice template holds at most 35 characters (a code 4-6 digits).
PARAM_MAX = 35


def template_params(kind: str, values: dict[str, str]) -> list[tuple[str, str]]:
    """The kind's parameters with their values, each cut to what a template variable holds."""
    out = []
    for name in TEMPLATE_PARAMS.get(kind, ()):
        value = " ".join(values.get(name, "").split())
        if len(value) > PARAM_MAX and name != "link":
            value = value[: PARAM_MAX - 1] + "…"
        out.append((name, value))
    return out


def content_digest(template: str, params: Sequence[tuple[str, str]]) -> str:
    """What "the same content" means to Tencent: one template with the same parameters."""
    raw = json.dumps([template, list(params)], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()


def is_code(kind: str) -> bool:
    """A verification-code message (its own, stricter limits) rather than a notice."""
    return kind == schedule.CODE


@dataclass(frozen=True)
class Sent:
    """An earlier message the provider accepted (what its limits count)."""

    at: dt.datetime
    phone: str
    template: str
    kind: str
    digest: str


@dataclass(frozen=True)
class Window:
    """At most `limit` messages matching `same` in a sliding `seconds` window, or per natural
    day (Beijing time) when `seconds` is None."""

    limit: int
    seconds: float | None
    scope: str  # "code" | "notice_template" | "content"
    why: str

    def matches(self, earlier: Sent, phone: str, kind: str, template: str, digest: str) -> bool:
        if earlier.phone != phone:
            return False
        if self.scope == "code":
            return is_code(earlier.kind) and is_code(kind)
        if self.scope == "notice_template":
            return not is_code(kind) and earlier.template == template
        return earlier.digest == digest


# The providers' documented default limits per number (their consoles can lower them).
LIMITS: dict[str, tuple[Window, ...]] = {
    ALIYUN: (
        Window(1, 60.0, "code", "Aliyun: 1 verification code a minute per number"),
        Window(5, 3600.0, "code", "Aliyun: 5 verification codes an hour per number"),
        Window(10, None, "code", "Aliyun: 10 verification codes a day per number"),
        Window(50, None, "notice_template", "Aliyun: 50 notices a day per number and template"),
    ),
    TENCENT: (Window(1, 30.0, "content", "Tencent: the same content once in 30 s per number"),),
}


@dataclass(frozen=True)
class Verdict:
    at: dt.datetime  # the earliest moment the message may go (now when it may go now)
    why: str = ""


def _next_day(moment: dt.datetime) -> dt.datetime:
    local = moment.astimezone(BEIJING).date() + dt.timedelta(days=1)
    return dt.datetime.combine(local, dt.time(0, 0, 1), BEIJING).astimezone(dt.UTC)


def next_allowed(
    provider: str,
    history: Iterable[Sent],
    *,
    now: dt.datetime,
    phone: str,
    kind: str,
    template: str,
    digest: str,
) -> Verdict:
    """When a message may go without exceeding the provider's limits: `now` if at once, else
    the moment the oldest message counted in the exceeded window leaves it (or the next
    natural day). Every window is satisfied by the moment returned."""
    earlier = sorted(history, key=lambda s: s.at)
    moment, why = now, ""
    for _ in range(8):  # a later moment can only fall into fewer windows' counts
        moved = False
        for window in LIMITS.get(provider, ()):
            counted = [s.at for s in earlier if window.matches(s, phone, kind, template, digest)]
            if window.seconds is None:
                day = moment.astimezone(BEIJING).date()
                counted = [t for t in counted if t.astimezone(BEIJING).date() == day]
                if len(counted) >= window.limit:
                    moment, why, moved = _next_day(moment), window.why, True
            else:
                span = dt.timedelta(seconds=window.seconds)
                counted = [t for t in counted if moment - span < t <= moment]
                if len(counted) >= window.limit:
                    free = counted[len(counted) - window.limit] + span
                    if free > moment:
                        moment, why, moved = free, window.why, True
        if not moved:
            break
    return Verdict(moment, why)


def next_code_at(provider: str, earlier: Iterable[dt.datetime], now: dt.datetime) -> dt.datetime:
    """When the next one-time code to one number may be sent, given when the earlier codes to
    it were (for a page saying "next code possible at"); `now` when at once. Tencent limits the
    same content only, and a new code is new content."""
    history = [Sent(at, "-", "", schedule.CODE, f"code-{i}") for i, at in enumerate(earlier)]
    verdict = next_allowed(
        provider, history, now=now, phone="-", kind=schedule.CODE, template="", digest="new"
    )
    return verdict.at

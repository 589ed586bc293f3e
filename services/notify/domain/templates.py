"""What each touchpoint says, in Simplified Chinese and English: its subject, its plain text,
the facts a candidate checks first (employer, position, what is asked, by when), one action per
purpose (a button in the HTML part, `layout.py`), and an SMS-sized text (at most 70 characters,
one UCS-2 segment, short link included). The words are the catalogue's `notify.*`. A tenant may
override the subject and text of any kind and language (`Override`); the layout, facts and
buttons stay, and its text is only ever escaped, so a tenant's template cannot inject markup."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ...shared import i18n
from .overrides import COMMON_FIELDS, FIELDS, Override, override_paragraphs, override_text
from .schedule import (
    AMENDMENT,
    CHECKIN,
    CLOSING,
    CODE,
    INVITATION,
    MILESTONE_REQUEST,
    SIGNER_BOUND,
    WEEKLY_UPDATE,
    WELCOME_PACKAGE,
)

ANSWERS = ("on_track", "delayed", "need_help", "withdrawing")  # as a check-in lists them


def _lang(language: str) -> str:
    """The catalogue language a message is written in: zh-CN, else English."""
    return "zh-CN" if language == "zh-CN" else "en"


def _t(lang: str, key: str, /, **params: object) -> str:
    return i18n.text(lang, f"notify.{key}", **params)


def answers(language: str) -> dict[str, str]:
    """A check-in's answers by key, in the order a candidate sees them."""
    return {key: _t(_lang(language), f"answer.{key}") for key in ANSWERS}


def outcome(lang: str, state: str, unknown: str | None = None) -> str:
    """What the end of an agreement means for the candidate (`unknown`, else `state` itself,
    when the state has no text)."""
    return i18n.texts(lang).get(f"notify.outcome.{state}", state if unknown is None else unknown)


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str
    sms: str = ""


SMS_MAX = 70  # one SMS segment in UCS-2 (any Chinese character in the text makes it UCS-2)


@dataclass(frozen=True)
class Brand:
    """A tenant's look: the name candidates know it by, a logo, an accent colour (#RRGGBB),
    and whether replies reach its HR team (Reply-To)."""

    display_name: str | None = None
    logo_url: str | None = None
    accent_colour: str | None = None
    reply_to: str | None = None


DEFAULT_ACCENT = "#1d70b8"


@dataclass(frozen=True)
class Action:
    """One purpose of the message: a button in HTML, a labelled line in the text."""

    label: str
    url: str


@dataclass(frozen=True)
class Content:
    """What a message says, before it is laid out (`layout.py`) or sent as text."""

    language: str
    subject: str
    heading: str
    paragraphs: list[str]
    facts: list[tuple[str, str]]
    actions: list[Action]
    text: str
    sms: str
    footer: list[str] = dataclass_field(default_factory=list)
    unsubscribe: Action | None = None
    employer: str = ""


def utf16_length(text: str) -> int:
    """Characters as an SMS counts them (UCS-2 code units)."""
    return len(text.encode("utf-16-le")) // 2


def format_moment(iso: str, timezone: str, language: str, *, short: bool = False) -> str:
    """An ISO date or date-time as a candidate reads it, in their time zone: `5 Dec 2026,
    18:00` / `2026年12月5日 18:00`; short (SMS): `5 Dec` / `12月5日`. A date stays a date."""
    if not iso:
        return ""
    try:
        moment = dt.datetime.fromisoformat(iso)
    except ValueError:
        return iso
    has_time = "T" in iso or " " in iso.strip()
    if has_time:
        try:
            zone = ZoneInfo(timezone or "UTC")
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            zone = ZoneInfo("UTC")
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        moment = moment.astimezone(zone)
    lang = _lang(language)
    month = _t(lang, f"date.month.{moment.month}")
    day = _t(lang, "date.day", month=month, day=moment.day)
    if short:
        return day
    out = _t(lang, "date.long", day=day, year=moment.year)
    if has_time and (moment.hour, moment.minute) != (0, 0):
        out = _t(lang, "date.time", date=out, time=f"{moment:%H:%M}")
    return out


def _fit(variants: list[str], values: dict[str, str]) -> str:
    """The first variant naming the employer that fits one SMS segment; else the first that
    fits with the name shortened (at least 8 characters of it kept); else the first that fits
    at all; else the barest (the last). A variant needing a value we lack ({by}, {start}) is
    skipped."""
    usable = [
        v for v in variants if all(values.get(n) for n in ("by", "start") if "{" + n + "}" in v)
    ] or variants[-1:]
    named = [v for v in usable if "{employer}" in v and values.get("employer")]
    for variant in named:
        full = variant.format_map(values)
        if utf16_length(full) <= SMS_MAX:
            return full
    for variant in named:
        room = SMS_MAX - utf16_length(variant.format_map({**values, "employer": ""}))
        if room >= 9:
            short = values["employer"]
            while utf16_length(short) > room - 1:
                short = short[:-1]
            return variant.format_map({**values, "employer": short.rstrip() + "…"})
    for variant in usable:
        full = variant.format_map(values)
        if utf16_length(full) <= SMS_MAX:
            return full
    return usable[-1].format_map(values)


def sms_values(lang: str, data: dict[str, str], link: str) -> dict[str, str]:
    """The values an SMS text carries; an approved provider template receives them as its
    parameters (`domain/sms.py`)."""
    return {
        "employer": data.get("employer", ""),
        "by": data.get("due_short", ""),
        "start": data.get("start_short", ""),
        "link": link,
        "outcome": outcome(lang, data.get("state", ""), ""),
        "code": data.get("code", ""),
    }


def sms_link(kind: str, links: dict[str, str]) -> str:
    """The one link an SMS carries: the check-in's reply page, or the message's action."""
    for key in ("reply", "sign", "upload"):
        if links.get(key):
            return links[key]
    return ""


def _sms(kind: str, lang: str, data: dict[str, str], link: str) -> str:
    values = sms_values(lang, data, link)
    return " ".join(_fit(i18n.variants(lang, f"notify.sms.{kind}"), values).split())


def _values(kind: str, lang: str, data: dict[str, str], links: dict[str, str]) -> dict[str, str]:
    values = {name: data.get(name, "") for name in COMMON_FIELDS + FIELDS.get(kind, ())}
    values["sign_link"] = links.get("sign", "")
    values["upload_link"] = links.get("upload", "")
    values["answers"] = "\n".join(
        f"{label}: {links.get('reply_' + key, '')}" for key, label in answers(lang).items()
    )
    values["outcome"] = outcome(lang, data.get("state", ""))
    return values


def compose(
    kind: str,
    language: str,
    data: dict[str, str],
    links: dict[str, str],
    override: Override | None = None,
    brand: Brand | None = None,
) -> Content:
    """What a touchpoint says. `data`: employer, position and the kind's fields, dates already
    formatted for the candidate (`due_at`, `due_short`, `start_at`, `start_short`); `links`:
    the (short) URLs by purpose (`sign`, `upload`, `reply_<answer>`, `reply`, `unsubscribe`)."""
    lang = _lang(language)

    def t(key: str, /, **params: object) -> str:
        return _t(lang, key, **params)

    brand = brand or Brand()
    employer = brand.display_name or data.get("employer", "")
    data = {**data, "employer": employer}
    position = data.get("position", "")
    due = data.get("due_at", "")
    facts: list[tuple[str, str]] = []
    if employer:
        facts.append((t("fact.employer"), employer))
    if position:
        facts.append((t("fact.position"), position))
    actions: list[Action] = []
    asked = ""
    heading: str
    paragraphs: list[str]
    if kind == INVITATION:
        subject, heading = t("invitation.subject"), t("invitation.heading")
        paragraphs = [t("invitation.paragraph", employer=employer, position=position)]
        asked = t("invitation.asked")
        actions.append(Action(t("invitation.action"), links.get("sign", "")))
    elif kind == CHECKIN:
        subject, heading = t("checkin.subject"), t("checkin.heading")
        paragraphs = [t("checkin.paragraph")]
        asked = t("checkin.asked")
        actions += [
            Action(label, links.get(f"reply_{key}", "")) for key, label in answers(lang).items()
        ]
    elif kind == MILESTONE_REQUEST:
        subject, heading = t("milestone_request.subject"), t("milestone_request.heading")
        milestone = data.get("milestone", "")
        what = i18n.texts(lang).get(f"notify.milestone.{milestone}", milestone)
        paragraphs = [t("milestone_request.paragraph", what=what)]
        asked = t("milestone_request.asked", what=what)
        actions.append(Action(t("milestone_request.action"), links.get("upload", "")))
    elif kind in (WEEKLY_UPDATE, WELCOME_PACKAGE):
        subject = heading = t(f"{kind}.subject")
        paragraphs = [t(f"{kind}.paragraph")]
    elif kind == AMENDMENT and data.get("stage") == "offered":
        subject = heading = t("amendment_offered.subject")
        start = data.get("start_at", "")
        paragraphs = [t("amendment_offered.paragraph", employer=employer, start=start)]
        asked = t("amendment_offered.asked")
        actions.append(Action(t("amendment_offered.action"), links.get("sign", "")))
    elif kind == AMENDMENT:
        subject, heading = t("amendment.subject"), t("amendment.heading")
        start = data.get("start_at", "")
        reason = data.get("reason") or t("amendment.no_reason")
        paragraphs = [t("amendment.paragraph", employer=employer, start=start, reason=reason)]
        asked = t("amendment.asked")
        facts.append((t("amendment.new_start"), start))
        actions.append(Action(t("amendment.action"), links.get("sign", "")))
    elif kind == CODE:
        subject = heading = t("code.subject", code=data.get("code", ""))
        paragraphs = [t("code.paragraph", employer=employer)]
    elif kind == SIGNER_BOUND:
        done = "changed" if data.get("replaced") else "set"
        what = t(
            "signer_bound.passkey"
            if data.get("signer_kind") == "passkey"
            else "signer_bound.wallet"
        )
        subject = heading = t(f"signer_bound.subject_{done}")
        when = data.get("bound_at", "")
        paragraphs = [t(f"signer_bound.paragraph_{done}", when=when, what=what, employer=employer)]
    elif kind == CLOSING:
        subject = heading = t("closing.subject")
        paragraphs = [outcome(lang, data.get("state", ""))]
    else:
        raise ValueError(f"unknown touchpoint kind {kind!r}")
    if asked:
        facts.append((t("fact.asked"), asked))
    if due and asked:
        facts.append((t("fact.due"), due))
    if override is not None:
        values = _values(kind, lang, data, links)
        subject = override.subject.format_map(values)
        paragraphs = override_paragraphs(override.text, values)
    footer = [t("footer.sent_by", employer=employer)]
    if brand.reply_to:
        footer.append(t("footer.reply"))
    unsubscribe = None
    if "unsubscribe" in links:  # RFC 8058 mail always says how to stop it
        unsubscribe = Action(t("unsubscribe"), links["unsubscribe"])
    if override is not None:  # the tenant's own words, with their links, as written
        text = override_text(override, _values(kind, lang, data, links))
        if unsubscribe is not None:
            text += f"\n\n{unsubscribe.label}{t('colon')}{unsubscribe.url}"
        text += "\n"
    else:
        text = _plain_text(lang, heading, paragraphs, facts, actions, footer, unsubscribe)
    sms_link = links.get("reply") or next((a.url for a in actions if a.url), "")
    return Content(
        language=lang,
        subject=" ".join(subject.split()),
        heading=heading,
        paragraphs=paragraphs,
        facts=facts,
        actions=[a for a in actions if a.url],
        text=text,
        sms=_sms(kind, lang, data, sms_link),
        footer=footer,
        unsubscribe=unsubscribe,
        employer=employer,
    )


def _plain_text(
    lang: str,
    heading: str,
    paragraphs: list[str],
    facts: list[tuple[str, str]],
    actions: list[Action],
    footer: list[str],
    unsubscribe: Action | None,
) -> str:
    """A text that reads well on its own: heading, what it is about, the facts, each action
    on its own line with its (short) link, and who sent it."""
    colon = _t(lang, "colon")
    blocks = [heading, *paragraphs]
    if facts:
        blocks.append("\n".join(f"{label}{colon}{value}" for label, value in facts))
    for action in actions:
        if action.url:
            blocks.append(f"{action.label}{colon}{action.url}")
    blocks += footer
    if unsubscribe is not None:
        blocks.append(f"{unsubscribe.label}{colon}{unsubscribe.url}")
    return "\n\n".join(b for b in blocks if b.strip()) + "\n"

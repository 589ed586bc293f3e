"""What each touchpoint says, in Simplified Chinese and English: its subject, its plain text,
the facts a candidate checks first (employer, position, what is asked, by when), one action per
purpose (a button in the HTML part, `layout.py`), and an SMS-sized text (at most 70 characters,
one UCS-2 segment, short link included). A tenant may override the subject and text of any kind
and language (`Override`); the layout, facts and buttons stay, and its text is only ever
escaped, so a tenant's template cannot inject markup."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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

ANSWERS = {
    "en": {
        "on_track": "On track",
        "delayed": "Delayed (new date)",
        "need_help": "I need help",
        "withdrawing": "I am withdrawing",
    },
    "zh-CN": {
        "on_track": "进展顺利",
        "delayed": "有延迟（新日期）",
        "need_help": "我需要帮助",
        "withdrawing": "我决定放弃入职",
    },
}
CLOSINGS = {
    "en": {
        "fulfilled": "Welcome aboard: your start is confirmed.",
        "breached": "The agreement ended in a breach by the candidate.",
        "employer_breached": "The employer withdrew the offer; the agreed damages are owed to you.",
        "cancelled": "The agreement was cancelled.",
        "expired": "The offer expired without being signed.",
    },
    "zh-CN": {
        "fulfilled": "欢迎加入，您的入职已确认。",
        "breached": "本意向书因候选人违约而终止。",
        "employer_breached": "用人单位已撤回录用，约定的违约金应支付给您。",
        "cancelled": "本意向书已解除。",
        "expired": "录用意向已过期未签署。",
    },
}


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str
    sms: str = ""


MILESTONES = {
    "en": {
        "expected_resignation_date": "your expected resignation date",
        "resignation_submitted": "your submitted resignation (a copy of the letter)",
        "resignation_accepted": "your employer's acceptance of your resignation (stamped copy)",
        "handover_started": "proof that your handover has started",
        "handover_halfway": "proof that your handover is halfway",
        "last_working_day_fixed": "the confirmation of your last working day",
        "social_insurance_stop": "the confirmation that your social insurance was stopped",
    },
    "zh-CN": {
        "expected_resignation_date": "预计离职日期",
        "resignation_submitted": "已提交的离职申请（申请书副本）",
        "resignation_accepted": "原单位同意离职的证明（盖章件）",
        "handover_started": "工作交接已开始的证明",
        "handover_halfway": "工作交接已过半的证明",
        "last_working_day_fixed": "最后工作日的确认",
        "social_insurance_stop": "社保停缴证明",
    },
}
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
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
    if language == "zh-CN":
        day = f"{moment.month}月{moment.day}日"
        if short:
            return day
        out = f"{moment.year}年{day}"
    else:
        day = f"{moment.day} {MONTHS[moment.month - 1]}"
        if short:
            return day
        out = f"{day} {moment.year}"
    if has_time and (moment.hour, moment.minute) != (0, 0):
        out += f"{'' if language == 'zh-CN' else ','} {moment:%H:%M}"
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


SMS_TEXTS: dict[str, dict[str, list[str]]] = {
    INVITATION: {
        "zh-CN": [
            "【{employer}】请在{by}前阅读并签署入职意向书：{link}",
            "【{employer}】请阅读并签署入职意向书：{link}",
            "请阅读并签署入职意向书：{link}",
        ],
        "en": [
            "{employer}: please read and sign your intent agreement by {by}: {link}",
            "{employer}: please sign your agreement by {by}: {link}",
            "{employer}: please sign your agreement: {link}",
            "Please sign your agreement: {link}",
            "Sign: {link}",
        ],
    },
    CHECKIN: {
        "zh-CN": [
            "【{employer}】离职进展如何？请点选一项回答：{link}",
            "离职进展如何？请回答：{link}",
        ],
        "en": [
            "{employer}: how is your resignation going? Tap to answer: {link}",
            "{employer}: how is your resignation going? {link}",
            "How is your resignation going? {link}",
            "Check-in: {link}",
        ],
    },
    MILESTONE_REQUEST: {
        "zh-CN": [
            "【{employer}】请在{by}前上传离职进展材料：{link}",
            "【{employer}】请上传离职进展材料：{link}",
            "请上传离职进展材料：{link}",
        ],
        "en": [
            "{employer}: please upload your resignation document by {by}: {link}",
            "{employer}: please upload your document by {by}: {link}",
            "{employer}: please upload your document: {link}",
            "Please upload your document: {link}",
            "Upload: {link}",
        ],
    },
    AMENDMENT: {
        "zh-CN": [
            "【{employer}】入职日期拟改为{start}，请阅读并签署：{link}",
            "【{employer}】入职日期变更，请阅读并签署：{link}",
            "入职日期变更，请签署：{link}",
        ],
        "en": [
            "{employer}: new start date {start}. Please read and sign: {link}",
            "{employer}: new dates. Please read and sign: {link}",
            "New dates for your agreement: {link}",
            "New dates: {link}",
        ],
    },
    WEEKLY_UPDATE: {
        "zh-CN": [
            "【{employer}】本周公司动态已发送到您的邮箱。{link}",
            "本周公司动态已发到邮箱。{link}",
        ],
        "en": [
            "{employer}: this week's update is in your e-mail. {link}",
            "This week's update is in your e-mail. {link}",
        ],
    },
    WELCOME_PACKAGE: {
        "zh-CN": [
            "【{employer}】您的入职准备资料已发送到您的邮箱。{link}",
            "入职准备资料已发到邮箱。{link}",
        ],
        "en": [
            "{employer}: your welcome package is in your e-mail. {link}",
            "Your welcome package is in your e-mail. {link}",
        ],
    },
}
SMS_TEXTS[CODE] = {
    "zh-CN": [
        "【{employer}】您的验证码：{code}，10分钟内有效。如非本人操作请忽略。",
        "您的验证码：{code}，10分钟内有效。如非本人操作请忽略。",
    ],
    "en": [
        "{employer}: your code is {code}. Valid 10 minutes. Not you? Ignore this.",
        "Your code is {code}. Valid for 10 minutes. Not you? Ignore this.",
    ],
}
SMS_TEXTS[SIGNER_BOUND] = {
    "zh-CN": [
        "【{employer}】您的入职意向书已设置签署密钥。如非本人操作，请立即联系人事。",
        "您的入职意向书已设置签署密钥。如非本人操作，请立即联系人事。",
    ],
    "en": [
        "{employer}: a signing key was set for your agreement. Not you? Contact HR now.",
        "A signing key was set for your agreement. Not you? Contact HR now.",
    ],
}
CLOSING_SMS = {
    "zh-CN": ["【{employer}】{outcome}{link}", "{outcome}{link}", "入职意向书状态已更新。{link}"],
    "en": ["{employer}: {outcome} {link}", "{outcome} {link}", "Your agreement changed. {link}"],
}


def sms_values(lang: str, data: dict[str, str], link: str) -> dict[str, str]:
    """The values an SMS text carries; an approved provider template receives them as its
    parameters (`domain/sms.py`)."""
    return {
        "employer": data.get("employer", ""),
        "by": data.get("due_short", ""),
        "start": data.get("start_short", ""),
        "link": link,
        "outcome": CLOSINGS[lang].get(data.get("state", ""), ""),
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
    variants = CLOSING_SMS[lang] if kind == CLOSING else SMS_TEXTS[kind][lang]
    return " ".join(_fit(variants, values).split())


def _values(kind: str, lang: str, data: dict[str, str], links: dict[str, str]) -> dict[str, str]:
    values = {name: data.get(name, "") for name in COMMON_FIELDS + FIELDS.get(kind, ())}
    values["sign_link"] = links.get("sign", "")
    values["upload_link"] = links.get("upload", "")
    values["answers"] = "\n".join(
        f"{label}: {links.get('reply_' + key, '')}" for key, label in ANSWERS[lang].items()
    )
    values["outcome"] = CLOSINGS[lang].get(data.get("state", ""), data.get("state", ""))
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
    zh = language == "zh-CN"
    lang = "zh-CN" if zh else "en"
    brand = brand or Brand()
    employer = brand.display_name or data.get("employer", "")
    data = {**data, "employer": employer}
    position = data.get("position", "")
    due = data.get("due_at", "")
    facts: list[tuple[str, str]] = []
    if employer:
        facts.append(("用人单位" if zh else "Employer", employer))
    if position:
        facts.append(("职位" if zh else "Position", position))
    actions: list[Action] = []
    asked = ""
    heading: str
    paragraphs: list[str]
    if kind == INVITATION:
        subject = "请阅读并签署入职意向书" if zh else "Please read and sign your intent agreement"
        heading = (
            "请阅读并签署您的入职意向书" if zh else "Please read and sign your intent agreement"
        )
        paragraphs = [
            f"您好，{employer}为您准备了{position}职位的入职意向书。请阅读全部条款后再签署。"
            if zh
            else f"Hello, {employer} has prepared your intent agreement for the position of "
            f"{position}. Please read all of the terms before you sign."
        ]
        asked = "阅读条款并签署" if zh else "Read the terms and sign"
        actions.append(Action("阅读并签署" if zh else "Read and sign", links.get("sign", "")))
    elif kind == CHECKIN:
        subject = "离职进展确认" if zh else "How is your resignation going?"
        heading = "您的离职进展如何？" if zh else "How is your resignation going?"
        paragraphs = [
            "请点选最符合您情况的一项，只需一次点击。如有延迟，我们会和您一起商量新的日期。"
            if zh
            else "Choose the answer that fits best; it takes one tap. If things are delayed, "
            "we will agree new dates with you."
        ]
        asked = "回答一个问题" if zh else "Answer one question"
        actions += [
            Action(label, links.get(f"reply_{key}", "")) for key, label in ANSWERS[lang].items()
        ]
    elif kind == MILESTONE_REQUEST:
        subject = "请提交离职进展材料" if zh else "Please send your resignation evidence"
        heading = "请上传离职进展材料" if zh else "Please upload a document"
        what = MILESTONES[lang].get(data.get("milestone", ""), data.get("milestone", ""))
        paragraphs = [
            f"请上传：{what}。拍照或扫描件均可。"
            if zh
            else f"Please upload {what}. A photo or a scan is fine."
        ]
        asked = f"上传{what}" if zh else f"Upload {what}"
        actions.append(Action("上传材料" if zh else "Upload the document", links.get("upload", "")))
    elif kind == WEEKLY_UPDATE:
        subject = "本周公司动态" if zh else "This week at your new company"
        heading = subject
        paragraphs = [
            "这是您入职前的每周公司动态。"
            if zh
            else "Here is this week's update while you wait for your first day."
        ]
    elif kind == WELCOME_PACKAGE:
        subject = "入职准备资料" if zh else "Your welcome package"
        heading = subject
        paragraphs = [
            "您的入职准备资料（团队介绍视频、学习资料）已准备好。"
            if zh
            else "Your preparation package (team video, learning material) is ready."
        ]
    elif kind == AMENDMENT and data.get("stage") == "offered":
        subject = "录用条款日期已更新，请重新阅读" if zh else "The dates of your offer changed"
        heading = subject
        paragraphs = [
            f"{employer}更新了录用意向的日期：入职日期 {data.get('start_at', '')}。"
            "签署前请重新阅读条款。"
            if zh
            else f"{employer} changed the dates of your offer: start {data.get('start_at', '')}. "
            "Please read the terms again before you sign."
        ]
        asked = "重新阅读条款并签署" if zh else "Read the terms again and sign"
        actions.append(Action("阅读并签署" if zh else "Read and sign", links.get("sign", "")))
    elif kind == AMENDMENT:
        subject = (
            "入职意向书日期变更，请确认" if zh else "New dates for your agreement: please sign"
        )
        heading = "入职日期变更，请确认" if zh else "New dates: please read and sign"
        paragraphs = [
            f"{employer}提议将入职日期调整为 {data.get('start_at', '')}"
            f"（原因：{data.get('reason') or '未说明'}）。签署前原条款继续有效。"
            if zh
            else f"{employer} proposes to move your start date to {data.get('start_at', '')} "
            f"(reason: {data.get('reason') or 'not given'}). Until you sign, the current "
            "terms apply."
        ]
        asked = "阅读变更后的条款并签署" if zh else "Read the amended terms and sign"
        facts.append(("新入职日期" if zh else "New start date", data.get("start_at", "")))
        actions.append(
            Action("阅读并签署变更" if zh else "Read and sign the new dates", links.get("sign", ""))
        )
    elif kind == CODE:
        code = data.get("code", "")
        subject = f"您的验证码：{code}" if zh else f"Your code: {code}"
        heading = f"您的验证码：{code}" if zh else f"Your code: {code}"
        paragraphs = [
            f"您在与{employer}的入职意向书页面请求了验证码，10 分钟内有效。"
            "如果不是您本人操作，请忽略此邮件。"
            if zh
            else f"You asked for this code on the page of your agreement with {employer}. "
            "It is valid for 10 minutes. If you did not ask for it, ignore this message."
        ]
    elif kind == SIGNER_BOUND:
        replaced = bool(data.get("replaced"))
        what = (
            ("通行密钥" if zh else "passkey")
            if data.get("signer_kind") == "passkey"
            else ("钱包" if zh else "wallet")
        )
        if zh:
            subject = "您的签署密钥已更换" if replaced else "您的签署密钥已设置"
        else:
            subject = "Your signing key was changed" if replaced else "Your signing key was set"
        heading = subject
        when = data.get("bound_at", "")
        paragraphs = [
            f"{when}，一个{what}被设置为您与{employer}的入职意向书的签署密钥。"
            + ("它替换了之前的密钥；更换后 24 小时内无法用它签署。" if replaced else "")
            + "如果不是您本人操作，请立即联系{employer}人事，不要签署任何内容。".replace(
                "{employer}", employer
            )
            if zh
            else f"At {when} a {what} was set as the key that signs your intent agreement with "
            f"{employer}."
            + (
                " It replaces the key set before; nothing can be signed with it for 24 hours."
                if replaced
                else ""
            )
            + f" If this was not you, contact {employer}'s HR team now and do not sign anything."
        ]
    elif kind == CLOSING:
        subject = "入职意向书状态通知" if zh else "About your intent agreement"
        heading = subject
        paragraphs = [CLOSINGS[lang].get(data.get("state", ""), data.get("state", ""))]
    else:
        raise ValueError(f"unknown touchpoint kind {kind!r}")
    if asked:
        facts.append(("需要您" if zh else "What we ask", asked))
    if due and asked:
        facts.append(("截止时间" if zh else "By", due))
    if override is not None:
        values = _values(kind, lang, data, links)
        subject = override.subject.format_map(values)
        paragraphs = override_paragraphs(override.text, values)
    footer = [
        (
            f"本邮件由 OfferSeal 代{employer}发送。OfferSeal 不会向您索要密码或钱包助记词。"
            if zh
            else f"Sent by OfferSeal for {employer}. OfferSeal never asks for a password or "
            "your wallet's recovery phrase."
        )
    ]
    if brand.reply_to:
        footer.append(
            "有疑问请直接回复本邮件，人力资源部会收到。"
            if zh
            else "Questions? Reply to this e-mail: it reaches the HR team."
        )
    unsubscribe = None
    if "unsubscribe" in links:  # RFC 8058 mail always says how to stop it
        unsubscribe = Action(
            "退订非必要邮件" if zh else "Stop non-essential mail", links["unsubscribe"]
        )
    if override is not None:  # the tenant's own words, with their links, as written
        text = override_text(override, _values(kind, lang, data, links))
        if unsubscribe is not None:
            text += f"\n\n{unsubscribe.label}{'：' if zh else ': '}{unsubscribe.url}"
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
    colon = "：" if lang == "zh-CN" else ": "
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

"""Touchpoint texts in Simplified Chinese and English: subject, plain text and HTML. A tenant
may override the subject and text of any kind and language (`Override`); the HTML part is always
generated from the text, escaped, so a tenant's template cannot inject markup."""

from __future__ import annotations

import html
import re
import string
from dataclasses import dataclass

from .schedule import (
    AMENDMENT,
    CHECKIN,
    CLOSING,
    CODE,
    INVITATION,
    MILESTONE_REQUEST,
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


LANGUAGES = ("zh-CN", "en")
# What a tenant's template may use, per kind ({name}; {{ and }} for literal braces). The
# required ones carry the touchpoint's purpose: a template without them is refused.
COMMON_FIELDS = ("employer", "position")
FIELDS: dict[str, tuple[str, ...]] = {
    INVITATION: ("sign_link",),
    CHECKIN: ("answers",),
    MILESTONE_REQUEST: ("milestone", "due_at", "upload_link"),
    WEEKLY_UPDATE: (),
    WELCOME_PACKAGE: (),
    CLOSING: ("outcome", "state"),
    AMENDMENT: ("sign_link", "start_at", "reason"),
    CODE: ("code",),
}
REQUIRED: dict[str, tuple[str, ...]] = {
    INVITATION: ("sign_link",),
    CHECKIN: ("answers",),
    MILESTONE_REQUEST: ("upload_link",),
    WEEKLY_UPDATE: (),
    WELCOME_PACKAGE: (),
    CLOSING: ("outcome",),
    AMENDMENT: ("sign_link",),
    CODE: ("code",),
}
SUBJECT_MAX, TEXT_MAX = 200, 10_000
SAMPLE = {
    "employer": "Acme",
    "position": "Engineer",
    "milestone": "stamped_resignation",
    "due_at": "2027-01-15T00:00:00+00:00",
    "state": "fulfilled",
    "start_at": "2027-02-01",
    "reason": "the current employer asked for a longer handover",
    "code": "123456",
}


@dataclass(frozen=True)
class Override:
    """A tenant's subject and text for one kind and language."""

    subject: str
    text: str


class TemplateError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _placeholders(template: str, field: str) -> set[str]:
    try:
        parsed = [(n, spec, conv) for _, n, spec, conv in string.Formatter().parse(template)]
    except ValueError as exc:
        raise TemplateError(field, f"not a valid template: {exc}") from None
    if any(spec or conv for n, spec, conv in parsed if n is not None):
        # "{employer:>999999999}" would make a gigabyte string: plain names only.
        raise TemplateError(field, "placeholders are plain names such as {employer}")
    return {n for n, _, _ in parsed if n is not None}


def validate(kind: str, language: str, override: Override) -> None:
    """Refuse a template that could not be rendered, or would lose the touchpoint's purpose."""
    if kind not in FIELDS:
        raise TemplateError("kind", f"one of {', '.join(FIELDS)}")
    if language not in LANGUAGES:
        raise TemplateError("language", f"one of {', '.join(LANGUAGES)}")
    if not override.subject.strip() or "\n" in override.subject or "\r" in override.subject:
        raise TemplateError("subject", "one non-empty line")
    if len(override.subject) > SUBJECT_MAX:
        raise TemplateError("subject", f"at most {SUBJECT_MAX} characters")
    if not override.text.strip() or len(override.text) > TEXT_MAX:
        raise TemplateError("text", f"1 to {TEXT_MAX} characters")
    allowed = set(COMMON_FIELDS) | set(FIELDS[kind])
    for field, template in (("subject", override.subject), ("text", override.text)):
        names = _placeholders(template, field)
        unknown = sorted(n for n in names if n not in allowed)
        if unknown:
            raise TemplateError(
                field,
                f"unknown placeholder(s) {', '.join('{' + n + '}' for n in unknown)}; "
                f"{kind} may use {', '.join('{' + n + '}' for n in sorted(allowed))}",
            )
        if field == "subject" and names & {"answers", "sign_link", "upload_link"}:
            raise TemplateError(field, "links belong in the text, not the subject")
    missing = [n for n in REQUIRED[kind] if n not in _placeholders(override.text, "text")]
    if missing:
        raise TemplateError(
            "text", f"must contain {', '.join('{' + n + '}' for n in missing)} (the {kind}'s link)"
        )


def _values(kind: str, lang: str, data: dict[str, str], links: dict[str, str]) -> dict[str, str]:
    values = {name: data.get(name, "") for name in COMMON_FIELDS + FIELDS.get(kind, ())}
    values["sign_link"] = links.get("sign", "")
    values["upload_link"] = links.get("upload", "")
    values["answers"] = "\n".join(
        f"{label}: {links.get('reply_' + key, '')}" for key, label in ANSWERS[lang].items()
    )
    values["outcome"] = CLOSINGS[lang].get(data.get("state", ""), data.get("state", ""))
    return values


def render(
    kind: str,
    language: str,
    data: dict[str, str],
    links: dict[str, str],
    override: Override | None = None,
) -> Rendered:
    zh = language == "zh-CN"
    lang = "zh-CN" if zh else "en"
    if override is not None:
        values = _values(kind, lang, data, links)
        paragraphs = override.text.format_map(values).strip().split("\n\n")
        if "unsubscribe" in links:  # RFC 8058 mail always says how to stop it
            paragraphs.append(
                ("退订非必要邮件：" if zh else "Stop non-essential mail:")
                + " "
                + links["unsubscribe"]
            )
        return _assemble(override.subject.format_map(values), paragraphs, lang)
    lines: list[str]
    if kind == INVITATION:
        subject = "请阅读并签署入职意向书" if zh else "Please read and sign your intent agreement"
        lines = [
            (
                "您好，{employer}为您准备了{position}职位的入职意向书。"
                if zh
                else "Hello, {employer} has prepared your intent agreement for the position of "
                "{position}."
            ).format(**data),
            ("阅读条款并签署：" if zh else "Read the terms and sign:") + " " + links["sign"],
        ]
    elif kind == CHECKIN:
        subject = "离职进展确认" if zh else "How is your resignation going?"
        lines = ["请告诉我们您的离职进展：" if zh else "Please tell us how things are going:"]
        lines += [f"{label}: {links['reply_' + key]}" for key, label in ANSWERS[lang].items()]
    elif kind == MILESTONE_REQUEST:
        subject = "请提交离职进展材料" if zh else "Please send your resignation evidence"
        lines = [
            (
                f"请在 {data.get('due_at', '')} 前上传：{data.get('milestone', '')}"
                if zh
                else f"Please upload by {data.get('due_at', '')}: {data.get('milestone', '')}"
            ),
            ("上传链接：" if zh else "Upload link:") + " " + links.get("upload", ""),
        ]
    elif kind == WEEKLY_UPDATE:
        subject = "本周公司动态" if zh else "This week at your new company"
        lines = [
            "这是您入职前的每周公司动态。"
            if zh
            else "Here is this week's update while you wait for your first day."
        ]
    elif kind == WELCOME_PACKAGE:
        subject = "入职准备资料" if zh else "Your welcome package"
        lines = [
            "您的入职准备资料（团队介绍视频、学习资料）已准备好。"
            if zh
            else "Your preparation package (team video, learning material) is ready."
        ]
    elif kind == AMENDMENT and data.get("stage") == "offered":
        subject = "录用条款日期已更新，请重新阅读" if zh else "The dates of your offer changed"
        lines = [
            (
                f"{data.get('employer', '')}更新了录用意向的日期："
                f"入职日期 {data.get('start_at', '')}。"
                if zh
                else f"{data.get('employer', '')} changed the dates of your offer: start "
                f"{data.get('start_at', '')}."
            ),
            ("签署前请重新阅读条款：" if zh else "Please read the terms again before you sign:")
            + " "
            + links["sign"],
        ]
    elif kind == AMENDMENT:
        subject = (
            "入职意向书日期变更，请确认" if zh else "New dates for your agreement: please sign"
        )
        lines = [
            (
                f"{data.get('employer', '')}提议将入职日期调整为 {data.get('start_at', '')}"
                f"（原因：{data.get('reason') or '未说明'}）。"
                if zh
                else f"{data.get('employer', '')} proposes to move your start date to "
                f"{data.get('start_at', '')} (reason: {data.get('reason') or 'not given'})."
            ),
            (
                "阅读变更后的条款并签署（签署前原条款继续有效）："
                if zh
                else "Read the amended terms and sign (until you do, the current terms apply):"
            )
            + " "
            + links["sign"],
        ]
    elif kind == CODE:
        subject = (
            f"您的验证码：{data.get('code', '')}" if zh else f"Your code: {data.get('code', '')}"
        )
        lines = [
            (
                f"您在{data.get('employer', '')}的入职意向书页面请求了验证码："
                f"{data.get('code', '')}。10 分钟内有效。"
                if zh
                else f"You asked for a code on the page of your agreement with "
                f"{data.get('employer', '')}: {data.get('code', '')}. It is valid for 10 minutes."
            ),
            "如果不是您本人操作，请忽略此邮件。"
            if zh
            else "If you did not ask for it, ignore this message.",
        ]
    elif kind == CLOSING:
        subject = "入职意向书状态通知" if zh else "About your intent agreement"
        lines = [CLOSINGS[lang].get(data.get("state", ""), data.get("state", ""))]
    else:
        raise ValueError(f"unknown touchpoint kind {kind!r}")
    if "unsubscribe" in links:
        lines.append(
            ("退订非必要邮件：" if zh else "Stop non-essential mail:") + " " + links["unsubscribe"]
        )
    return _assemble(subject, lines, lang)


def _assemble(subject: str, paragraphs: list[str], lang: str) -> Rendered:
    text = "\n\n".join(paragraphs) + "\n"
    body = "".join(f"<p>{_linkify(p)}</p>" for p in paragraphs)
    return Rendered(subject, text, f'<!doctype html><html lang="{lang}"><body>{body}</body></html>')


_URL = re.compile(r"https?://[^\s<>\"']+")


def _linkify(paragraph: str) -> str:
    """Escaped text with its URLs as links and its line breaks kept."""
    out, at = [], 0
    for match in _URL.finditer(paragraph):
        out.append(html.escape(paragraph[at : match.start()]))
        url = html.escape(match.group(0))
        out.append(f'<a href="{url}">{url}</a>')
        at = match.end()
    out.append(html.escape(paragraph[at:]))
    return "".join(out).replace("\n", "<br>")

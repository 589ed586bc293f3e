"""Touchpoint texts in Simplified Chinese and English: subject, plain text and HTML."""

from __future__ import annotations

import html
from dataclasses import dataclass

from .schedule import (
    CHECKIN,
    CLOSING,
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


def render(kind: str, language: str, data: dict[str, str], links: dict[str, str]) -> Rendered:
    zh = language == "zh-CN"
    lang = "zh-CN" if zh else "en"
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
    elif kind == CLOSING:
        subject = "入职意向书状态通知" if zh else "About your intent agreement"
        lines = [CLOSINGS[lang].get(data.get("state", ""), data.get("state", ""))]
    else:
        raise ValueError(f"unknown touchpoint kind {kind!r}")
    if "unsubscribe" in links:
        lines.append(
            ("退订非必要邮件：" if zh else "Stop non-essential mail:") + " " + links["unsubscribe"]
        )
    text = "\n\n".join(lines) + "\n"
    body = "".join(f"<p>{_linkify(line)}</p>" for line in lines)
    return Rendered(subject, text, f'<!doctype html><html lang="{lang}"><body>{body}</body></html>')


def _linkify(line: str) -> str:
    head, sep, url = line.rpartition(" ")
    if sep and url.startswith(("http://", "https://")):
        return f'{html.escape(head)} <a href="{html.escape(url)}">{html.escape(url)}</a>'
    return html.escape(line)

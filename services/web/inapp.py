"""In-app browsers (WeChat, WeCom, DingTalk, Feishu, QQ, Alipay, Weibo): recognised by their user
agent, so that the portal says before the candidate starts what works there. Reading the text
and answering a check-in work everywhere; a passkey may not (their web views often lack WebAuthn
or tie it to the app), so the page offers the phone's own browser, the link to copy and a QR
code to continue on another device."""

from __future__ import annotations

import re

import segno

# In order: WeCom's user agent also names MicroMessenger; QQ's browser (MQQBrowser) is a real
# browser and is not matched, QQ's in-app view says "QQ/<version>".
APPS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("wecom", re.compile(r"wxwork/", re.I)),
    ("wechat", re.compile(r"MicroMessenger/", re.I)),
    ("dingtalk", re.compile(r"DingTalk", re.I)),
    ("feishu", re.compile(r"\bLark/|Feishu", re.I)),
    ("alipay", re.compile(r"AlipayClient", re.I)),
    ("weibo", re.compile(r"__weibo__|\bWeibo\b", re.I)),
    ("qq", re.compile(r"(?<![A-Za-z])QQ/\d")),
)


def detect(user_agent: str) -> str | None:
    """The app whose in-app browser this is (`wechat`, `wecom`, ...), or None."""
    for name, pattern in APPS:
        if pattern.search(user_agent or ""):
            return name
    return None


def qr_svg(url: str) -> str:
    """The page's address as an inline SVG QR code (no style attributes: the pages' CSP)."""
    return str(segno.make(url, error="m").svg_inline(scale=4, border=2, light="#fff"))

"""Group-chat robots: DingTalk and Feishu custom robots (signed) and WeCom group robots, each
posting one markdown message, their answers classified once (accepted, throttled, refused,
unavailable).

Signatures, as the platforms document them:
- DingTalk: `timestamp` in milliseconds; sign = Base64(HMAC-SHA256(key=secret,
  msg=timestamp + "\\n" + secret)), URL-encoded; both as query parameters of the webhook.
- Feishu: `timestamp` in seconds; sign = Base64(HMAC-SHA256(key=timestamp + "\\n" + secret,
  msg="")); both in the JSON body.
- WeCom: no signature; the webhook's `key` is the credential.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Literal

import requests

from ..domain import alerts as rules

Outcome = Literal["accepted", "throttled", "refused", "unavailable"]


@dataclass(frozen=True)
class ChatAnswer:
    outcome: Outcome
    code: str
    message: str
    raw: dict[str, Any] = field(default_factory=dict)


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    to_sign = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), to_sign, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def feishu_sign(secret: str, timestamp_s: int) -> str:
    key = f"{timestamp_s}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


# The platforms' "too fast" answers: DingTalk 130101 (send too fast, throttled 10 minutes);
# WeCom 45009 (api freq out of limit); Feishu 11232 (frequency limited).
THROTTLED = {rules.DINGTALK: {"130101"}, rules.WECOM: {"45009"}, rules.FEISHU: {"11232"}}


class ChatRobot:
    def __init__(self, platform: str, url: str, secret: str = "", timeout: float = 10.0):
        self.platform = platform
        self.url = url
        self.secret = secret
        self.timeout = timeout

    def _request(self, title: str, markdown: str) -> tuple[str, dict[str, Any]]:
        if self.platform == rules.DINGTALK:
            url = self.url
            if self.secret:
                stamp = int(time.time() * 1000)
                sign = urllib.parse.quote_plus(dingtalk_sign(self.secret, stamp))
                url += ("&" if "?" in url else "?") + f"timestamp={stamp}&sign={sign}"
            body: dict[str, Any] = {
                "msgtype": "markdown",
                "markdown": {"title": title, "text": markdown},
            }
            return url, body
        if self.platform == rules.WECOM:
            return self.url, {"msgtype": "markdown", "markdown": {"content": markdown}}
        body = {
            "msg_type": "interactive",
            "card": {
                "header": {"title": {"tag": "plain_text", "content": title}},
                "elements": [{"tag": "markdown", "content": markdown}],
            },
        }
        if self.secret:
            stamp = int(time.time())
            body = {"timestamp": str(stamp), "sign": feishu_sign(self.secret, stamp), **body}
        return self.url, body

    def post(self, title: str, markdown: str) -> ChatAnswer:
        url, body = self._request(title, markdown)
        try:
            answer = requests.post(url, json=body, timeout=self.timeout)
        except requests.RequestException as exc:
            return ChatAnswer("unavailable", type(exc).__name__, "robot unreachable")
        if answer.status_code == 429:
            return ChatAnswer("throttled", "429", "HTTP 429")
        if answer.status_code >= 500:
            return ChatAnswer("unavailable", str(answer.status_code), "server error")
        try:
            raw = answer.json()
        except ValueError:
            return ChatAnswer("unavailable", str(answer.status_code), "not a JSON answer")
        if not isinstance(raw, dict):
            return ChatAnswer("unavailable", str(answer.status_code), "not a JSON object")
        code = str(raw.get("errcode", raw.get("code", raw.get("StatusCode", ""))))
        message = str(raw.get("errmsg", raw.get("msg", "")))[:300]
        if code == "0" and answer.status_code < 400:
            return ChatAnswer("accepted", code, message, raw)
        if code in THROTTLED[self.platform]:
            return ChatAnswer("throttled", code, message, raw)
        return ChatAnswer("refused", code, message, raw)

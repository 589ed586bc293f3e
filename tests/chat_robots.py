"""A local stand-in for DingTalk's, WeCom's and Feishu's group robots on 127.0.0.1, for tests.

It checks each request as the platform documents it, written independently of the code under
test: DingTalk's `timestamp` (ms, within an hour) and `sign` = Base64(HMAC-SHA256(secret,
timestamp + "\\n" + secret)) in the query; Feishu's `timestamp` (s, within an hour) and `sign` =
Base64(HMAC-SHA256(key = timestamp + "\\n" + secret, empty message)) in the body; WeCom's key.
It answers as the platforms do, including their "too fast" codes (DingTalk 130101, WeCom 45009,
Feishu 11232) when scripted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.server
import json
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

TOKEN = "dt-access-token-0123456789"
DING_SECRET = "SEC0123456789abcdef0123456789abcdef"
WECOM_KEY = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"
FEISHU_HOOK = "5e3d587e-d78e-4a07-bd07-265f269f86fd"
FEISHU_SECRET = "nIMtb7r3N9pkXyXdtAbx6e"


@dataclass
class Robots:
    url: str = ""
    posts: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {"dingtalk": [], "wecom": [], "feishu": []}
    )
    script: dict[str, list[str]] = field(
        default_factory=lambda: {"dingtalk": [], "wecom": [], "feishu": []}
    )
    bad: dict[str, int] = field(default_factory=lambda: {"dingtalk": 0, "wecom": 0, "feishu": 0})
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def netloc(self) -> str:
        return self.url.removeprefix("http://")

    def urls(self) -> dict[str, str]:
        return {
            "dingtalk": f"{self.url}/robot/send?access_token={TOKEN}",
            "wecom": f"{self.url}/cgi-bin/webhook/send?key={WECOM_KEY}",
            "feishu": f"{self.url}/open-apis/bot/v2/hook/{FEISHU_HOOK}",
        }

    def texts(self, platform: str) -> list[str]:
        with self.lock:
            posts = list(self.posts[platform])
        if platform == "dingtalk":
            return [p["markdown"]["text"] for p in posts]
        if platform == "wecom":
            return [p["markdown"]["content"] for p in posts]
        return [p["card"]["elements"][0]["content"] for p in posts]


def _dingtalk_ok(query: dict[str, str]) -> bool:
    stamp = query.get("timestamp", "")
    if query.get("access_token") != TOKEN or not stamp.isdigit():
        return False
    if abs(time.time() * 1000 - int(stamp)) > 3600 * 1000:
        return False
    mac = hmac.new(DING_SECRET.encode(), f"{stamp}\n{DING_SECRET}".encode(), hashlib.sha256)
    return hmac.compare_digest(base64.b64encode(mac.digest()).decode(), query.get("sign", ""))


def _feishu_ok(body: dict[str, Any]) -> bool:
    stamp = str(body.get("timestamp", ""))
    if not stamp.isdigit() or abs(time.time() - int(stamp)) > 3600:
        return False
    mac = hmac.new(f"{stamp}\n{FEISHU_SECRET}".encode(), b"", hashlib.sha256)
    return hmac.compare_digest(base64.b64encode(mac.digest()).decode(), str(body.get("sign")))


class _Handler(http.server.BaseHTTPRequestHandler):
    robots: Robots

    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        robots = self.robots
        path, _, raw_query = self.path.partition("?")
        query = dict(urllib.parse.parse_qsl(raw_query))
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        if path == "/robot/send":
            platform, ok = "dingtalk", _dingtalk_ok(query)
            refused = {"errcode": 310000, "errmsg": "sign not match"}
            throttled = {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"}
            accepted: dict[str, Any] = {"errcode": 0, "errmsg": "ok"}
        elif path == "/cgi-bin/webhook/send":
            platform, ok = "wecom", query.get("key") == WECOM_KEY
            refused = {"errcode": 93000, "errmsg": "invalid webhook url"}
            throttled = {"errcode": 45009, "errmsg": "api freq out of limit"}
            accepted = {"errcode": 0, "errmsg": "ok"}
        else:
            platform = "feishu"
            ok = path == f"/open-apis/bot/v2/hook/{FEISHU_HOOK}" and _feishu_ok(body)
            refused = {
                "code": 19021,
                "msg": "sign match fail or timestamp is not within one hour from current time",
                "data": {},
            }
            throttled = {"code": 11232, "msg": "frequency limited", "data": {}}
            accepted = {"code": 0, "msg": "success", "data": {}}
        with robots.lock:
            if not ok:
                robots.bad[platform] += 1
                answer = refused
            elif robots.script[platform] and robots.script[platform].pop(0) == "throttled":
                answer = throttled
            else:
                robots.posts[platform].append(body)
                answer = accepted
        self._answer(answer)


@contextmanager
def serve() -> Iterator[Robots]:
    robots = Robots()
    handler = type("Handler", (_Handler,), {"robots": robots})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    robots.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield robots
    finally:
        server.shutdown()
        server.server_close()

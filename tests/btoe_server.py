"""A local stand-in for Tencent Cloud BTOE on 127.0.0.1, for tests: it checks each request's
TC3-HMAC-SHA256 signature as Tencent's API 3.0 documentation ("Signature v3") specifies, written
here from the documentation rather than from the SDK, and answers as the BTOE API reference shows
(CreateHashDepositNoCert, version 2021-03-03): success, `RequestLimitExceeded` when told to
throttle, `AuthFailure.SignatureFailure` when the signature does not match.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SERVICE = "btoe"
ALGORITHM = "TC3-HMAC-SHA256"
MAX_CLOCK_SKEW = 300  # seconds, as the API allows
_AUTH = re.compile(
    r"^TC3-HMAC-SHA256 Credential=(?P<id>[^/]+)/(?P<date>\d{4}-\d{2}-\d{2})/(?P<service>[^/]+)"
    r"/tc3_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<sig>[0-9a-f]{64})$"
)


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def tc3_signature(
    secret_key: str,
    *,
    method: str,
    path: str,
    query: str,
    headers: dict[str, str],
    signed_headers: list[str],
    payload: bytes,
    timestamp: int,
    service: str,
) -> str:
    """The documented TC3-HMAC-SHA256 signature of a request."""
    canonical_headers = "".join(
        f"{name}:{headers.get(name, '').strip()}\n" for name in signed_headers
    )
    canonical_request = "\n".join(
        [
            method,
            path,
            query,
            canonical_headers,
            ";".join(signed_headers),
            hashlib.sha256(payload).hexdigest(),
        ]
    )
    date = dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d")
    scope = f"{date}/{service}/tc3_request"
    string_to_sign = "\n".join(
        [ALGORITHM, str(timestamp), scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    secret_date = _hmac(("TC3" + secret_key).encode(), date)
    secret_service = _hmac(secret_date, service)
    secret_signing = _hmac(secret_service, "tc3_request")
    return hmac.new(secret_signing, string_to_sign.encode(), hashlib.sha256).hexdigest()


@dataclass
class FakeBtoe:
    """The server's state: the accounts it knows, what it was asked, how it should answer."""

    accounts: dict[str, str]  # SecretId -> SecretKey
    throttle: int = 0  # answer RequestLimitExceeded to this many next valid requests
    deposits: list[dict[str, Any]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # error codes answered
    signatures_checked: int = 0
    height: int = 800
    lock: threading.RLock = field(default_factory=threading.RLock)

    def answer(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> dict[str, Any]:
        request_id = str(uuid.uuid4())
        problem = self._authenticate(method, path, headers, body)
        if problem is not None:
            return self._error(problem, request_id)
        with self.lock:
            self.signatures_checked += 1
            if self.throttle > 0:
                self.throttle -= 1
                return self._error(
                    ("RequestLimitExceeded", "请求的次数超过了频率限制。"), request_id
                )
        action = headers.get("x-tc-action")
        version = headers.get("x-tc-version")
        if action != "CreateHashDepositNoCert" or version != "2021-03-03":
            return self._error(("InvalidAction", f"{action} {version} is not served"), request_id)
        params = json.loads(body)
        evidence_hash = params.get("EvidenceHash")
        if not isinstance(evidence_hash, str) or not evidence_hash:
            return self._error(("InvalidParameter", "EvidenceHash is required"), request_id)
        with self.lock:
            self.height += 1
            deposit = {
                "BusinessId": params.get("BusinessId"),
                "EvidenceId": str(uuid.uuid4()),
                "EvidenceTime": dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).strftime(
                    "%Y-%m-%d %H:%M:%S"
                ),
                "EvidenceTxHash": "0x" + hashlib.sha256(evidence_hash.encode()).hexdigest(),
                "BlockchainHeight": self.height,
                "RequestId": request_id,
            }
            self.deposits.append({"params": params, "answer": deposit, "headers": headers})
        return {"Response": deposit}

    def _authenticate(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[str, str] | None:
        match = _AUTH.match(headers.get("authorization", ""))
        if match is None:
            return ("AuthFailure.InvalidAuthorization", "Authorization is not TC3-HMAC-SHA256")
        secret_key = self.accounts.get(match["id"])
        if secret_key is None:
            return ("AuthFailure.SecretIdNotFound", "The SecretId is not found.")
        try:
            timestamp = int(headers.get("x-tc-timestamp", ""))
        except ValueError:
            return ("AuthFailure.SignatureFailure", "X-TC-Timestamp is not a number")
        if abs(time.time() - timestamp) > MAX_CLOCK_SKEW:
            return ("AuthFailure.SignatureExpire", "The signature has expired.")
        date = dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d")
        signed = match["signed"].split(";")
        if (
            match["date"] != date
            or match["service"] != SERVICE
            or not {
                "content-type",
                "host",
            }
            <= set(signed)
        ):
            return ("AuthFailure.SignatureFailure", "The credential scope is wrong.")
        expected = tc3_signature(
            secret_key,
            method=method,
            path=path.split("?")[0],
            query=path.partition("?")[2],
            headers=headers,
            signed_headers=signed,
            payload=body,
            timestamp=timestamp,
            service=SERVICE,
        )
        if not hmac.compare_digest(expected, match["sig"]):
            return (
                "AuthFailure.SignatureFailure",
                "The provided credentials could not be validated. "
                "Please check your signature is correct.",
            )
        return None

    def _error(self, problem: tuple[str, str], request_id: str) -> dict[str, Any]:
        with self.lock:
            self.refused.append(problem[0])
        return {
            "Response": {
                "Error": {"Code": problem[0], "Message": problem[1]},
                "RequestId": request_id,
            }
        }


class BtoeServer:
    """`FakeBtoe` behind a real HTTP server on 127.0.0.1 (port chosen by the system)."""

    def __init__(self, state: FakeBtoe) -> None:
        self.state = state
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                answer = outer.state.answer("POST", self.path, headers, body)
                data = json.dumps(answer, ensure_ascii=False).encode()
                self.send_response(200)  # API 3.0 answers errors with 200 and Response.Error
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> BtoeServer:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

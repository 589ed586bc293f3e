"""Local stand-ins for Aliyun's and Tencent Cloud's SMS APIs on 127.0.0.1, for the tests and
`offerseal demo`: not the providers, and nothing leaves the machine.

Each checks the request signature as the provider documents it, written here independently of
the SDKs (Aliyun: ACS3-HMAC-SHA256 over the canonical request, the signed headers named in
`Authorization`; Tencent: TC3-HMAC-SHA256 with the date/service/tc3_request derived key), and
answers as the provider does: accepted, throttled, invalid number, and delivery reports to pull.
A request with a bad signature gets the provider's signature error and is counted.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import http.server
import json
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

BEIJING = dt.timezone(dt.timedelta(hours=8))


@dataclass
class Received:
    action: str
    params: dict[str, Any]
    answer: dict[str, Any]


@dataclass
class Stub:
    key_id: str
    secret: str
    # scripted answers for the next sends: "ok", "throttled", "invalid_number"
    script: list[str] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    bad_signatures: int = 0
    delivered: set[str] = field(default_factory=set)  # message refs reported as delivered
    nonces: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def sends(self) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.action == "SendSms"]

    def wait_sends(self, count: int, timeout: float = 20.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.sends()
            if len(found) >= count:
                return found
            time.sleep(0.02)
        raise AssertionError(f"expected {count} SendSms, got {len(self.sends())}")

    def next_answer(self) -> str:
        with self.lock:
            return self.script.pop(0) if self.script else "ok"


# ---- Aliyun: ACS3-HMAC-SHA256 -------------------------------------------------------------


def acs3_expected(
    secret: str, method: str, path: str, query: str, headers: dict[str, str], body: bytes
) -> tuple[str, str]:
    """(key id, signature) the Authorization header must carry, per Aliyun's V3 signature."""
    auth = headers.get("authorization", "")
    algorithm, _, rest = auth.partition(" ")
    if algorithm != "ACS3-HMAC-SHA256":
        raise ValueError("not ACS3-HMAC-SHA256")
    parts = dict(p.split("=", 1) for p in rest.split(","))
    signed = parts["SignedHeaders"].split(";")
    if "host" not in signed or not all(h in signed for h in headers if h.startswith("x-acs-")):
        raise ValueError("host and every x-acs-* header must be signed")
    payload = hashlib.sha256(body).hexdigest()
    if headers.get("x-acs-content-sha256") != payload:
        raise ValueError("x-acs-content-sha256 does not match the body")
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    canonical_query = "&".join(
        f"{urllib.parse.quote(k, safe='~')}={urllib.parse.quote(v, safe='~')}"
        for k, v in sorted(pairs)
    )
    canonical_headers = "".join(f"{h}:{headers.get(h, '').strip()}\n" for h in signed)
    canonical = "\n".join(
        [method, path or "/", canonical_query, canonical_headers, ";".join(signed), payload]
    )
    to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
    signature = hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
    return parts["Credential"], signature


class _AliyunHandler(http.server.BaseHTTPRequestHandler):
    stub: Stub

    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        stub = self.stub
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path, _, query = self.path.partition("?")
        headers = {k.lower(): v for k, v in self.headers.items()}
        request_id = str(uuid.uuid4()).upper()
        try:
            key_id, signature = acs3_expected(stub.secret, "POST", path, query, headers, body)
            given = headers["authorization"].rsplit("Signature=", 1)[1]
            stamp = dt.datetime.strptime(headers["x-acs-date"], "%Y-%m-%dT%H:%M:%SZ")
            fresh = abs(time.time() - stamp.replace(tzinfo=dt.UTC).timestamp()) < 900
            nonce = headers["x-acs-signature-nonce"]
            with stub.lock:
                replayed = nonce in stub.nonces
                stub.nonces.add(nonce)
            if key_id != stub.key_id or not hmac.compare_digest(given, signature):
                raise ValueError("signature")
            if not fresh or replayed:
                raise ValueError("stale or replayed")
        except (ValueError, KeyError):
            with stub.lock:
                stub.bad_signatures += 1
            self._answer(
                400,
                {
                    "RequestId": request_id,
                    "Code": "SignatureDoesNotMatch",
                    "Message": "Specified signature does not match our calculation.",
                },
            )
            return
        params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        params.update(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True))
        action = headers.get("x-acs-action", "")
        if action == "SendSms":
            answer = self._send(params, request_id)
        elif action == "QuerySendDetails":
            answer = self._details(params, request_id)
        else:
            answer = {"RequestId": request_id, "Code": "InvalidAction", "Message": action}
        with stub.lock:
            stub.received.append(Received(action, params, answer))
        self._answer(200, answer)

    def _send(self, params: dict[str, str], request_id: str) -> dict[str, Any]:
        what = self.stub.next_answer()
        if what == "throttled":
            return {
                "RequestId": request_id,
                "Code": "isv.BUSINESS_LIMIT_CONTROL",
                "Message": "触发分钟级流控Permits:1",
            }
        if what == "invalid_number" or not params.get("PhoneNumbers", "").isdigit():
            return {
                "RequestId": request_id,
                "Code": "isv.MOBILE_NUMBER_ILLEGAL",
                "Message": "非法手机号",
            }
        return {
            "RequestId": request_id,
            "Code": "OK",
            "Message": "OK",
            "BizId": f"{uuid.uuid4().int % 10**16}^0",
        }

    def _details(self, params: dict[str, str], request_id: str) -> dict[str, Any]:
        sent = [
            r
            for r in self.stub.sends()
            if r.answer.get("BizId") == params.get("BizId")
            and r.params.get("PhoneNumbers") == params.get("PhoneNumber")
        ]
        dtos = []
        for r in sent:
            delivered = r.answer["BizId"] in self.stub.delivered
            now = dt.datetime.now(BEIJING).strftime("%Y-%m-%d %H:%M:%S")
            dtos.append(
                {
                    "PhoneNum": r.params["PhoneNumbers"],
                    "SendStatus": 3 if delivered else 1,
                    "ErrCode": "DELIVERED" if delivered else "",
                    "TemplateCode": r.params.get("TemplateCode"),
                    "Content": "(content)",
                    "SendDate": now,
                    "ReceiveDate": now if delivered else None,
                    "OutId": r.params.get("OutId"),
                }
            )
        return {
            "RequestId": request_id,
            "Code": "OK",
            "Message": "OK",
            "TotalCount": len(dtos),
            "SmsSendDetailDTOs": {"SmsSendDetailDTO": dtos},
        }


# ---- Tencent: TC3-HMAC-SHA256 -------------------------------------------------------------


def tc3_expected(secret_key: str, headers: dict[str, str], body: bytes, path: str) -> str:
    """The signature Tencent's API 3.0 expects (its "signature v3" document)."""
    auth = headers["authorization"]
    algorithm, _, rest = auth.partition(" ")
    if algorithm != "TC3-HMAC-SHA256":
        raise ValueError("not TC3-HMAC-SHA256")
    parts = dict(p.strip().split("=", 1) for p in rest.split(","))
    _, date, service, terminator = parts["Credential"].split("/")
    if terminator != "tc3_request":
        raise ValueError("credential scope")
    timestamp = headers["x-tc-timestamp"]
    if dt.datetime.fromtimestamp(int(timestamp), dt.UTC).strftime("%Y-%m-%d") != date:
        raise ValueError("date does not match the timestamp")
    signed = parts["SignedHeaders"].split(";")
    if "content-type" not in signed or "host" not in signed:
        raise ValueError("content-type and host must be signed")
    canonical_headers = "".join(f"{h}:{headers.get(h, '').strip().lower()}\n" for h in signed)
    canonical = "\n".join(
        [
            "POST",
            path or "/",
            "",
            canonical_headers,
            ";".join(signed),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    to_sign = "\n".join(
        [
            "TC3-HMAC-SHA256",
            timestamp,
            f"{date}/{service}/tc3_request",
            hashlib.sha256(canonical.encode()).hexdigest(),
        ]
    )

    def mac(key: bytes, msg: str) -> bytes:
        return hmac.new(key, msg.encode(), hashlib.sha256).digest()

    key = mac(mac(mac(("TC3" + secret_key).encode(), date), service), "tc3_request")
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


class _TencentHandler(http.server.BaseHTTPRequestHandler):
    stub: Stub

    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self, body: dict[str, Any]) -> None:
        data = json.dumps({"Response": body}, ensure_ascii=False).encode()
        self.send_response(200)  # Tencent answers errors with 200 and Response.Error
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        stub = self.stub
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        request_id = str(uuid.uuid4())
        try:
            expected = tc3_expected(stub.secret, headers, body, self.path)
            given = headers["authorization"].rsplit("Signature=", 1)[1].strip()
            key_id = headers["authorization"].split("Credential=", 1)[1].split("/", 1)[0]
            fresh = abs(time.time() - int(headers["x-tc-timestamp"])) < 300
            if key_id != stub.key_id or not hmac.compare_digest(given, expected) or not fresh:
                raise ValueError("signature")
        except (ValueError, KeyError):
            with stub.lock:
                stub.bad_signatures += 1
            self._answer(
                {
                    "Error": {
                        "Code": "AuthFailure.SignatureFailure",
                        "Message": "The provided credentials could not be validated.",
                    },
                    "RequestId": request_id,
                }
            )
            return
        params = json.loads(body or b"{}")
        action = headers.get("x-tc-action", "")
        if action == "SendSms":
            answer = self._send(params, request_id)
        elif action == "PullSmsSendStatus":
            answer = self._pull(request_id)
        else:
            answer = {
                "Error": {"Code": "InvalidAction", "Message": action},
                "RequestId": request_id,
            }
        with stub.lock:
            stub.received.append(Received(action, params, answer))
        self._answer(answer)

    def _send(self, params: dict[str, Any], request_id: str) -> dict[str, Any]:
        what = self.stub.next_answer()
        phone = params["PhoneNumberSet"][0]
        serial = f"5000:{uuid.uuid4().int % 10**28}"
        if what == "throttled":
            code, message = (
                "LimitExceeded.PhoneNumberThirtySecondLimit",
                "the number of SMS messages sent from a single mobile number within 30 "
                "seconds exceeds the upper limit",
            )
        elif what == "invalid_number" or not phone.startswith("+"):
            code, message = "InvalidParameterValue.IncorrectPhoneNumber", "incorrect phone number"
        else:
            code, message = "Ok", "send success"
        return {
            "SendStatusSet": [
                {
                    "SerialNo": serial if code == "Ok" else "",
                    "PhoneNumber": phone,
                    "Fee": 1 if code == "Ok" else 0,
                    "SessionContext": params.get("SessionContext", ""),
                    "Code": code,
                    "Message": message,
                    "IsoCode": "CN",
                }
            ],
            "RequestId": request_id,
        }

    def _pull(self, request_id: str) -> dict[str, Any]:
        items = []
        with self.stub.lock:
            for r in self.stub.received:
                if r.action != "SendSms":
                    continue
                status = r.answer["SendStatusSet"][0]
                if status["SerialNo"] in self.stub.delivered:
                    items.append(
                        {
                            "UserReceiveTime": dt.datetime.now(BEIJING).strftime(
                                "%Y-%m-%d %H:%M:%S"
                            ),
                            "CountryCode": "86",
                            "SubscriberNumber": status["PhoneNumber"][3:],
                            "PhoneNumber": status["PhoneNumber"],
                            "SerialNo": status["SerialNo"],
                            "ReportStatus": "SUCCESS",
                            "Description": "DELIVRD",
                            "SessionContext": status["SessionContext"],
                        }
                    )
            self.stub.delivered.clear()  # Tencent hands out each report once
        return {"PullSmsSendStatusSet": items, "RequestId": request_id}


@contextmanager
def serve(provider: str, key_id: str = "AKID-test", secret: str = "s3cret-test") -> Iterator[Stub]:
    stub = Stub(key_id, secret)
    base = _AliyunHandler if provider == "aliyun" else _TencentHandler
    handler = type("Handler", (base,), {"stub": stub})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()

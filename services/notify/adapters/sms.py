"""The SMS providers through their official SDKs: Aliyun (`alibabacloud-dysmsapi20170525`,
requests signed ACS3-HMAC-SHA256) and Tencent Cloud (`tencentcloud-sdk-python-sms`, signed
TC3-HMAC-SHA256). Each sends one templated message and pulls delivery reports; every answer is
kept whole (`raw`) as proof of notice. Phone numbers are checked as E.164 here.

A provider's answer is classified once (`Answer.outcome`): accepted, throttled (the touchpoint
is moved), invalid (the number or the template is refused for good) or unavailable (retried).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from ..domain import sms as rules

Outcome = Literal["accepted", "throttled", "invalid", "unavailable"]


class InvalidPhone(ValueError):
    """Not a number a mobile can be reached at (E.164 after parsing)."""


def e164(raw: str, default_region: str = "CN") -> str:
    """`+8613800138000` from `13800138000`, `+86 138 0013 8000` or `0086...`; raises
    `InvalidPhone` for anything that is not a valid number."""
    import phonenumbers  # its metadata: imported with the first number, not at every start

    text = (raw or "").strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        raise InvalidPhone("not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone("not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@dataclass(frozen=True)
class SmsRequest:
    phone: str  # E.164
    sign_name: str
    template: str
    params: Sequence[tuple[str, str]]
    reference: str  # our touchpoint id: Aliyun's OutId, Tencent's SessionContext


@dataclass(frozen=True)
class Answer:
    outcome: Outcome
    code: str
    message: str
    request_id: str = ""
    message_ref: str = ""  # Aliyun's BizId, Tencent's SerialNo: what a delivery report names
    retry_at: dt.datetime | None = None  # throttled: when the provider's window reopens
    raw: dict[str, Any] = field(default_factory=dict)

    def summary(self, provider: str) -> str:
        ref = f", {self.message_ref}" if self.message_ref else ""
        return f"{provider} {self.code}: {self.message} (request {self.request_id}{ref})"


@dataclass(frozen=True)
class Report:
    """A delivery report: the handset received the message, or the carrier gave up."""

    message_ref: str
    delivered: bool | None  # None: still waiting
    code: str
    at: dt.datetime | None
    raw: dict[str, Any]


class Provider(Protocol):
    name: str

    def send(self, request: SmsRequest) -> Answer: ...

    def reports(self, pending: Sequence[tuple[str, str, dt.datetime]]) -> list[Report]:
        """Reports for messages (message_ref, phone, sent_at) still waiting for one."""
        ...


def _throttled_until(now: dt.datetime, seconds: float | None) -> dt.datetime:
    if seconds is None:  # a daily limit: the next natural day in Beijing
        day = now.astimezone(rules.BEIJING).date() + dt.timedelta(days=1)
        return dt.datetime.combine(day, dt.time(0, 0, 1), rules.BEIJING).astimezone(dt.UTC)
    return now + dt.timedelta(seconds=seconds)


def _aliyun_window(message: str) -> float | None:
    """Which of Aliyun's limits refused it: 触发分钟级流控 / 小时级 / 天级 in its message."""
    if "分钟" in message or "minute" in message.lower():
        return 60.0
    if "小时" in message or "hour" in message.lower():
        return 3600.0
    return None


# Aliyun SendSms codes (HTTP 200 with Code != "OK"): see its error-code reference.
ALIYUN_THROTTLED = {"isv.BUSINESS_LIMIT_CONTROL", "isv.DAY_LIMIT_CONTROL", "Throttling.User"}
ALIYUN_INVALID = {
    "isv.MOBILE_NUMBER_ILLEGAL",
    "isv.SMS_TEMPLATE_ILLEGAL",
    "isv.SMS_SIGNATURE_ILLEGAL",
    "isv.SMS_SIGN_ILLEGAL",
    "isv.SMS_SIGNATURE_SCENE_ILLEGAL",
    "isv.TEMPLATE_MISSING_PARAMETERS",
    "isv.TEMPLATE_PARAMS_ILLEGAL",
    "isv.INVALID_PARAMETERS",
    "isv.BLACK_KEY_CONTROL_LIMIT",
    "isv.PARAM_LENGTH_LIMIT",
    "isv.DOMESTIC_NUMBER_NOT_SUPPORTED",
}


def _aliyun_number(phone: str) -> str:
    """Aliyun takes mainland numbers bare (`13800138000`), others with their country code and
    no plus (`85212345678`)."""
    return phone[3:] if phone.startswith("+86") else phone.removeprefix("+")


class AliyunSms:
    name = rules.ALIYUN

    def __init__(
        self,
        access_key_id: str,
        access_key_secret: str,
        *,
        endpoint: str = "dysmsapi.aliyuncs.com",
        protocol: str = "https",
        timeout_ms: int = 10_000,
    ) -> None:
        from alibabacloud_dysmsapi20170525.client import Client
        from alibabacloud_tea_openapi import models as open_api

        self._client = Client(
            open_api.Config(
                access_key_id=access_key_id,
                access_key_secret=access_key_secret,
                endpoint=endpoint,
                protocol=protocol,
                read_timeout=timeout_ms,
                connect_timeout=timeout_ms,
            )
        )

    def _call(self, method: str, request: Any) -> dict[str, Any]:
        from darabonba.runtime import RuntimeOptions

        response = getattr(self._client, method)(request, RuntimeOptions(autoretry=False))
        body: dict[str, Any] = response.body.to_map()
        return body

    def send(self, request: SmsRequest) -> Answer:
        from alibabacloud_dysmsapi20170525 import models

        try:
            body = self._call(
                "send_sms_with_options",
                models.SendSmsRequest(
                    phone_numbers=_aliyun_number(request.phone),
                    sign_name=request.sign_name,
                    template_code=request.template,
                    template_param=json.dumps(dict(request.params), ensure_ascii=False),
                    out_id=request.reference,
                ),
            )
        except Exception as exc:  # the SDK's ClientException/ServerException, I/O errors
            return _aliyun_failure(exc)
        code, message = str(body.get("Code", "")), str(body.get("Message", ""))
        common: dict[str, Any] = {
            "code": code,
            "message": message,
            "request_id": str(body.get("RequestId", "")),
            "raw": body,
        }
        if code == "OK":
            return Answer("accepted", message_ref=str(body.get("BizId", "")), **common)
        if code in ALIYUN_THROTTLED:
            until = _throttled_until(dt.datetime.now(dt.UTC), _aliyun_window(message))
            return Answer("throttled", retry_at=until, **common)
        if code in ALIYUN_INVALID:
            return Answer("invalid", **common)
        return Answer("unavailable", **common)

    def reports(self, pending: Sequence[tuple[str, str, dt.datetime]]) -> list[Report]:
        from alibabacloud_dysmsapi20170525 import models

        out = []
        for ref, phone, sent_at in pending:
            day = sent_at.astimezone(rules.BEIJING).strftime("%Y%m%d")
            body = self._call(
                "query_send_details_with_options",
                models.QuerySendDetailsRequest(
                    phone_number=_aliyun_number(phone),
                    biz_id=ref,
                    send_date=day,
                    page_size=10,
                    current_page=1,
                ),
            )
            details = (body.get("SmsSendDetailDTOs") or {}).get("SmsSendDetailDTO") or []
            for detail in details:
                status = int(detail.get("SendStatus", 1))  # 1 waiting, 2 failed, 3 delivered
                received = detail.get("ReceiveDate")
                at = (
                    dt.datetime.strptime(received, "%Y-%m-%d %H:%M:%S")
                    .replace(tzinfo=rules.BEIJING)
                    .astimezone(dt.UTC)
                    if received
                    else None
                )
                out.append(
                    Report(
                        ref,
                        None if status == 1 else status == 3,
                        str(detail.get("ErrCode", "")),
                        at,
                        {"RequestId": body.get("RequestId"), **detail},
                    )
                )
        return out


ALIYUN_AUTH_PREFIXES = (
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "InvalidAccessKeyId",
    "SignatureNonceUsed",
    "InvalidTimeStamp",
    "Forbidden.RAM",
)


def _aliyun_failure(exc: Exception) -> Answer:
    code = str(getattr(exc, "code", "") or type(exc).__name__)
    message = str(getattr(exc, "message", "") or exc)[:300]
    data = getattr(exc, "data", None)
    raw = data if isinstance(data, dict) else {"Code": code, "Message": message}
    request_id = str(raw.get("RequestId", "") if isinstance(raw, dict) else "")
    if code.startswith("Throttling"):
        until = _throttled_until(dt.datetime.now(dt.UTC), 60.0)
        return Answer("throttled", code, message, request_id, retry_at=until, raw=raw)
    if code.startswith(ALIYUN_AUTH_PREFIXES):  # our key or clock: retried while it is fixed
        return Answer("unavailable", code, message, request_id, raw=raw)
    status = getattr(exc, "status_code", None) or getattr(exc, "statusCode", None)
    if isinstance(status, int) and 400 <= status < 500 and status != 429:
        return Answer("invalid", code, message, request_id, raw=raw)
    return Answer("unavailable", code, message, request_id, raw=raw)


# Tencent SendStatus codes (per number, in a successful response): its SMS error-code list.
TENCENT_THROTTLED_SECONDS: dict[str, float | None] = {
    "LimitExceeded.PhoneNumberThirtySecondLimit": 30.0,
    "LimitExceeded.PhoneNumberOneHourLimit": 3600.0,
    "LimitExceeded.PhoneNumberDailyLimit": None,
    "LimitExceeded.PhoneNumberSameContentDailyLimit": None,
    "LimitExceeded.DeliveryFrequencyLimit": 60.0,
    "LimitExceeded.DailyLimit": None,
    "RequestLimitExceeded": 1.0,
}
TENCENT_INVALID_PREFIXES = (
    "InvalidParameterValue.",
    "FailedOperation.TemplateIncorrectOrUnapproved",
    "FailedOperation.SignatureIncorrectOrUnapproved",
    "FailedOperation.PhoneNumberInBlacklist",
    "FailedOperation.ContainSensitiveWord",
    "FailedOperation.MissingSignature",
    "FailedOperation.MissingTemplate",
    "UnsupportedOperation.",
)


class TencentSms:
    name = rules.TENCENT

    def __init__(
        self,
        secret_id: str,
        secret_key: str,
        sdk_app_id: str,
        *,
        region: str = "ap-guangzhou",
        endpoint: str = "sms.tencentcloudapi.com",
        protocol: str = "https",
        timeout: int = 10,
    ) -> None:
        from tencentcloud.common import credential
        from tencentcloud.common.profile.client_profile import ClientProfile
        from tencentcloud.common.profile.http_profile import HttpProfile
        from tencentcloud.sms.v20210111 import sms_client

        self.sdk_app_id = sdk_app_id
        profile = ClientProfile(
            signMethod="TC3-HMAC-SHA256",
            httpProfile=HttpProfile(protocol=protocol, endpoint=endpoint, reqTimeout=timeout),
        )
        self._client = sms_client.SmsClient(
            credential.Credential(secret_id, secret_key), region, profile
        )

    def send(self, request: SmsRequest) -> Answer:
        from tencentcloud.common.exception.tencent_cloud_sdk_exception import (
            TencentCloudSDKException,
        )
        from tencentcloud.sms.v20210111 import models

        call = models.SendSmsRequest()
        call.PhoneNumberSet = [request.phone]
        call.SmsSdkAppId = self.sdk_app_id
        call.SignName = request.sign_name
        call.TemplateId = request.template
        call.TemplateParamSet = [value for _, value in request.params]
        call.SessionContext = request.reference
        try:
            response = self._client.SendSms(call)
        except TencentCloudSDKException as exc:
            return _tencent_failure(str(exc.code or ""), str(exc.message or ""), exc.requestId)
        except Exception as exc:  # I/O
            return Answer("unavailable", type(exc).__name__, str(exc)[:300])
        raw: dict[str, Any] = json.loads(response.to_json_string())
        statuses = raw.get("SendStatusSet") or [{}]
        status = statuses[0]
        code, message = str(status.get("Code", "")), str(status.get("Message", ""))
        request_id = str(raw.get("RequestId", ""))
        if code == "Ok":
            return Answer(
                "accepted", code, message, request_id, str(status.get("SerialNo", "")), raw=raw
            )
        return _tencent_failure(code, message, request_id, raw)

    def reports(self, pending: Sequence[tuple[str, str, dt.datetime]]) -> list[Report]:
        """Tencent hands out each report once, for the whole application; those for messages
        we do not wait for (sent elsewhere) are returned too and ignored by the caller."""
        from tencentcloud.sms.v20210111 import models

        call = models.PullSmsSendStatusRequest()
        call.SmsSdkAppId = self.sdk_app_id
        call.Limit = 100
        raw: dict[str, Any] = json.loads(self._client.PullSmsSendStatus(call).to_json_string())
        out = []
        for item in raw.get("PullSmsSendStatusSet") or []:
            at = item.get("UserReceiveTime")
            out.append(
                Report(
                    str(item.get("SerialNo", "")),
                    item.get("ReportStatus") == "SUCCESS",
                    str(item.get("Description", "")),
                    dt.datetime.strptime(at, "%Y-%m-%d %H:%M:%S")
                    .replace(tzinfo=rules.BEIJING)
                    .astimezone(dt.UTC)
                    if at
                    else None,
                    {"RequestId": raw.get("RequestId"), **item},
                )
            )
        return out


def _tencent_failure(
    code: str, message: str, request_id: str | None, raw: dict[str, Any] | None = None
) -> Answer:
    raw = raw or {"Error": {"Code": code, "Message": message}, "RequestId": request_id}
    common: dict[str, Any] = {
        "code": code,
        "message": message[:300],
        "request_id": request_id or "",
        "raw": raw,
    }
    if code in TENCENT_THROTTLED_SECONDS or code.startswith("LimitExceeded."):
        seconds = TENCENT_THROTTLED_SECONDS.get(code, 60.0)
        return Answer(
            "throttled", retry_at=_throttled_until(dt.datetime.now(dt.UTC), seconds), **common
        )
    if code.startswith(TENCENT_INVALID_PREFIXES):
        return Answer("invalid", **common)
    return Answer("unavailable", **common)


def make_provider(
    name: str,
    key_id: str,
    secret: str,
    *,
    sdk_app_id: str = "",
    region: str = "",
    endpoint: str = "",
) -> Provider:
    """The SDK client for an account (`aliyun` or `tencent`); `endpoint` is the API host, or
    `http://host:port` for a local stand-in (tests, demos)."""
    protocol = "https"
    if "://" in endpoint:
        protocol, endpoint = endpoint.split("://", 1)
        endpoint = endpoint.rstrip("/")
    if name == rules.ALIYUN:
        return AliyunSms(
            key_id, secret, endpoint=endpoint or "dysmsapi.aliyuncs.com", protocol=protocol
        )
    if name == rules.TENCENT:
        return TencentSms(
            key_id,
            secret,
            sdk_app_id,
            region=region or "ap-guangzhou",
            endpoint=endpoint or "sms.tencentcloudapi.com",
            protocol=protocol,
        )
    raise ValueError(f"unknown SMS provider {name!r}")

"""The SMS channel: a touchpoint as the tenant's approved template through Aliyun or Tencent
Cloud, within the providers' documented limits, with every provider answer and delivery report
kept (`notify_sms_sends`) as proof of notice. A tenant may bring its own account (`SmsAccounts`:
sealed at rest, never shown again); otherwise the deployment's account is used.

A message the limits would refuse is not sent: `Postponed` tells the dispatcher when it may go
(the touchpoint is moved, not dropped); a throttled answer moves it the same way.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import threading
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from ..shared.db import Database
from ..shared.errors import ValidationFailed
from ..shared.models import utcnow
from .adapters.channels import Outgoing
from .adapters.sms import (
    Answer,
    InvalidPhone,
    Provider,
    Report,
    SmsRequest,
    e164,
    make_provider,
)
from .alerts import HookSealer
from .domain import schedule
from .domain import sms as rules
from .errors import Postponed, Rejected, RetryLater
from .models import SmsSend, TenantSms

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SmsSettings:
    sign_name: str
    templates: dict[str, str]


# The providers' own API hosts (https): Aliyun's Dysmsapi, Tencent Cloud SMS (and their regions).
OFFICIAL_ENDPOINTS = {
    rules.ALIYUN: re.compile(r"^dysmsapi(\.[a-z0-9-]+)?\.aliyuncs\.com$"),
    rules.TENCENT: re.compile(r"^sms(\.[a-z0-9-]+)?\.tencentcloudapi\.com$"),
}
KEY_ID = re.compile(r"^[A-Za-z0-9_-]{8,128}$")  # Aliyun's LTAI..., Tencent's AKID...
SDK_APP_ID = re.compile(r"^[0-9]{6,12}$")  # Tencent's SdkAppId (1400006666)
REGION = re.compile(r"^[a-z]{2,4}-[a-z]+(-[0-9])?$")  # ap-guangzhou


class SmsAccounts:
    """Tenants' own SMS accounts: the provider and its credentials, checked, sealed with the
    master key (AES-GCM, the tenant bound in), opened only to build the SDK client (kept while
    the account is unchanged). Secrets are never returned: `shown` says only that one is set."""

    INFO = b"offerseal-sms"

    def __init__(
        self,
        sealer: HookSealer,
        *,
        endpoints: Sequence[str] = (),
        build: Callable[..., Provider] = make_provider,
    ) -> None:
        self.sealer = sealer
        self.endpoints = {e.rstrip("/") for e in endpoints}
        self.build = build
        self._clients: dict[str, tuple[str, Provider]] = {}
        self._lock = threading.Lock()

    def check(self, account: Any) -> dict[str, str]:
        """The account as stored, or 422 naming the field."""
        if not isinstance(account, dict):
            raise ValidationFailed("account", "the provider and its credentials")
        provider = account.get("provider")
        if provider not in rules.PROVIDERS:
            raise ValidationFailed("account.provider", "aliyun or tencent")
        key_id, secret = account.get("access_key_id"), account.get("access_key_secret")
        if not isinstance(key_id, str) or not KEY_ID.match(key_id):
            raise ValidationFailed(
                "account.access_key_id", "Aliyun's AccessKey ID or Tencent's SecretId"
            )
        if not isinstance(secret, str) or not 16 <= len(secret) <= 200 or secret.strip() != secret:
            raise ValidationFailed(
                "account.access_key_secret", "Aliyun's AccessKey Secret or Tencent's SecretKey"
            )
        out = {"provider": provider, "access_key_id": key_id, "access_key_secret": secret}
        sdk_app_id, region = account.get("sdk_app_id"), account.get("region")
        if provider == rules.TENCENT:
            if not isinstance(sdk_app_id, str) or not SDK_APP_ID.match(sdk_app_id):
                raise ValidationFailed("account.sdk_app_id", "the SMS application's SdkAppId")
            if region is not None and (not isinstance(region, str) or not REGION.match(region)):
                raise ValidationFailed("account.region", "a Tencent Cloud region (ap-guangzhou)")
            out["sdk_app_id"], out["region"] = sdk_app_id, region or "ap-guangzhou"
        elif sdk_app_id is not None or region is not None:
            field = "account.sdk_app_id" if sdk_app_id is not None else "account.region"
            raise ValidationFailed(field, "Tencent Cloud only")
        endpoint = account.get("endpoint")
        if endpoint is not None:
            out["endpoint"] = self._check_endpoint(provider, endpoint)
        return out

    def _check_endpoint(self, provider: str, endpoint: Any) -> str:
        if not isinstance(endpoint, str) or len(endpoint) > 200:
            raise ValidationFailed("account.endpoint", "the provider's API host")
        if endpoint.rstrip("/") in self.endpoints:
            return endpoint.rstrip("/")
        parts = urllib.parse.urlsplit(endpoint if "://" in endpoint else "https://" + endpoint)
        host = parts.hostname or ""
        if (
            parts.scheme != "https"
            or parts.port is not None
            or parts.path.strip("/")
            or parts.query
            or parts.username
            or not OFFICIAL_ENDPOINTS[provider].match(host)
        ):
            official = (
                "dysmsapi.aliyuncs.com" if provider == rules.ALIYUN else ("sms.tencentcloudapi.com")
            )
            raise ValidationFailed("account.endpoint", f"the provider's own API host ({official})")
        return host

    def seal(self, tenant: str, account: dict[str, str]) -> str:
        return self.sealer.seal(tenant, account)

    def shown(self, tenant: str, provider: str | None, sealed: str | None) -> dict[str, Any] | None:
        """What may be shown of a tenant's account: never the secret, the key id cut short."""
        if not provider or not sealed:
            return None
        try:
            account = self.sealer.open(tenant, sealed)
        except ValueError:
            return {"provider": provider, "access_key_secret": "unreadable"}
        return {
            "provider": provider,
            "access_key_id": account["access_key_id"][:4] + "…",
            "access_key_secret": "set",
            "sdk_app_id": account.get("sdk_app_id"),
            "region": account.get("region"),
            "endpoint": account.get("endpoint"),
        }

    def provider(self, tenant: str, row: TenantSms | None) -> Provider | None:
        """The SDK client of the tenant's own account (None: it has none)."""
        if row is None or not row.provider or not row.sealed:
            return None
        with self._lock:
            cached = self._clients.get(tenant)
            if cached is not None and cached[0] == row.sealed:
                return cached[1]
        account = self.sealer.open(tenant, row.sealed)
        client = self.build(
            row.provider,
            account["access_key_id"],
            account["access_key_secret"],
            sdk_app_id=account.get("sdk_app_id", ""),
            region=account.get("region", ""),
            endpoint=account.get("endpoint", ""),
        )
        with self._lock:
            self._clients[tenant] = (row.sealed, client)
        return client


class SmsChannel:
    name = "sms"

    def __init__(
        self,
        db: Database,
        provider: Provider | None,
        *,
        sign_name: str = "",
        templates: dict[str, str] | None = None,
        accounts: SmsAccounts | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.db = db
        self.provider = provider  # the deployment's account (None: only tenants' own)
        self.defaults = SmsSettings(sign_name, dict(templates or {}))
        self.accounts = accounts
        self.clock = clock

    # ---- which account, and what a tenant has approved ----------------------------------

    def _route(self, tenant: str) -> tuple[Provider | None, SmsSettings]:
        """The account a tenant's messages go through, with its sign name and templates: the
        tenant's own account with its own approvals only (sign names and templates are
        approved per account), else the deployment's, the tenant's choices over its defaults."""
        with self.db.sessions() as session:
            row = session.get(TenantSms, tenant)
        try:
            own = self.accounts.provider(tenant, row) if self.accounts is not None else None
        except ValueError as exc:  # sealed under a master key no longer configured
            log.warning("a tenant's own SMS account cannot be opened: %s", exc)
            return None, SmsSettings("", {})  # not the deployment's account in its name
        if own is not None and row is not None:
            return own, SmsSettings(row.sign_name or "", dict(row.templates or {}))
        if row is None:
            return self.provider, self.defaults
        return self.provider, SmsSettings(
            row.sign_name or self.defaults.sign_name,
            {**self.defaults.templates, **(row.templates or {})},
        )

    def settings_for(self, tenant: str) -> SmsSettings:
        return self._route(tenant)[1]

    def provider_for(self, tenant: str) -> Provider | None:
        return self._route(tenant)[0]

    def can_send(self, tenant: str, kind: str) -> bool:
        """An account, a sign name and an approved template for this kind: else the message
        goes another way (e-mail), as SMS could not carry it."""
        provider, settings = self._route(tenant)
        return bool(provider is not None and settings.sign_name and settings.templates.get(kind))

    # ---- limits ---------------------------------------------------------------------------

    def _history(self, provider: str, phone: str, now: dt.datetime) -> list[rules.Sent]:
        since = now - dt.timedelta(days=2)
        with self.db.sessions() as session:
            rows = session.execute(
                select(SmsSend.at, SmsSend.template, SmsSend.kind, SmsSend.digest).where(
                    SmsSend.phone == phone,
                    SmsSend.provider == provider,
                    SmsSend.outcome == "accepted",
                    SmsSend.at > since,
                )
            ).all()
        return [
            rules.Sent(_aware(at), phone, template, kind, digest)
            for at, template, kind, digest in rows
        ]

    def next_code_at(self, phone: str, tenant: str = "") -> dt.datetime:
        """When a one-time code may next be sent to this number (now if at once)."""
        now = self.clock()
        number = e164(phone)
        provider = self.provider_for(tenant) if tenant else self.provider
        if provider is None:
            return now
        return rules.next_allowed(
            provider.name,
            self._history(provider.name, number, now),
            now=now,
            phone=number,
            kind=schedule.CODE,
            template="",
            digest="",
        ).at

    # ---- sending --------------------------------------------------------------------------

    def send(self, out: Outgoing) -> str:
        try:
            phone = e164(out.phone or "")
        except InvalidPhone as exc:
            raise Rejected(f"SMS: {exc}") from None
        kind = str(out.payload.get("kind", ""))
        provider, settings = self._route(out.tenant)
        template = settings.templates.get(kind)
        if provider is None:
            raise Rejected("SMS: no account (the tenant's own or the deployment's)")
        if not settings.sign_name or not template:
            raise Rejected(f"SMS: no approved sign name and template for {kind!r}")
        params = rules.template_params(kind, out.sms_params)
        digest = rules.content_digest(template, params)
        now = self.clock()
        verdict = rules.next_allowed(
            provider.name,
            self._history(provider.name, phone, now),
            now=now,
            phone=phone,
            kind=kind,
            template=template,
            digest=digest,
        )
        if verdict.at > now:
            raise Postponed(verdict.at, f"SMS limit: {verdict.why}")
        request = SmsRequest(phone, settings.sign_name, template, params, out.touchpoint_id)
        answer = provider.send(request)
        self._record(out, provider.name, request, kind, digest, answer)
        detail = answer.summary(provider.name)
        if answer.outcome == "accepted":
            return detail
        if answer.outcome == "throttled":
            raise Postponed(answer.retry_at or now + dt.timedelta(minutes=1), detail)
        if answer.outcome == "invalid":
            raise Rejected(detail)
        raise RetryLater(detail)

    def _record(
        self,
        out: Outgoing,
        provider: str,
        request: SmsRequest,
        kind: str,
        digest: str,
        answer: Answer,
    ) -> None:
        with self.db.transaction() as session:
            session.add(
                SmsSend(
                    touchpoint_id=out.touchpoint_id,
                    tenant=out.tenant,
                    provider=provider,
                    phone=request.phone,
                    sign_name=request.sign_name,
                    template=request.template,
                    kind=kind,
                    digest=digest,
                    at=self.clock(),
                    outcome=answer.outcome,
                    code=answer.code[:100],
                    request_id=answer.request_id[:100],
                    message_ref=answer.message_ref[:100],
                    answer=_without_code(answer.raw, request.params),
                )
            )

    # ---- delivery reports -----------------------------------------------------------------

    def pull_reports(self, max_age: dt.timedelta = dt.timedelta(days=3)) -> int:
        """Ask each account for the reports of its accepted messages still without one (once
        per account: Tencent hands each report out once for the whole application); returns
        how many were recorded."""
        since = self.clock() - max_age
        with self.db.sessions() as session:
            waiting = list(
                session.execute(
                    select(
                        SmsSend.id,
                        SmsSend.tenant,
                        SmsSend.provider,
                        SmsSend.message_ref,
                        SmsSend.phone,
                        SmsSend.at,
                    )
                    .where(
                        SmsSend.outcome == "accepted",
                        SmsSend.report_status.is_(None),
                        SmsSend.at > since,
                    )
                    .order_by(SmsSend.at)
                    .limit(100)
                ).all()
            )
        if not waiting:
            return 0
        by_account: dict[int, tuple[Provider, list[Any]]] = {}
        for row in waiting:
            provider = self.provider_for(row.tenant)
            if provider is None or provider.name != row.provider:
                continue  # the account changed since: its reports are not ours to pull
            by_account.setdefault(id(provider), (provider, []))[1].append(row)
        recorded = 0
        for provider, rows in by_account.values():
            by_ref = {row.message_ref: row.id for row in rows}
            reports = provider.reports([(r.message_ref, r.phone, _aware(r.at)) for r in rows])
            recorded += self._store_reports(reports, by_ref)
        return recorded

    def _store_reports(self, reports: list[Report], by_ref: dict[str, int]) -> int:
        recorded = 0
        with self.db.transaction() as session:
            for report in reports:
                row_id = by_ref.get(report.message_ref)
                if row_id is None or report.delivered is None:
                    continue
                row = session.get(SmsSend, row_id)
                if row is None or row.report_status is not None:
                    continue
                row.report_status = "delivered" if report.delivered else "failed"
                row.report_code = report.code[:100]
                row.report_at = report.at or self.clock()
                row.report = report.raw
                recorded += 1
        return recorded

    def close(self) -> None:
        pass


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _without_code(raw: dict[str, Any], params: Any) -> dict[str, Any]:
    """The provider's answer as proof; a one-time code never appears in what is kept (the
    answers do not echo parameters, but a provider's error message might)."""
    codes = [value for name, value in params if name == "code" and value]
    if not codes:
        return raw
    text = repr(raw)
    if not any(code in text for code in codes):
        return raw
    dumped = json.dumps(raw, ensure_ascii=False)
    for code in codes:
        dumped = dumped.replace(code, "******")
    loaded: dict[str, Any] = json.loads(dumped)
    return loaded

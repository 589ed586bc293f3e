"""The SMS channel: a touchpoint as the tenant's approved template through Aliyun or Tencent
Cloud, within the providers' documented limits, with every provider answer and delivery report
kept (`notify_sms_sends`) as proof of notice.

A message the limits would refuse is not sent: `Postponed` tells the dispatcher when it may go
(the touchpoint is moved, not dropped); a throttled answer moves it the same way.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from ..shared.db import Database
from ..shared.models import utcnow
from .adapters.channels import Outgoing
from .adapters.sms import Answer, InvalidPhone, Provider, SmsRequest, e164
from .domain import schedule
from .domain import sms as rules
from .errors import Postponed, Rejected, RetryLater
from .models import SmsSend, TenantSms

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SmsSettings:
    sign_name: str
    templates: dict[str, str]


class SmsChannel:
    name = "sms"

    def __init__(
        self,
        db: Database,
        provider: Provider,
        *,
        sign_name: str = "",
        templates: dict[str, str] | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.db = db
        self.provider = provider
        self.defaults = SmsSettings(sign_name, dict(templates or {}))
        self.clock = clock

    # ---- what a tenant has approved -----------------------------------------------------

    def settings_for(self, tenant: str) -> SmsSettings:
        with self.db.sessions() as session:
            row = session.get(TenantSms, tenant)
        if row is None:
            return self.defaults
        return SmsSettings(
            row.sign_name or self.defaults.sign_name,
            {**self.defaults.templates, **(row.templates or {})},
        )

    def can_send(self, tenant: str, kind: str) -> bool:
        """A sign name and an approved template for this kind: else the message goes another
        way (e-mail), as SMS could not carry it."""
        settings = self.settings_for(tenant)
        return bool(settings.sign_name and settings.templates.get(kind))

    # ---- limits ---------------------------------------------------------------------------

    def _history(self, phone: str, now: dt.datetime) -> list[rules.Sent]:
        since = now - dt.timedelta(days=2)
        with self.db.sessions() as session:
            rows = session.execute(
                select(SmsSend.at, SmsSend.template, SmsSend.kind, SmsSend.digest).where(
                    SmsSend.phone == phone,
                    SmsSend.provider == self.provider.name,
                    SmsSend.outcome == "accepted",
                    SmsSend.at > since,
                )
            ).all()
        return [
            rules.Sent(_aware(at), phone, template, kind, digest)
            for at, template, kind, digest in rows
        ]

    def next_code_at(self, phone: str) -> dt.datetime:
        """When a one-time code may next be sent to this number (now if at once)."""
        now = self.clock()
        number = e164(phone)
        return rules.next_allowed(
            self.provider.name,
            self._history(number, now),
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
        settings = self.settings_for(out.tenant)
        template = settings.templates.get(kind)
        if not settings.sign_name or not template:
            raise Rejected(f"SMS: no approved sign name and template for {kind!r}")
        params = rules.template_params(kind, out.sms_params)
        digest = rules.content_digest(template, params)
        now = self.clock()
        verdict = rules.next_allowed(
            self.provider.name,
            self._history(phone, now),
            now=now,
            phone=phone,
            kind=kind,
            template=template,
            digest=digest,
        )
        if verdict.at > now:
            raise Postponed(verdict.at, f"SMS limit: {verdict.why}")
        request = SmsRequest(phone, settings.sign_name, template, params, out.touchpoint_id)
        answer = self.provider.send(request)
        self._record(out, request, kind, digest, answer)
        detail = answer.summary(self.provider.name)
        if answer.outcome == "accepted":
            return detail
        if answer.outcome == "throttled":
            raise Postponed(answer.retry_at or now + dt.timedelta(minutes=1), detail)
        if answer.outcome == "invalid":
            raise Rejected(detail)
        raise RetryLater(detail)

    def _record(
        self, out: Outgoing, request: SmsRequest, kind: str, digest: str, answer: Answer
    ) -> None:
        with self.db.transaction() as session:
            session.add(
                SmsSend(
                    touchpoint_id=out.touchpoint_id,
                    tenant=out.tenant,
                    provider=self.provider.name,
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
        """Ask the provider for the reports of accepted messages still without one; returns
        how many were recorded."""
        since = self.clock() - max_age
        with self.db.sessions() as session:
            waiting = list(
                session.execute(
                    select(SmsSend.id, SmsSend.message_ref, SmsSend.phone, SmsSend.at)
                    .where(
                        SmsSend.provider == self.provider.name,
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
        by_ref = {ref: row_id for row_id, ref, _, _ in waiting}
        reports = self.provider.reports([(ref, phone, _aware(at)) for _, ref, phone, at in waiting])
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

"""The SMS channel through the providers' real SDKs (Aliyun Dysmsapi, Tencent Cloud SMS) against
local servers that check each request's documented signature: a touchpoint and a one-time code
reach the provider as the tenant's approved template; a throttled answer moves the touchpoint
and it goes later; the providers' limits move a message before it is sent; an invalid number
fails; every answer and delivery report is kept as proof of notice."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select, update

from offerseal.notify.adapters.sms import AliyunSms, TencentSms
from offerseal.notify.domain import schedule
from offerseal.notify.models import (
    DeliveryAttempt,
    FollowedAgreement,
    NotifyCandidate,
    SmsSend,
    TenantSms,
    Touchpoint,
)
from offerseal.notify.service import NotifyService
from offerseal.notify.sms import SmsChannel
from offerseal.shared.db import Database
from offerseal.shared.links import LinkSigner
from tests.sms_providers import Stub, serve

TEMPLATES = {"checkin": "SMS_CHECKIN", "code": "SMS_CODE", "invitation": "SMS_INVITE"}
PHONE = "+8613800138000"


@pytest.fixture(params=["aliyun", "tencent"])
def provider(request: pytest.FixtureRequest) -> Iterator[tuple[str, Stub]]:
    with serve(request.param) as stub:
        yield request.param, stub


def client(name: str, stub: Stub, secret: str | None = None) -> Any:
    endpoint = stub.url.removeprefix("http://")
    if name == "aliyun":
        return AliyunSms(stub.key_id, secret or stub.secret, endpoint=endpoint, protocol="http")
    return TencentSms(
        stub.key_id, secret or stub.secret, "1400006666", endpoint=endpoint, protocol="http"
    )


def setup(
    sqlite_url: str, name: str, stub: Stub, *, phone: str | None = PHONE, secret: str | None = None
) -> tuple[Database, NotifyService, SmsChannel]:
    db = Database(sqlite_url)
    db.migrate()
    channel = SmsChannel(db, client(name, stub, secret), sign_name="默认签名", templates=TEMPLATES)
    service = NotifyService(
        db,
        LinkSigner(b"k" * 32),
        {"sms": channel},
        public_url="http://127.0.0.1:1",
        evidence_url="http://127.0.0.1:1",
        checkin_interval=3600,
        quiet_hours="00:00-00:00",
        default_timezone="Asia/Shanghai",
        mail_domain="offerseal.local",
    )
    with db.transaction() as session:
        session.add(
            NotifyCandidate(
                tenant="acme",
                candidate_ref="cand-1",
                email=None,
                phone=phone,
                timezone="Asia/Shanghai",
                language="zh-CN",
                quiet_hours="00:00-00:00",
                channels=["sms"],
                opted_out=False,
            )
        )
        session.add(
            FollowedAgreement(
                agreement_id="ag-1",
                tenant="acme",
                candidate_ref="cand-1",
                language="zh-CN",
                employer_name="示例科技",
                position="工程师",
                start_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=30),
                milestones=[],
                state="committed",
            )
        )
        # the tenant's own approved sign name (its templates fall back to the defaults)
        session.add(TenantSms(tenant="acme", sign_name="示例科技", templates={}, updated_by="t"))
    return db, service, channel


def due(db: Database, tp_id: str, kind: str, data: dict[str, Any] | None = None) -> None:
    with db.transaction() as session:
        session.add(
            Touchpoint(
                id=tp_id,
                key=f"ag-1:{kind}:{tp_id}",
                tenant="acme",
                agreement_id="ag-1",
                candidate_ref="cand-1",
                kind=kind,
                occurrence=1,
                essential=kind == schedule.CODE,
                due_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1),
                data=data or {},
            )
        )


def row(db: Database, tp_id: str) -> Touchpoint:
    with db.sessions() as session:
        tp = session.get(Touchpoint, tp_id)
        assert tp is not None
        return tp


def sends(db: Database, tp_id: str) -> list[SmsSend]:
    with db.sessions() as session:
        return list(
            session.execute(
                select(SmsSend).where(SmsSend.touchpoint_id == tp_id).order_by(SmsSend.id)
            ).scalars()
        )


def template_params(name: str, received: Any) -> list[str]:
    if name == "aliyun":
        return list(json.loads(received.params["TemplateParam"]).values())
    return list(received.params["TemplateParamSet"])


def test_a_checkin_reaches_the_provider_signed_and_its_answer_and_report_are_kept(
    sqlite_url: str, provider: tuple[str, Stub]
) -> None:
    name, stub = provider
    db, service, channel = setup(sqlite_url, name, stub)
    due(db, "tp-1", schedule.CHECKIN)
    service.dispatch_once()
    [sent] = stub.wait_sends(1)
    assert stub.bad_signatures == 0
    if name == "aliyun":
        assert sent.params["PhoneNumbers"] == "13800138000"
        assert (sent.params["SignName"], sent.params["TemplateCode"]) == ("示例科技", "SMS_CHECKIN")
        assert sent.params["OutId"] == "tp-1"
    else:
        assert sent.params["PhoneNumberSet"] == [PHONE]
        assert (sent.params["SignName"], sent.params["TemplateId"]) == ("示例科技", "SMS_CHECKIN")
        assert sent.params["SessionContext"] == "tp-1"
    employer, link = template_params(name, sent)
    assert employer == "示例科技" and link.startswith("http://127.0.0.1:1/v1/replies/")
    tp = row(db, "tp-1")
    assert (tp.state, tp.channel) == ("sent", "sms")
    [proof] = sends(db, "tp-1")
    assert proof.outcome == "accepted" and proof.message_ref and proof.request_id
    assert proof.answer == sent.answer  # the provider's whole answer, as received
    # the delivery report, pulled through the SDK
    assert channel.pull_reports() == 0 or name == "tencent"
    stub.delivered.add(proof.message_ref)
    assert channel.pull_reports() == 1
    [proof] = sends(db, "tp-1")
    assert proof.report_status == "delivered" and proof.report_at is not None
    assert proof.report is not None and proof.report["SerialNo" if name == "tencent" else "OutId"]
    # what HR's timeline and the legal dossier read (notices/touchpoints.json)
    from offerseal.shared.auth import Principal

    shown = service.candidates.touchpoint(Principal("k", "legal", "acme"), "tp-1")
    [sms] = shown["sms"]
    assert sms["answer"] == sent.answer and sms["report_status"] == "delivered"
    assert sms["phone"] == PHONE and sms["provider"] == name


def test_a_throttled_answer_moves_the_touchpoint_and_it_is_sent_later(
    sqlite_url: str, provider: tuple[str, Stub]
) -> None:
    name, stub = provider
    db, service, _ = setup(sqlite_url, name, stub)
    stub.script.append("throttled")
    due(db, "tp-1", schedule.CHECKIN)
    before = dt.datetime.now(dt.UTC)
    service.dispatch_once()
    stub.wait_sends(1)
    tp = row(db, "tp-1")
    assert tp.state == "planned" and tp.attempts == 0  # moved, not a failed attempt
    moved_to = tp.due_at if tp.due_at.tzinfo else tp.due_at.replace(tzinfo=dt.UTC)
    assert moved_to >= before + dt.timedelta(seconds=30)
    with db.sessions() as session:
        attempt = session.execute(select(DeliveryAttempt)).scalars().one()
    assert attempt.outcome == "moved" and "moved to" in (attempt.detail or "")
    assert [s.outcome for s in sends(db, "tp-1")] == ["throttled"]
    # the moment comes: it goes
    with db.transaction() as session:
        session.execute(
            update(Touchpoint)
            .where(Touchpoint.id == "tp-1")
            .values(due_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        )
    service.dispatch_once()
    stub.wait_sends(2)
    assert row(db, "tp-1").state == "sent"
    assert [s.outcome for s in sends(db, "tp-1")] == ["throttled", "accepted"]
    assert stub.bad_signatures == 0


def test_an_invalid_number_fails_the_touchpoint(
    sqlite_url: str, provider: tuple[str, Stub]
) -> None:
    name, stub = provider
    db, service, _ = setup(sqlite_url, name, stub)
    stub.script.append("invalid_number")
    due(db, "tp-1", schedule.CHECKIN)
    service.dispatch_once()
    stub.wait_sends(1)
    tp = row(db, "tp-1")
    assert tp.state == "failed"
    assert ("IncorrectPhoneNumber" if name == "tencent" else "MOBILE_NUMBER_ILLEGAL") in (
        tp.detail or ""
    )
    [proof] = sends(db, "tp-1")
    assert proof.outcome == "invalid"


def test_a_number_that_is_not_e164_never_reaches_the_provider(
    sqlite_url: str, provider: tuple[str, Stub]
) -> None:
    name, stub = provider
    db, service, _ = setup(sqlite_url, name, stub, phone="+86 123")
    due(db, "tp-1", schedule.CHECKIN)
    service.dispatch_once()
    tp = row(db, "tp-1")
    assert tp.state == "failed" and "phone number" in (tp.detail or "")
    assert stub.sends() == []


def test_a_wrong_key_secret_is_refused_by_the_signature_check_and_retried(
    sqlite_url: str, provider: tuple[str, Stub]
) -> None:
    name, stub = provider
    db, service, _ = setup(sqlite_url, name, stub, secret="not-the-secret")
    due(db, "tp-1", schedule.CHECKIN)
    service.dispatch_once()
    assert stub.bad_signatures == 1 and stub.sends() == []
    tp = row(db, "tp-1")
    assert tp.state == "planned" and tp.attempts == 1  # an ordinary retry, with backoff
    assert "Signature" in (tp.detail or "")


def test_a_code_goes_by_sms_to_the_phone_its_message_names_and_the_next_waits(
    sqlite_url: str, provider: tuple[str, Stub]
) -> None:
    """The one-time code goes to the offer's contact (given in the message), not to a number
    notify had; a second code at once is moved by the limits before it is sent (Aliyun: one
    a minute; Tencent: the same content once in 30 s), and the code itself is kept nowhere."""
    name, stub = provider
    db, service, channel = setup(sqlite_url, name, stub, phone=None)
    expires = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)).isoformat()
    offer_phone = "+86 139 0013 9000"
    data = {"code": "428913", "channel": "sms", "to": offer_phone, "expires_at": expires}
    due(db, "code-1", schedule.CODE, data)
    service.dispatch_once()
    [sent] = stub.wait_sends(1)
    assert template_params(name, sent) == ["428913"]
    assert (sent.params.get("PhoneNumbers") or sent.params["PhoneNumberSet"][0]).endswith(
        "13900139000"
    )
    assert row(db, "code-1").state == "sent"
    assert "428913" not in json.dumps(row(db, "code-1").data)
    assert "428913" not in json.dumps(sends(db, "code-1")[0].answer)
    next_at = channel.next_code_at(offer_phone)
    if name == "aliyun":  # one verification code a minute per number
        assert next_at >= dt.datetime.now(dt.UTC) + dt.timedelta(seconds=50)
    else:  # Tencent limits the same content only: a new code may go at once
        assert next_at <= dt.datetime.now(dt.UTC)
    # the same code again (the candidate asked twice): moved before reaching the provider
    due(db, "code-2", schedule.CODE, data)
    service.dispatch_once()
    tp = row(db, "code-2")
    assert tp.state == "planned" and "SMS limit" in (tp.detail or "")
    assert len(stub.sends()) == 1


def test_a_tenant_sets_its_own_sign_name_and_templates(
    sqlite_url: str, provider: tuple[str, Stub]
) -> None:
    """`PUT /v1/sms`'s service: the tenant's template for a kind is used, the deployment's
    default for the others; bad values are refused naming the field."""
    from offerseal.shared.auth import Principal
    from offerseal.shared.errors import ValidationFailed

    name, stub = provider
    db, service, _ = setup(sqlite_url, name, stub)
    hr = Principal("key-1", "hr", "acme")
    shown = service.sms.put(hr, {"sign_name": "艾克米", "templates": {"checkin": "SMS_OWN"}})
    assert shown["provider"] == name and shown["templates"] == {"checkin": "SMS_OWN"}
    assert shown["defaults"]["templates"] == TEMPLATES
    assert shown["parameters"]["checkin"] == ["employer", "link"]
    for bad, field in (
        ({"sign_name": "x"}, "sign_name"),
        ({"templates": {"nonsense": "SMS_1"}}, "templates.nonsense"),
        ({"templates": {"code": "SMS 1; drop"}}, "templates.code"),
    ):
        with pytest.raises(ValidationFailed) as refused:
            service.sms.put(hr, bad)
        assert field in str(refused.value.extra) + str(refused.value)
    due(db, "tp-1", schedule.CHECKIN)
    service.dispatch_once()
    [sent] = stub.wait_sends(1)
    assert "SMS_OWN" in json.dumps(sent.params) and "艾克米" in json.dumps(
        sent.params, ensure_ascii=False
    )


class RecordingMail:
    name = "email"

    def __init__(self) -> None:
        self.sent: list[Any] = []

    def send(self, out: Any) -> str:
        self.sent.append(out)
        return "e-mail recorded"


def test_the_candidate_picks_email_sms_or_both_for_reminders(
    sqlite_url: str, provider: tuple[str, Stub]
) -> None:
    """Through the portal's preferences: both sends the check-in by e-mail and an SMS copy
    (its own attempt); SMS alone sends it by SMS, and what SMS cannot carry (no approved
    template) goes by e-mail instead."""
    from offerseal.shared.errors import ValidationFailed
    from offerseal.shared.links import PURPOSE_SIGN, Link

    name, stub = provider
    db, service, _ = setup(sqlite_url, name, stub)
    mail = RecordingMail()
    service.dispatcher.channels["email"] = mail
    with db.transaction() as session:
        candidate = session.get(NotifyCandidate, ("acme", "cand-1"))
        assert candidate is not None
        candidate.email = "cand@example.com"
    signer = service.replies.links
    token = signer.issue(
        Link("acme", "ag-1", "cand-1", PURPOSE_SIGN, int(dt.datetime.now().timestamp()) + 600)
    )
    assert service.inbox.set_reminders(token, ["sms", "email"]) == {"reminders": ["email", "sms"]}
    assert service.inbox.view(token)["reminders"] == ["email", "sms"]
    with pytest.raises(ValidationFailed):
        service.inbox.set_reminders(token, [])
    due(db, "tp-both", schedule.CHECKIN)
    service.dispatch_once()
    stub.wait_sends(1)
    assert [o.touchpoint_id for o in mail.sent] == ["tp-both"]
    tp = row(db, "tp-both")
    assert (tp.state, tp.channel) == ("sent", "email")
    with db.sessions() as session:
        attempts = {
            (a.channel, a.outcome)
            for a in session.execute(
                select(DeliveryAttempt).where(DeliveryAttempt.touchpoint_id == "tp-both")
            ).scalars()
        }
    assert attempts == {("sms", "sent"), ("email", "sent")}
    # SMS only: by SMS; a kind without an approved template (weekly update) by e-mail
    service.inbox.set_reminders(token, ["sms"])
    due(db, "tp-sms", schedule.CHECKIN)
    due(db, "tp-weekly", schedule.WEEKLY_UPDATE)
    service.dispatch_once()
    stub.wait_sends(2)
    assert row(db, "tp-sms").channel == "sms"
    assert row(db, "tp-weekly").channel == "email"


OWN_KEY_ID, OWN_SECRET = "LTAI-tenant-own", "tenant-own-secret-0123456789abcd"


def test_a_tenant_brings_its_own_account_sealed_and_never_shown(
    sqlite_url: str, provider: tuple[str, Stub]
) -> None:
    """`PUT /v1/sms` with `account`: the tenant's own provider credentials are checked, sealed
    (the secret is in no answer and not in the database in clear), and its messages and
    delivery reports go through its account with its own approvals, signed with its key; with
    the account removed the deployment's applies again. Bad values are refused by field."""
    from offerseal.notify.alerts import HookSealer
    from offerseal.notify.sms import SmsAccounts
    from offerseal.shared.auth import Principal
    from offerseal.shared.errors import ValidationFailed

    name, deployment = provider
    with serve(name, key_id=OWN_KEY_ID, secret=OWN_SECRET) as own:
        db, service, channel = setup(sqlite_url, name, deployment)
        channel.accounts = SmsAccounts(
            HookSealer(b"m" * 32, info=SmsAccounts.INFO), endpoints=(own.url,)
        )
        hr = Principal("key-1", "hr", "acme")
        account: dict[str, Any] = {
            "provider": name,
            "access_key_id": OWN_KEY_ID,
            "access_key_secret": OWN_SECRET,
            "endpoint": own.url,
        }
        if name == "tencent":
            account["sdk_app_id"] = "1400009999"
        for bad, field in (
            ({**account, "provider": "twilio"}, "account.provider"),
            ({**account, "access_key_secret": "short"}, "account.access_key_secret"),
            ({**account, "endpoint": "http://evil.example:8080"}, "account.endpoint"),
            (
                {**account, "endpoint": "https://dysmsapi.aliyuncs.com.evil.example"},
                "account.endpoint",
            ),
            (
                {k: v for k, v in account.items() if k != "sdk_app_id"}
                if name == "tencent"
                else {**account, "sdk_app_id": "1400009999"},
                "account.sdk_app_id",
            ),
        ):
            with pytest.raises(ValidationFailed) as refused:
                service.sms.put(hr, {"sign_name": "艾克米", "account": bad})
            assert str(refused.value).startswith(field + ":"), (bad, str(refused.value))
        shown = service.sms.put(
            hr, {"sign_name": "艾克米", "templates": {"checkin": "SMS_OWN"}, "account": account}
        )
        assert shown["account"]["access_key_secret"] == "set"
        assert shown["account"]["access_key_id"] == "LTAI…" and shown["provider"] == name
        assert OWN_SECRET not in json.dumps(shown) and OWN_KEY_ID not in json.dumps(shown)
        assert OWN_SECRET not in json.dumps(service.sms.get(hr))
        with db.sessions() as session:
            stored = session.get(TenantSms, "acme")
            assert stored is not None and stored.sealed and OWN_SECRET not in stored.sealed
        # A PUT that leaves the account out keeps it (its secret cannot be read back).
        service.sms.put(hr, {"sign_name": "艾克米", "templates": {"checkin": "SMS_OWN"}})
        assert service.sms.get(hr)["account"]["access_key_secret"] == "set"

        due(db, "tp-own", schedule.CHECKIN)
        service.dispatch_once()
        [sent] = own.wait_sends(1)
        assert own.bad_signatures == 0 and deployment.sends() == []
        params = json.dumps(sent.params, ensure_ascii=False)
        assert "SMS_OWN" in params and "艾克米" in params
        if name == "tencent":
            assert sent.params["SmsSdkAppId"] == "1400009999"
        assert row(db, "tp-own").channel == "sms"
        [proof] = sends(db, "tp-own")
        own.delivered.add(proof.message_ref)
        assert channel.pull_reports() == 1  # asked of the tenant's account
        assert sends(db, "tp-own")[0].report_status == "delivered"
        # The tenant's own account carries only its own approvals: no template for the
        # invitation there, so SMS cannot carry it (the deployment's SMS_INVITE is not its).
        assert channel.can_send("acme", "checkin") and not channel.can_send("acme", "invitation")

        # Sealed under a master key no longer configured: no SMS in its name, and no crash.
        real = channel.accounts
        channel.accounts = SmsAccounts(HookSealer(b"x" * 32, info=SmsAccounts.INFO))
        assert not channel.can_send("acme", "checkin")
        channel.accounts = real

        # Removed: the deployment's account (and its templates under the tenant's) again.
        removed = service.sms.put(hr, {"sign_name": "艾克米", "account": None})
        assert removed["account"] is None and removed["provider"] == name
        due(db, "tp-deployment", schedule.CHECKIN)
        service.dispatch_once()
        [back] = deployment.wait_sends(1)
        assert "SMS_CHECKIN" in json.dumps(back.params) and len(own.sends()) == 1
        assert deployment.bad_signatures == 0

"""The demo's SMS: notify's real Aliyun SDK client sends to a LOCAL STAND-IN of Aliyun's SMS
API on 127.0.0.1 (`sms_standin.py`, which checks each request's ACS3-HMAC-SHA256 signature as
Aliyun documents it); no message leaves the machine. The candidate asks for reminders by e-mail
and SMS; what reached the stand-in is printed and kept as JSON lines."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import requests

from ..shared.config import Settings
from .common import say
from .sms_standin import Stub

KEY_ID, SECRET = "LTAI-demo-local-standin", "demo-secret-of-the-local-standin"
PHONE = "+8613800138000"
TEMPLATES = {
    kind: f"SMS_DEMO_{kind.upper()}"
    for kind in (
        "invitation",
        "checkin",
        "milestone_request",
        "amendment",
        "weekly_update",
        "welcome_package",
        "closing",
        "code",
    )
}


def sms_settings(settings: Settings, stub: Stub) -> Settings:
    """The deployment's SMS account pointed at the local stand-in."""
    return settings.with_(
        sms_provider="aliyun",
        sms_access_key_id=KEY_ID,
        sms_access_key_secret=SECRET,
        sms_endpoint=stub.url,
        sms_sign_name="艾克米演示",
        sms_templates=",".join(f"{k}={v}" for k, v in TEMPLATES.items()),
        sms_report_interval=1.0,
    )


def reminders_by_sms_too(notify: str, hr: dict[str, str], candidate_ref: str) -> None:
    """HR records the candidate's choice: reminders by e-mail and SMS (the portal offers the
    same choice to the candidate)."""
    say("the candidate wants reminders by e-mail and SMS too (their phone is in the offer)")
    url = f"{notify}/v1/candidates/{candidate_ref}/preferences"
    deadline = time.monotonic() + 30
    while True:  # notify learns of the candidate from the offer's message
        answer = requests.put(url, headers=hr, json={"channels": ["email", "sms"]}, timeout=30)
        if answer.status_code != 404 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    answer.raise_for_status()
    print(f"  reminders: {answer.json()['channels']}, phone {answer.json()['phone']}")


def show_sms(stub: Stub, out: Path) -> bool:
    """What reached the stand-in, printed and kept; True when at least one SMS went and every
    request was signed."""
    say(
        "the SMS, as the LOCAL STAND-IN of Aliyun's SMS API received them (not Aliyun: "
        f"{stub.url} on this machine, which checks each request's ACS3-HMAC-SHA256 signature)"
    )
    sent = stub.sends()
    out.mkdir(parents=True, exist_ok=True)
    kept = out / "sms.jsonl"
    with kept.open("w", encoding="utf-8") as f:
        for received in sent:
            record: dict[str, Any] = {
                "phone": received.params.get("PhoneNumbers"),
                "sign_name": received.params.get("SignName"),
                "template": received.params.get("TemplateCode"),
                "params": json.loads(received.params.get("TemplateParam") or "{}"),
                "answer": received.answer,
            }
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    for received in sent[:3]:
        p = received.params
        print(f"  {p.get('TemplateCode')} to {p.get('PhoneNumbers')}: {p.get('TemplateParam')}")
    print(
        f"  {len(sent)} SMS accepted by the stand-in, {stub.bad_signatures} with a bad "
        f"signature; all of them in {kept.resolve()}"
    )
    print(
        "  each one's provider answer and delivery report are on the candidate's timeline "
        "(console, or GET /v1/candidates/cand-042/touchpoints?attempts=true on notify)"
    )
    return bool(sent) and stub.bad_signatures == 0

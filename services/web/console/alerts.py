"""The settings page for HR alerts in the team's chat (`/console/alerts`, hr and admin): the
tenant's DingTalk, WeCom and Feishu group robots set or replaced, their language, and a test
message. Everything goes through notify's HTTP API (`/v1/alerts`) with the person's session;
secrets are never shown back (notify returns only whether a robot is signed), so a field left
empty keeps what is stored."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Response, redirect, request

from ...shared.auth import WRITE_ROLES
from ...shared.errors import OfferSealError
from ...shared.guards import roles
from .common import blp, page
from .contracts_client import notify_client

PLATFORMS = ("dingtalk", "wecom", "feishu")
SIGNED = ("dingtalk", "feishu")
OUTCOMES = ("accepted", "waiting", "refused", "throttled", "unavailable")


def _tested(text: str) -> list[tuple[str, str, str]]:
    """`dingtalk:accepted:0,feishu:refused:19021` from the redirect after a test, kept to
    known platforms and outcomes (it is shown back)."""
    out = []
    for part in text.split(",")[:3]:
        platform, _, rest = part.partition(":")
        outcome, _, code = rest.partition(":")
        if platform in PLATFORMS and outcome in OUTCOMES:
            out.append((platform, outcome, "".join(c for c in code if c.isalnum())[:12]))
    return out


def _form(
    current: dict[str, Any],
    values: dict[str, str],
    errors: list[tuple[str, str]],
    status: int = 200,
) -> Response:
    return page(
        "console/alerts.html",
        status=status,
        nav="alerts",
        platforms=PLATFORMS,
        signed=SIGNED,
        current=current,
        values=values,
        errors=errors,
        error_fields={field for field, _ in errors},
        done=request.args.get("done") if request.args.get("done") == "saved" else None,
        tested=_tested(str(request.args.get("tested", ""))),
    )


@blp.get("/alerts")
@roles(*WRITE_ROLES)
def alerts_form() -> Response:
    current = notify_client().alerts()
    return _form(current, {"language": str(current.get("language") or "zh-CN")}, [])


def _field_of(name: str) -> tuple[str, str]:
    """notify's field (`dingtalk.url`) as the form's field and its message."""
    platform, _, part = name.partition(".")
    if platform in PLATFORMS and part in ("url", "secret"):
        return f"{platform}_{part}", f"console.alerts.error.{platform}.{part}"
    return "alerts-form", "console.alerts.error.other"


@blp.post("/alerts")
@roles(*WRITE_ROLES)
def alerts_save() -> Response:
    client = notify_client()
    current = client.alerts()
    form = request.form
    values = {
        f"{p}_{part}": str(form.get(f"{p}_{part}", "")).strip()[:500]
        for p in PLATFORMS
        for part in ("url", "secret")
    }
    values.update({f"{p}_remove": "on" for p in PLATFORMS if form.get(f"{p}_remove")})
    values["language"] = "en" if form.get("language") == "en" else "zh-CN"
    errors: list[tuple[str, str]] = []
    body: dict[str, Any] = {"language": values["language"]}
    for p in PLATFORMS:
        url, secret, is_set = values[f"{p}_url"], values[f"{p}_secret"], p in current
        if values.get(f"{p}_remove"):
            continue  # left out: removed
        if not url and not secret and not is_set:
            continue  # nothing set, nothing given
        if not url and not is_set:
            errors.append((f"{p}_url", f"console.alerts.error.{p}.url"))
            continue
        if url and p in SIGNED and not secret:
            errors.append((f"{p}_secret", f"console.alerts.error.{p}.secret"))
            continue
        robot: dict[str, str] = {}
        if url:
            robot["url"] = url
        if secret:
            robot["secret"] = secret
        body[p] = robot
    if not errors:
        try:
            client.set_alerts(body)
        except OfferSealError as exc:
            named = [str(e.get("field", "")) for e in exc.extra.get("errors") or []]
            errors = [_field_of(name) for name in named] or [_field_of("")]
        else:
            return redirect("/console/alerts?done=saved", 303)  # type: ignore[return-value]
    values = {k: v for k, v in values.items() if not k.endswith("_secret")}  # never shown back
    return _form(current, values, errors, 422)


@blp.post("/alerts/test")
@roles(*WRITE_ROLES)
def alerts_test() -> Response:
    try:
        results = notify_client().test_alerts()
    except OfferSealError:
        current = notify_client().alerts()
        return _form(
            current,
            {"language": str(current.get("language") or "zh-CN")},
            [("send-test", "console.alerts.error.none")],
            422,
        )
    tested = ",".join(
        f"{p}:{r.get('outcome', '')}:{r.get('code', '')}"
        for p, r in results.items()
        if isinstance(r, dict)
    )
    return redirect("/console/alerts?" + urlencode({"tested": tested}), 303)  # type: ignore[return-value]

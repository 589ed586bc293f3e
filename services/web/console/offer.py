"""The offer form: HR offers an intent agreement from the console. The form is read into the
very request the API takes (`CreateAgreement`, amounts in minor units) and goes through the
same service layer, so the 30% cap and the date rules refuse exactly what the API refuses; the
page shows the cap as the salary is typed (a small script) and again beside the field."""

from __future__ import annotations

import contextlib
import decimal
import re
import uuid
from typing import Any

import marshmallow as ma
from flask import Response, redirect, request

from ...contracts.domain.agreements import damages_cap, within_cap
from ...contracts.schemas import CreateAgreement
from ...shared.auth import WRITE_ROLES
from ...shared.errors import OfferSealError
from ...shared.guards import roles
from ...shared.problems import status_of
from .. import i18n
from .common import blp, language, money, page, settings
from .contracts_client import contracts_client

MILESTONE_KINDS = (
    "expected_resignation_date",
    "resignation_submitted",
    "resignation_accepted",
    "handover_started",
    "handover_halfway",
    "last_working_day_fixed",
    "social_insurance_stop",
)
TEXT_FIELDS = (
    "candidate_ref",
    "candidate_address",
    "email",
    "timezone",
    "language",
    "employer_name",
    "position",
    "currency",
    "monthly_salary",
    "liquidated_damages",
    "start_date",
    "offer_expires_at",
    "grace_days",
    "replacement_days",
)
_REQUEST_ID = re.compile(r"[0-9a-f]{32}")
# The API's field names, as the form names them.
FORM_FIELD = {
    "candidate_contact.email": "email",
    "candidate_contact.timezone": "timezone",
    "candidate_contact.language": "language",
    "start_at": "start_date",
    "start_date": "start_date",
    "offer_expires_at": "offer_expires_at",
}


def _minor(text: str) -> int | str:
    """`12,345.67` -> 1234567 (minor units); the text unchanged when it is not an amount, so the
    schema names the field."""
    try:
        value = decimal.Decimal(text.replace(",", "").strip())
    except decimal.InvalidOperation:
        return text
    cents = value * 100
    if cents != cents.to_integral_value() or not value.is_finite():
        return text
    return int(cents)


def _request_body(form: dict[str, str]) -> dict[str, Any]:
    milestones = [
        {"kind": kind, "due": form[f"due_{kind}"]}
        for kind in MILESTONE_KINDS
        if form.get(f"due_{kind}")
    ]
    body: dict[str, Any] = {
        "candidate_ref": form["candidate_ref"],
        "candidate_address": form["candidate_address"],
        "candidate_contact": {
            "email": form["email"] or None,
            "timezone": form["timezone"] or None,
            "language": form["language"] or None,
        },
        "employer_name": form["employer_name"],
        "position": form["position"],
        "currency": form["currency"],
        "monthly_salary": _minor(form["monthly_salary"]),
        "liquidated_damages": _minor(form["liquidated_damages"]),
        "start_date": form["start_date"],
        "offer_expires_at": form["offer_expires_at"],
        "grace_days": form["grace_days"] or 3,
        "milestones": milestones,
        "language": form["language"] or "zh-CN",
        "non_compete": form.get("non_compete") == "on",
        "project_wrap_up": form.get("project_wrap_up") == "on",
        "replacement_days": form["replacement_days"] or 0,
    }
    for name in ("grace_days", "replacement_days"):
        with contextlib.suppress(TypeError, ValueError):
            body[name] = int(body[name])
    return body


def _errors(messages: Any, prefix: str = "") -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            out.extend(_errors(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        out.extend((_form_field(prefix), m) for m in messages)
    else:
        out.append((_form_field(prefix), str(messages)))
    return out


def _form_field(api_field: str) -> str:
    if api_field.startswith("milestones"):
        return "milestones"
    return FORM_FIELD.get(api_field, api_field.split(".")[0])


def _form(values: dict[str, str], errors: list[tuple[str, str]], status: int = 200) -> Response:
    salary = _minor(values.get("monthly_salary", ""))
    cap = damages_cap(salary) if isinstance(salary, int) and salary > 0 else None
    return page(
        "console/offer.html",
        status=status,
        nav="offer",
        values=values,
        errors=errors,
        error_fields={field for field, _ in errors},
        milestone_kinds=MILESTONE_KINDS,
        cap=cap,
    )


REQUIRED = (
    "candidate_ref",
    "candidate_address",
    "employer_name",
    "position",
    "currency",
    "monthly_salary",
    "liquidated_damages",
    "start_date",
    "offer_expires_at",
)


def _form_errors(form: dict[str, str]) -> list[tuple[str, str]]:
    """What the form says in the person's language before the API's schema looks: empty
    fields, amounts that are not amounts, and damages above the cap (the same integer rule as
    the contract)."""
    t = i18n.translator(language())
    errors = [
        (name, t("console.offer.error.required", field=t(f"console.offer.{name}")))
        for name in REQUIRED
        if not form.get(name)
    ]
    salary, damages = _minor(form["monthly_salary"]), _minor(form["liquidated_damages"])
    for name, value in (("monthly_salary", salary), ("liquidated_damages", damages)):
        if form.get(name) and not isinstance(value, int):
            errors.append((name, t("console.offer.error.amount")))
    if isinstance(salary, int) and isinstance(damages, int) and not within_cap(damages, salary):
        cap = money(damages_cap(salary), form.get("currency", ""))
        errors.append(("liquidated_damages", t("console.offer.cap.over", cap=cap)))
    return errors


def _defaults() -> dict[str, str]:
    return {
        # Sent back as the Idempotency-Key: a form submitted twice offers once.
        "request_id": uuid.uuid4().hex,
        "timezone": settings().default_timezone,
        "language": "zh-CN",
        "currency": "CNY",
        "grace_days": "3",
        "replacement_days": "0",
    }


@blp.get("/offer")
@roles(*WRITE_ROLES)
def offer_form() -> Response:
    return _form(_defaults(), [])


@blp.post("/offer")
@roles(*WRITE_ROLES)
def offer_submit() -> Response:
    form = {name: request.form.get(name, "").strip()[:400] for name in TEXT_FIELDS}
    for kind in MILESTONE_KINDS:
        form[f"due_{kind}"] = request.form.get(f"due_{kind}", "").strip()[:40]
    for flag in ("non_compete", "project_wrap_up"):
        form[flag] = "on" if request.form.get(flag) else ""
    request_id = request.form.get("request_id", "")
    form["request_id"] = request_id if _REQUEST_ID.fullmatch(request_id) else uuid.uuid4().hex
    first = _form_errors(form)
    if first:
        return _form(form, first, 422)
    body = _request_body(form)
    try:
        CreateAgreement().load(body)  # refused here with the form's own words
    except ma.ValidationError as exc:
        return _form(form, _errors(exc.messages), 422)
    try:  # HR's one offer by hand waits for its block: its page shows it on chain
        created = contracts_client().create(body, form["request_id"])
    except OfferSealError as exc:
        errors = exc.extra.get("errors") or [{"field": "form", "message": exc.detail}]
        shown = [(_form_field(e["field"]), e["message"]) for e in errors]
        return _form(form, shown, status_of(exc))
    return redirect(f"/console/agreements/{created['id']}?done=offered", 303)  # type: ignore[return-value]

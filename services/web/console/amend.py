"""New dates from the timeline: HR changes the start date and the dates of milestones not yet
confirmed, in the candidate's calendar (their time zone, as the API takes them). The form goes
through the amendments service layer the API uses (`POST /v1/agreements/{id}/amendments`):
while the offer is unsigned the new dates are applied on chain at once; once the candidate has
signed, it is a proposal they receive by e-mail and sign, and nothing changes until then."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Response, redirect, request
from sqlalchemy import select

from ...contracts.domain.agreements import DUE_TIME, START_TIME, at_local
from ...contracts.models import Agreement, AgreementMilestone
from ...shared.auth import WRITE_ROLES
from ...shared.errors import NotFound, OfferSealError
from ...shared.guards import roles
from ...shared.models import aware
from ...shared.problems import status_of
from . import queries
from .common import blp, caller, db, page
from .contracts_client import contracts_client

AMENDABLE = ("offered", "committed")


def _zone(a: Agreement) -> dt.tzinfo:
    try:
        return ZoneInfo(str((a.contact or {}).get("timezone") or "UTC"))
    except (ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def _load(agreement_id: str) -> tuple[Agreement, list[dict[str, Any]]]:
    """The agreement (the caller's tenant's, else 404) and its milestones as the form shows
    them: index, kind, due date in the candidate's calendar, confirmed or not."""
    with db().sessions() as session:
        a = queries.load_agreement(session, caller(), agreement_id)
        zone = _zone(a)
        milestones = [
            {
                "index": m.idx,
                "kind": m.kind,
                "due": aware(m.due_at).astimezone(zone).date().isoformat(),
                "confirmed": m.confirmed_at is not None,
            }
            for m in session.execute(
                select(AgreementMilestone)
                .where(AgreementMilestone.agreement_id == a.id)
                .order_by(AgreementMilestone.idx)
            ).scalars()
        ]
    return a, milestones


def _form(
    a: Agreement,
    milestones: list[dict[str, Any]],
    values: dict[str, str],
    errors: list[tuple[str, str]],
    status: int = 200,
) -> Response:
    return page(
        "console/amend.html",
        status=status,
        a=a,
        milestones=milestones,
        values=values,
        errors=errors,
        start=aware(a.start_at).astimezone(_zone(a)).date().isoformat(),
    )


def _date(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text) if len(text) == 10 else None
    except ValueError:
        return None


@blp.get("/agreements/<string:agreement_id>/amend")
@roles(*WRITE_ROLES)
def amend_form(agreement_id: str) -> Response:
    a, milestones = _load(agreement_id)
    if a.state not in AMENDABLE:
        raise NotFound(f"the agreement is {a.state}: its dates cannot change")
    return _form(a, milestones, {}, [])


@blp.post("/agreements/<string:agreement_id>/amend")
@roles(*WRITE_ROLES)
def amend(agreement_id: str) -> Response:
    a, milestones = _load(agreement_id)
    if a.state not in AMENDABLE:
        raise NotFound(f"the agreement is {a.state}: its dates cannot change")
    zone = _zone(a)
    form = request.form
    values = {
        key: str(form.get(key, "")).strip()[:20]
        for key in ["start_date", *(f"due_{m['index']}" for m in milestones)]
    }
    values["reason"] = str(form.get("reason", "")).strip()[:1000]
    errors: list[tuple[str, str]] = []
    current_start = aware(a.start_at).astimezone(zone).date().isoformat()
    start_at = None
    if values["start_date"] and values["start_date"] != current_start:
        day = _date(values["start_date"])
        if day is None:
            errors.append(("start_date", "console.amend.error.date"))
        else:
            start_at = at_local(day, ZoneInfo(str(zone)), START_TIME)
    changed: list[tuple[int, dt.datetime]] = []
    for m in milestones:
        field = f"due_{m['index']}"
        if m["confirmed"] or not values[field] or values[field] == m["due"]:
            continue
        day = _date(values[field])
        if day is None:
            errors.append((field, "console.amend.error.date"))
        else:
            changed.append((m["index"], at_local(day, ZoneInfo(str(zone)), DUE_TIME)))
    if not values["reason"]:
        errors.append(("reason", "console.amend.error.reason"))
    if not errors and start_at is None and not changed:
        errors.append(("start_date", "console.amend.error.nothing"))
    if errors:
        return _form(a, milestones, values, errors, 422)
    try:
        result = contracts_client().amend(
            agreement_id,
            {
                "start_date": start_at.isoformat() if start_at else None,
                "milestones": [{"index": i, "due": due.isoformat()} for i, due in changed],
                "reason": values["reason"],
            },
        )
    except NotFound:
        raise
    except OfferSealError as exc:
        field, message = "action", exc.detail
        for error in exc.extra.get("errors") or []:
            name = str(error.get("field", ""))
            message = str(error.get("message") or message)
            if name == "start_date":
                field = "start_date"
            elif name.startswith("milestones.") and name.endswith(".due"):
                position = int(name.split(".")[1])
                if 0 <= position < len(changed):
                    field = f"due_{changed[position][0]}"
        return _form(a, milestones, values, [(field, message)], status_of(exc))
    done = "amend_applied" if result.get("state") in {"pending", "applied"} else "amend_proposed"
    return redirect(f"/console/agreements/{agreement_id}?done={done}", 303)  # type: ignore[return-value]

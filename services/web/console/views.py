"""The console's pages: the board (and its JSON for updates without a reload), one timeline per
candidate with its actions (a confirmation page before each), the offer form, and the weekly
report with its CSV. Every view declares its roles; the shared guards check them and the tenant
comes from the caller, exactly as for the APIs."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any
from urllib.parse import urlencode

from flask import Response, jsonify, redirect, render_template, request

from ...contracts.domain.agreements import damages_cap
from ...contracts.dossier import DOSSIER_ROLES
from ...shared.auth import READ_ROLES, WRITE_ROLES
from ...shared.errors import NotFound, OfferSealError
from ...shared.guards import roles
from ...shared.models import aware
from ...shared.problems import status_of
from .. import i18n
from . import board as board_data
from . import checkpoints as cp
from . import queries
from . import report as weekly
from .common import blp, caller, db, language, now, page
from .contracts_client import contracts_client

ACTIONS = ("start", "withdraw", "cancel", "breach", "revoke")
MAX_QUERY = 200


def _filters() -> cp.Filters:
    args = request.args

    def arg(name: str, allowed: tuple[str, ...] | None = None) -> str:
        value = str(args.get(name, "")).strip()[:MAX_QUERY]
        return value if allowed is None or value in allowed else ""

    return cp.Filters(
        risk=arg("risk", ("red", "yellow", "blue")),
        state=arg("state", cp.ACTIVE_STATES),
        week=arg("week"),
        position=arg("position"),
        q=arg("q"),
        sort=arg("sort", tuple(cp.SORTS)) or "urgency",
    )


PAGE_SIZE = 50


def _page_number() -> int:
    try:
        return int(str(request.args.get("page", "1"))[:6])
    except ValueError:
        return 1


def _board() -> tuple[board_data.Page, cp.Filters, dict[str, Any]]:
    """This page of the chosen rows (50 a page, most urgent first by default), the filters, and
    where this page is; the database filters, sorts and pages the stored summaries."""
    filters = _filters()
    found = board_data.page(db(), caller().tenant, filters, _page_number(), PAGE_SIZE, now())
    number, pages = found.number, found.pages
    query = {k: v for k, v in request.args.items() if k not in {"page", "lang"} and v}
    paging = {
        "page": number,
        "pages": pages,
        "matching": found.matching,
        "previous": urlencode({**query, "page": number - 1}) if number > 1 else None,
        "next": urlencode({**query, "page": number + 1}) if number < pages else None,
    }
    return found, filters, paging


def _rows_html(rows: list[cp.Row]) -> str:
    lang = language()
    return render_template("console/_rows.html", rows=rows, t=i18n.translator(lang), lang=lang)


@blp.get("")
@roles(*READ_ROLES)
def board() -> Response:
    found, filters, paging = _board()
    rows = found.rows
    return page(
        "console/board.html",
        nav="board",
        paging=paging,
        rows=rows,
        rows_html=_rows_html(rows),
        filters=filters,
        total=found.total,
        positions=found.positions,
        weeks=found.weeks,
        checkpoints=cp.CHECKPOINTS,
    )


@blp.get("/board.json")
@roles(*READ_ROLES)
def board_json() -> Response:
    """The rows as data and as the table's HTML, with a fingerprint: the page polls this and
    replaces its rows only when the fingerprint changed."""
    found, _, paging = _board()
    rows = found.rows
    data = [_row_json(r) for r in rows]
    fingerprint = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]
    response = jsonify(
        {
            "fingerprint": fingerprint,
            "count": len(rows),
            "matching": paging["matching"],
            "page": paging["page"],
            "pages": paging["pages"],
            "rows": data,
            "html": _rows_html(rows),
            "generated_at": now().isoformat(),
        }
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.astimezone(dt.UTC).isoformat() if moment is not None else None


def _row_json(r: cp.Row) -> dict[str, Any]:
    return {
        "agreement_id": r.agreement_id,
        "candidate_ref": r.candidate_ref,
        "position": r.position,
        "state": r.state,
        "risk": {"level": r.risk_level, "score": r.risk_score, "reasons": list(r.risk_reasons)},
        "start_at": _iso(r.start_at),
        "days_to_start": r.days_to_start,
        "exposure": {
            "currency": r.currency,
            "liquidated_damages": r.liquidated_damages,
            "monthly_salary": r.monthly_salary,
        },
        "checkpoints": [
            {
                "checkpoint": c.checkpoint,
                "status": c.status,
                "due_at": _iso(c.due_at),
                "done_at": _iso(c.done_at),
                "evidence": c.evidence,
                "received": c.received,
            }
            for c in r.cells
        ],
        "last_answer": r.last_answer,
        "last_answer_at": _iso(r.last_answer_at),
        "next_touchpoint": r.next_touchpoint,
        "next_touchpoint_at": _iso(r.next_touchpoint_at),
    }


# ---- one candidate ---------------------------------------------------------------------------


@blp.get("/agreements/<string:agreement_id>")
@roles(*READ_ROLES)
def agreement(agreement_id: str) -> Response:
    a, cells = queries.agreement_facts(db(), caller(), agreement_id, now())
    t = i18n.translator(language())
    events = [
        {**e, "params": _readable(t, e["params"])}
        for e in queries.timeline(db(), caller(), agreement_id)
    ]
    return page(
        "console/agreement.html",
        a=a,
        cells=cells,
        events=events,
        done=request.args.get("done") if request.args.get("done") in DONE else None,
        can_act=caller().role in WRITE_ROLES,
        can_download=caller().role in DOSSIER_ROLES,
        cap=damages_cap(a.monthly_salary),
    )


# Values in events that are codes, and the catalog prefix that names them for people.
READABLE = {
    "answer": "console.answer.",
    "milestone": "console.milestone.",
    "message_kind": "console.touchpoint.",
    "op": "console.op.",
    "level": "console.risk.",
    "previous": "console.risk.",
    "state": "console.amendment_state.",
}
DONE = (
    "start",
    "withdraw",
    "cancel",
    "breach",
    "revoke",
    "offered",
    "amend_applied",
    "amend_proposed",
)


def _readable(t: Any, params: dict[str, Any]) -> dict[str, Any]:
    out = dict(params)
    for name, prefix in READABLE.items():
        if out.get(name):
            out[name] = t(prefix + str(out[name]))
    return out


def _action_name(action: str, state: str) -> str:
    if action == "withdraw" and state == "offered":
        return "cancel"  # before the candidate signed, the employer cancels alone
    return action


# Which actions the console offers in which state; others are refused before the chain is
# asked. A signed agreement is cancelled only by mutual release, with the candidate's signature
# (the API takes it); the console withdraws it (the employer's breach) or declares a breach.
ALLOWED = {
    "start": ("committed",),
    "withdraw": ("offered", "committed"),
    "cancel": ("offered",),
    "breach": ("committed",),
    "revoke": ("offered", "committed"),
}


def _confirm_page(
    a: Any, action: str, errors: list[tuple[str, str]], status: int = 200
) -> Response:
    """The check page of an action, with what is at stake: for a breach, the damages against
    the 30% cap and the earliest day the contract accepts it."""
    cap = damages_cap(a.monthly_salary)
    start = aware(a.start_at)
    if a.state not in ALLOWED[action] and not errors:
        errors = [("action", f"console.error.not_now.{action}")]
    return page(
        "console/confirm.html",
        status=status,
        a=a,
        action=action,
        chain_action=_action_name(action, a.state),
        errors=errors,
        blocked=a.state not in ALLOWED[action],
        cap=cap,
        share=round(100 * a.liquidated_damages / a.monthly_salary, 1) if a.monthly_salary else 0,
        breach_from=start + dt.timedelta(days=int(a.grace_days or 0)),
    )


@blp.get("/agreements/<string:agreement_id>/<string:action>")
@roles(*WRITE_ROLES)
def confirm(agreement_id: str, action: str) -> Response:
    """The check page before an action that cannot be undone."""
    if action not in ACTIONS:
        raise NotFound(f"no action {action}")
    a, _ = queries.agreement_facts(db(), caller(), agreement_id, now())
    return _confirm_page(a, action, [])


@blp.post("/agreements/<string:agreement_id>/<string:action>")
@roles(*WRITE_ROLES)
def act(agreement_id: str, action: str) -> Response:
    if action not in ACTIONS:
        raise NotFound(f"no action {action}")
    who = caller()
    a, _ = queries.agreement_facts(db(), who, agreement_id, now())
    chain_action = _action_name(action, a.state)
    reason = request.form.get("reason", "").strip()[:200]
    if a.state not in ALLOWED[action]:
        return _confirm_page(a, action, [], 409)
    try:
        if action == "revoke":
            if not reason:
                return _confirm_page(a, action, [("reason", "console.error.reason_missing")], 422)
            contracts_client().revoke_links(agreement_id, reason)
        else:
            contracts_client().transition(agreement_id, chain_action)
    except NotFound:
        raise
    except OfferSealError as exc:
        return _confirm_page(a, action, [("action", exc.detail)], status_of(exc))
    done = "cancel" if chain_action == "cancel" else action
    return redirect(f"/console/agreements/{agreement_id}?done={done}", 303)  # type: ignore[return-value]


# ---- the weekly report -----------------------------------------------------------------------


def _report() -> weekly.Report:
    asked = str(request.args.get("week", ""))[:10]
    try:
        week = weekly.week_of(weekly.week_start(asked)) if asked else weekly.week_of(now())
    except ValueError:
        week = weekly.week_of(now())
    inputs = queries.report_inputs(db(), caller())
    board_rows = board_data.board_rows(db(), caller(), now())
    return weekly.build(
        week, inputs["agreements"], inputs["submitted"], inputs["answers"], board_rows
    )


@blp.get("/report")
@roles(*READ_ROLES)
def report_page() -> Response:
    r = _report()
    t = i18n.translator(language())
    charts = {
        "risk": weekly.bar_chart(
            t("console.report.by_risk"),
            [(t(f"console.risk.{lvl}"), n, f"chart__bar--{lvl}") for lvl, n in r.by_risk.items()],
        ),
        "funnel": weekly.bar_chart(
            t("console.report.funnel"),
            [(t(f"console.funnel.{s}"), n, f"chart__bar--{s}") for s, n in r.funnel.items()],
        ),
        "rates": weekly.column_chart(
            t("console.report.rates"),
            [(w.week[5:], w.rate, "chart__bar--rate") for w in r.rates],
        ),
    }
    start = weekly.week_start(r.week)
    return page(
        "console/report.html",
        nav="report",
        r=r,
        charts=charts,
        percent=weekly.percent,
        previous_week=weekly.week_of(start - dt.timedelta(weeks=1)),
        next_week=weekly.week_of(start + dt.timedelta(weeks=1)),
    )


@blp.get("/report.csv")
@roles(*READ_ROLES)
def report_csv() -> Response:
    r = _report()
    response = Response("\ufeff" + weekly.to_csv(r), mimetype="text/csv")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="offerseal-report-{r.week}.csv"'
    )
    return response

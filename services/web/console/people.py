"""The tenant's people, managed by its admin in the console: who may sign in (invited, active,
disabled), a new account with its one-time set-up link shown once, and disabling an account
(its sessions end at once). The same functions as `offerseal users`."""

from __future__ import annotations

from flask import Response, current_app, redirect, request

from ...shared import users
from ...shared.auth import ROLES
from ...shared.errors import OfferSealError
from ...shared.guards import roles
from ...shared.problems import status_of
from .common import blp, caller, db, page


def _people(**context: object) -> Response:
    status = int(str(context.pop("status", 200)))
    return page(
        "console/people.html",
        status=status,
        nav="people",
        people=users.list_users(db(), caller().tenant),
        roles=ROLES,
        **{"errors": [], "values": {}, "link": None, "done": None, **context},
    )


@blp.get("/people")
@roles("admin")
def people() -> Response:
    done = request.args.get("done")
    return _people(done=done if done == "disabled" else None)


@blp.post("/people")
@roles("admin")
def people_add() -> Response:
    who = caller()
    email = request.form.get("email", "").strip()[:320]
    role = request.form.get("role", "")
    values = {"email": email, "role": role}
    try:
        _, token = users.add_user(db(), email, role, who.tenant, by=who.key_id)
    except OfferSealError as exc:
        field = ((exc.extra.get("errors") or [{}])[0]).get("field", "email")
        key = {
            "email": "console.people.error.email",
            "role": "console.people.error.role",
        }.get(field, "console.people.error.taken")
        return _people(status=status_of(exc), errors=[(field, key)], values=values)
    # From the configured origin, never the request's Host header: a forged Host would
    # otherwise put an attacker's site in the link the admin hands to a new colleague.
    origin = current_app.config["OFFERSEAL_PUBLIC_ORIGIN"]
    link = f"{origin}/console/setup/{token}"
    return _people(status=201, link=link, added=users.normalise_email(email))


@blp.get("/people/<string:user_id>/disable")
@roles("admin")
def person_disable_confirm(user_id: str) -> Response:
    found = [p for p in users.list_users(db(), caller().tenant) if p["id"] == user_id]
    if not found:
        from ...shared.errors import NotFound

        raise NotFound(f"no account {user_id}")
    return page("console/person_disable.html", nav="people", person=found[0])


@blp.post("/people/<string:user_id>/disable")
@roles("admin")
def person_disable(user_id: str) -> Response:
    users.disable_user_by_id(db(), user_id, caller().tenant)
    return redirect("/console/people?done=disabled", 303)  # type: ignore[return-value]

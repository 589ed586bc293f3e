"""What every console page shares: the blueprint, the language, rendering with the signed-in
person and their CSRF token, cookies, and where an anonymous visitor is sent."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, g, redirect, render_template, request

from ...shared.auth import Principal
from ...shared.config import Settings
from ...shared.db import Database
from ...shared.errors import Unauthorized
from ...shared.problems import problem
from ...shared.web import CSRF_FIELD, SESSION_COOKIE, principal
from .. import i18n

blp = Blueprint("console", __name__, url_prefix="/console")
LOGIN_CSRF_COOKIE = "offerseal_login_csrf"
LANG_COOKIE = "offerseal_lang"


def db() -> Database:
    database: Database = current_app.extensions["offerseal.db"]
    return database


def settings() -> Settings:
    value: Settings = current_app.extensions.get("offerseal.settings") or Settings()
    return value


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def language() -> str:
    return i18n.choose_language(
        request.args.get("lang") or request.cookies.get(LANG_COOKIE),
        request.accept_languages.best_match,
    )


def caller() -> Principal:
    return principal()


def page(template: str, status: int = 200, **context: Any) -> Response:
    lang = language()
    held = g.get("offerseal_session")
    html = render_template(
        template,
        lang=lang,
        languages=[(code, i18n.catalog()[code]["lang.name"]) for code in i18n.LANGUAGES],
        t=i18n.translator(lang),
        me=held,
        role=g.get("offerseal_principal").role if g.get("offerseal_principal") else None,
        csrf_field=CSRF_FIELD,
        csrf_token=held.csrf_token if held is not None else context.pop("csrf_token", ""),
        **context,
    )
    response = Response(html, status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Vary"] = "Accept-Language, Cookie"
    if request.args.get("lang") in i18n.LANGUAGES:
        set_cookie(response, LANG_COOKIE, str(request.args["lang"]), max_age=365 * 86400)
    return response


def set_cookie(response: Response, name: str, value: str, max_age: int | None = None) -> None:
    """HttpOnly, SameSite=Lax, and Secure whenever the page came over TLS."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="Lax",
        secure=request.is_secure,
    )


def start_session_cookie(response: Response, token: str) -> None:
    set_cookie(response, SESSION_COOKIE, token, max_age=int(settings().session_ttl))


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="Lax", secure=request.is_secure
    )


def login_csrf() -> str:
    """The pre-session CSRF token (double submit): the cookie's, or a new one."""
    existing = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    return existing if 20 <= len(existing) <= 100 else secrets.token_urlsafe(32)


def safe_next(target: str | None) -> str:
    """Only a path of the console itself; anything else (another host, `//x`) is the board."""
    if target and target.startswith("/console") and not target.startswith("//"):
        return target
    return "/console"


def wants_page() -> bool:
    return request.method in {"GET", "HEAD"} and not request.path.endswith((".json", ".csv"))


@blp.errorhandler(Unauthorized)
def _to_login(error: Unauthorized) -> Response:
    """A person without a session is sent to sign in; scripts get the problem document."""
    if wants_page():
        target = request.full_path.rstrip("?") if request.query_string else request.path
        return redirect("/console/login?" + urlencode({"next": target}), 303)  # type: ignore[return-value]
    return problem(401, error.title, error.detail)


@blp.app_template_filter("money")
def money(minor: int, currency: str = "") -> str:
    """Minor units as an amount with thousands separators: 900000 CNY -> `9,000.00 CNY`."""
    sign = "-" if minor < 0 else ""
    whole, cents = divmod(abs(int(minor)), 100)
    return f"{sign}{whole:,}.{cents:02d} {currency}".strip()


@blp.app_template_filter("day")
def day(moment: dt.datetime | None) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d") if moment is not None else ""


@blp.app_template_filter("when")
def when(moment: dt.datetime | None) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if moment is not None else ""


@blp.app_template_filter("iso")
def iso_time(moment: dt.datetime | None) -> str:
    return moment.astimezone(dt.UTC).isoformat() if moment is not None else ""

"""Signing in and out: the set-password page a one-time link opens, the sign-in form with its
throttle on failures (per account and per address), and sign-out. Forms carry a CSRF token:
before a session exists it is double-submitted (cookie and field), afterwards it is the
session's own."""

from __future__ import annotations

import math
import time

from flask import Response, redirect, request
from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from ...shared import users
from ...shared.errors import OfferSealError, TooManyRequests
from ...shared.guards import access, own_path
from ...shared.problems import status_of
from ...shared.users import csrf_matches
from ...shared.web import CSRF_FIELD, SESSION_COOKIE
from .common import (
    LOGIN_CSRF_COOKIE,
    blp,
    clear_session_cookie,
    db,
    login_csrf,
    page,
    safe_next,
    set_cookie,
    settings,
    start_session_cookie,
)


class LoginThrottle:
    """Failed sign-ins counted per account and per client address (in memory, or in Redis
    shared by replicas); over the limit, even the right password waits."""

    # An address is shared by everyone behind one office gateway: it may fail this many times
    # more often than one account.
    ADDRESS_FACTOR = 10

    def __init__(self, limit: str, storage: str) -> None:
        self.account_items: list[RateLimitItem] = parse_many(limit)
        self.address_items: list[RateLimitItem] = [
            type(item)(item.amount * self.ADDRESS_FACTOR, item.multiples)
            for item in self.account_items
        ]
        options = {"socket_timeout": 1.0} if storage.startswith(("redis", "rediss")) else {}
        self.limiter = MovingWindowRateLimiter(storage_from_string(storage, **options))

    def _items(self, key: str) -> list[RateLimitItem]:
        return self.address_items if key.startswith("address:") else self.account_items

    def check(self, *keys: str) -> None:
        for key in keys:
            for item in self._items(key):
                try:
                    if self.limiter.test(item, "offerseal-login", key):
                        continue
                    stats = self.limiter.get_window_stats(item, "offerseal-login", key)
                except Exception:  # the shared store is down: no throttle rather than no login
                    return
                retry = max(1, math.ceil(stats.reset_time - time.time()))
                raise TooManyRequests(
                    f"too many failed sign-ins; try again in {retry} s",
                    headers={"Retry-After": str(retry)},
                    retry=retry,
                )

    def failed(self, *keys: str) -> None:
        for key in keys:
            for item in self._items(key):
                try:
                    self.limiter.hit(item, "offerseal-login", key)
                except Exception:
                    return


def _throttle() -> LoginThrottle:
    from flask import current_app

    found: LoginThrottle | None = current_app.extensions.get("offerseal.login_throttle")
    if found is None:
        s = settings()
        found = LoginThrottle(s.login_rate_limit, s.rate_limit_storage)
        current_app.extensions["offerseal.login_throttle"] = found
    return found


def _with_login_csrf(response: Response, token: str) -> Response:
    set_cookie(response, LOGIN_CSRF_COOKIE, token, max_age=3600)
    return response


def _csrf_ok() -> bool:
    return csrf_matches(request.cookies.get(LOGIN_CSRF_COOKIE, ""), request.form.get(CSRF_FIELD))


@blp.get("/login")
@access("public")
def login() -> Response:
    token = login_csrf()
    return _with_login_csrf(
        page(
            "console/login.html",
            csrf_token=token,
            next=safe_next(request.args.get("next")),
            done=request.args.get("done"),
            errors=[],
            email="",
        ),
        token,
    )


@blp.post("/login")
@access("public")
def login_submit() -> Response:
    token = login_csrf()
    email = request.form.get("email", "").strip()[:320]
    password = request.form.get("password", "")[: users.MAX_PASSWORD + 1]
    target = safe_next(request.form.get("next"))

    def again(errors: list[tuple[str, str]], status: int, **extra: object) -> Response:
        response = page(
            "console/login.html",
            status=status,
            csrf_token=token,
            next=target,
            done=None,
            errors=errors,
            email=email,
        )
        for name, value in extra.items():
            response.headers[name] = str(value)
        return _with_login_csrf(response, token)

    if not _csrf_ok():
        return again([("email", "console.error.csrf")], 403)
    if not email or not password:
        field = "email" if not email else "password"
        return again([(field, f"console.error.{field}_missing")], 422)
    account_key = "account:" + users.normalise_email(email)
    address_key = "address:" + (request.remote_addr or "unknown")
    throttle = _throttle()
    try:
        throttle.check(account_key, address_key)
    except TooManyRequests as exc:
        return again(
            [("email", "console.error.throttled")], 429, **{"Retry-After": exc.extra["retry"]}
        )
    user = users.verify_password(db(), email, password)
    if user is None:
        throttle.failed(account_key, address_key)
        return again([("email", "console.error.credentials")], 401)
    session_token, _ = users.start_session(db(), user, settings().session_ttl)
    response = redirect(target, 303)
    start_session_cookie(response, session_token)  # type: ignore[arg-type]
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response  # type: ignore[return-value]


@blp.post("/logout")
def logout() -> Response:
    """Needs the session and its CSRF token (the guards check both), then ends it."""
    users.end_session(db(), request.cookies.get(SESSION_COOKIE, ""))
    response = redirect("/console/login?done=signed_out", 303)
    clear_session_cookie(response)  # type: ignore[arg-type]
    return response  # type: ignore[return-value]


@blp.get("/setup/<string:token>")
@access("public")
@own_path
def setup(token: str) -> Response:
    account = users.setup_account(db(), token)
    csrf = login_csrf()
    return _with_login_csrf(
        page(
            "console/setup.html",
            status=200 if account else 410,
            csrf_token=csrf,
            account=account,
            token=token,
            errors=[],
        ),
        csrf,
    )


@blp.post("/setup/<string:token>")
@access("public")
@own_path
def setup_submit(token: str) -> Response:
    csrf = login_csrf()
    account = users.setup_account(db(), token)

    def again(errors: list[tuple[str, str]], status: int) -> Response:
        return _with_login_csrf(
            page(
                "console/setup.html",
                status=status,
                csrf_token=csrf,
                account=account,
                token=token,
                errors=errors,
            ),
            csrf,
        )

    if account is None:
        return again([], 410)
    if not _csrf_ok():
        return again([("password", "console.error.csrf")], 403)
    password = request.form.get("password", "")
    if password != request.form.get("confirm", ""):
        return again([("confirm", "console.error.confirm")], 422)
    try:
        users.set_password(db(), token, password)
    except OfferSealError as exc:
        field = (exc.extra.get("errors") or [{"field": "password"}])[0]["field"]
        key = (
            "console.error.password_short"
            if len(password) < users.MIN_PASSWORD
            else ("console.error.password_long")
        )
        return again([(field, key)], status_of(exc))
    response = redirect("/console/login?done=password_set", 303)
    return response  # type: ignore[return-value]

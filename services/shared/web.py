"""What every service's Flask app has: flask-smorest API and OpenAPI document, problem+json
errors, bearer authentication, `/healthz` and Prometheus `/metrics`."""

from __future__ import annotations

import http
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from flask import Flask, Response, g, request
from flask_smorest import Api
from flask_smorest.utils import prepare_response
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from .. import __version__
from . import guards, problems
from .answers import Problem
from .auth import Principal, authenticate
from .config import Settings
from .db import Database
from .workers import Workers

# Pages are served from our own origin only: no CDN, no inline script, never framed.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'; "
    "frame-ancestors 'none'"
)
# Every other method is counted as "other", so made-up methods cannot grow the metrics.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class OfferSealApi(Api):
    """flask-smorest's Api whose documented errors are what `problems.py` answers: RFC 9457
    `application/problem+json` (flask-smorest's own error schema is never sent)."""

    ERROR_SCHEMA = Problem

    def _register_responses(self) -> None:
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if not 100 <= status < 200 and status not in (204, 304):
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, problems.PROBLEM_TYPE)
            self.spec.components.response(status.name, response, lazy=True)
        default: dict[str, Any] = {"description": "An error", "schema": self.ERROR_SCHEMA}
        prepare_response(default, self.spec, problems.PROBLEM_TYPE)
        self.spec.components.response(self.DEFAULT_ERROR_RESPONSE_NAME, default, lazy=True)


def create_base_app(
    name: str,
    db: Database,
    *,
    settings: Settings | None = None,
    max_content_length: int | None = None,
) -> tuple[Flask, OfferSealApi, CollectorRegistry]:
    settings = settings or Settings()
    guards.sane_recursion_limit()
    app = Flask(f"offerseal.{name}")
    if settings.trusted_proxies > 0:
        # Behind the gateway every client would share its address (one rate-limit budget for
        # everybody, the proxy's address in every receipt): trust exactly that many hops.
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=settings.trusted_proxies, x_proto=settings.trusted_proxies
        )
    app.config.update(
        API_TITLE=f"OfferSeal {name} service",
        API_VERSION=__version__,
        OPENAPI_VERSION="3.1.0",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_REDOC_PATH="/docs",
        OPENAPI_REDOC_URL="https://cdn.jsdelivr.net/npm/redoc@2/bundles/redoc.standalone.js",
        # Every body is bounded; a service that takes uploads says how far (evidence).
        MAX_CONTENT_LENGTH=max_content_length or guards.MAX_JSON_BYTES,
        API_SPEC_OPTIONS={
            "components": {
                "securitySchemes": {
                    "bearer": {
                        "type": "http",
                        "scheme": "bearer",
                        "description": "API key: `osk_<id>_<secret>`",
                    }
                }
            },
            "info": {
                "description": f"OfferSeal {name} service. Errors are RFC 9457 "
                "`application/problem+json`."
            },
        },
    )
    app.extensions["offerseal.db"] = db
    app.extensions["offerseal.settings"] = settings
    api = OfferSealApi(app)
    problems.register(app)  # replaces flask-smorest's error payload with problem+json
    guards.install(
        app,
        guards.RateLimiter(name, settings.public_rate_limit, settings.rate_limit_storage),
        principal,
    )

    registry = CollectorRegistry()
    requests_total = Counter(
        "offerseal_http_requests_total",
        "HTTP requests",
        ["service", "method", "endpoint", "status"],
        registry=registry,
    )
    latency = Histogram(
        "offerseal_http_request_seconds",
        "HTTP request latency",
        ["service", "endpoint"],
        registry=registry,
        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
    )

    @app.before_request
    def _start_timer() -> None:
        g.offerseal_started = time.perf_counter()

    @app.after_request
    def _observe(response: Response) -> Response:
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        method = request.method if request.method in METHODS else "other"
        requests_total.labels(name, method, endpoint, str(response.status_code)).inc()
        started = g.get("offerseal_started")
        if started is not None:
            latency.labels(name, endpoint).observe(time.perf_counter() - started)
        return response

    @app.after_request
    def _security_headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "no-referrer")
        headers.setdefault("X-Frame-Options", "DENY")
        if request.blueprint in guards.PROBE_BLUEPRINTS:
            headers.setdefault("Content-Security-Policy", "frame-ancestors 'none'")
        else:
            headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        if request.is_secure:
            headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        return response

    @app.get("/metrics")
    @guards.access("probe")
    def _metrics() -> Response:
        return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)

    return app, api, registry


SESSION_COOKIE = "offerseal_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def principal() -> Principal:
    """The caller, authenticated from the bearer token, or else from a console session cookie
    (401 problem when missing or wrong). A request made with the cookie that may change
    something must repeat the session's CSRF token (header or form field), else 403."""
    cached = g.get("offerseal_principal")
    if cached is None:
        from flask import current_app

        db = current_app.extensions["offerseal.db"]
        authorization = request.headers.get("Authorization")
        cookie = request.cookies.get(SESSION_COOKIE)
        if authorization is None and cookie:
            cached = _session_principal(db, cookie)
        else:
            cached = authenticate(db, authorization)
        g.offerseal_principal = cached
    return cached


def _session_principal(db: Database, cookie: str) -> Principal:
    from flask import current_app

    from .errors import Forbidden, Unauthorized
    from .users import csrf_matches, resolve_session

    settings: Settings = current_app.extensions.get("offerseal.settings") or Settings()
    held = resolve_session(db, cookie, settings.session_idle)
    if held is None:
        raise Unauthorized("your session has ended; sign in again")
    if request.method not in SAFE_METHODS:
        given = request.headers.get(CSRF_HEADER)
        if given is None and request.mimetype in {
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        }:
            given = request.form.get(CSRF_FIELD)
        if not csrf_matches(held.csrf_token, given):
            raise Forbidden(f"missing or wrong CSRF token ({CSRF_HEADER} header or form field)")
    g.offerseal_session = held
    return held.principal


def health_route(app: Flask, checks: dict[str, Callable[[], Any]]) -> None:
    """`/healthz`: 200 when every check passes, else 503 naming the failed ones. Checks that
    `watch()` adds later (worker threads, consumers) count too."""

    @app.get("/healthz")
    @guards.access("probe")
    def _healthz() -> tuple[dict[str, Any], int]:
        results: dict[str, Any] = {}
        healthy = True
        watched: dict[str, Callable[[], Any]] = app.extensions.get("offerseal.watched", {})
        for label, check in {**checks, **watched}.items():
            try:
                value = check()
                results[label] = value if value is not None else "ok"
            except Exception as exc:
                healthy = False
                results[label] = f"error: {type(exc).__name__}"
        return {"status": "ok" if healthy else "degraded", "checks": results}, (
            200 if healthy else 503
        )


class Consumer(Protocol):
    name: str
    connected: threading.Event


def watch(app: Flask, workers: Workers, consumers: Sequence[Consumer] = ()) -> None:
    """Report the node's worker threads and message consumers in `/healthz`: a thread that
    ended, or a consumer not connected to the broker, makes the service unhealthy (503)."""
    watched: dict[str, Callable[[], Any]] = app.extensions.setdefault("offerseal.watched", {})

    def threads() -> str:
        dead = [name for name, alive in workers.alive().items() if not alive]
        if dead and not workers.stop_event.is_set():
            raise RuntimeError(f"worker thread(s) ended: {', '.join(dead)}")
        return "ok"

    watched["threads"] = threads
    for consumer in consumers:

        def connected(consumer: Consumer = consumer) -> str:
            if not consumer.connected.is_set():
                raise RuntimeError(f"{consumer.name} consumer not connected to the broker")
            return "ok"

        watched[f"{consumer.name}_consumer"] = connected


def standard_checks(
    db: Database, ready: threading.Event | None, worker: str
) -> dict[str, Callable[[], Any]]:
    """Health checks every service has: its database answers, the outbox is draining, and its
    background worker is connected."""
    from sqlalchemy import func, select, text

    from .models import OutboxMessage

    def database() -> str:
        with db.sessions() as session:
            session.execute(text("SELECT 1"))
        return "ok"

    def unpublished() -> int:
        with db.sessions() as session:
            return int(
                session.execute(
                    select(func.count())
                    .select_from(OutboxMessage)
                    .where(OutboxMessage.sent_at.is_(None))
                ).scalar()
                or 0
            )

    checks: dict[str, Callable[[], Any]] = {
        "database": database,
        "unpublished_messages": unpublished,
    }
    if ready is not None:

        def ready_check() -> str:
            if not ready.is_set():
                raise RuntimeError(f"{worker} not connected yet")
            return "ok"

        checks[worker] = ready_check
    return checks

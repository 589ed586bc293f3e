"""RFC 9457 problem documents for every error a service answers, and the one table from error
class to HTTP status (the errors themselves know nothing of HTTP)."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, current_app, has_app_context, json, request
from werkzeug.exceptions import HTTPException

from .errors import (
    Conflict,
    Forbidden,
    NotFound,
    OfferSealError,
    PayloadTooLarge,
    TooManyRequests,
    TransientError,
    Unauthorized,
    UnsupportedMediaType,
    ValidationFailed,
)
from .links import LinkExpired, LinkRevoked

log = logging.getLogger(__name__)
PROBLEM_TYPE = "application/problem+json"

# Error class -> status; a subclass answers its nearest listed ancestor's (500 if none). A
# service adds its own classes with `map_statuses` (contracts: TransactionFailed -> 502).
STATUSES: dict[type[Exception], int] = {
    ValidationFailed: 422,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    LinkExpired: 410,
    LinkRevoked: 410,
    PayloadTooLarge: 413,
    UnsupportedMediaType: 415,
    TooManyRequests: 429,
    TransientError: 503,
}
APP_STATUSES = "offerseal.statuses"


def map_statuses(app: Flask, statuses: dict[type[Exception], int]) -> None:
    """The app's own error classes and their statuses, on top of `STATUSES`."""
    app.extensions[APP_STATUSES] = {**app.extensions.get(APP_STATUSES, STATUSES), **statuses}


def status_of(exc: Exception) -> int:
    """The HTTP status an error answers: from the app's table (in a request) or `STATUSES`.
    An error relaying another service's HTTP answer (`http_status`) keeps that status."""
    relayed = getattr(exc, "http_status", None)
    if isinstance(relayed, int):
        return relayed
    table = current_app.extensions.get(APP_STATUSES, STATUSES) if has_app_context() else STATUSES
    for cls in type(exc).__mro__:
        if cls in table:
            return table[cls]
    return 500


def problem(status: int, title: str, detail: str = "", **extra: Any) -> Response:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body["instance"] = request.path
    body.update({k: v for k, v in extra.items() if v is not None})
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_TYPE)
    return response


def _flatten(messages: Any, prefix: str = "") -> list[dict[str, str]]:
    """webargs/marshmallow messages -> [{"field": "items.3.sha256", "message": "..."}]."""
    out: list[dict[str, str]] = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            out.extend(_flatten(value, name))
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        out.extend({"field": prefix or "body", "message": m} for m in messages)
    elif isinstance(messages, list):
        for i, value in enumerate(messages):
            out.extend(_flatten(value, f"{prefix}.{i}" if prefix else str(i)))
    else:
        out.append({"field": prefix or "body", "message": str(messages)})
    return out


def _validation_errors(data: dict[str, Any]) -> list[dict[str, str]]:
    messages = data.get("messages") or data.get("errors") or {}
    # webargs nests by location ({"json": {...}}, {"form": {...}}); the location is not a field.
    if isinstance(messages, dict) and set(messages) <= {
        "json",
        "form",
        "files",
        "query",
        "headers",
        "view_args",
        "path",
    }:
        flat: list[dict[str, str]] = []
        for value in messages.values():
            flat.extend(_flatten(value))
        return flat
    return _flatten(messages)


def register(app: Flask) -> None:
    @app.errorhandler(OfferSealError)
    def _offerseal_error(exc: OfferSealError) -> Response:
        status = status_of(exc)
        if status >= 500:
            log.error("%s: %s", type(exc).__name__, exc.detail)
        extra = dict(exc.extra)
        headers = extra.pop("headers", None)
        response = problem(status, exc.title, exc.detail, **extra)
        if headers:
            response.headers.update(headers)
        return response

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        data = getattr(exc, "data", None) or {}
        if status == 422 and data:
            errors = _validation_errors(data)
            detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:10])
            return problem(422, "Invalid request", detail, errors=errors)
        if status == 400 and data:
            errors = _validation_errors(data)
            detail = "; ".join(e["message"] for e in errors[:5]) or (exc.description or "")
            return problem(400, "Bad request", detail)
        headers = data.get("headers")
        response = problem(status, exc.name, exc.description or "")
        if headers:
            response.headers.update(headers)
        return response

    @app.errorhandler(RecursionError)
    def _too_deep(exc: RecursionError) -> Response:
        return problem(
            422,
            "Invalid request",
            "body: nested too deeply",
            errors=[{"field": "body", "message": "nested too deeply"}],
        )

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem(500, "Internal Server Error", "an unexpected error occurred; it was logged")

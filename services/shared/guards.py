"""What every request passes before a view sees it: who may call the endpoint, how much it may
send, how deeply its JSON may nest, and how often an anonymous client may call.

Endpoints need an API key unless their view is marked with `access("public")` (the caller is
anonymous: verify, public keys), `access("link")` (a candidate's signed link as `?token=`, or
an API key), `access("token")` (a signed link in the path, whatever else is sent) or
`access("probe")` (health, metrics and the OpenAPI document:
anonymous, cheap, and polled by orchestrators, so not rate limited). A key is checked before
any byte of the body is read, so an unauthenticated caller cannot make a service parse anything.
A link must be one we issued (its MAC holds) before the body is read. Anonymous calls (public,
token, and link calls without a key) are rate limited per client address with
the `limits` library, in memory or in Redis so that replicas share one budget.
A path parameter holding a NUL names nothing (no id, code or name holds one; PostgreSQL refuses
it in text): the route answers 404 as for any unknown id, unless its view is a page for people
marked `own_path` (it answers any value with its own page, checking it before any lookup).
"""

from __future__ import annotations

import json
import logging
import math
import re
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from flask import Flask, Request, Response, request
from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from .auth import Principal
from .errors import NotFound, PayloadTooLarge, TooManyRequests, Unauthorized, ValidationFailed

# Python's own default. web3 pulls in py_ecc, which raises the limit to 100,000 at import time;
# deeply nested input then overflows the C stack (SIGSEGV) instead of raising RecursionError.
RECURSION_LIMIT = 1000
MAX_JSON_BYTES = 1 << 20  # every JSON body, unless its endpoint declares more
MAX_JSON_DEPTH = 32  # our documents nest 4 levels at most

ACCESS_ATTR = "offerseal_access"
ROLES_ATTR = "offerseal_roles"
MAX_BYTES_ATTR = "offerseal_max_json_bytes"
OWN_PATH_ATTR = "offerseal_own_path"
NOT_FOUND_EXT = "offerseal.not_found"  # path parameter -> the error its unknown values raise
PROBE_BLUEPRINTS = frozenset({"api-docs"})  # flask-smorest's OpenAPI document and docs page

T = TypeVar("T")
log = logging.getLogger(__name__)


def sane_recursion_limit() -> None:
    """Undo what importing web3 did to the interpreter's recursion limit."""
    if sys.getrecursionlimit() > RECURSION_LIMIT:
        sys.setrecursionlimit(RECURSION_LIMIT)


def access(kind: str) -> Callable[[T], T]:
    """Mark a view (a MethodView class or a function) as `public`, `link`, `token` or `probe`;
    unmarked views need an API key."""
    if kind not in {"public", "link", "token", "probe"}:
        raise ValueError(f"unknown access kind {kind!r}")

    def mark(view: T) -> T:
        setattr(view, ACCESS_ATTR, kind)
        return view

    return mark


def roles(*allowed: str) -> Callable[[T], T]:
    """The roles whose keys may call this view method; checked with the key, before the body
    is read (the service layer checks again)."""

    def mark(method: T) -> T:
        setattr(method, ROLES_ATTR, allowed)
        return method

    return mark


def declared_roles(view: Any, method: str) -> tuple[str, ...] | None:
    """The roles a view's method declares (HEAD is GET), or None."""
    view_class = getattr(view, "view_class", None)
    if view_class is None:
        return getattr(view, ROLES_ATTR, None)
    name = "get" if method.upper() == "HEAD" else method.lower()
    return getattr(getattr(view_class, name, None), ROLES_ATTR, None)


def max_json_bytes(limit: int) -> Callable[[T], T]:
    """Let a view take a JSON body larger than MAX_JSON_BYTES (it documents the limit)."""

    def mark(view: T) -> T:
        setattr(view, MAX_BYTES_ATTR, limit)
        return view

    return mark


def own_path(view: T) -> T:
    """Mark a page for people that answers any value of its path parameters itself, with its
    own page (checked before any lookup): a NUL in its path is left to it, so a candidate's
    `/l/%00` still gets the friendly page an unknown code gets."""
    setattr(view, OWN_PATH_ATTR, True)
    return view


def not_found_as(app: Flask, errors: Mapping[str, type[NotFound]]) -> None:
    """The error each path parameter's unknown values raise (e.g. `document_id` ->
    DocumentNotFound), so a NUL in it gets the same problem document; NotFound otherwise."""
    app.extensions.setdefault(NOT_FOUND_EXT, {}).update(errors)


_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def json_too_deep(data: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether JSON text nests arrays/objects deeper than `limit`, decided without parsing it
    (strings are skipped, so brackets inside them do not count)."""
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    if b"\\" not in data and data.count(b'"') % 2 == 0:
        # No escapes: every string is what lies between a quote and the next one, so the text
        # outside strings is every other piece between quotes (as the regex finds it, faster).
        outside = b"".join(data.split(b'"')[::2])
    else:
        outside = _STRING.sub(b"", data)
    depth = 0
    for byte in outside.translate(None, _NOT_BRACKETS):
        if byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


NUL_MESSAGE = "must not contain the character U+0000 (NUL)"


def _nul_at(value: Any, path: str) -> str | None:
    """The path (dotted, list indexes as numbers) of the first key or string holding a NUL."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    items: Any = ()
    if isinstance(value, dict):
        for key in value:
            if "\x00" in key:
                return f"{path}.{key}".lstrip(".").replace("\x00", "\\u0000")
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    for key, item in items:
        found = _nul_at(item, f"{path}.{key}" if path else str(key))
        if found is not None:
            return found
    return None


def check_json_text(data: bytes | str, field: str = "body") -> None:
    """422 naming `field` when JSON text nests deeper than MAX_JSON_DEPTH, and naming the
    member when a string holds a NUL (no database stores one in text: PostgreSQL refuses it)."""
    raw = data.encode() if isinstance(data, str) else data
    if json_too_deep(raw):
        raise ValidationFailed(field, f"JSON nests deeper than {MAX_JSON_DEPTH} levels")
    if b"\\u0000" in raw:  # the only way JSON text carries a NUL (or a backslash before u0000)
        try:
            parsed = json.loads(raw)
        except ValueError:
            return  # not JSON: the endpoint's own parsing answers that
        at = _nul_at(parsed, "")
        if at is not None:
            name = at if field == "body" else f"{field}.{at}".rstrip(".")
            raise ValidationFailed(name or field, NUL_MESSAGE)


def check_form_no_nul(req: Request) -> None:
    """422 naming the form field when a field's text or a file's name holds a NUL (the form is
    parsed here, as the view would parse it: bounded by MAX_CONTENT_LENGTH, files streamed)."""
    for name, value in req.form.items(multi=True):
        # a part whose Content-Disposition names none has the name None (werkzeug's parser)
        if "\x00" in value or (name is not None and "\x00" in name):
            raise ValidationFailed((name or "").replace("\x00", "") or "form", NUL_MESSAGE)
    for name, upload in req.files.items(multi=True):
        if upload.filename and "\x00" in upload.filename:
            raise ValidationFailed(name or "file", NUL_MESSAGE)


def check_path_no_nul(app: Flask, req: Request) -> None:
    """404, as for an unknown id, when a path parameter holds a NUL (%00): no id, code or name
    holds one, so it names nothing (and PostgreSQL would refuse it in a query's text)."""
    for name, value in (req.view_args or {}).items():
        if isinstance(value, str) and "\x00" in value:
            error = app.extensions.get(NOT_FOUND_EXT, {}).get(name, NotFound)
            raise error(f"{name}: nothing is named with a NUL (U+0000)")


def check_no_nul(req: Request) -> None:
    """422 naming the parameter when the query string holds a NUL (%00). (A NUL in the path
    names nothing: `check_path_no_nul`.)"""
    if b"%00" in req.query_string:
        for name, value in req.args.items(multi=True):
            if "\x00" in name or "\x00" in value:
                raise ValidationFailed(name.replace("\x00", "") or "query", NUL_MESSAGE)


class RateLimiter:
    """Anonymous calls per client address, shared by every replica when the storage is Redis."""

    def __init__(self, service: str, limit: str, storage: str) -> None:
        self.service = service
        self.items: list[RateLimitItem] = parse_many(limit)
        options: dict[str, Any] = {}
        if storage.startswith(("redis://", "rediss://")):
            options = {"socket_timeout": 1.0, "socket_connect_timeout": 1.0}
        self.limiter = MovingWindowRateLimiter(storage_from_string(storage, **options))

    def hit(self, client: str) -> None:
        for item in self.items:
            try:
                allowed = self.limiter.hit(item, "offerseal", self.service, client)
            except Exception as exc:  # the shared store is down: serve, and say so
                log.warning("rate limit store unavailable (%s); not limiting", type(exc).__name__)
                return
            if not allowed:
                stats = self.limiter.get_window_stats(item, "offerseal", self.service, client)
                retry = max(1, math.ceil(stats.reset_time - time.time()))
                raise TooManyRequests(
                    f"more than {item} from this address; try again in {retry} s",
                    headers={"Retry-After": str(retry)},
                )


def _view_attr(app: Flask, name: str) -> Any:
    view = app.view_functions.get(request.endpoint or "")
    if view is None:
        return None
    return getattr(getattr(view, "view_class", view), name, None)


def _is_form(req: Request) -> bool:
    return req.mimetype in {"multipart/form-data", "application/x-www-form-urlencoded"}


def _require_issued_link(app: Flask) -> None:
    """A link endpoint called without a key needs a token we issued (in the path or `?token=`):
    401 before the body is read. Purpose and expiry are the view's to check."""
    token = (request.view_args or {}).get("token") or request.args.get("token")
    signer = app.extensions.get("offerseal.links")
    if not token or (signer is not None and not signer.authentic(str(token))):
        raise Unauthorized("this link is not valid (altered or not issued by OfferSeal)")


def install(app: Flask, limiter: RateLimiter, authenticate: Callable[[], Principal]) -> None:
    """Register the checks as the app's first before-request hook."""

    def guard() -> Response | None:
        if request.endpoint is None:  # 404 / 405: nothing to protect, nothing parsed
            return None
        kind = _view_attr(app, ACCESS_ATTR)
        if request.blueprint in PROBE_BLUEPRINTS:
            kind = "probe"
        if kind is None or (kind == "link" and "Authorization" in request.headers):
            caller = authenticate()  # 401 before any byte of the body is read
            allowed = declared_roles(app.view_functions[request.endpoint], request.method)
            if allowed is not None:
                caller.require(*allowed)  # 403, still before the body
        elif kind != "probe":
            limiter.hit(request.remote_addr or "unknown")
            if kind in {"link", "token"}:
                _require_issued_link(app)
        if not _view_attr(app, OWN_PATH_ATTR):
            check_path_no_nul(app, request)
        check_no_nul(request)
        if _is_form(request):
            check_form_no_nul(request)
            return None
        if request.method in {"GET", "HEAD", "OPTIONS"}:
            return None  # multipart bodies are bounded by MAX_CONTENT_LENGTH and streamed
        limit = _view_attr(app, MAX_BYTES_ATTR) or MAX_JSON_BYTES
        if request.content_length is not None and request.content_length > limit:
            raise PayloadTooLarge(f"the body exceeds {limit} bytes")
        request.max_content_length = limit  # also bounds a body sent without a length
        check_json_text(request.get_data(cache=True))
        return None

    app.before_request_funcs.setdefault(None, []).insert(0, guard)

"""The contracts API's edge: its blueprint, how a request names its caller (an API key, or the
candidate's link and the browser's enrolment session) and the answers that are not a schema's
dump (201 with Location, the terms as text). Routes are in `api.py` and `portal_api.py`."""

from __future__ import annotations

from typing import Any

from flask import Response, after_this_request, current_app, request
from flask_smorest import Blueprint

from ..shared.errors import ValidationFailed
from ..shared.links import Link, LinkSigner
from ..shared.web import principal
from .contact_proof import SESSION_COOKIE, SESSION_TTL
from .errors import TransactionFailed
from .journal import Visitor
from .ports import EvidenceSource
from .records import SIGN_PURPOSE
from .service_layer import ContractsService

blp = Blueprint("agreements", __name__, url_prefix="/v1", description="Intent agreements")
BEARER: list[dict[str, list[str]]] = [{"bearer": []}]
# The contracts service's own errors' statuses, on top of `problems.STATUSES` (a refusal by the
# contract is a Conflict, 409; a transaction that reverted in its block is the chain's failure).
STATUSES: dict[type[Exception], int] = {TransactionFailed: 502}


def service() -> ContractsService:
    svc: ContractsService = current_app.extensions["offerseal.contracts"]
    return svc


def evidence() -> EvidenceSource:
    client: EvidenceSource = current_app.extensions["offerseal.evidence"]
    return client


def created(body: dict[str, Any], location: str) -> Response:
    response = current_app.response_class(
        current_app.json.dumps(body), status=201, mimetype="application/json"
    )
    response.headers["Location"] = location
    return response


MAX_PREFER_WAIT = 60  # seconds an offer may hold its request open for its block


def preferred_wait(header: str | None) -> float:
    """`wait=N` from a `Prefer` header (RFC 7240), capped at MAX_PREFER_WAIT; 0 without it."""
    for preference in (header or "").split(","):
        name, _, value = preference.strip().partition("=")
        if name.strip().lower() == "wait":
            try:
                return float(min(max(int(value.strip().strip('"')), 0), MAX_PREFER_WAIT))
            except ValueError:
                return 0.0  # a preference not understood is ignored (RFC 7240)
    return 0.0


def terms_text(text: str, digest: str) -> Response:
    """The exact UTF-8 text a candidate reads, with the sha256 that goes on chain."""
    response = current_app.response_class(
        text.encode("utf-8"), mimetype="text/plain; charset=utf-8"
    )
    response.headers["X-Terms-SHA256"] = digest
    return response


def caller(purpose: str = SIGN_PURPOSE) -> tuple[Any, Link | None]:
    """An API key, or a candidate's link token (`?token=`), which opens one agreement."""
    token = request.args.get("token")
    if token:
        signer: LinkSigner = current_app.extensions["offerseal.links"]
        return None, signer.verify(token, purpose)
    return principal(), None


def visitor() -> Visitor:
    return Visitor(request.remote_addr, request.headers.get("User-Agent"))


def enrolment_session() -> str | None:
    """The enrolment session this browser holds (the cookie set when it proved the code)."""
    return request.cookies.get(SESSION_COOKIE) or None


def keep_enrolment_session(agreement_id: str, secret: str) -> None:
    """The proof of the code belongs to this browser: an HttpOnly, SameSite=Strict cookie for
    this agreement's API paths only, never readable by scripts or sent cross-site."""

    @after_this_request
    def _set(response: Response) -> Response:
        response.set_cookie(
            SESSION_COOKIE,
            secret,
            max_age=int(SESSION_TTL.total_seconds()),
            path=f"/v1/agreements/{agreement_id}/",
            httponly=True,
            samesite="Strict",
            secure=request.is_secure,
        )
        return response


def signed_bytes(data: dict[str, Any], link: Link | None, agreement_id: str, what: str) -> bytes:
    """The signature as the contract takes it: hex bytes as given, or the candidate's passkey
    assertion encoded for the contract (only through the candidate's own link)."""
    if data.get("passkey") is None:
        return bytes.fromhex(data["signature"][2:])
    if link is None:
        raise ValidationFailed("passkey", "a passkey signs through the candidate's own link")
    return service().enrolment.passkey_signature(
        link, agreement_id, what, data["passkey"], visitor()
    )


def required(link: Link | None) -> Link:
    """The candidate's portal answers the candidate's own link only."""
    if link is None:
        raise ValidationFailed("token", "the candidate's link is required")
    return link

"""The error root shared by all services, and the errors every service can raise.

Each service derives its own root from `OfferSealError`; the HTTP layer maps `status` and
`title` to an RFC 9457 problem document in one place (`problems.py`).
"""

from __future__ import annotations

from typing import Any


class OfferSealError(Exception):
    status = 500
    title = "Internal error"
    problem = "about:blank"

    def __init__(self, detail: str = "", **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra


class TransientError(OfferSealError):
    """A dependency (broker, chain, SMTP) is unavailable for now: retry later."""

    status = 503
    title = "Dependency unavailable"


class ValidationFailed(OfferSealError):
    status = 422
    title = "Invalid request"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", errors=[{"field": field, "message": message}])


class NotFound(OfferSealError):
    status = 404
    title = "Not found"


class Conflict(OfferSealError):
    status = 409
    title = "Conflict"


class Unauthorized(OfferSealError):
    status = 401
    title = "Unauthorized"


class Forbidden(OfferSealError):
    status = 403
    title = "Forbidden"


class PayloadTooLarge(OfferSealError):
    status = 413
    title = "Payload too large"


class UnsupportedMediaType(OfferSealError):
    status = 415
    title = "Unsupported media type"


class TooManyRequests(OfferSealError):
    status = 429
    title = "Too many requests"

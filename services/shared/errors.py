"""The error root shared by all services, and the errors every service can raise.

Each service derives its own root from `OfferSealError`. The errors know nothing of HTTP: the
edge maps each class to a status in one table (`problems.STATUSES`, plus a service's own) and
renders an RFC 9457 problem document with the error's `title` and `detail`.
"""

from __future__ import annotations

from typing import Any


class OfferSealError(Exception):
    title = "Internal error"
    problem = "about:blank"

    def __init__(self, detail: str = "", **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra


class TransientError(OfferSealError):
    """A dependency (broker, chain, SMTP) is unavailable for now: retry later."""

    title = "Dependency unavailable"


class ValidationFailed(OfferSealError):
    title = "Invalid request"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", errors=[{"field": field, "message": message}])


class NotFound(OfferSealError):
    title = "Not found"


class Conflict(OfferSealError):
    title = "Conflict"


class Unauthorized(OfferSealError):
    title = "Unauthorized"


class Forbidden(OfferSealError):
    title = "Forbidden"


class PayloadTooLarge(OfferSealError):
    title = "Payload too large"


class UnsupportedMediaType(OfferSealError):
    title = "Unsupported media type"


class TooManyRequests(OfferSealError):
    title = "Too many requests"

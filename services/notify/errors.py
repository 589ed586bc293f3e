"""The notify service's errors; all derive from `NotifyError` (itself an OfferSealError).

Channels answer a message they could not deliver with `RetryLater` (transient: the dispatcher
backs off and tries again) or `Rejected` (permanent: the touchpoint failed).
"""

from __future__ import annotations

import datetime as dt

from ..shared.errors import NotFound, OfferSealError, TransientError
from ..shared.links import LinkExpired


class NotifyError(OfferSealError):
    """Root of the notify service's errors."""


class AlreadyUsed(NotifyError, LinkExpired):
    title = "Link already used"


class TouchpointNotFound(NotifyError, NotFound):
    """No such touchpoint (or check-in) for this tenant or link."""


class CandidateNotFound(NotifyError, NotFound):
    """Notify knows no candidate by this reference for this tenant."""


class TemplateNotFound(NotifyError, NotFound):
    """No such touchpoint kind or language, or no tenant template to delete."""


class DeliveryError(NotifyError):
    """A channel did not deliver a message."""


class RetryLater(DeliveryError, TransientError):
    """The channel is unavailable for now (4xx, timeouts, refused connections)."""


class Rejected(DeliveryError):
    """The channel refused the message for good (5xx, no address)."""


class Postponed(RetryLater):
    """Not now: sending would exceed a provider's limit (or the provider said so). The
    touchpoint is moved to `until`; this is not a failed attempt."""

    def __init__(self, until: dt.datetime, detail: str) -> None:
        super().__init__(detail)
        self.until = until

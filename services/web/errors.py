"""The web app's errors, rooted in `WebError` (rendered as problem+json like every service's)."""

from __future__ import annotations

from ..shared.errors import OfferSealError


class WebError(OfferSealError):
    """Root of the pages' errors."""


class AssetsMissing(WebError):
    """The pages' scripts are not built (`npm run build`, part of `make setup`)."""

    title = "Page assets not built"

"""Signed, expiring link tokens for candidates: each bound to one agreement, one candidate and
one purpose, so a link in an e-mail works without an API key and for nothing else."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import OfferSealError, Unauthorized

# What a link is for; a token verified for one purpose is refused for every other.
PURPOSE_SIGN = "sign"  # read and sign an offer (contracts)
PURPOSE_AMEND = "amend"  # read and sign an amendment (contracts)
PURPOSE_UPLOAD = "upload"  # upload a milestone's document (issued by notify, checked by evidence)
PURPOSE_REPLY = "reply"  # answer a check-in (notify)
PURPOSE_UNSUBSCRIBE = "unsubscribe"  # stop non-essential mail (notify)
# Deposit one record OfferSeal itself made about an agreement (the dossier's manifest) as an
# anchored document (issued by contracts, checked by evidence; the subject names the record).
PURPOSE_RECORD = "record"
# A former employer's HR confirms (or not) a certificate it is said to have issued (notify);
# the subject is the request. A bearer secret sent to that employer only.
PURPOSE_CONFIRM = "confirm"


class LinkExpired(OfferSealError):
    title = "Link expired"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Link:
    tenant: str
    agreement_id: str
    candidate_ref: str
    purpose: str
    expires_at: int
    subject: str = ""  # what inside the agreement the link is for (e.g. one touchpoint)
    # unix seconds (whole, so that issuing the same link twice in a second gives one token);
    # 0 for links issued before this was recorded
    issued_at: int = 0


class LinkRevoked(OfferSealError):
    title = "Link withdrawn"


class LinkSigner:
    """Issues and checks links. `is_revoked` (see revocations.py) is asked about every link
    that is otherwise valid: HR can withdraw a link sent to the wrong address, and a link dies
    once what it was for is done."""

    def __init__(self, secret: bytes, is_revoked: Callable[[Link], bool] | None = None) -> None:
        if len(secret) < 32:
            raise ValueError("link secret must be at least 32 bytes")
        self._secret = secret
        self._is_revoked = is_revoked

    def _mac(self, body: str) -> str:
        return _b64(hmac.new(self._secret, body.encode(), hashlib.sha256).digest())

    def issue(self, link: Link) -> str:
        body = _b64(
            json.dumps(
                {
                    "t": link.tenant,
                    "a": link.agreement_id,
                    "c": link.candidate_ref,
                    "p": link.purpose,
                    "e": link.expires_at,
                    "s": link.subject,
                    "i": link.issued_at or int(time.time()),
                },
                separators=(",", ":"),
            ).encode()
        )
        return f"{body}.{self._mac(body)}"

    def keyed_hash(self, text: str) -> str:
        """HMAC-SHA256 of `text` under the link secret (e.g. a one-time code, stored so)."""
        return hmac.new(self._secret, text.encode(), hashlib.sha256).hexdigest()

    def authentic(self, token: str) -> bool:
        """Whether we issued this token (its MAC holds), whatever its purpose or age."""
        body, _, mac = token.partition(".")
        return (
            token.isascii()
            and bool(body)
            and bool(mac)
            and hmac.compare_digest(mac, self._mac(body))
        )

    def read(self, token: str) -> Link:
        """What an authentic token says, whatever its purpose, age or revocation (the short
        links take their scope and expiry from it); `verify` is the check for using it."""
        if not self.authentic(token):
            raise Unauthorized("this link is not valid (altered or not issued by OfferSeal)")
        body = token.partition(".")[0]
        try:
            data: dict[str, Any] = json.loads(_unb64(body))
            link = Link(
                str(data["t"]),
                str(data["a"]),
                str(data["c"]),
                str(data["p"]),
                int(data["e"]),
                str(data.get("s", "")),
                int(data.get("i", 0)),
            )
        except (ValueError, KeyError, TypeError):
            raise Unauthorized("this link is not valid") from None
        return link

    def verify(self, token: str, purpose: str, now: float | None = None) -> Link:
        link = self.read(token)
        if link.purpose != purpose:
            raise Unauthorized(f"this link is for {link.purpose!r}, not {purpose!r}")
        if (now if now is not None else time.time()) > link.expires_at:
            raise LinkExpired("this link has expired; ask for a new one")
        if self._is_revoked is not None and self._is_revoked(link):
            raise LinkRevoked(
                "this link was withdrawn (what it was for is done, or it was sent by mistake); "
                "use the newest message you received, or ask the HR contact for a new link"
            )
        return link

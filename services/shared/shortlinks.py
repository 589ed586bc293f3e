"""Short links: `/l/<code>` on the people's origin stands for one signed candidate link, so a
message shows a short path instead of a token. The code is random (12 base62 characters, about
71 bits: not guessable, not enumerable), and the row keeps the signed link's scope and expiry, so
a short link expires with its link and dies when the link is withdrawn (revocations.py).

Notify writes the rows when it composes a message; the web app resolves them.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import string
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import insert
from sqlalchemy.orm import Session

from . import revocations
from .db import Database
from .links import Link, LinkSigner
from .models import ShortLink, aware, utcnow

ALPHABET = string.digits + string.ascii_letters  # base62: survives every mail and SMS client
CODE_LENGTH = 12  # 62**12 ~ 2**71.4
CODE = re.compile(rf"^[0-9A-Za-z]{{{CODE_LENGTH}}}$")
PATH = "/l/"


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def link_in(target: str, read: Callable[[str], Link]) -> Link | None:
    """The signed link a URL carries (as `?token=` or a path segment), read by `read`
    (`LinkSigner.read`), or None. Whoever builds the URL, the token decides the scope."""
    parsed = urllib.parse.urlsplit(target)
    candidates = [v for k, v in urllib.parse.parse_qsl(parsed.query) if k == "token"]
    candidates += [urllib.parse.unquote(s) for s in reversed(parsed.path.split("/")) if "." in s]
    for candidate in candidates:
        try:
            return read(candidate)
        except Exception:  # not one of our tokens
            continue
    return None


@dataclass(frozen=True)
class Wanted:
    """A short link to make: the full URL, and the signed link it carries."""

    target: str
    link: Link


class Shortener:
    """Makes short links (one transaction per message) and tells what a code stands for."""

    def __init__(self, db: Database, base_url: str, signer: LinkSigner) -> None:
        self.db = db
        self.base_url = base_url.rstrip("/")
        self.signer = signer

    def url(self, code: str) -> str:
        return f"{self.base_url}{PATH}{code}"

    def wanted(self, target: str, fallback: Link) -> Wanted:
        """A target whose token is read from the URL itself (links other services built, such
        as the signing link); `fallback` when it carries none of ours."""
        return Wanted(target, link_in(target, self.signer.read) or fallback)

    def shorten(self, wanted: Iterable[Wanted]) -> list[str]:
        """Short URLs for the targets, in order, written in one transaction."""
        rows: list[dict[str, Any]] = []
        for w in wanted:
            issued = w.link.issued_at or int(utcnow().timestamp())
            rows.append(
                {
                    "code": new_code(),
                    "target": w.target,
                    "tenant": w.link.tenant,
                    "agreement_id": w.link.agreement_id,
                    "candidate_ref": w.link.candidate_ref,
                    "purpose": w.link.purpose,
                    "subject": w.link.subject[:200],
                    "issued_at": dt.datetime.fromtimestamp(issued, dt.UTC),
                    "expires_at": dt.datetime.fromtimestamp(w.link.expires_at, dt.UTC),
                    "created_at": utcnow(),
                }
            )
        if rows:
            with self.db.transaction() as session:
                session.execute(insert(ShortLink), rows)
        return [self.url(r["code"]) for r in rows]


@dataclass(frozen=True)
class Resolution:
    state: Literal["ok", "unknown", "expired", "revoked"]
    target: str | None = None


def resolve(session: Session, code: str, now: dt.datetime | None = None) -> Resolution:
    """Where a code leads: its signed link while that is valid and not withdrawn."""
    if not CODE.match(code):
        return Resolution("unknown")
    row = session.get(ShortLink, code)
    if row is None:
        return Resolution("unknown")
    if (now or utcnow()) > aware(row.expires_at):
        return Resolution("expired")
    link = Link(
        row.tenant,
        row.agreement_id,
        row.candidate_ref,
        row.purpose,
        int(aware(row.expires_at).timestamp()),
        row.subject,
        int(aware(row.issued_at).timestamp()),
    )
    if revocations.is_revoked(session, link):
        return Resolution("revoked")
    return Resolution("ok", row.target)

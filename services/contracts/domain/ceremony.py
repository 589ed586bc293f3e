"""The signing ceremony as the candidate's commitment covers it: built from the portal's journal
(what the candidate's proven browser did), the one-time code that proved the contact, and the
bound signer. Pure: the journal comes in as plain rows; the hash is `offerseal_verify`'s, so
the service and every verifier compute the same bytes.

Only events recorded with a proven enrolment session count (a bare link holder's events stay
in the journal, labelled, but never in the ceremony), except the first opening of the text,
which is when the page was first shown through the link.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from offerseal_verify.ceremony import CEREMONY_FORMAT, MAX_REPORTED_SECONDS, ceremony_hash

__all__ = ["CEREMONY_FORMAT", "Ceremony", "JournalEntry", "build_ceremony", "ceremony_hash"]


@dataclass(frozen=True)
class JournalEntry:
    kind: str
    at: str  # ISO 8601, UTC, as the server recorded it
    detail: dict[str, Any]


@dataclass(frozen=True)
class Ceremony:
    record: dict[str, Any]

    @property
    def hash(self) -> str:
        return ceremony_hash(self.record)


def _last(entries: Sequence[JournalEntry], kind: str, proven: bool) -> JournalEntry | None:
    found = None
    for entry in entries:
        if entry.kind == kind and (not proven or entry.detail.get("session")):
            found = entry
    return found


def bounded_seconds(value: Any) -> int:
    """A browser-reported duration as the record keeps it: an integer in [0, a day]."""
    try:
        seconds = int(value)
    except (TypeError, ValueError):
        return 0
    return max(0, min(seconds, MAX_REPORTED_SECONDS))


def build_ceremony(
    *,
    onchain_id: str,
    chain_id: int,
    registry: str,
    terms_hash: str,
    journal: Sequence[JournalEntry],
    code: dict[str, Any] | None,
    signer: dict[str, Any],
) -> Ceremony:
    """The ceremony record: the agreement, the text (first opened, last read to the end by a
    proven browser, with the browser's own count of seconds, labelled as such), the consent
    (last ticked in a proven browser), the code that proved the contact for the bound signer
    (channel, masked destination, keyed hash of the destination, when sent and verified), and
    the signer (its kind, address, credential, public key, when bound and whom it replaced)."""
    opened = next((e for e in journal if e.kind == "text_opened"), None)
    read = _last(journal, "text_read", proven=True)
    consent = _last(journal, "consent", proven=True)
    record = {
        "format": CEREMONY_FORMAT,
        "agreement": {
            "onchain_id": onchain_id.lower(),
            "chain_id": int(chain_id),
            "registry": registry.lower(),
            "terms_hash": terms_hash.lower(),
        },
        "text": {
            "opened_at": opened.at if opened else None,
            "read_at": read.at if read else None,
            "read_seconds_reported_by_browser": (
                bounded_seconds(read.detail.get("seconds")) if read else None
            ),
        },
        "consent": {"given_at": consent.at if consent else None},
        "code": code,
        "signer": signer,
    }
    return Ceremony(record)

"""The history of receipt keys: which Ed25519 keys signed intake receipts, and when.

A key's period runs from its first use until another key took over (and, during a rolling
change, until the last receipt an older replica signed with it). `/v1/keys` publishes every
period; a receipt verifies against a key only for a time inside that key's period.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import case, select, text, update
from sqlalchemy.orm import Session

from offerseal_verify.receipts import ReceiptSigner, TrustedKey, b64

from ..shared.db import Database
from ..shared.models import aware, utcnow
from .models import ReceiptKey

log = logging.getLogger(__name__)

LOCK = "offerseal.receipt_keys"  # replicas starting together record their key one at a time


def record_current(db: Database, signer: ReceiptSigner, now: dt.datetime | None = None) -> None:
    """At start: the configured key becomes the current one and every other key is retired.
    Replicas starting together agree (one transaction at a time)."""
    now = now or utcnow()
    with db.transaction() as session:
        if session.connection().dialect.name == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": LOCK})
        open_keys = session.execute(
            select(ReceiptKey).where(ReceiptKey.valid_until.is_(None))
        ).scalars()
        for key in open_keys:
            if key.key_id != signer.key_id:
                key.valid_until = now
                log.info("receipt key %s retired; %s signs from now on", key.key_id, signer.key_id)
        mine = session.get(ReceiptKey, signer.key_id)
        if mine is None:
            session.add(
                ReceiptKey(
                    key_id=signer.key_id,
                    public_key_hex=signer.public_raw.hex(),
                    valid_from=now,
                    valid_until=None,
                )
            )
        elif mine.valid_until is not None:
            log.warning(
                "receipt key %s was retired at %s and is configured again: its period now spans "
                "the time another key signed (use a new key instead)",
                signer.key_id,
                mine.valid_until,
            )
            mine.valid_until = None


def note_signature(session: Session, key_id: str, moment: dt.datetime) -> None:
    """In the intake transaction: a receipt signed at `moment` lies inside its key's period.
    Only a replica still signing with a retired key (or a clock behind the one that recorded
    the key) changes anything."""
    session.execute(
        update(ReceiptKey)
        .where(
            ReceiptKey.key_id == key_id,
            (ReceiptKey.valid_from > moment) | (ReceiptKey.valid_until < moment),
        )
        .values(
            valid_from=case((ReceiptKey.valid_from > moment, moment), else_=ReceiptKey.valid_from),
            valid_until=case(
                (ReceiptKey.valid_until < moment, moment), else_=ReceiptKey.valid_until
            ),
        )
    )


def _iso(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    return aware(moment).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class ReceiptKeys:
    """Reads of the key history for verification and publication."""

    def __init__(self, db: Database, signer: ReceiptSigner) -> None:
        self.db = db
        self.signer = signer

    def _rows(self) -> list[ReceiptKey]:
        with self.db.sessions() as session:
            return list(session.execute(select(ReceiptKey)).scalars())

    def trusted(self) -> dict[str, TrustedKey]:
        """Every key that signed, with its period; the configured key at least (open-ended) if
        it was never recorded."""
        keys = {
            row.key_id: TrustedKey(
                bytes.fromhex(row.public_key_hex),
                aware(row.valid_from),
                aware(row.valid_until) if row.valid_until else None,
            )
            for row in self._rows()
        }
        keys.setdefault(self.signer.key_id, TrustedKey(self.signer.public_raw))
        return keys

    def published(self) -> list[dict[str, Any]]:
        """What `/v1/keys` answers: the current key first, then the others, newest first."""
        rows = sorted(self._rows(), key=lambda r: aware(r.valid_from), reverse=True)
        out = [
            {
                "key_id": row.key_id,
                "alg": "Ed25519",
                "public_key": b64(bytes.fromhex(row.public_key_hex)),
                "public_key_hex": row.public_key_hex,
                "use": "intake receipts",
                "current": row.key_id == self.signer.key_id,
                "valid_from": _iso(row.valid_from),
                "valid_until": _iso(row.valid_until),
            }
            for row in rows
        ]
        if not any(entry["current"] for entry in out):
            out.append(
                {
                    "key_id": self.signer.key_id,
                    "alg": "Ed25519",
                    "public_key": b64(self.signer.public_raw),
                    "public_key_hex": self.signer.public_raw.hex(),
                    "use": "intake receipts",
                    "current": True,
                    "valid_from": None,
                    "valid_until": None,
                }
            )
        out.sort(key=lambda entry: not entry["current"])  # stable: the rest stay newest first
        return out

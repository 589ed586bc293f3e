"""The anchorer's batches in flight (prepared and sent, not finalized), and the same batches as
the signer's transaction path stores its attempts (`shared/transactions`)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import update

from ..shared.chain import PreparedTx
from ..shared.db import Database
from ..shared.models import utcnow
from ..shared.transactions import Attempt
from .models import Batch


@dataclass
class Flight:
    """A prepared batch whose transaction is sent and not finalized yet."""

    batch_id: int
    root: bytes
    nonce: int
    tx_hash: str
    raw: bytes
    sent_at: float  # monotonic, of the current attempt
    sent_block: int | None  # the chain's head when it was sent (seen at the next look)
    receipt: Any | None = None  # mined, waiting for its confirmations
    checked_at: float = 0.0  # monotonic, of the last look at the pool and the nonce
    looked_at: int | None = None  # the head when its receipt was last asked for, and when
    asked_at: float = 0.0

    def took(self, prepared: PreparedTx) -> None:
        """Its current transaction is now `prepared` (a replacement, or signed anew)."""
        self.nonce, self.tx_hash, self.raw = prepared.nonce, prepared.tx_hash, prepared.raw
        self.sent_at, self.sent_block, self.receipt = time.monotonic(), None, None
        self.looked_at = None


def attempt_of(flight: Flight, fields_of: Callable[[bytes], dict[str, Any]]) -> Attempt:
    """The batch's transaction as the signer's path sees it (its fields read from its bytes)."""
    age = time.monotonic() - flight.sent_at
    return Attempt(
        key=flight.batch_id,
        nonce=flight.nonce,
        tx_hash=flight.tx_hash,
        raw=flight.raw,
        hashes=(flight.tx_hash,),
        fields=fields_of(flight.raw),
        sent_at=utcnow() - dt.timedelta(seconds=age),
        sent_block=flight.sent_block,
    )


class Batches:
    """The batches in flight as the signer's path stores its attempts (`Attempts`)."""

    def __init__(
        self,
        db: Database,
        flights: dict[int, Flight],
        fields_of: Callable[[bytes], dict[str, Any]],
    ) -> None:
        self.db = db
        self.flights = flights
        self.fields_of = fields_of

    def current(self, attempt: Attempt) -> Attempt | None:
        flight = self.flights.get(attempt.key)
        return None if flight is None else attempt_of(flight, self.fields_of)

    def mark_sent(self, attempt: Attempt, head: int) -> None:
        """Sent again: a batch stays as late as its transaction was (replaced when stuck)."""

    def replace(self, attempt: Attempt, by: PreparedTx, fields: dict[str, Any], head: int) -> bool:
        flight = self.flights.get(attempt.key)
        if flight is None:
            return False
        with self.db.transaction() as session:
            session.execute(
                update(Batch)
                .where(Batch.id == flight.batch_id)
                .values(nonce=by.nonce, tx_hash=by.tx_hash, raw_tx=by.raw)
            )
        flight.took(by)
        return True

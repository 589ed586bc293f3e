"""Nonces of one signer, assigned in order and durably: `take()` runs inside the database
transaction that stores the transaction signed with the nonce, so a nonce is consumed exactly
when its signed bytes are committed (a rollback gives it back, and nothing was sent), and two
processes or replicas never sign two different things with one nonce. Callers hold the
signer's `ExclusiveLock` around take + store + send, which also keeps sends in nonce order.

`bumped()` gives the fees of a replacement: nodes accept a transaction with a nonce already in
their pool only if both its tip and its fee cap are at least 10% higher (we add 12.5%).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.orm import Session

from .db import Database
from .locks import ExclusiveLock
from .models import SignerNonce, utcnow

# Replacement bump: nodes require >= 10% on both maxPriorityFeePerGas and maxFeePerGas.
BUMP_NUMERATOR, BUMP_DENOMINATOR = 9, 8


@contextmanager
def sending(db: Database, signer: str) -> Iterator[None]:
    """The signer's lock across processes, held around take + store + send by every user of
    this nonce manager (the contracts service's writer and the evidence anchorer), so that
    nonces are sent in order even when both are given one key."""
    lock = ExclusiveLock(db, f"tx:{signer}")
    while not lock.try_acquire():
        time.sleep(0.005)
    try:
        yield
    finally:
        lock.release()


def take(session: Session, chain_id: int, signer: str, floor: int, count: int = 1) -> int:
    """The signer's next nonce on the chain, never below `floor` (the count of its
    transactions the chain has mined: nonces someone else used with this key are skipped).
    With `count`, that many consecutive nonces from the one returned."""
    # populate_existing: a row this session loaded before the lock is read again under it.
    row = session.get(SignerNonce, (chain_id, signer), with_for_update=True, populate_existing=True)
    if row is None:
        row = SignerNonce(chain_id=chain_id, signer=signer, next_nonce=floor)
        session.add(row)
    nonce = max(int(row.next_nonce), floor)
    row.next_nonce = nonce + count
    row.updated_at = utcnow()
    session.flush()
    return nonce


def peek(session: Session, chain_id: int, signer: str) -> int | None:
    """The nonce `take()` would give next (without the floor), or None before the first."""
    row = session.get(SignerNonce, (chain_id, signer))
    return None if row is None else int(row.next_nonce)


def _up(value: int) -> int:
    return -(-value * BUMP_NUMERATOR // BUMP_DENOMINATOR)  # ceil(value * 9/8)


def bumped(fields: dict[str, Any], suggested: dict[str, int]) -> dict[str, Any]:
    """`fields` (an EIP-1559 transaction) with fees a node accepts as its replacement: each at
    least 12.5% above the old one, and no lower than what the chain suggests now."""
    tip = max(_up(int(fields["maxPriorityFeePerGas"])), int(suggested["maxPriorityFeePerGas"]))
    cap = max(_up(int(fields["maxFeePerGas"])), int(suggested["maxFeePerGas"]), tip)
    return {**fields, "maxPriorityFeePerGas": tip, "maxFeePerGas": cap}


def rewind(session: Session, chain_id: int, signer: str, to: int) -> None:
    """Only for a chain that forgot its past (reset: another genesis block): the signer's next
    nonce becomes the chain's count again, since the nonces above it were never mined there."""
    row = session.get(SignerNonce, (chain_id, signer), with_for_update=True, populate_existing=True)
    if row is not None and int(row.next_nonce) > to:
        row.next_nonce = to
        row.updated_at = utcnow()
        session.flush()

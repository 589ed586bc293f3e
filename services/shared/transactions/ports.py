"""What the transaction path needs from outside, in its own words: the chain it signs for and
sends to (`SigningChain`), the signer's durable nonces and lock (`NonceBook`), and the store of
the transactions in flight (`Attempts`). Adapters: `onchain.Web3SigningChain`, `book.DbNonceBook`;
unit tests use fakes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from ..chain import PreparedTx


@dataclass(frozen=True)
class Mined:
    """A transaction in a block: whether it succeeded or reverted."""

    tx_hash: str
    succeeded: bool


@dataclass(frozen=True)
class Attempt:
    """A stored transaction not mined yet, as the path needs it: `key` is the store's (one row,
    or the rows that share a multicall), `hashes` every attempt with the current one last,
    `fields` the EIP-1559 fields it was signed from (None: stored before fields were kept)."""

    key: Any
    nonce: int
    tx_hash: str
    raw: bytes
    hashes: tuple[str, ...]
    fields: dict[str, Any] | None
    sent_at: dt.datetime
    sent_block: int | None


class SigningChain(Protocol):
    """The chain as one signing key sees it."""

    @property
    def signer(self) -> str: ...  # the address that signs and sends

    def chain_id(self) -> int: ...
    def block_number(self) -> int: ...
    # transactions of `address` mined ("latest"), or known to the node with `pending`
    def sent_count(self, address: str, pending: bool = False) -> int: ...
    def suggested_fees(self) -> dict[str, int]: ...  # maxFeePerGas, maxPriorityFeePerGas now
    def self_transfer(self) -> dict[str, Any]: ...  # a no-op transaction to fill a nonce
    def sign(self, fields: dict[str, Any], nonce: int) -> PreparedTx: ...
    # the fields (without the nonce) signed bytes were signed from: `sign` them again with
    # other fees and the same nonce, and they are the transaction's replacement
    def fields_of(self, raw: bytes) -> dict[str, Any]: ...
    def send(self, raw: bytes) -> None: ...  # raises on a refusal or when the node is away
    def mined(self, tx_hash: str) -> Mined | None: ...  # its receipt, if it is in a block
    # `mined` of each, asked together: those in a block (raises when the node fails any)
    def mined_many(self, tx_hashes: Sequence[str]) -> dict[str, Mined]: ...
    def transaction_known(self, tx_hash: str) -> bool: ...


class NonceBook(Protocol):
    """The signer's durable nonces and the lock every sender of the key holds around take +
    store + send (`shared/nonces.py` over the database)."""

    def sending(self) -> AbstractContextManager[None]: ...
    # a database transaction: nonces taken in it are consumed when it commits
    def transaction(self) -> AbstractContextManager[Any]: ...
    def take(self, session: Any, chain_id: int, floor: int, count: int = 1) -> int: ...
    def rewind(self, session: Any, chain_id: int, to: int) -> None: ...


class Attempts(Protocol):
    """Where the transactions in flight are stored (the contracts service's operations, the
    anchorer's batches)."""

    def current(self, attempt: Attempt) -> Attempt | None: ...  # as stored now; None: finished
    def mark_sent(self, attempt: Attempt, head: int) -> None: ...
    # store `by` (signed from `fields`, same nonce) as the attempt's current transaction;
    # False when it was finished meanwhile (nothing to send)
    def replace(
        self, attempt: Attempt, by: PreparedTx, fields: dict[str, Any], head: int
    ) -> bool: ...

"""What the evidence service layer needs from storage, in its own words: one transaction's
writes for intake, one session's reads, and the transactions around them (alone, once per
Idempotency-Key, or shared with other uploads). `adapters/storage.py` implements these over
SQLAlchemy with PostgreSQL's COPY fast paths; unit tests use an in-memory fake."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Hashable
from contextlib import AbstractContextManager
from typing import Any, Protocol, TypeVar

from offerseal_verify.receipts import TrustedKey
from offerseal_verify.timestamps import Stamp

from .crypto import Sealed
from .domain.records import StoredBatch, StoredDocument

T = TypeVar("T")
I = TypeVar("I")  # noqa: E741 (as group_commit names it)

# One tenant's numbers for a request: (internal row numbers, the tenant's receipt sequences).
Numbers = tuple[list[int], list[int]]

# The columns of a hash-only row that differ from row to row, in the order `add_hash_only`
# receives them; then the columns every row of the request shares (`same`).
HASH_ONLY_COLUMNS = (
    "seq",
    "id",
    "sequence",
    "kind",
    "candidate_ref",
    "agreement_id",
    "milestone",
    "sha256",
    "salt",
    "leaf",
)


class IntakeWrites(Protocol):
    """Intake's writes in one transaction: committed together or not at all."""

    def allocate(self, counts: dict[str, int], key_id: str, at: dt.datetime) -> dict[str, Numbers]:
        """Each tenant's numbers for `counts[tenant]` documents; notes that the receipt key
        signed at `at`. The tenants' counters stay locked until the commit."""
        ...

    def key_label(self, key_id: str) -> str | None: ...  # the API key's name

    def add_intake_batch(
        self, tenant: str, receipt: dict[str, Any], at: dt.datetime, leaves: bytes | None = None
    ) -> int:
        """A signed batch receipt (and the leaves of its tree, when rows keep no path): its id."""
        ...

    def add_documents(self, rows: list[dict[str, Any]], blobs: list[dict[str, Any]]) -> None:
        """Documents' rows (every column by name) and the encrypted bytes of those that have
        them (`document_seq`, `key_version`, `wrapped_key`, `nonce`, `ciphertext`)."""
        ...

    def add_hash_only(self, rows: list[tuple[Any, ...]], same: dict[str, Any]) -> None:
        """Documents registered by hash only: `HASH_ONLY_COLUMNS` a row, then `same`'s columns
        (every row's), the others NULL."""
        ...

    def candidate_uploads(self, tenant: str, agreement_id: str, milestone: str) -> int:
        """How many documents the candidate's links uploaded to this stage; no other upload to
        the stage through a link counts at the same time until the commit."""
        ...


class EvidenceReads(Protocol):
    """What the reads and proofs look up, in one session."""

    def document(self, tenant: str, document_id: str) -> StoredDocument | None: ...
    def batch(self, batch_id: int) -> StoredBatch | None: ...
    def batches(self, batch_ids: set[int]) -> dict[int, StoredBatch]: ...

    def page(
        self, tenant: str, candidate_ref: str | None, after: int, limit: int
    ) -> list[StoredDocument]:
        """Up to `limit` documents with a sequence above `after`, in sequence order."""
        ...

    def intake_receipt(self, intake_batch_id: int) -> dict[str, Any]: ...  # as signed
    def intake_leaves(self, intake_batch_id: int) -> bytes | None: ...
    def batch_leaves(self, batch_id: int) -> bytes | None: ...

    def stored_path(self, batch_id: int, document_seq: int) -> list[str] | None:
        """The document's path in the batch as its member row stored it (None: rebuilt from
        the batch's leaves)."""
        ...

    def history(self, document_seq: int) -> list[tuple[StoredBatch, list[str] | None]]:
        """Every anchored or superseded batch the document was in, oldest first, each with its
        stored path."""
        ...

    def stamps(self, batch_id: int) -> list[tuple[str, Stamp]]: ...  # (TSA, stamp), by TSA
    # the tenant's bundle entries, by witness (its own account's deposit, else the deployment's)
    def deposits(self, batch_id: int, tenant: str) -> list[dict[str, Any]]: ...
    def sealed(self, document_seq: int) -> Sealed | None: ...  # None: registered by hash only


class EvidenceStorage(Protocol):
    """The transactions the service layer works in."""

    @property
    def grouped(self) -> bool: ...  # whether uploads share transactions (`combined`)

    def transaction(self) -> AbstractContextManager[IntakeWrites]: ...
    def reads(self) -> AbstractContextManager[EvidenceReads]: ...

    def once(
        self,
        tenant: str,
        key: str | None,
        request_fp: str,
        work: Callable[[IntakeWrites], dict[str, Any]],
    ) -> tuple[int, dict[str, Any], bool]:
        """`work` once per Idempotency-Key (every time without one), in one transaction with
        the record of its answer. Returns (status, body, replayed); IdempotencyConflict when
        the key came with another request."""
        ...

    def combined(
        self, kind: Hashable, item: I, write_all: Callable[[IntakeWrites, list[I]], list[T]]
    ) -> T:
        """`write_all(writes, items)` in a transaction shared with the items of this kind that
        arrive at the same time; this item's result once committed."""
        ...


class ReceiptKeyBook(Protocol):
    """The receipt keys that ever signed (`receipt_keys.ReceiptKeys`)."""

    def trusted(self) -> dict[str, TrustedKey]: ...
    def published(self) -> list[dict[str, Any]]: ...

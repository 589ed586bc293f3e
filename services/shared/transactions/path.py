"""The transaction path of one signing key: nonces taken in the database transaction that
stores the signed bytes (`NonceBook.take`: a nonce is consumed exactly when its bytes are
committed), sends in nonce order under the signer's lock, and the queue kept moving: a
transaction not mined after `stuck_blocks` blocks or `stuck_seconds` is sent again from its
stored bytes when the node lost it, or replaced (same nonce, same call, fees up by 12.5%) when
the node holds it or refuses the stored bytes; a nonce the chain waits for with nothing stored
for it (a gap) is filled with a no-op self-transfer. What a transaction means, and what its
outcome does, is the caller's: it stores the attempts (`Attempts`) and records the outcomes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import requests

from .. import failpoints, nonces
from ..chain import PreparedTx
from .ports import Attempt, Attempts, Mined, NonceBook, SigningChain

log = logging.getLogger(__name__)
RESEND_AFTER = 1.0  # seconds before a transaction whose send failed is sent again
UNANSWERED = (requests.ConnectionError, requests.Timeout)  # the node did not answer


class SignerPath:
    def __init__(
        self,
        chain: SigningChain,
        book: NonceBook,
        *,
        stuck_blocks: int = 3,
        stuck_seconds: float = 90.0,
        clock: Callable[[], float] = time.time,
        failpoint: str = "contracts",
    ) -> None:
        self.chain = chain
        self.book = book
        self.stuck_blocks = stuck_blocks
        self.stuck_seconds = stuck_seconds
        self.clock = clock
        self.failpoint = failpoint  # the prefix of the crash points the replacement passes
        self._local = threading.Lock()
        self._chain_id: int | None = None
        self.floor = -1  # transactions of the signer the chain has mined, as last seen
        self.head: int | None = None  # the chain's block number, as last seen
        self._unsent: dict[Any, float] = {}  # attempt key -> when its send failed
        self._displaced: set[Any] = set()  # nonce used on chain, none of its hashes mined
        self._gaps: dict[int, tuple[float, int | None]] = {}  # nonce -> first seen (time, head)
        self._seen_at: dict[Any, int] = {}  # attempt key -> head when first seen waiting

    @property
    def signer(self) -> str:
        return self.chain.signer

    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = self.chain.chain_id()
        return self._chain_id

    # ---- nonces and sending -------------------------------------------------------------------

    @contextmanager
    def writer(self) -> Iterator[None]:
        """One sender per signer key at a time, across threads and processes: it takes the
        nonce, stores and sends (in nonce order), and never waits for a block."""
        with self._local, self.book.sending():
            yield

    def local(self) -> threading.Lock:
        """The lock of this process's threads alone (held with `sending()`: `writer()`)."""
        return self._local

    def sending(self) -> AbstractContextManager[None]:
        """The signer's lock across processes (the caller holds `local()`)."""
        return self.book.sending()

    def mined_floor(self) -> int:
        """The signer's transactions the chain has mined, as last seen (read once)."""
        if self.floor < 0:
            self.floor = self.chain.sent_count(self.signer)
        return self.floor

    def observe(self, head: int, mined_count: int) -> None:
        self.head, self.floor = head, max(self.floor, mined_count)

    def sign_new(
        self, session: Any, fields: Sequence[dict[str, Any]], floor: int
    ) -> list[PreparedTx]:
        """Each of `fields` signed with the signer's next nonces (consecutive, never below
        `floor`), taken in `session`: the caller stores the bytes in it before it commits."""
        first = self.book.take(session, self.chain_id(), floor, count=len(fields))
        return [self.chain.sign(f, first + i) for i, f in enumerate(fields)]

    def rewind(self, to: int) -> None:
        """The chain forgot its past (another genesis): the next nonce is its count again."""
        with self.book.sending(), self.book.transaction() as session:
            self.book.rewind(session, self.chain_id(), to)

    def send(
        self, raw: bytes, tx_hash: str, keys: Sequence[Any] = (), *, quiet: bool = True
    ) -> bool | None:
        """Send stored bytes (of the attempts `keys`); a failure leaves them stored to be sent
        again (or replaced). True when the node took them, False when it refused them (too
        low a fee, say), None when it did not answer (raised unless `quiet`)."""
        try:
            self.chain.send(raw)
        except UNANSWERED as exc:
            self._unsent.update(dict.fromkeys(keys, self.clock()))
            if not quiet:
                raise
            log.warning("sending %s failed (%s); it is sent again", tx_hash, exc)
            return None
        except Exception as exc:  # the node's refusal: sent again or replaced
            self._unsent.update(dict.fromkeys(keys, self.clock()))
            log.warning("the node refused %s (%s); it is sent again or replaced", tx_hash, exc)
            return False
        for key in keys:
            self._unsent.pop(key, None)
        return True

    def settled(self, key: Any) -> None:
        """The attempt's outcome is recorded: nothing is sent again for it."""
        self._unsent.pop(key, None)

    # ---- looking at what was sent -------------------------------------------------------------

    def receipt_of(self, attempt: Attempt) -> Mined | None:
        for tx_hash in reversed(attempt.hashes):  # the latest attempt is the likeliest
            mined = self.chain.mined(tx_hash)
            if mined is not None:
                return mined
        return None

    def known(self, attempt: Attempt) -> bool:
        """Whether the node holds one of the attempt's transactions (in its pool or a block)."""
        return any(self.chain.transaction_known(h) for h in attempt.hashes)

    def sort(self, used: Sequence[Attempt]) -> tuple[list[tuple[Attempt, Mined]], list[Attempt]]:
        """Attempts whose nonce the chain has used: those mined (with their receipt), and those
        displaced (none of their transactions in a block: the nonce was taken by another
        transaction of this key; seen twice, in case the receipt lagged the count)."""
        receipts = self.chain.mined_many([h for a in used for h in a.hashes]) if used else {}
        mined, displaced = [], []
        for attempt in used:
            found = next((receipts[h] for h in reversed(attempt.hashes) if h in receipts), None)
            if found is not None:
                mined.append((attempt, found))
            elif attempt.key in self._displaced:
                self._displaced.discard(attempt.key)
                displaced.append(attempt)
            else:
                self._displaced.add(attempt.key)
        return mined, displaced

    def late(self, since: float, since_block: int | None, head: int) -> bool:
        return self.clock() - since >= self.stuck_seconds or (
            since_block is not None and head - since_block >= self.stuck_blocks
        )

    # ---- keeping the queue moving -------------------------------------------------------------

    def unstick(
        self, waiting: Sequence[Attempt], attempts: Attempts, head: int, mined_count: int
    ) -> None:
        """Send again what the node lost, replace what it holds but does not mine, and fill
        nonces nothing is stored for (gaps below the last waiting one)."""
        now = self.clock()
        for key in set(self._seen_at) - {a.key for a in waiting}:
            del self._seen_at[key]
        stuck = [
            a
            for a in waiting
            if now - self._unsent.get(a.key, now) >= RESEND_AFTER
            or self.late(
                a.sent_at.timestamp(),
                a.sent_block if a.sent_block is not None else self._seen_at.setdefault(a.key, head),
                head,
            )
        ]
        # attempts that share one transaction (a multicall's) are sent again or replaced once
        stuck = list({(a.nonce, a.tx_hash): a for a in stuck}.values())
        gaps = self.gaps({a.nonce for a in waiting}, head, mined_count)
        if not stuck and not gaps:
            return
        with self.writer():
            for attempt in stuck:
                self.resend_or_replace(
                    attempt, attempts, head, next_on_chain=attempt.nonce == mined_count
                )
            for nonce in gaps:
                self.fill(nonce)
                self._gaps.pop(nonce, None)

    def gaps(self, held: set[int], head: int, mined_count: int) -> list[int]:
        """The nonces below the highest of `held` that nothing is held for, once they have
        lasted as long as makes a transaction stuck."""
        now = self.clock()
        gaps = []
        for nonce in range(mined_count, max(held, default=mined_count)):
            if nonce in held:
                continue
            first = self._gaps.setdefault(nonce, (now, head))
            if self.late(first[0], first[1], head):
                gaps.append(nonce)
        for nonce in list(self._gaps):
            if nonce < mined_count or nonce in held:
                del self._gaps[nonce]
        return gaps

    def forget_gaps(self) -> None:
        self._gaps.clear()

    def resend_or_replace(
        self, attempt: Attempt, attempts: Attempts, head: int, next_on_chain: bool
    ) -> None:
        """Send again what the node lost (replaced when it refuses the stored bytes); replace
        the transaction the chain waits for next when the node holds it but does not mine it
        (a later one only waits behind it). The caller holds the signer's lock."""
        current = attempts.current(attempt)
        if current is None or self.receipt_of(current) is not None:
            return  # recorded meanwhile, or mined: the next round records it
        if not self.known(current):
            log.info("re-sending the stored transaction %s", current.tx_hash)
            attempts.mark_sent(current, head)
            if self.send(current.raw, current.tx_hash, [current.key]) is not False:
                return
            # The node refuses the stored bytes (the base fee rose above their cap): replaced.
        elif not next_on_chain:
            attempts.mark_sent(current, head)  # queued behind an earlier nonce: wait for it
            return
        self.replace(current, attempts, head)

    def replace(self, attempt: Attempt, attempts: Attempts, head: int) -> PreparedTx | None:
        """The same transaction with the same nonce and fees up by 12.5% (and no lower than
        the chain suggests now), stored before it is sent. The caller holds the signer's lock."""
        if attempt.fields is None:
            return None  # stored before fields were kept: it can only be sent again as it is
        fields = nonces.bumped(attempt.fields, self.chain.suggested_fees())
        replacement = self.chain.sign(fields, attempt.nonce)
        if not attempts.replace(attempt, replacement, fields, head):
            return None
        log.warning(
            "nonce %d of %s is stuck: replaced %s by %s (max fee %d, tip %d)",
            attempt.nonce,
            self.signer,
            attempt.tx_hash,
            replacement.tx_hash,
            fields["maxFeePerGas"],
            fields["maxPriorityFeePerGas"],
        )
        failpoints.hit(f"{self.failpoint}.before_replacement_send")
        self.send(replacement.raw, replacement.tx_hash, [attempt.key])
        failpoints.hit(f"{self.failpoint}.after_replacement_send")
        return replacement

    def fill(self, nonce: int) -> PreparedTx:
        """A nonce the chain waits for with nothing stored for it: a no-op self-transfer with
        generous fees, so the transactions after it are mined. The caller holds the lock."""
        fields = nonces.bumped(self.chain.self_transfer(), self.chain.suggested_fees())
        filler = self.chain.sign(fields, nonce)
        log.warning(
            "nonce %d of %s has no stored transaction: filled with a self-transfer %s",
            nonce,
            self.signer,
            filler.tx_hash,
        )
        try:
            self.chain.send(filler.raw)
        except Exception as exc:  # tried again next round while the gap stays
            log.warning("the self-transfer for nonce %d was refused (%s)", nonce, exc)
        return filler

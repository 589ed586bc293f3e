"""The one path every chain transition takes, its nonces, and its recovery after a crash.

Simulate the call (a refusal is the contract's own custom error, answered 409, and nothing is
written); take the signer's next nonce and store the signed transaction in one database
transaction (`nonces.take`: a nonce is consumed exactly when its bytes are committed); send
it; then, whoever sees it mined first (the request waiting for it, or the confirmer in the
worker), records its effect with the outbox messages in one database transaction (`Outcomes`),
exactly once. Many transactions are in flight at once: the signer's lock is held only to take
the nonce, store and send, never while waiting for a block.

Offers that wait for the signer's lock together go out as one `multicall` transaction (up to
BUNDLE_MAX): simulated together by the lock's holder, and each on its own when together they
are refused, so that only the refused offer gets the refusal. Each offer keeps its own
operation row; the rows share the transaction's nonce, hash and bytes, are sent, resent and
replaced together, and each records its own outcome.

The confirmer (`confirm()`, run by the worker) also keeps the signer's queue moving: a
transaction not mined after `stuck_blocks` blocks or `stuck_seconds` is sent again from its
stored bytes when the node lost it, or replaced (same nonce, same call, fees up by 12.5%) when
the node holds it; a nonce the chain waits for that nothing is stored for (a gap) is filled
with a no-op self-transfer. A crash anywhere is finished by `recover()` and the confirmer: the
stored transaction is looked up on chain and sent again, never signed anew with another nonce.

Anyone may commit, expire, declare a breach or record an arrival, so the chain may be ahead of
the database: after a refusal or a revert the agreement's state is read back from the chain and
recorded (`Outcomes.converged`), whoever sent the transaction that moved it.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import requests
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ..shared import failpoints, nonces
from ..shared.chain import PreparedTx
from ..shared.db import Database
from ..shared.models import aware, utcnow
from .errors import ChainRefusal, SenderStopped, StillOffering
from .models import Agreement, ChainOp
from .ports import AgreementsChain, ChainCall, Mined

log = logging.getLogger(__name__)
RESEND_AFTER = 1.0  # seconds before a transaction whose send failed is sent again
MAX_BATCH = 64  # submissions stored in one database transaction and sent together
BUNDLED = frozenset({"offer"})  # operations sent as one multicall when several wait together
BUNDLE_MAX = 16  # calls in one multicall transaction (about 250,000 gas each with the margin)
REREAD = 1.0  # seconds between reads of an operation a request waits for (receipts: `poll`)


class Outcomes(Protocol):
    """What a mined or reverted operation does to its agreement (see `outcomes.py`)."""

    def mined(self, session: Session, agreement: Agreement, op: ChainOp) -> None: ...
    def reverted(self, session: Session, agreement: Agreement, op: ChainOp) -> None: ...
    def converged(
        self,
        session: Session,
        agreement: Agreement,
        chain_state: str,
        arrival: tuple[int, bool],
    ) -> bool: ...


@dataclass(frozen=True)
class Submitted:
    """A transaction stored and sent, not yet mined."""

    op_id: int
    tx_hash: str
    nonce: int


@dataclass(eq=False)
class _Job:
    """A submission waiting for the signer's lock; whoever holds it stores and sends it."""

    agreement_id: str
    op: str
    args: dict[str, Any]
    fields: dict[str, Any] | None  # None: simulated when sent, with the others that wait
    before: Callable[[Session], None] | None
    call: ChainCall | None = None
    done: bool = False
    submitted: Submitted | None = None
    error: BaseException | None = None


@dataclass(eq=False)
class _Unit:
    """One transaction to send: one submission, or several as one multicall."""

    jobs: list[_Job]
    fields: dict[str, Any]


def _fail(job: _Job, error: BaseException) -> None:
    job.error, job.done = error, True


def _fail_unanswered(batch: list[_Job], error: BaseException) -> None:
    """`error` escaped the holder of the signer's lock while it stored and sent `batch`: each
    submission of it not answered yet gets it (one that is no Exception, an interrupt, as a
    503 raised from it: it is not raised in another request's thread). One stored already is
    sent and recorded by the confirmer like any other. Those still queued are taken by the
    next holder."""
    answer = error
    if not isinstance(error, Exception):
        answer = SenderStopped(f"interrupted ({type(error).__name__}) before answering it")
        answer.__cause__ = error
    for job in batch:
        if not job.done:
            _fail(job, answer)


@dataclass(frozen=True)
class Pending:
    """What the confirmer needs of a prepared operation."""

    id: int
    agreement_id: str
    op: str
    nonce: int
    tx_hash: str
    raw: bytes
    hashes: tuple[str, ...]  # every attempt, the current one last
    fields: dict[str, Any] | None
    sent_at: dt.datetime
    sent_block: int | None


def _pending(op: ChainOp) -> Pending:
    return Pending(
        id=op.id,
        agreement_id=op.agreement_id,
        op=op.op,
        nonce=int(op.nonce),
        tx_hash=op.tx_hash,
        raw=bytes(op.raw_tx),
        hashes=(*(op.earlier_hashes or []), op.tx_hash),
        fields=op.tx_fields,
        sent_at=aware(op.sent_at or op.created_at),
        sent_block=op.sent_block,
    )


class TransactionPath:
    def __init__(
        self,
        db: Database,
        chain: AgreementsChain,
        outcomes: Outcomes,
        *,
        stuck_blocks: int = 3,
        stuck_seconds: float = 90.0,
        wait_timeout: float = 120.0,
        poll: float = 0.1,
    ) -> None:
        self.db = db
        self.chain = chain
        self.outcomes = outcomes
        self.stuck_blocks = stuck_blocks
        self.stuck_seconds = stuck_seconds
        self.wait_timeout = wait_timeout
        self.poll = poll
        self._local_lock = threading.Lock()
        self._queue_lock = threading.Lock()
        self._queue: list[_Job] = []  # submissions waiting for the signer's lock
        self._bundles: bool | None = None  # whether the contract takes a multicall (read once)
        self._chain_id: int | None = None
        self._floor = -1  # transactions of the signer the chain has mined, as last seen
        self._head: int | None = None  # the chain's block number, as last seen
        self._unsent: dict[int, float] = {}  # operation -> when its send failed (sent again)
        self._displaced: set[int] = set()  # nonce used on chain, none of ours mined (once)
        self._gaps: dict[int, tuple[float, int | None]] = {}  # nonce -> first seen (time, head)
        self._seen_at: dict[int, int] = {}  # operation -> head when first seen waiting

    @contextmanager
    def _writer(self) -> Iterator[None]:
        """One sender per signer key at a time, across threads and processes: it takes the
        nonce, stores and sends (in nonce order), and never waits for a block."""
        with self._local_lock, self._exclusive():
            yield

    def _exclusive(self) -> AbstractContextManager[None]:
        """The signer's lock across processes (the caller holds `_local_lock`)."""
        return nonces.sending(self.db, self.chain.relayer)

    def _chain(self) -> int:
        if self._chain_id is None:
            self._chain_id = self.chain.chain_id()
        return self._chain_id

    def _mined_floor(self) -> int:
        if self._floor < 0:
            self._floor = self.chain.sent_count(self.chain.relayer)
        return self._floor

    # ---- sending ------------------------------------------------------------------------------

    def transact(
        self,
        agreement_id: str,
        op: str,
        call: ChainCall,
        args: dict[str, Any] | None = None,
        before: Callable[[Session], None] | None = None,
    ) -> Mined:
        """Send `call` for the agreement as operation `op` (`args` are kept with it for its
        outcome) and wait until its outcome is recorded; `before` writes in the same
        transaction that stores the signed bytes. A refusal is raised after the database has
        caught up with the chain."""
        submitted = self.submit(agreement_id, op, call, args, before)
        mined = self.await_op(submitted.op_id)
        if not mined.succeeded and op != "offer":
            self.converge(agreement_id)
        return mined

    def submit(
        self,
        agreement_id: str,
        op: str,
        call: ChainCall,
        args: dict[str, Any] | None = None,
        before: Callable[[Session], None] | None = None,
    ) -> Submitted:
        """Simulate (estimate), sign with the next nonce, store and send `call`; returns
        without waiting for a block (its outcome is recorded by `await_op` or by the confirmer)."""
        if op != "offer":
            self._require_on_chain(agreement_id)
        fields = None
        if not self._bundled(op, call):
            try:
                # gas estimated on the chain as it is now: the simulation (a refusal is raised)
                fields = self.chain.unsigned(call)
            except ChainRefusal:
                if op != "offer":
                    self.converge(agreement_id)
                raise
        job = _Job(agreement_id, op, args or {}, fields, before, call)
        with self._queue_lock:
            self._queue.append(job)
        try:
            # Whoever holds the lock stores and sends every submission waiting for it: one
            # database transaction and one lock for all the requests that arrived meanwhile.
            with self._local_lock:
                if not job.done:
                    with self._exclusive():
                        while not job.done:
                            with self._queue_lock:
                                batch = self._queue[:MAX_BATCH]
                                del self._queue[:MAX_BATCH]
                            assert batch, "a submission left the queue without an answer"
                            try:
                                self._store_and_send(batch)
                            except BaseException as exc:
                                # the submissions this holder took wait for it under the
                                # lock: each gets an answer before the lock is released
                                _fail_unanswered(batch, exc)
                                raise
        except BaseException:
            with self._queue_lock:  # not stored (the lock could not be taken): withdrawn
                self._queue[:] = [j for j in self._queue if j is not job]
            raise
        if job.error is not None:
            raise job.error
        assert job.submitted is not None
        failpoints.hit("contracts.after_send")
        return job.submitted

    def _bundled(self, op: str, call: ChainCall) -> bool:
        """Whether `op` waits to be simulated and sent with the others of its kind."""
        if op not in BUNDLED:
            return False
        if self._bundles is None:
            self._bundles = self.chain.bundle([call]) is not None
        return self._bundles

    def _store_and_send(self, batch: list[_Job]) -> None:
        """Under the signer's lock: the batch's writes (`before`), its nonces and its signed
        transactions committed in one database transaction, then sent in nonce order. When
        the transaction fails (one submission's `before` conflicts, say) each transaction is
        stored on its own (a multicall's submissions each alone), and only the submissions
        that fail get their error. Every submission of the batch is done when this returns."""
        units = self._units(batch)
        try:
            stored = self._store(units) if units else []
        except Exception as exc:
            if len(units) == 1 and len(units[0].jobs) == 1:
                _fail(units[0].jobs[0], exc)
                return
            stored = self._store_each(units)
        if stored:
            failpoints.hit("contracts.before_send")
            if any(len(unit.jobs) > 1 for unit, _, _ in stored):
                failpoints.hit("contracts.before_multicall_send")
        for unit, prepared, op_ids in stored:
            self._send(op_ids, prepared.raw, prepared.tx_hash)
            for job, op_id in zip(unit.jobs, op_ids, strict=True):
                job.submitted = Submitted(op_id, prepared.tx_hash, prepared.nonce)
                job.done = True
        for job in batch:
            if not job.done:  # cannot happen: every path above answers each submission
                _fail(job, RuntimeError("the submission was neither stored nor refused"))

    def _units(self, batch: list[_Job]) -> list[_Unit]:
        """The batch as transactions: submissions estimated already each alone; the others
        (offers) by BUNDLE_MAX as one multicall simulated together, or each alone when the
        contract refuses them together (so that only the refused one gets the refusal)."""
        units = [_Unit([job], job.fields) for job in batch if job.fields is not None]
        waiting = [job for job in batch if job.fields is None]
        for start in range(0, len(waiting), BUNDLE_MAX):
            group = waiting[start : start + BUNDLE_MAX]
            bundle = self.chain.bundle([self._call(j) for j in group]) if len(group) > 1 else None
            if bundle is not None:
                try:
                    units.append(_Unit(group, self.chain.unsigned(bundle)))
                    continue
                except ChainRefusal as exc:
                    log.info("%d calls refused together (%s): each on its own", len(group), exc)
                except Exception as exc:  # the node did not answer: nor would it for each
                    for job in group:
                        _fail(job, exc)
                    continue
            units += self._singles(group)
        return units

    def _singles(self, jobs: list[_Job]) -> list[_Unit]:
        """Each submission simulated and estimated on its own; a refusal is its answer."""
        units = []
        for job in jobs:
            try:
                units.append(_Unit([job], self.chain.unsigned(self._call(job))))
            except Exception as exc:
                _fail(job, exc)
        return units

    @staticmethod
    def _call(job: _Job) -> ChainCall:
        assert job.call is not None
        return job.call

    def _store_each(self, units: list[_Unit]) -> list[tuple[_Unit, PreparedTx, list[int]]]:
        stored = []
        for unit in units:
            try:
                stored += self._store([unit])
            except Exception as exc:
                if len(unit.jobs) == 1:
                    _fail(unit.jobs[0], exc)
                else:  # which of the multicall's submissions failed: each alone
                    stored += self._store_each(self._singles(unit.jobs))
        return stored

    def _store(self, units: list[_Unit]) -> list[tuple[_Unit, PreparedTx, list[int]]]:
        """One database transaction: each submission's `before`, then consecutive nonces and
        the transactions signed with them, one operation row per submission (a nonce is
        consumed exactly when its signed bytes are committed)."""
        relayer = self.chain.relayer
        chain_id, floor = self._chain(), self._mined_floor()
        with self.db.transaction() as session:
            for unit in units:
                for job in unit.jobs:
                    if job.before is not None:
                        job.before(session)
            first = nonces.take(session, chain_id, relayer, floor, count=len(units))
            out = []
            for i, unit in enumerate(units):
                prepared = self.chain.sign(unit.fields, first + i)
                rows = [
                    ChainOp(
                        agreement_id=job.agreement_id,
                        op=job.op,
                        args=job.args,
                        signer=relayer,
                        nonce=prepared.nonce,
                        tx_hash=prepared.tx_hash,
                        raw_tx=prepared.raw,
                        tx_fields=unit.fields,
                        sent_at=utcnow(),
                        sent_block=self._head,
                        earlier_hashes=[],
                    )
                    for job in unit.jobs
                ]
                session.add_all(rows)
                out.append((unit, prepared, rows))
            session.flush()
            return [(unit, prepared, [row.id for row in rows]) for unit, prepared, rows in out]

    def _send(self, op_ids: list[int], raw: bytes, tx_hash: str) -> bool | None:
        """Send stored bytes (of the operations `op_ids`: one, or a multicall's); a failure
        leaves them stored for the confirmer to send again (or to replace), so the caller's
        answer does not depend on it. True when the node took them, False when it refused
        them (too low a fee, say), None when it did not answer."""
        try:
            self.chain.send(raw)
        except (requests.ConnectionError, requests.Timeout) as exc:
            self._unsent.update(dict.fromkeys(op_ids, time.time()))
            log.warning("sending %s failed (%s); it is sent again", tx_hash, exc)
            return None
        except Exception as exc:  # the node's refusal: the confirmer replaces it
            self._unsent.update(dict.fromkeys(op_ids, time.time()))
            log.warning("the node refused %s (%s); it is sent again or replaced", tx_hash, exc)
            return False
        for op_id in op_ids:
            self._unsent.pop(op_id, None)
        return True

    def _require_on_chain(self, agreement_id: str) -> None:
        with self.db.sessions() as session:
            agreement = session.get(Agreement, agreement_id)
            if agreement is not None and agreement.state == "offering":
                raise StillOffering(agreement_id)

    def await_op(self, op_id: int, timeout: float | None = None) -> Mined:
        """Wait until the operation is mined (any of its attempts) and its outcome recorded,
        here or by the confirmer; TimeoutError after `timeout` (default `wait_timeout`)."""
        deadline = time.monotonic() + (self.wait_timeout if timeout is None else timeout)
        read_at = -REREAD
        while True:
            if time.monotonic() - read_at >= REREAD:
                # the receipt is asked every `poll`; the operation read again every REREAD (the
                # confirmer may have recorded it, or replaced its transaction by another)
                with self.db.sessions() as session:
                    op = session.get(ChainOp, op_id)
                    assert op is not None
                    state, current = op.state, _pending(op)
                read_at = time.monotonic()
                if state != "prepared":
                    return Mined(current.tx_hash, state == "mined")
            mined = self._receipt_of(current)
            if mined is not None:
                failpoints.hit("contracts.after_receipt")
                self._finish(op_id, mined)
                return mined
            if time.monotonic() >= deadline:
                raise TimeoutError(f"transaction {current.tx_hash} not mined within the wait")
            time.sleep(self.poll)

    def _receipt_of(self, op: Pending) -> Mined | None:
        for tx_hash in reversed(op.hashes):  # the latest attempt is the likeliest
            mined = self.chain.mined(tx_hash)
            if mined is not None:
                return mined
        return None

    # ---- the confirmer ----------------------------------------------------------------------

    def _prepared(self) -> list[Pending]:
        with self.db.sessions() as session:
            rows = session.execute(
                select(ChainOp)
                .where(ChainOp.state == "prepared", ChainOp.signer == self.chain.relayer)
                .order_by(ChainOp.nonce, ChainOp.id)
            ).scalars()
            return [_pending(op) for op in rows]

    def confirm(self) -> int:
        """One round of the confirmer: record the outcome of every prepared operation the
        chain has mined, then send again, replace or fill what holds the queue up. Returns
        how many outcomes were recorded."""
        ops = self._prepared()
        if not ops:
            self._gaps.clear()
            return 0
        head = self.chain.block_number()
        mined_count = self.chain.sent_count(self.chain.relayer)
        self._head, self._floor = head, max(self._floor, mined_count)
        waiting = [op for op in ops if op.nonce >= mined_count]
        used = [op for op in ops if op.nonce < mined_count]
        receipts = self.chain.mined_many([h for op in used for h in op.hashes]) if used else {}
        done: list[tuple[Pending, Mined]] = []
        for op in used:
            mined = next((receipts[h] for h in reversed(op.hashes) if h in receipts), None)
            if mined is None:
                # Its nonce is used but none of its attempts is in a block: taken by another
                # transaction of this key (seen twice, in case the receipt lagged the count).
                if op.id in self._displaced:
                    self._displaced.discard(op.id)
                    self._abandon(op.id, "its nonce was used by another transaction")
                else:
                    self._displaced.add(op.id)
                continue
            done.append((op, mined))
        if done:
            failpoints.hit("contracts.after_receipt")
        recorded, failure = self._finish_many(done)
        for op, mined in recorded:
            if not mined.succeeded and op.op != "offer":
                self.converge(op.agreement_id)
        if waiting:
            self._unstick(waiting, head, mined_count)
        if failure is not None:
            raise failure  # the confirmer backs off; the rest were recorded and moved on
        return len(recorded)

    def _finish_many(
        self, done: list[tuple[Pending, Mined]]
    ) -> tuple[list[tuple[Pending, Mined]], Exception | None]:
        """`_finish` for each, in one database transaction (each outcome with its messages
        all the same); when that fails, each in its own, so that one outcome that cannot be
        recorded holds up neither the others nor the queue behind them. Returns those recorded
        here and the first failure."""
        if len(done) > 1:
            try:
                recorded = []
                with self.db.transaction() as session:
                    for op, mined in done:
                        if self._record(session, op.id, mined):
                            recorded.append((op, mined))
            except Exception as exc:
                log.warning("recording %d outcomes at once failed (%s): one by one", len(done), exc)
            else:
                for op, _ in recorded:
                    self._unsent.pop(op.id, None)
                return recorded, None
        recorded, failure = [], None
        for op, mined in done:  # one failing outcome does not hold the others up
            try:
                if self._finish(op.id, mined):
                    recorded.append((op, mined))
            except Exception as exc:
                failure = failure or exc
        return recorded, failure

    def _late(self, since: float, since_block: int | None, head: int) -> bool:
        return time.time() - since >= self.stuck_seconds or (
            since_block is not None and head - since_block >= self.stuck_blocks
        )

    def _unstick(self, waiting: list[Pending], head: int, mined_count: int) -> None:
        """Send again what the node lost, replace what it holds but does not mine, and fill
        nonces nothing is stored for (gaps below the last waiting one)."""
        now = time.time()
        for op_id in set(self._seen_at) - {op.id for op in waiting}:
            del self._seen_at[op_id]
        stuck = [
            op
            for op in waiting
            if time.time() - self._unsent.get(op.id, now) >= RESEND_AFTER
            or self._late(
                op.sent_at.timestamp(),
                op.sent_block
                if op.sent_block is not None
                else self._seen_at.setdefault(op.id, head),
                head,
            )
        ]
        # a multicall's operations share one transaction: sent again or replaced once
        stuck = list({(op.nonce, op.tx_hash): op for op in stuck}.values())
        held = {op.nonce for op in waiting}
        gaps = []
        for nonce in range(mined_count, max(held)):
            if nonce in held:
                continue
            first = self._gaps.setdefault(nonce, (now, head))
            if self._late(first[0], first[1], head):
                gaps.append(nonce)
        for nonce in list(self._gaps):
            if nonce < mined_count or nonce in held:
                del self._gaps[nonce]
        if not stuck and not gaps:
            return
        with self._writer():
            for op in stuck:
                self._resend_or_replace(op, head, next_on_chain=op.nonce == mined_count)
            for nonce in gaps:
                self._fill(nonce)
                self._gaps.pop(nonce, None)

    def _resend_or_replace(self, op: Pending, head: int, next_on_chain: bool) -> None:
        """Send again what the node lost; replace the transaction the chain waits for next
        when the node holds it but does not mine it (a later one only waits behind it)."""
        with self.db.sessions() as session:
            row = session.get(ChainOp, op.id)
            current = _pending(row) if row is not None and row.state == "prepared" else None
            ids = self._sharing(session, current) if current is not None else []
        if current is None or self._receipt_of(current) is not None:
            return  # recorded meanwhile, or mined: the next round records it
        known = any(self.chain.transaction_known(h) for h in current.hashes)
        if not known:
            log.info("re-sending the stored transaction of %s %s", op.op, current.tx_hash)
            self._mark_sent(ids, head)
            if self._send(ids, current.raw, current.tx_hash) is not False:
                return
            # The node refuses the stored bytes (the base fee rose above their cap): replaced.
        elif not next_on_chain:
            self._mark_sent(ids, head)  # queued behind an earlier nonce: wait for it
            return
        if current.fields is None:
            return  # stored before fields were kept: it can only be sent again as it is
        fields = nonces.bumped(current.fields, self.chain.suggested_fees())
        replacement = self.chain.sign(fields, current.nonce)
        with self.db.transaction() as session:
            changed = session.execute(
                update(ChainOp)
                .where(ChainOp.id.in_(ids), ChainOp.state == "prepared")
                .values(
                    earlier_hashes=[*current.hashes],
                    tx_hash=replacement.tx_hash,
                    raw_tx=replacement.raw,
                    tx_fields=fields,
                    sent_at=utcnow(),
                    sent_block=head,
                )
            ).rowcount  # type: ignore[attr-defined]
        if changed < 1:
            return
        log.warning(
            "%s for agreement %s (nonce %d) is stuck: replaced %s by %s (max fee %d, tip %d)",
            op.op,
            op.agreement_id,
            current.nonce,
            current.tx_hash,
            replacement.tx_hash,
            fields["maxFeePerGas"],
            fields["maxPriorityFeePerGas"],
        )
        failpoints.hit("contracts.before_replacement_send")
        self._send(ids, replacement.raw, replacement.tx_hash)
        failpoints.hit("contracts.after_replacement_send")

    def _sharing(self, session: Session, current: Pending) -> list[int]:
        """The prepared operations sent in `current`'s transaction (several for a multicall)."""
        return list(
            session.execute(
                select(ChainOp.id).where(
                    ChainOp.signer == self.chain.relayer,
                    ChainOp.nonce == current.nonce,
                    ChainOp.tx_hash == current.tx_hash,
                    ChainOp.state == "prepared",
                )
            ).scalars()
        ) or [current.id]

    def _mark_sent(self, op_ids: list[int], head: int) -> None:
        with self.db.transaction() as session:
            session.execute(
                update(ChainOp)
                .where(ChainOp.id.in_(op_ids), ChainOp.state == "prepared")
                .values(sent_at=utcnow(), sent_block=head)
            )

    def _fill(self, nonce: int) -> None:
        """A nonce the chain waits for with nothing stored for it: a no-op self-transfer with
        generous fees, so the transactions after it are mined."""
        fields = nonces.bumped(self.chain.self_transfer(), self.chain.suggested_fees())
        filler = self.chain.sign(fields, nonce)
        log.warning(
            "nonce %d of %s has no stored transaction: filled with a self-transfer %s",
            nonce,
            self.chain.relayer,
            filler.tx_hash,
        )
        try:
            self.chain.send(filler.raw)
        except Exception as exc:  # tried again next round while the gap stays
            log.warning("the self-transfer for nonce %d was refused (%s)", nonce, exc)

    def converge(self, agreement_id: str) -> bool:
        """Record what the chain holds for the agreement if the database is behind it (see
        `Outcomes.converged`); True when something changed."""
        with self.db.sessions() as session:
            agreement = session.get(Agreement, agreement_id)
            if agreement is None or agreement.state not in ("offered", "committed"):
                return False
            onchain_id = agreement.onchain_id
        chain_state = self.chain.state_of(onchain_id)
        arrival = self.chain.arrival_of(onchain_id) if chain_state == "committed" else (0, False)
        with self.db.transaction() as session:
            agreement = session.get(Agreement, agreement_id)
            assert agreement is not None
            changed = self.outcomes.converged(session, agreement, chain_state, arrival)
        if changed:
            log.info(
                "agreement %s follows the chain: %s%s",
                agreement_id,
                chain_state,
                " (arrival recorded)" if arrival[0] else "",
            )
        return changed

    def _finish(self, op_id: int, mined: Mined) -> bool:
        """Record the mined (or reverted) operation and its effect, once: False when it was
        already recorded (by the confirmer or a request waiting for it)."""
        with self.db.transaction() as session:
            if not self._record(session, op_id, mined):
                return False
        self._unsent.pop(op_id, None)
        return True

    def _record(self, session: Session, op_id: int, mined: Mined) -> bool:
        """`_finish` within the caller's database transaction."""
        changed = session.execute(
            update(ChainOp)
            .where(ChainOp.id == op_id, ChainOp.state == "prepared")
            .values(
                state="mined" if mined.succeeded else "failed",
                error=None if mined.succeeded else "reverted",
                tx_hash=mined.tx_hash,  # a replaced attempt may be the one mined
                finished_at=utcnow(),
            )
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        if changed != 1:
            return False
        op = session.get(ChainOp, op_id, populate_existing=True)
        assert op is not None
        agreement = session.get(Agreement, op.agreement_id)
        assert agreement is not None
        if not mined.succeeded:
            self.outcomes.reverted(session, agreement, op)
            log.error("%s for agreement %s reverted (%s)", op.op, agreement.id, op.tx_hash)
        else:
            self.outcomes.mined(session, agreement, op)
        return True

    def recover(self) -> int:
        """At start: finish operations a previous process prepared (and maybe sent) but did
        not record. Mined ones are recorded; stored bytes the node does not know are sent
        again (never signed anew); the confirmer records the rest as they are mined."""
        ops = self._prepared()
        mined_count = self.chain.sent_count(self.chain.relayer) if ops else 0
        resent: set[str] = set()  # a multicall's operations share one transaction
        for op in ops:
            log.info("recovering %s for agreement %s (%s)", op.op, op.agreement_id, op.tx_hash)
            mined = self._receipt_of(op)
            if mined is not None:
                if self._finish(op.id, mined) and not mined.succeeded and op.op != "offer":
                    self.converge(op.agreement_id)
                continue
            if any(self.chain.transaction_known(h) for h in op.hashes):
                continue
            if op.nonce < mined_count:
                self._abandon(op.id, "the transaction was dropped and its nonce reused")
                continue
            if op.tx_hash in resent:
                continue
            resent.add(op.tx_hash)
            log.info("re-sending the stored transaction of %s %s", op.op, op.tx_hash)
            self._send([o.id for o in ops if o.tx_hash == op.tx_hash], op.raw, op.tx_hash)
        return len(ops)

    def _abandon(self, op_id: int, reason: str) -> None:
        with self.db.transaction() as session:
            op = session.get(ChainOp, op_id)
            assert op is not None
            op.state, op.error, op.finished_at = "failed", reason, utcnow()
            agreement = session.get(Agreement, op.agreement_id)
            if agreement is not None and op.op == "offer":
                agreement.state = "failed"

    def pending_count(self) -> int:
        """Operations prepared (perhaps sent) whose outcome is not recorded yet."""
        with self.db.sessions() as session:
            return int(
                session.execute(
                    select(func.count()).select_from(ChainOp).where(ChainOp.state == "prepared")
                ).scalar()
                or 0
            )

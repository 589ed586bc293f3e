"""The one path every chain transition takes, and its recovery after a crash. Nonces, sending,
sending again, replacing and filling gaps are the relayer's transaction path's
(`shared/transactions.SignerPath`, which the evidence anchorer's key uses too); this module says
what each operation is, stores it (`operations.py`) and records what it did.

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

The confirmer (`confirm()`, run by the worker) also keeps the signer's queue moving (through
`SignerPath.unstick`): a
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

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, cast

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..shared import failpoints
from ..shared.chain import PreparedTx
from ..shared.db import Database
from ..shared.models import utcnow
from ..shared.transactions import SignerPath, SigningChain
from ..shared.transactions.book import DbNonceBook
from .domain.agreements import STATES
from .errors import ChainRefusal, SenderStopped, StillOffering
from .models import Agreement, ChainOp
from .operations import Operations, Pending, pending_of
from .ports import AgreementsChain, ChainCall, Mined

log = logging.getLogger(__name__)
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


class TransactionPath:
    def __init__(
        self,
        db: Database,
        chain: AgreementsChain,
        signing: SigningChain,
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
        self.wait_timeout = wait_timeout
        self.poll = poll
        self.path = SignerPath(
            signing,
            DbNonceBook(db, signing.signer),
            stuck_blocks=stuck_blocks,
            stuck_seconds=stuck_seconds,
        )
        self.operations = Operations(db, signing.signer)
        self._local_lock = self.path.local()
        self._queue_lock = threading.Lock()
        self._queue: list[_Job] = []  # submissions waiting for the signer's lock
        self._bundles: bool | None = None  # whether the contract takes a multicall (read once)
        # Whether the last round of the confirmer found operations of ours in flight (until the
        # first round: assume so). None in flight: the confirmer may look less often.
        self.in_flight = True

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
                    with self.path.sending():
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
            self.path.send(prepared.raw, prepared.tx_hash, op_ids)
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
        relayer, floor = self.path.signer, self.path.mined_floor()
        with self.db.transaction() as session:
            for unit in units:
                for job in unit.jobs:
                    if job.before is not None:
                        job.before(session)
            signed = self.path.sign_new(session, [unit.fields for unit in units], floor)
            out = []
            for unit, prepared in zip(units, signed, strict=True):
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
                        sent_block=self.path.head,
                        earlier_hashes=[],
                    )
                    for job in unit.jobs
                ]
                session.add_all(rows)
                out.append((unit, prepared, rows))
            session.flush()
            return [(unit, prepared, [row.id for row in rows]) for unit, prepared, rows in out]

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
                    state, current = op.state, pending_of(op)
                read_at = time.monotonic()
                if state != "prepared":
                    return Mined(current.tx_hash, state == "mined")
            mined = self.path.receipt_of(current)
            if mined is not None:
                failpoints.hit("contracts.after_receipt")
                self._finish(op_id, mined)
                return mined
            if time.monotonic() >= deadline:
                raise TimeoutError(f"transaction {current.tx_hash} not mined within the wait")
            time.sleep(self.poll)

    # ---- the confirmer ----------------------------------------------------------------------

    def confirm(self) -> int:
        """One round of the confirmer: record the outcome of every prepared operation the
        chain has mined, then send again, replace or fill what holds the queue up. Returns
        how many outcomes were recorded."""
        ops = self.operations.prepared()
        self.in_flight = bool(ops)
        if not ops:
            self.path.forget_gaps()
            return 0
        head = self.path.chain.block_number()
        mined_count = self.path.chain.sent_count(self.path.signer)
        self.path.observe(head, mined_count)
        waiting = [op for op in ops if op.nonce >= mined_count]
        settled, displaced = self.path.sort([op for op in ops if op.nonce < mined_count])
        for op in displaced:
            self._displaced(cast(Pending, op), "its nonce was used by another transaction")
        done = [(cast(Pending, op), found) for op, found in settled]
        if done:
            failpoints.hit("contracts.after_receipt")
        recorded, failure = self._finish_many(done)
        for op, mined in recorded:
            if not mined.succeeded and op.op != "offer":
                self.converge(op.agreement_id)
        if waiting:
            self.path.unstick(waiting, self.operations, head, mined_count)
        if failure is not None:
            raise failure  # the confirmer backs off; the rest were recorded and moved on
        return len(recorded)

    def _displaced(self, op: Pending, reason: str) -> None:
        """The operation's nonce was used and none of its transactions has a receipt: the
        chain's state decides. An offer whose agreement the chain holds was mined (only this
        relayer offers under that id; a node started again from saved state may keep the
        effects of its last blocks without their receipts); anything else failed, and its
        agreement follows the chain."""
        if op.op == "offer" and self._on_chain(op.agreement_id):
            log.warning(
                "offer for agreement %s: no receipt for %s, but the chain holds the agreement;"
                " recorded as offered",
                op.agreement_id,
                op.tx_hash,
            )
            self._finish(op.id, Mined(op.tx_hash, True))
            return
        log.warning("%s for agreement %s failed: %s", op.op, op.agreement_id, reason)
        self.operations.abandon(op.id, reason)
        if op.op != "offer":
            self.converge(op.agreement_id)

    def _on_chain(self, agreement_id: str) -> bool:
        with self.db.sessions() as session:
            agreement = session.get(Agreement, agreement_id)
            onchain_id = agreement.onchain_id if agreement is not None else None
        return onchain_id is not None and self.chain.state_of(onchain_id) != STATES[0]

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
                    self.path.settled(op.id)
                return recorded, None
        recorded, failure = [], None
        for op, mined in done:  # one failing outcome does not hold the others up
            try:
                if self._finish(op.id, mined):
                    recorded.append((op, mined))
            except Exception as exc:
                failure = failure or exc
        return recorded, failure

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
        self.path.settled(op_id)
        return True

    def _record(self, session: Session, op_id: int, mined: Mined) -> bool:
        """`_finish` within the caller's database transaction."""
        sent = session.execute(
            select(ChainOp.tx_hash, ChainOp.earlier_hashes).where(ChainOp.id == op_id)
        ).one_or_none()
        attempts = [*(sent.earlier_hashes or []), sent.tx_hash] if sent is not None else []
        changed = session.execute(
            update(ChainOp)
            .where(ChainOp.id == op_id, ChainOp.state == "prepared")
            .values(
                state="mined" if mined.succeeded else "failed",
                error=None if mined.succeeded else "reverted",
                tx_hash=mined.tx_hash,  # a replaced attempt may be the one mined
                # the attempts never mined: the replacement, when an earlier one was
                earlier_hashes=[h for h in attempts if h != mined.tx_hash],
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
        ops = self.operations.prepared()
        mined_count = self.path.chain.sent_count(self.path.signer) if ops else 0
        resent: set[str] = set()  # a multicall's operations share one transaction
        for op in ops:
            log.info("recovering %s for agreement %s (%s)", op.op, op.agreement_id, op.tx_hash)
            mined = self.path.receipt_of(op)
            if mined is not None:
                if self._finish(op.id, mined) and not mined.succeeded and op.op != "offer":
                    self.converge(op.agreement_id)
                continue
            if self.path.known(op):
                continue
            if op.nonce < mined_count:
                self._displaced(op, "the transaction was dropped and its nonce reused")
                continue
            if op.tx_hash in resent:
                continue
            resent.add(op.tx_hash)
            log.info("re-sending the stored transaction of %s %s", op.op, op.tx_hash)
            self.path.send(op.raw, op.tx_hash, [o.id for o in ops if o.tx_hash == op.tx_hash])
        return len(ops)

    def pending_count(self) -> int:
        """Operations prepared (perhaps sent) whose outcome is not recorded yet."""
        return self.operations.count()

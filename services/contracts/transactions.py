"""The one path every chain transition takes, and its recovery after a crash.

Simulate the call (a refusal is the contract's own custom error, answered 409, and nothing is
written); store the signed transaction; send it; wait until it is mined; then record its effect
with the outbox messages in one database transaction (`Outcomes`). A crash between sending and
recording is finished by `recover()`: the stored transaction is looked up on chain, never sent
twice.

Anyone may commit, expire, declare a breach or record an arrival, so the chain may be ahead of
the database: after a refusal or a revert the agreement's state is read back from the chain and
recorded (`Outcomes.converged`), whoever sent the transaction that moved it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..shared import failpoints
from ..shared.db import Database
from ..shared.locks import ExclusiveLock
from ..shared.models import utcnow
from .errors import ChainRefusal
from .models import Agreement, ChainOp
from .ports import AgreementsChain, ChainCall, Mined

log = logging.getLogger(__name__)


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


class TransactionPath:
    def __init__(self, db: Database, chain: AgreementsChain, outcomes: Outcomes) -> None:
        self.db = db
        self.chain = chain
        self.outcomes = outcomes
        self._local_lock = threading.Lock()

    @contextmanager
    def _writer(self) -> Iterator[None]:
        """One sender per signer key, across threads and processes: nonces never collide."""
        with self._local_lock:
            lock = ExclusiveLock(self.db, f"tx:{self.chain.relayer}")
            while not lock.try_acquire():
                time.sleep(0.05)
            try:
                yield
            finally:
                lock.release()

    def transact(
        self,
        agreement_id: str,
        op: str,
        call: ChainCall,
        args: dict[str, Any] | None = None,
        before: Callable[[Session], None] | None = None,
    ) -> Mined:
        """Send `call` for the agreement as operation `op` (`args` are kept with it for its
        outcome); `before` writes in the same transaction that stores the signed bytes. A
        refusal is raised after the database has caught up with the chain."""
        try:
            self.chain.simulate(call)
        except ChainRefusal:
            if op != "offer":
                self.converge(agreement_id)
            raise
        with self._writer():
            try:
                prepared = self.chain.sign_for_later(call)
            except ChainRefusal:  # the chain moved between the simulation and now
                if op != "offer":
                    self.converge(agreement_id)
                raise
            with self.db.transaction() as session:
                if before is not None:
                    before(session)
                row = ChainOp(
                    agreement_id=agreement_id,
                    op=op,
                    args=args or {},
                    signer=self.chain.relayer,
                    nonce=prepared.nonce,
                    tx_hash=prepared.tx_hash,
                    raw_tx=prepared.raw,
                )
                session.add(row)
                session.flush()
                op_id = row.id
            failpoints.hit("contracts.before_send")
            self.chain.send(prepared.raw)
        failpoints.hit("contracts.after_send")
        mined = self.chain.wait_mined(prepared.tx_hash)
        failpoints.hit("contracts.after_receipt")
        self._finish(op_id, mined)
        if not mined.succeeded and op != "offer":
            self.converge(agreement_id)
        return mined

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

    def _finish(self, op_id: int, mined: Mined) -> None:
        with self.db.transaction() as session:
            op = session.get(ChainOp, op_id)
            assert op is not None
            if op.state != "prepared":
                return
            agreement = session.get(Agreement, op.agreement_id)
            assert agreement is not None
            op.finished_at = utcnow()
            if not mined.succeeded:
                op.state = "failed"
                op.error = "reverted"
                self.outcomes.reverted(session, agreement, op)
                log.error("%s for agreement %s reverted (%s)", op.op, agreement.id, op.tx_hash)
                return
            op.state = "mined"
            self.outcomes.mined(session, agreement, op)

    def recover(self) -> int:
        """Finish operations a previous process prepared (and maybe sent) but did not record."""
        with self.db.sessions() as session:
            ops = (
                session.execute(
                    select(ChainOp).where(ChainOp.state == "prepared").order_by(ChainOp.id)
                )
                .scalars()
                .all()
            )
        for op in ops:
            mined = self.chain.mined(op.tx_hash)
            if mined is None and not self.chain.transaction_known(op.tx_hash):
                if self.chain.sent_count(op.signer) != op.nonce:
                    self._abandon(op.id, "the transaction was dropped and its nonce reused")
                    continue
                log.info("re-sending the stored transaction of %s %s", op.op, op.tx_hash)
                self.chain.send(op.raw_tx)
            log.info("recovering %s for agreement %s (%s)", op.op, op.agreement_id, op.tx_hash)
            mined = mined or self.chain.wait_mined(op.tx_hash)
            self._finish(op.id, mined)
            if not mined.succeeded and op.op != "offer":
                self.converge(op.agreement_id)
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

"""Judicial-chain witnesses: the third kind beside the EVM anchor and RFC 3161 stamps. Each
anchored root's digest is deposited with an evidence platform that Chinese courts already read,
and the platform's answer goes into the proof bundles (`deposits`).

`Witness` is the port: one adapter per platform (Tencent Cloud BTOE in `adapters/btoe.py`; Ant
Chain TWC would be a second adapter of the same shape). `Depositor` is the worker, run like the
stamping worker: after a batch is anchored, on its own thread, each witness with its own backoff,
so a platform that is down or throttles delays only its own deposits, never anchoring.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from offerseal_verify.deposits import verify_deposit
from offerseal_verify.hexbytes import from_hex32

from ..shared.db import Database
from ..shared.workers import Backoff, run_every
from .models import Batch, BatchDeposit, Document

log = logging.getLogger(__name__)

BATCHES_PER_STEP = 20


class WitnessUnavailable(Exception):
    """The platform did not take the deposit this time (down, throttled, a network fault)."""


class WitnessRefused(Exception):
    """The platform refused the deposit (bad credentials, a parameter it rejects): retried
    with the same backoff, since an operator may fix the configuration, but logged as an
    error."""


@dataclass(frozen=True)
class AnchoredRoot:
    """What a witness is told about the root it deposits (nothing personal: no document, no
    tenant)."""

    batch_id: int
    root: bytes
    chain_id: int
    tx_hash: str


class Witness(Protocol):
    """A judicial-chain evidence platform."""

    name: str  # the bundle's witness and deposit `type`, e.g. "tencent-btoe"

    def deposit(self, anchored: AnchoredRoot) -> dict[str, Any]:
        """Deposit the root's digest; return the bundle entry made from the platform's answer
        (`offerseal_verify.deposits` describes it). Raises WitnessUnavailable or
        WitnessRefused."""
        ...


@dataclass
class _WitnessState:
    backoff: Backoff = field(default_factory=lambda: Backoff(1.0, 300.0))
    next_try: float = 0.0


@dataclass(frozen=True)
class TenantWitness:
    """A witness reached with one tenant's own account: it deposits only the batches holding
    that tenant's documents, stored under `key` (witness_accounts.deposit_key)."""

    key: str
    tenant: str
    witness: Witness


class Depositor:
    def __init__(
        self,
        db: Database,
        witnesses: Sequence[Witness],
        *,
        interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        tenant_witnesses: Callable[[], Sequence[TenantWitness]] | None = None,
        refresh: float = 10.0,
    ) -> None:
        self.db = db
        self.witnesses = tuple(witnesses)
        self.interval = interval
        self.clock = clock
        self.state = {w.name: _WitnessState() for w in self.witnesses}
        # Tenants' own accounts (set through the API at any time): read again every `refresh`
        # seconds.
        self.tenant_witnesses = tenant_witnesses
        self.refresh = refresh
        self._tenants: tuple[TenantWitness, ...] = ()
        self._read_at: float | None = None

    def due(
        self, witness: str, limit: int = BATCHES_PER_STEP, tenant: str | None = None
    ) -> list[AnchoredRoot]:
        """Anchored batches (oldest first) that `witness` has not deposited; with `tenant`,
        only batches holding one of that tenant's documents."""
        done = select(BatchDeposit.batch_id).where(BatchDeposit.witness == witness)
        query = select(Batch.id, Batch.root, Batch.chain_id, Batch.tx_hash).where(
            Batch.state == "anchored", Batch.id.not_in(done)
        )
        if tenant is not None:
            query = query.where(
                select(Document.seq)
                .where(Document.batch_id == Batch.id, Document.tenant == tenant)
                .exists()
            )
        with self.db.sessions() as session:
            rows = session.execute(query.order_by(Batch.id).limit(limit)).all()
        return [
            AnchoredRoot(int(batch_id), from_hex32(root), int(chain_id), str(tx_hash or ""))
            for batch_id, root, chain_id, tx_hash in rows
        ]

    def deposit(
        self, witness: Witness, anchored: AnchoredRoot, key: str | None = None
    ) -> dict[str, Any]:
        """Ask `witness` to deposit the root, check its entry as a verifier will, store it
        (under `key`, for a tenant's own account)."""
        entry = witness.deposit(anchored)
        ok, detail = verify_deposit(entry, anchored.root)
        if not ok:  # the platform's answer does not hold the root: never store it
            raise WitnessRefused(f"the answer does not prove the deposit: {detail}")
        name = key or witness.name
        try:
            with self.db.transaction() as session:
                session.add(BatchDeposit(batch_id=anchored.batch_id, witness=name, entry=entry))
        except IntegrityError:
            log.info("batch %s was deposited by %s meanwhile", anchored.batch_id, name)
        return entry

    def _rounds(self) -> list[tuple[str, Witness, str | None]]:
        """(stored name, witness, tenant or None) for the deployment's witnesses and the
        tenants' own accounts."""
        if self.tenant_witnesses is not None and (
            self._read_at is None or self.clock() - self._read_at >= self.refresh
        ):
            self._read_at = self.clock()
            try:
                self._tenants = tuple(self.tenant_witnesses())
            except Exception as exc:  # an unreadable account must not stop the others
                log.error("tenants' witness accounts could not be read: %s", type(exc).__name__)
        rounds: list[tuple[str, Witness, str | None]] = [(w.name, w, None) for w in self.witnesses]
        rounds += [(t.key, t.witness, t.tenant) for t in self._tenants]
        return rounds

    def run_once(self) -> int:
        """One round over the witnesses not waiting out a failure. Returns deposits stored."""
        stored = 0
        for name, witness, tenant in self._rounds():
            state = self.state.setdefault(name, _WitnessState())
            if self.clock() < state.next_try:
                continue
            for anchored in self.due(name, tenant=tenant):
                try:
                    self.deposit(witness, anchored, name if tenant is not None else None)
                except (WitnessUnavailable, WitnessRefused) as exc:
                    delay = state.backoff.next()
                    state.next_try = self.clock() + delay
                    level = logging.ERROR if isinstance(exc, WitnessRefused) else logging.WARNING
                    log.log(
                        level,
                        "deposit of batch %s with %s failed (%s); that witness is tried again "
                        "in %.0fs, anchoring and the other witnesses go on",
                        anchored.batch_id,
                        name,
                        exc,
                        delay,
                    )
                    break
                state.backoff.reset()
                state.next_try = 0.0
                stored += 1
        return stored

    def run(self, stop: threading.Event) -> None:
        run_every(stop, self.interval, self.run_once, name="depositing", log=log)

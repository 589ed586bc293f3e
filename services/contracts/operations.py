"""The relayer's operations as the transaction path stores them: one `ChainOp` row per
operation, several sharing one transaction when they went out as a multicall. This is the
path's `Attempts` store for the contracts service (`shared/transactions`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ..shared.chain import PreparedTx
from ..shared.db import Database
from ..shared.models import aware, utcnow
from ..shared.transactions import Attempt
from .models import Agreement, ChainOp


@dataclass(frozen=True)
class Pending(Attempt):
    """A prepared operation, as the confirmer needs it (`key`: the row's id)."""

    agreement_id: str
    op: str

    @property
    def id(self) -> int:
        return int(self.key)


def pending_of(op: ChainOp) -> Pending:
    return Pending(
        key=op.id,
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


class Operations:
    """The prepared operations of one signer, in the database."""

    def __init__(self, db: Database, signer: str) -> None:
        self.db = db
        self.signer = signer

    def prepared(self) -> list[Pending]:
        with self.db.sessions() as session:
            rows = session.execute(
                select(ChainOp)
                .where(ChainOp.state == "prepared", ChainOp.signer == self.signer)
                .order_by(ChainOp.nonce, ChainOp.id)
            ).scalars()
            return [pending_of(op) for op in rows]

    def count(self) -> int:
        """Operations prepared (perhaps sent) whose outcome is not recorded yet."""
        with self.db.sessions() as session:
            return int(
                session.execute(
                    select(func.count()).select_from(ChainOp).where(ChainOp.state == "prepared")
                ).scalar()
                or 0
            )

    # ---- the path's `Attempts` ----------------------------------------------------------------

    def current(self, attempt: Attempt) -> Pending | None:
        with self.db.sessions() as session:
            row = session.get(ChainOp, attempt.key)
            return pending_of(row) if row is not None and row.state == "prepared" else None

    def _sharing(self, session: Session, attempt: Attempt) -> list[int]:
        """The prepared operations sent in `attempt`'s transaction (several for a multicall)."""
        return list(
            session.execute(
                select(ChainOp.id).where(
                    ChainOp.signer == self.signer,
                    ChainOp.nonce == attempt.nonce,
                    ChainOp.tx_hash == attempt.tx_hash,
                    ChainOp.state == "prepared",
                )
            ).scalars()
        ) or [int(attempt.key)]

    def mark_sent(self, attempt: Attempt, head: int) -> None:
        with self.db.transaction() as session:
            session.execute(
                update(ChainOp)
                .where(ChainOp.id.in_(self._sharing(session, attempt)), ChainOp.state == "prepared")
                .values(sent_at=utcnow(), sent_block=head)
            )

    def replace(self, attempt: Attempt, by: PreparedTx, fields: dict[str, Any], head: int) -> bool:
        with self.db.transaction() as session:
            changed = session.execute(
                update(ChainOp)
                .where(ChainOp.id.in_(self._sharing(session, attempt)), ChainOp.state == "prepared")
                .values(
                    earlier_hashes=[*attempt.hashes],
                    tx_hash=by.tx_hash,
                    raw_tx=by.raw,
                    tx_fields=fields,
                    sent_at=utcnow(),
                    sent_block=head,
                )
            ).rowcount  # type: ignore[attr-defined]
        return bool(changed >= 1)

    # ---- outcomes that are no transaction's -----------------------------------------------

    def abandon(self, op_id: int, reason: str) -> None:
        """The operation will never be mined (its nonce went to another transaction); an
        offer's agreement fails with it."""
        with self.db.transaction() as session:
            op = session.get(ChainOp, op_id)
            assert op is not None
            op.state, op.error, op.finished_at = "failed", reason, utcnow()
            agreement = session.get(Agreement, op.agreement_id)
            if agreement is not None and op.op == "offer":
                agreement.state = "failed"

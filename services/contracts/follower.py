"""The database follows the contract's events, whoever sent the transaction: a candidate who
commits or records an arrival from their own wallet, anyone who calls `expire` or
`declareBreach`. Each agreement an event names is brought to the chain's state (see
`TransactionPath.converge`); the cursor is the next block to read.

The cursor lives in memory: a restarted worker looks back `LOOKBACK` blocks first, and any
drift older than that is still caught the first time the service acts on the agreement (a
refusal makes it read `stateOf` too).
"""

from __future__ import annotations

import logging

from sqlalchemy import exists, select

from ..shared.db import Database
from .models import Agreement, ChainOp
from .ports import AgreementsChain
from .transactions import TransactionPath

log = logging.getLogger(__name__)
LOOKBACK = 5_000  # blocks read again after a restart (about 17 hours at 12-second blocks)
PAGE = 2_000  # blocks per eth_getLogs call (providers cap the range)


class ChainFollower:
    def __init__(self, db: Database, chain: AgreementsChain, tx: TransactionPath) -> None:
        self.db = db
        self.chain = chain
        self.tx = tx
        self.next_block: int | None = None

    def follow(self) -> int:
        """Read the events since the last call; returns how many agreements changed."""
        head = self.chain.block_number()
        if self.next_block is None:
            self.next_block = max(0, head - LOOKBACK)
        changed = 0
        while self.next_block <= head:
            last = min(head, self.next_block + PAGE - 1)
            touched = self.chain.agreements_in_events(self.next_block, last)
            if touched:
                with self.db.sessions() as session:
                    ids = (
                        session.execute(
                            select(Agreement.id).where(
                                Agreement.onchain_id.in_(sorted(touched)),
                                Agreement.state.in_(("offered", "committed")),
                                # our own transaction in flight records its outcome itself
                                ~exists().where(
                                    ChainOp.agreement_id == Agreement.id,
                                    ChainOp.state == "prepared",
                                ),
                            )
                        )
                        .scalars()
                        .all()
                    )
                changed += sum(1 for agreement_id in ids if self.tx.converge(agreement_id))
            self.next_block = last + 1
        return changed

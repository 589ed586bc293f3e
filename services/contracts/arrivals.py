"""The candidate's arrival: what they sign on their first day (the EIP-712 `Arrival`), whether a
submitted signature is theirs, relaying it to `recordArrival()`, and the employer's dispute.

A recorded, undisputed arrival keeps the agreement from being declared breached (the contract
refuses), and once the dispute window has passed the sweeper fulfils the agreement: a candidate
who came to work is not a breach because HR forgot `/start` or the relayer was down.
"""

from __future__ import annotations

from typing import Any

from ..shared.auth import WRITE_ROLES, Principal
from ..shared.chain import typed_data_digest
from ..shared.db import Database
from ..shared.links import Link
from ..shared.models import aware
from .domain.agreements import ARRIVAL_LEAD, arrival_typed_data
from .domain.passkeys import plausible_signature
from .errors import ChainRefusal, Conflict, InvalidSignature
from .models import Agreement
from .ports import AgreementsChain
from .records import bound_candidate, describe, load, reader
from .transactions import TransactionPath

ARRIVAL_SIGNING_TTL = 86400  # how long a fresh Arrival may be signed and submitted


class Arrivals:
    def __init__(self, db: Database, chain: AgreementsChain, tx: TransactionPath) -> None:
        self.db = db
        self.chain = chain
        self.tx = tx

    def _typed(self, a: Agreement, deadline: int) -> dict[str, Any]:
        return arrival_typed_data(
            chain_id=self.chain.chain_id(),
            registry=self.chain.address,
            agreement_id=a.onchain_id,
            nonce=self.chain.nonce_of(bound_candidate(a)),
            deadline=deadline,
        )

    def typed_data(
        self,
        principal: Principal | None,
        link: Link | None,
        agreement_id: str,
        deadline: int | None = None,
    ) -> dict[str, Any]:
        """The `Arrival` to sign (valid for ARRIVAL_SIGNING_TTL unless `deadline` is given)."""
        tenant = reader(principal, link, agreement_id)
        deadline = deadline or self.chain.chain_time() + ARRIVAL_SIGNING_TTL
        with self.db.sessions() as session:
            return self._typed(load(session, tenant, agreement_id), deadline)

    def submit(
        self,
        principal: Principal | None,
        link: Link | None,
        agreement_id: str,
        deadline: int,
        signature: bytes,
    ) -> dict[str, Any]:
        """Checks the candidate's `Arrival` signature here (422 before any transaction), then
        relays it; the chain decides whether the arrival is open (from the start date's day
        until a breach is declared)."""
        tenant = reader(principal, link, agreement_id)
        if principal is not None:
            principal.require(*WRITE_ROLES)
        with self.db.sessions() as session:
            a = load(session, tenant, agreement_id)
            state, arrived = a.state, a.arrived_at is not None
            opens_at = int(aware(a.start_at).timestamp()) - ARRIVAL_LEAD
            onchain_id, candidate = a.onchain_id, bound_candidate(a)
            typed = self._typed(a, deadline)
        if state != "committed":
            raise ChainRefusal("InvalidState", (), f"the agreement is {state}, not committed")
        if arrived:
            raise Conflict("the candidate's arrival is already recorded")
        now = self.chain.chain_time()
        if now > deadline:
            raise InvalidSignature("deadline", "expired: sign a new arrival")
        if now < opens_at:
            raise ChainRefusal(
                "ArrivalNotOpen", (), "an arrival can be recorded from the start date's day"
            )
        if not plausible_signature(signature) and not self.chain.is_contract(candidate):
            raise InvalidSignature(
                "signature", "malformed: expected 65 bytes (r, s, v) or a passkey assertion"
            )
        if not self.chain.signed_by(candidate, typed_data_digest(typed), signature):
            raise InvalidSignature(
                "signature", "wrong signer: not the candidate's signature over this arrival"
            )
        call = self.chain.record_arrival(onchain_id, deadline, signature)
        # The chain's clock when sent (the block's is seconds later): the dispute window runs
        # from it, so the sweeper never fulfils early by our clock.
        self.tx.transact(agreement_id, "arrival", call, args={"deadline": deadline, "at": now})
        with self.db.sessions() as session:
            return describe(session, load(session, tenant, agreement_id), self.chain.address)

    def dispute(self, principal: Principal, agreement_id: str) -> dict[str, Any]:
        """The employer says the candidate did not start: within the contract's dispute window,
        a breach becomes declarable again (after start plus grace)."""
        principal.require(*WRITE_ROLES)
        with self.db.sessions() as session:
            onchain_id = load(session, principal.tenant, agreement_id).onchain_id
        call = self.chain.transition(onchain_id, "dispute_arrival")
        self.tx.transact(agreement_id, "dispute_arrival", call)
        with self.db.sessions() as session:
            return describe(
                session, load(session, principal.tenant, agreement_id), self.chain.address
            )

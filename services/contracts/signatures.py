"""The candidate's signature: what they sign (the EIP-712 `Commitment`, or a `Cancellation`),
whether a submitted signature is theirs over this agreement, and relaying it to `commit()`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ..shared.auth import WRITE_ROLES, Principal
from ..shared.chain import typed_data_digest
from ..shared.db import Database
from ..shared.links import Link
from .domain.agreements import cancellation_typed_data, commitment_typed_data
from .domain.passkeys import plausible_signature
from .errors import ChainRefusal, InvalidSignature, StillOffering, TransactionFailed
from .models import Agreement
from .ports import AgreementsChain
from .records import bound_candidate, describe, load, reader
from .transactions import TransactionPath


class Signatures:
    def __init__(self, db: Database, chain: AgreementsChain, tx: TransactionPath) -> None:
        self.db = db
        self.chain = chain
        self.tx = tx

    def _commitment(self, a: Agreement) -> dict[str, Any]:
        # The terms as the chain holds them: what the candidate signs must match the
        # contract's own digest, whatever our database says.
        return commitment_typed_data(
            chain_id=self.chain.chain_id(),
            registry=self.chain.address,
            agreement_id=a.onchain_id,
            terms=self.chain.terms_of(a.onchain_id),
            milestones=self.chain.milestones_of(a.onchain_id),
            nonce=self.chain.nonce_of(bound_candidate(a)),
        )

    def typed_data(
        self,
        principal: Principal | None,
        link: Link | None,
        agreement_id: str,
        cancellation_deadline: int | None = None,
    ) -> dict[str, Any]:
        """The Commitment to sign; or, with a deadline, the Cancellation (mutual release)."""
        tenant = reader(principal, link, agreement_id)
        with self.db.sessions() as session:
            a = load(session, tenant, agreement_id)
            if a.state == "offering":
                raise StillOffering(a.id)
            if cancellation_deadline is None:
                return self._commitment(a)
            return cancellation_typed_data(
                chain_id=self.chain.chain_id(),
                registry=self.chain.address,
                agreement_id=a.onchain_id,
                nonce=self.chain.nonce_of(bound_candidate(a)),
                deadline=cancellation_deadline,
            )

    def submit_signature(
        self, principal: Principal | None, link: Link | None, agreement_id: str, signature: bytes
    ) -> dict[str, Any]:
        tenant = reader(principal, link, agreement_id)
        if principal is not None:
            principal.require(*WRITE_ROLES)
        with self.db.sessions() as session:
            a = load(session, tenant, agreement_id)
            if a.state == "offering":
                raise StillOffering(a.id)
            typed = self._commitment(a)
            onchain_id, candidate = a.onchain_id, bound_candidate(a)
            others = (
                session.execute(
                    select(Agreement)
                    .where(  # this tenant's only: another's offers are none of its business
                        Agreement.tenant == a.tenant,
                        Agreement.candidate_address == candidate,
                        Agreement.id != a.id,
                        Agreement.state == "offered",
                    )
                    .limit(20)
                )
                .scalars()
                .all()
            )
            state = a.state
        if state != "offered":
            raise ChainRefusal("InvalidState", (), f"the agreement is {state}, not offered")
        if self.chain.chain_time() > typed["message"]["deadline"]:
            raise InvalidSignature("signature", "expired: the offer can no longer be signed")
        digest = typed_data_digest(typed)
        if not plausible_signature(signature) and not self.chain.is_contract(candidate):
            raise InvalidSignature(
                "signature", "malformed: expected 65 bytes (r, s, v) or a passkey assertion"
            )
        if not self.chain.signed_by(candidate, digest, signature):
            # Only now the candidate's other offers (three reads of the chain each).
            other_digests = (typed_data_digest(self._commitment(o)) for o in others)
            if any(self.chain.signed_by(candidate, d, signature) for d in other_digests):
                raise InvalidSignature(
                    "signature",
                    "wrong agreement: the candidate signed another agreement's commitment",
                )
            raise InvalidSignature(
                "signature",
                "wrong signer: not the candidate's signature over this agreement's commitment",
            )
        mined = self.tx.transact(agreement_id, "commit", self.chain.commit(onchain_id, signature))
        with self.db.sessions() as session:
            answer = describe(session, load(session, tenant, agreement_id), self.chain.address)
        if not mined.succeeded and answer["state"] != "committed":
            # Simulated fine, reverted in its block: the chain moved in between (another
            # commitment of this candidate used the nonce this one was signed with).
            raise TransactionFailed(
                "the commit transaction reverted: fetch the commitment again and sign it anew"
            )
        return answer

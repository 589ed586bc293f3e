"""The candidate's signature: what they sign (the EIP-712 `Commitment`, which covers the hash
of the signing ceremony's record, or a `Cancellation`), whether a submitted signature is theirs
over this agreement, and relaying it to `commit()` with the ceremony frozen in the same
transaction."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from ..shared.auth import WRITE_ROLES, Principal
from ..shared.chain import typed_data_digest
from ..shared.db import Database
from ..shared.links import Link
from .domain.agreements import cancellation_typed_data, commitment_typed_data
from .domain.ceremony import Ceremony
from .domain.passkeys import plausible_signature
from .errors import ChainRefusal, InvalidSignature, StillOffering, TransactionFailed
from .models import Agreement
from .ports import AgreementsChain
from .records import bound_candidate, describe, load, reader
from .transactions import TransactionPath


@dataclass(frozen=True)
class CeremonyShown:
    """The signing ceremony the Commitment covers now, and its keccak256 (`ceremonyHash`)."""

    ceremony: dict[str, Any]
    ceremony_hash: str


class Ceremonies:
    """Where the ceremony comes from (the portal's journal) and how it is frozen once signed."""

    def __init__(
        self,
        current: Callable[[str], Ceremony],
        freeze: Callable[[str, Ceremony], Callable[[Any], None]],
        thaw: Callable[[str], None],
    ) -> None:
        self.current = current
        self.freeze = freeze
        self.thaw = thaw


class Signatures:
    def __init__(
        self, db: Database, chain: AgreementsChain, tx: TransactionPath, ceremonies: Ceremonies
    ) -> None:
        self.db = db
        self.chain = chain
        self.tx = tx
        self.ceremonies = ceremonies

    def _commitment(self, a: Agreement, ceremony: Ceremony) -> dict[str, Any]:
        # The terms as the chain holds them: what the candidate signs must match the
        # contract's own digest, whatever our database says.
        return commitment_typed_data(
            chain_id=self.chain.chain_id(),
            registry=self.chain.address,
            agreement_id=a.onchain_id,
            terms=self.chain.terms_of(a.onchain_id),
            milestones=self.chain.milestones_of(a.onchain_id),
            nonce=self.chain.nonce_of(bound_candidate(a)),
            ceremony_hash=ceremony.hash,
        )

    def ceremony(
        self, principal: Principal | None, link: Link | None, agreement_id: str
    ) -> CeremonyShown:
        """The ceremony the Commitment covers now, and its hash (what the portal shows before
        the candidate signs)."""
        tenant = reader(principal, link, agreement_id)
        with self.db.sessions() as session:
            a = load(session, tenant, agreement_id)
            if a.state == "offering":
                raise StillOffering(a.id)
        ceremony = self.ceremonies.current(agreement_id)
        return CeremonyShown(ceremony.record, ceremony.hash)

    def typed_data(
        self,
        principal: Principal | None,
        link: Link | None,
        agreement_id: str,
        cancellation_deadline: int | None = None,
    ) -> dict[str, Any]:
        """The Commitment to sign; or, with a deadline, the Cancellation (mutual release)."""
        tenant = reader(principal, link, agreement_id)
        # Read before the session below opens: on SQLite a session's first statement takes the
        # write lock, which a second connection would wait for.
        ceremony = self.ceremonies.current(agreement_id) if cancellation_deadline is None else None
        with self.db.sessions() as session:
            a = load(session, tenant, agreement_id)
            if a.state == "offering":
                raise StillOffering(a.id)
            if cancellation_deadline is None:
                assert ceremony is not None
                bound_candidate(a)
                return self._commitment(a, ceremony)
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
        ceremony = self.ceremonies.current(agreement_id)  # before the session (see typed_data)
        with self.db.sessions() as session:
            a = load(session, tenant, agreement_id)
            if a.state == "offering":
                raise StillOffering(a.id)
            typed = self._commitment(a, ceremony)
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
            other_digests = (
                typed_data_digest(self._commitment(o, self.ceremonies.current(o.id)))
                for o in others
            )  # read after the session closed
            if any(self.chain.signed_by(candidate, d, signature) for d in other_digests):
                raise InvalidSignature(
                    "signature",
                    "wrong agreement: the candidate signed another agreement's commitment",
                )
            raise InvalidSignature(
                "signature",
                "wrong signer, or the signing record changed since the commitment was read: "
                "not the candidate's signature over this agreement's commitment as it stands "
                "now (read it again and sign)",
            )
        mined = self.tx.transact(
            agreement_id,
            "commit",
            self.chain.commit(onchain_id, ceremony.hash, signature),
            before=self.ceremonies.freeze(agreement_id, ceremony),
        )
        with self.db.sessions() as session:
            answer = describe(session, load(session, tenant, agreement_id), self.chain.address)
        if not mined.succeeded and answer["state"] != "committed":
            # Simulated fine, reverted in its block: the chain moved in between (another
            # commitment of this candidate used the nonce this one was signed with). Nothing
            # was signed on chain: the ceremony is open again.
            self.ceremonies.thaw(agreement_id)
            raise TransactionFailed(
                "the commit transaction reverted: fetch the commitment again and sign it anew"
            )
        return answer

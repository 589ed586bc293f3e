"""What the contracts service layer needs from outside, in its own words: the IntentAgreements
contract on chain and the evidence service. `adapters/` implement these; tests use fakes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..shared.transactions import Mined
from .domain.agreements import Terms

__all__ = ["AgreementHistory", "AgreementsChain", "ChainCall", "Mined"]


@dataclass(frozen=True)
class ChainCall:
    """One contract function with its arguments, not yet sent: the transaction path simulates
    it, signs it, stores it and sends it."""

    function: str
    args: tuple[Any, ...]


class AgreementsChain(Protocol):
    """The IntentAgreements contract, sent to by one relayer key: what each operation calls,
    and what the chain holds of an agreement. Signing, sending and receipts are the relayer's
    transaction path's (`shared/transactions.SigningChain`); the agreement's history, the
    dossier's (`AgreementHistory`)."""

    @property
    def address(self) -> str: ...  # the contract

    @property
    def relayer(self) -> str: ...  # the address that signs and sends

    # -- what to do: each returns the call, for the transaction path to send
    def agreement_id(self, salt: bytes) -> str: ...  # the id `offer(salt, ...)` gives, as 0x hex

    def offer(
        self, salt: bytes, terms: Terms, milestones: Sequence[tuple[str, dt.datetime]]
    ) -> ChainCall: ...

    def bind_candidate(self, onchain_id: str, address: str) -> ChainCall: ...
    def commit(self, onchain_id: str, ceremony_hash: str, signature: bytes) -> ChainCall: ...

    def confirm_milestone(
        self, onchain_id: str, index: int, root: str, values: Sequence[str], proof: Sequence[str]
    ) -> ChainCall: ...  # `values`: the leaf's [sha256, salt]; the contract computes the leaf

    def record_arrival(self, onchain_id: str, deadline: int, signature: bytes) -> ChainCall: ...

    def amend(
        self,
        onchain_id: str,
        terms_hash: str,
        start: int,
        dues: Sequence[int],
        deadline: int,
        signature: bytes,
    ) -> ChainCall: ...

    def transition(
        self, onchain_id: str, action: str, deadline: int = 0, signature: bytes = b""
    ) -> ChainCall: ...  # start, breach, withdraw, cancel, expire, dispute_arrival, fulfil_...

    # -- making the transaction
    # the call as a transaction without its nonce (JSON-storable fields), its gas estimated
    # on the chain as it is now: raises ChainRefusal when the contract refuses the call
    def unsigned(self, call: ChainCall) -> dict[str, Any]: ...
    # several calls as one transaction (`multicall`: all or none take effect); None when the
    # deployed contract cannot (before 2.2)
    def bundle(self, calls: Sequence[ChainCall]) -> ChainCall | None: ...

    # -- reading
    def chain_id(self) -> int: ...
    def chain_time(self) -> int: ...
    def block_number(self) -> int: ...
    def agreements_in_events(self, from_block: int, to_block: int) -> set[str]: ...
    def nonce_of(self, address: str) -> int: ...  # the EIP-712 nonce a candidate signs with
    def terms_of(self, onchain_id: str) -> Terms: ...
    def milestones_of(self, onchain_id: str) -> list[tuple[int, int]]: ...  # (kind code, due)
    def state_of(self, onchain_id: str) -> str: ...  # a name from STATES
    def arrival_of(self, onchain_id: str) -> tuple[int, bool]: ...  # (arrived at or 0, disputed)
    def operator_approved(self, employer: str) -> bool: ...  # may the relayer act for it?
    def is_contract(self, address: str) -> bool: ...
    def signed_by(self, address: str, digest: bytes, signature: bytes) -> bool: ...


class AgreementHistory(Protocol):
    """What the chain recorded of an agreement, as its dossier tells it."""

    @property
    def address(self) -> str: ...  # the contract

    def chain_id(self) -> int: ...
    def version(self) -> str: ...  # the contract's
    def events_of(self, onchain_id: str) -> list[dict[str, Any]]: ...  # name, args, tx, block
    def state_of(self, onchain_id: str) -> str: ...  # a name from STATES


class EvidenceSource(Protocol):
    """The evidence service, asked with the caller's own credentials."""

    def milestone_evidence(self, document_id: str, authorization: str) -> dict[str, Any]:
        """`document_id`, `leaf`, `root`, `proof` of an anchored document."""
        ...

    def upload_through_link(
        self, token: str, filename: str, content: bytes, content_type: str
    ) -> dict[str, Any]:
        """Store a document of the link's agreement; the evidence service's 201 body."""
        ...


class EvidenceArchive(Protocol):
    """The evidence service as the dossier reads it, with the caller's own credentials (`auth`:
    the headers that carry them), so the evidence service decides what the tenant may see."""

    def documents_of(
        self, candidate_ref: str, agreement_id: str, auth: Mapping[str, str]
    ) -> list[dict[str, Any]]: ...  # descriptions, oldest first

    def content(self, document_id: str, auth: Mapping[str, str]) -> bytes: ...

    def proof(self, document_id: str, auth: Mapping[str, str]) -> dict[str, Any] | None:
        """The proof bundle, or None while the document is not anchored."""
        ...

    def deposit_record(self, token: str, filename: str, content: bytes) -> dict[str, Any]:
        """Store a record OfferSeal made (a `record` link); the evidence service's 201 body."""
        ...


class NoticeLog(Protocol):
    """The notify service's touchpoints of one agreement, with their delivery attempts."""

    def touchpoints(
        self, candidate_ref: str, agreement_id: str, auth: Mapping[str, str]
    ) -> list[dict[str, Any]]: ...


class PageSource(Protocol):
    """The people's origin: the saved one-file verifier a dossier carries."""

    def verifier_html(self, lang: str) -> bytes | None: ...  # None: not reachable

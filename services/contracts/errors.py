"""The contracts service's errors; all derive from `ContractsError` (an OfferSealError)."""

from __future__ import annotations

from typing import Any

from ..shared.errors import Conflict, NotFound, OfferSealError, TransientError, ValidationFailed


class ContractsError(OfferSealError):
    """Root of the contracts service's errors."""


class AgreementNotFound(ContractsError, NotFound):
    title = "Agreement not found"


class InvalidSignature(ContractsError, ValidationFailed):
    """The signature is not the candidate's commitment to this agreement (422, with the reason)."""


class ChainRefusal(ContractsError, Conflict):
    """The contract refuses the transition (its custom error, named); answered as 409."""

    title = "Refused by the contract"

    def __init__(self, error: str, args: tuple[Any, ...] = (), detail: str = "") -> None:
        shown = ", ".join(a.hex() if isinstance(a, bytes) else str(a) for a in args)
        super().__init__(detail or f"{error}({shown})", error=error)
        self.error = error
        self.error_args = args


class TransactionFailed(ContractsError):
    title = "Transaction failed on chain"


class SenderStopped(ContractsError, TransientError):
    """The thread storing and sending the submissions waiting for the signer's lock stopped
    (interrupted) before this one was answered: 503, try again."""

    title = "The transaction sender stopped"


class CandidateNotEnrolled(ContractsError, Conflict):
    """The offer names no candidate yet: they enrol (one-time code, then a passkey or a wallet)
    in the portal before anything can be signed (409)."""

    title = "The candidate has not enrolled yet"


class DossierPending(ContractsError):
    """The dossier's manifest is deposited and waits for its anchoring: the API answers 202
    with Retry-After (the same request gives the dossier once it is anchored)."""

    title = "The dossier is being anchored"


class DossierNotFound(ContractsError, NotFound):
    """No dossier was created for the agreement as it stands (its manifest is not deposited):
    `POST .../dossier` creates one; a GET never does (404)."""

    title = "No dossier yet"


class StillOffering(ContractsError, Conflict):
    """The offer's transaction is stored and sent but not in a block yet: nothing else can be
    done with the agreement until it is (409; `GET /v1/agreements/{id}` says when)."""

    title = "The offer is not on chain yet"

    def __init__(self, agreement_id: str) -> None:
        super().__init__(
            f"agreement {agreement_id} is still being offered: its transaction waits for a "
            f"block. Try again once GET /v1/agreements/{agreement_id} shows the state offered",
            agreement_id=agreement_id,
        )

"""One transaction path per signing key, shared by every service that sends with one (the
contracts service's relayer, the evidence anchorer): `SignerPath` takes the signer's nonces,
signs, sends, sends again, replaces and fills gaps; `ports` says what it needs of the chain
and of the store; `onchain` and `book` are the real adapters."""

from .path import RESEND_AFTER, SignerPath
from .ports import Attempt, Attempts, Mined, NonceBook, SigningChain

__all__ = [
    "RESEND_AFTER",
    "Attempt",
    "Attempts",
    "Mined",
    "NonceBook",
    "SignerPath",
    "SigningChain",
]

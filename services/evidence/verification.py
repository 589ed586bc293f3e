"""Verifying a proof bundle, for anyone (no key needed): against every receipt key that ever
signed, the chain as the caller's view of it shows, and the trusted TSA roots."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from offerseal_verify.proofs import ChainView, Verdict, verify_bundle
from offerseal_verify.receipts import TrustedKey

from .ports import ReceiptKeyBook

if TYPE_CHECKING:
    from cryptography.x509 import Certificate


class Verification:
    def __init__(
        self, keys: ReceiptKeyBook, tsa_roots: Sequence[Certificate] | None = None
    ) -> None:
        self.keys = keys
        # The TSA roots /v1/verify trusts for RFC 3161 stamps (None: each bundle's own).
        self.tsa_roots = list(tsa_roots) if tsa_roots is not None else None

    def trusted_keys(self) -> dict[str, TrustedKey]:
        """Every receipt key that ever signed, each with the period it signed in."""
        return self.keys.trusted()

    def public_keys(self) -> list[dict[str, Any]]:
        return self.keys.published()

    def verify(
        self,
        bundle: Any,
        document_sha256: str | None,
        chain: ChainView | None,
        document_sm3: str | None = None,
    ) -> Verdict:
        return verify_bundle(
            bundle,
            document_sha256=document_sha256,
            document_sm3=document_sm3,
            trusted_keys=self.trusted_keys(),
            chain=chain,
            tsa_roots=self.tsa_roots,
        )

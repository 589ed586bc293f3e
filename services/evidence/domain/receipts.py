"""Signed intake receipts: the chain of custody between upload and anchor.

A receipt states what the service received (document id, sha256, size, kind, tenant, the API key
that uploaded it, the service's clock, a sequence number) and is signed with Ed25519 over its
canonical JSON. Anyone holding the published public key can check it without the service.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .canonical import canonical_json

RECEIPT_FORMAT = "offerseal-intake-receipt/1"
ALGORITHM = "Ed25519"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def public_key_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id_of(public_raw: bytes) -> str:
    """A short, stable name for a public key: the first 16 hex digits of its sha256."""
    return "ed25519:" + hashlib.sha256(public_raw).hexdigest()[:16]


@dataclass(frozen=True)
class ReceiptSigner:
    private_key: Ed25519PrivateKey

    @classmethod
    def from_seed(cls, seed: bytes) -> ReceiptSigner:
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @property
    def public_raw(self) -> bytes:
        return public_key_bytes(self.private_key.public_key())

    @property
    def key_id(self) -> str:
        return key_id_of(self.public_raw)

    def sign(self, payload: dict[str, Any]) -> dict[str, Any]:
        body = dict(payload, format=RECEIPT_FORMAT, key_id=self.key_id)
        signature = self.private_key.sign(canonical_json(body))
        return {
            "payload": body,
            "alg": ALGORITHM,
            "public_key": b64(self.public_raw),
            "signature": b64(signature),
        }


def verify_receipt(receipt: dict[str, Any], trusted: dict[str, bytes] | None) -> tuple[bool, str]:
    """Check a receipt's signature. `trusted` maps key ids to raw public keys; when given, the
    key must be one of them, otherwise the key embedded in the receipt is used (and said so)."""
    try:
        payload = receipt["payload"]
        if receipt.get("alg") != ALGORITHM or payload.get("format") != RECEIPT_FORMAT:
            return False, "unknown receipt format or algorithm"
        key_id = payload["key_id"]
        embedded = unb64(receipt["public_key"])
        if key_id_of(embedded) != key_id:
            return False, "embedded public key does not match the receipt's key_id"
        if trusted is not None:
            if key_id not in trusted:
                return False, f"receipt signed by {key_id}, which is not a trusted key"
            public_raw = trusted[key_id]
        else:
            public_raw = embedded
        Ed25519PublicKey.from_public_bytes(public_raw).verify(
            unb64(receipt["signature"]), canonical_json(payload)
        )
    except InvalidSignature:
        return False, "signature does not match the receipt"
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return False, f"malformed receipt: {exc}"
    if trusted is None:
        return True, f"signed by {key_id} (key taken from the receipt; pin it with --key)"
    return True, f"signed by trusted key {key_id}"

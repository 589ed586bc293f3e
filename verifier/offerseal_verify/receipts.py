"""Signed intake receipts: the chain of custody between upload and anchor.

A receipt states what the service received (document id, sha256, size, kind, tenant, the API key
that uploaded it, the service's clock, a sequence number) and is signed with Ed25519 over its
canonical JSON. Anyone holding the published public key can check it without the service.
Hash-only intake of many documents signs once: the signed payload holds the Merkle root of the
documents' statements, and each document's receipt carries its statement and Merkle path.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .canonical import canonical_json
from .merkle import MerkleTree, keccak, process_proof

# Format 2 adds `provenance` (who sent the document, from where, the e-mail's DKIM result) to
# the signed statement; receipts of format 1 verify as before.
RECEIPT_FORMAT = "offerseal-intake-receipt/2"
BATCH_FORMAT = "offerseal-intake-batch/2"
RECEIPT_FORMATS = (RECEIPT_FORMAT, "offerseal-intake-receipt/1")
BATCH_FORMATS = (BATCH_FORMAT, "offerseal-intake-batch/1")
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


def parse_time(text: str) -> dt.datetime:
    """A receipt's or a key's time (ISO 8601, `Z` or an offset) as an aware datetime."""
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"time without a zone: {text!r}")
    return moment


@dataclass(frozen=True)
class TrustedKey:
    """A receipt public key and the period it signed in (open-ended where None): a receipt
    verifies only if it states a time inside that period."""

    public_raw: bytes
    valid_from: dt.datetime | None = None
    valid_until: dt.datetime | None = None

    def covers(self, moment: dt.datetime) -> bool:
        return (self.valid_from is None or self.valid_from <= moment) and (
            self.valid_until is None or moment <= self.valid_until
        )

    def period(self) -> str:
        start = self.valid_from.isoformat() if self.valid_from else "the beginning"
        end = self.valid_until.isoformat() if self.valid_until else "now"
        return f"{start} to {end}"


def item_leaf(item: dict[str, Any]) -> bytes:
    """Leaf of one document's statement inside a batch receipt."""
    return keccak(canonical_json(item))


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

    def _envelope(self, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "payload": body,
            "alg": ALGORITHM,
            "public_key": b64(self.public_raw),
            "signature": b64(self.private_key.sign(canonical_json(body))),
        }

    def sign(self, payload: dict[str, Any]) -> dict[str, Any]:
        """A receipt for one document: the statement itself is signed."""
        return self._envelope(dict(payload, format=RECEIPT_FORMAT, key_id=self.key_id))

    def sign_batch_paths(
        self, common: dict[str, Any], items: list[dict[str, Any]]
    ) -> tuple[dict[str, Any], list[list[str]]]:
        """One signature for many documents (hash-only intake): the signed payload carries the
        Merkle root of every document's statement. Returns (batch receipt, each statement's
        path to that root); `member_receipt` makes a document's receipt of the two."""
        leaves = [item_leaf(item) for item in items]
        batch, tree = self.sign_batch_tree(common, leaves)
        return batch, [["0x" + p.hex() for p in tree.proof(leaf)] for leaf in leaves]

    def sign_batch_tree(
        self, common: dict[str, Any], leaves: list[bytes]
    ) -> tuple[dict[str, Any], MerkleTree]:
        """`sign_batch_paths` from the statements' leaves (`item_leaf` of each, computed by
        the caller): (batch receipt, the tree of the leaves, which gives their paths)."""
        tree = MerkleTree.build(leaves)
        body = dict(
            common,
            format=BATCH_FORMAT,
            key_id=self.key_id,
            count=len(leaves),
            items_root="0x" + tree.root.hex(),
        )
        return self._envelope(body), tree

    def sign_batch(
        self, common: dict[str, Any], items: list[dict[str, Any]]
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """As `sign_batch_paths`, with each document's whole receipt: (batch receipt,
        per-document receipts)."""
        batch, paths = self.sign_batch_paths(common, items)
        return batch, [
            member_receipt(batch, item, path) for item, path in zip(items, paths, strict=True)
        ]


def member_receipt(batch: dict[str, Any], item: dict[str, Any], path: list[str]) -> dict[str, Any]:
    """One document's receipt in a signed batch: the batch receipt, the document's statement
    and its path to the batch's `items_root` (the same bytes however often it is rebuilt)."""
    return dict(batch, item=item, item_proof=path)


def verify_receipt(
    receipt: dict[str, Any], trusted: Mapping[str, bytes | TrustedKey] | None
) -> tuple[bool, str, dict[str, Any]]:
    """Check a receipt's signature. `trusted` maps key ids to raw public keys, or to keys with
    the period they signed in (then the receipt's `received_at` must fall in it); when given, the
    key must be one of them, otherwise the key embedded in the receipt is used (and said so).

    Returns (ok, detail, statement): the statement about the document (its id, sha256, size,
    sequence...), which for a batch receipt is the item proven to be in the signed batch."""
    try:
        payload = receipt["payload"]
        if receipt.get("alg") != ALGORITHM or payload.get("format") not in (
            *RECEIPT_FORMATS,
            *BATCH_FORMATS,
        ):
            return False, "unknown receipt format or algorithm", {}
        key_id = payload["key_id"]
        embedded = unb64(receipt["public_key"])
        if key_id_of(embedded) != key_id:
            return False, "embedded public key does not match the receipt's key_id", {}
        if trusted is not None:
            if key_id not in trusted:
                return False, f"receipt signed by {key_id}, which is not a trusted key", {}
            entry = trusted[key_id]
            public_raw = entry.public_raw if isinstance(entry, TrustedKey) else entry
        else:
            entry, public_raw = None, embedded
        Ed25519PublicKey.from_public_bytes(public_raw).verify(
            unb64(receipt["signature"]), canonical_json(payload)
        )
        if isinstance(entry, TrustedKey) and not entry.covers(
            parse_time(str(payload["received_at"]))
        ):
            return (
                False,
                f"receipt states {payload['received_at']}, outside the period in which "
                f"{key_id} signed ({entry.period()})",
                {},
            )
        statement: dict[str, Any] = payload
        if payload["format"] in BATCH_FORMATS:
            statement = receipt["item"]
            path = [bytes.fromhex(p[2:]) for p in receipt["item_proof"]]
            root = bytes.fromhex(payload["items_root"][2:])
            if process_proof(item_leaf(statement), path) != root:
                return False, "the document's statement is not in the signed batch", {}
    except InvalidSignature:
        return False, "signature does not match the receipt", {}
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return False, f"malformed receipt: {exc}", {}
    if trusted is None:
        return (
            True,
            f"signed by {key_id} (key taken from the receipt; pin it with --key)",
            statement,
        )
    return True, f"signed by trusted key {key_id}", statement

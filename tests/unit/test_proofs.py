"""The bundle verifier against an in-memory chain: every check names what it found, and a
forged or mismatched bundle is `valid: false` with the failing check named, never an error."""

from __future__ import annotations

import copy
import hashlib
import os
from dataclasses import dataclass, field
from typing import Any

import pytest

from offerseal_verify import merkle
from offerseal_verify.hexbytes import to_hex
from offerseal_verify.proofs import AnchorFacts, AnchorTx, build_bundle, verify_bundle
from offerseal_verify.receipts import ReceiptSigner

REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
TX = "0x" + "11" * 32
BLOCK_HASH = "0x" + "22" * 32


@dataclass
class FakeChain:
    anchored: dict[bytes, int] = field(default_factory=dict)
    chain: int = 31337

    def chain_id(self) -> int:
        return self.chain

    def anchored_at(self, registry: str, root: bytes) -> int:
        return self.anchored.get(root, 0) if registry == REGISTRY else 0

    def block(self, number: int) -> tuple[str, int] | None:
        return (BLOCK_HASH, 1_764_087_600) if number == 12 else None

    def anchor_tx(self, tx_hash: str) -> AnchorTx | None:
        if tx_hash != TX:
            return None
        return AnchorTx(12, BLOCK_HASH, REGISTRY, True, tuple(to_hex(r) for r in self.anchored))


def make_bundle(
    document: bytes = b"stamped copy",
) -> tuple[dict[str, Any], FakeChain, ReceiptSigner]:
    signer = ReceiptSigner.from_seed(os.urandom(32))
    sha = hashlib.sha256(document).digest()
    salt = os.urandom(32)
    others = [merkle.leaf_hash(os.urandom(32), os.urandom(32)) for _ in range(6)]
    leaf = merkle.leaf_hash(sha, salt)
    tree = merkle.MerkleTree.build([leaf, *others])
    receipt = signer.sign(
        {
            "document_id": "d-1",
            "sha256": to_hex(sha),
            "size": len(document),
            "kind": "resignation_acceptance",
            "tenant": "acme",
            "api_key_id": "k",
            "received_at": "2026-11-25T16:20:00.000000Z",
            "sequence": 1,
            "content_stored": True,
        }
    )
    bundle = build_bundle(
        document={
            "id": "d-1",
            "sha256": to_hex(sha),
            "kind": "resignation_acceptance",
            "received_at": "2026-11-25T16:20:00.000000Z",
        },
        salt=salt,
        proof=tree.proof(leaf),
        root=tree.root,
        anchor=AnchorFacts(31337, REGISTRY, TX, 12, BLOCK_HASH, 1_764_087_600),
        receipt=receipt,
    )
    return bundle, FakeChain({tree.root: 1_764_087_600}), signer


def sha_hex(data: bytes) -> str:
    return to_hex(hashlib.sha256(data).digest())


def test_a_genuine_bundle_passes_every_check() -> None:
    bundle, chain, signer = make_bundle()
    verdict = verify_bundle(
        bundle,
        document_sha256=sha_hex(b"stamped copy"),
        trusted_keys={signer.key_id: signer.public_raw},
        chain=chain,
    )
    assert verdict.valid, verdict.as_dict()
    assert [c.name for c in verdict.checks] == [
        "format",
        "document_hash",
        "receipt_signature",
        "leaf",
        "merkle_path",
        "chain_id",
        "root_anchored",
        "anchor_transaction",
        "block_timestamp",
    ]


def test_bundle_has_the_documented_shape() -> None:
    bundle, _, _ = make_bundle()
    assert bundle["format"] == "offerseal-proof/3"
    assert bundle["witnesses"] == ["ethereum"]
    assert bundle["timestamps"] == [] and bundle["deposits"] == []
    assert bundle["leaf"]["encoding"] == ["bytes32", "bytes32"]
    assert bundle["leaf"]["values"][0] == bundle["document"]["sha256"]
    assert set(bundle["anchor"]) == {
        "chain_id",
        "registry",
        "tx_hash",
        "block_number",
        "block_hash",
        "block_timestamp",
    }


def _mutate(bundle: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    forged = copy.deepcopy(bundle)
    target = forged
    keys = path.split(".")
    for key in keys[:-1]:
        target = target[int(key)] if isinstance(target, list) else target[key]
    last = keys[-1]
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return forged


@pytest.mark.parametrize(
    "path,value,failing",
    [
        ("merkle.root", "0x" + "33" * 32, "merkle_path"),
        ("leaf.values.1", "0x" + "44" * 32, "leaf"),
        ("document.sha256", "0x" + "55" * 32, "receipt_signature"),
        ("anchor.block_timestamp", 1_764_087_601, "block_timestamp"),
        ("anchor.tx_hash", "0x" + "66" * 32, "anchor_transaction"),
        ("anchor.chain_id", 1, "chain_id"),
        ("intake_receipt.payload.sequence", 99, "receipt_signature"),
    ],
)
def test_forgeries_fail_with_the_check_named(path: str, value: Any, failing: str) -> None:
    bundle, chain, signer = make_bundle()
    verdict = verify_bundle(
        _mutate(bundle, path, value),
        document_sha256=sha_hex(b"stamped copy"),
        trusted_keys={signer.key_id: signer.public_raw},
        chain=chain,
    )
    assert not verdict.valid
    assert failing in verdict.failed


def test_another_document_fails_the_hash_check() -> None:
    bundle, chain, signer = make_bundle()
    verdict = verify_bundle(
        bundle,
        document_sha256=sha_hex(b"stamped copz"),
        trusted_keys={signer.key_id: signer.public_raw},
        chain=chain,
    )
    assert verdict.failed == ["document_hash"]


def test_a_root_the_chain_does_not_hold_fails() -> None:
    bundle, _, signer = make_bundle()
    verdict = verify_bundle(
        bundle,
        document_sha256=sha_hex(b"stamped copy"),
        trusted_keys={signer.key_id: signer.public_raw},
        chain=FakeChain(),
    )
    assert "root_anchored" in verdict.failed


def test_offline_skips_chain_checks_and_is_not_valid() -> None:
    bundle, _, signer = make_bundle()
    verdict = verify_bundle(
        bundle,
        document_sha256=sha_hex(b"stamped copy"),
        trusted_keys={signer.key_id: signer.public_raw},
        chain=None,
    )
    assert verdict.failed == []
    assert not verdict.valid  # skipped checks are not passes
    assert {c.name for c in verdict.checks if c.ok is None} == {
        "chain_id",
        "root_anchored",
        "anchor_transaction",
        "block_timestamp",
    }


@pytest.mark.parametrize(
    "garbage",
    [
        None,
        [],
        "x",
        {"format": "other"},
        {"format": "offerseal-proof/1"},
        {"format": "offerseal-proof/1", "leaf": 3},
    ],
)
def test_garbage_is_invalid_not_an_exception(garbage: Any) -> None:
    verdict = verify_bundle(garbage, document_sha256=None, trusted_keys=None, chain=FakeChain())
    assert not verdict.valid
    assert verdict.failed

"""OfferSeal proofs checked by independent implementations: @openzeppelin/merkle-tree through
Node, and OpenZeppelin MerkleProof on chain through the registry's verify()."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from offerseal_verify import merkle
from offerseal_verify.hexbytes import to_hex
from tests.conftest import RunningStack, upload, wait_for_proof

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "oz-merkle-verify.mjs"
pytestmark = [
    pytest.mark.chain,
    pytest.mark.skipif(shutil.which("node") is None, reason="Node.js not installed"),
]


def node(args: list[str], payload: Any) -> list[dict[str, Any]]:
    result = subprocess.run(
        ["node", str(SCRIPT), *args],
        input=json.dumps(payload),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 257])
def test_roots_equal_standard_merkle_tree_of(size: int) -> None:
    values = [(hashlib.sha256(os.urandom(16)).digest(), os.urandom(32)) for _ in range(size)]
    tree = merkle.MerkleTree.build([merkle.leaf_hash(s, salt) for s, salt in values])
    [answer] = node(["--tree"], {"values": [[to_hex(s), to_hex(salt)] for s, salt in values]})
    assert answer["root"] == to_hex(tree.root)


def test_service_proofs_pass_openzeppelin_verify_and_forgeries_fail(
    evidence_sqlite: RunningStack,
) -> None:
    ids = [upload(evidence_sqlite, os.urandom(100)).json()["id"] for _ in range(9)]
    bundles = [wait_for_proof(evidence_sqlite, doc_id) for doc_id in ids]
    assert all(r["valid"] for r in node([], bundles))
    forged = json.loads(json.dumps(bundles[0]))
    forged["leaf"]["values"][0] = "0x" + "00" * 32
    assert node([], forged) == [{"valid": False}]
    # And on chain, through OpenZeppelin MerkleProof inside EvidenceRegistry.verify().
    from offerseal.evidence.adapters.registry import RegistryClient
    from offerseal.shared import chain

    registry = RegistryClient(
        chain.connect(evidence_sqlite.rpc_url), bundles[0]["anchor"]["registry"]
    )
    for bundle in bundles:
        assert registry.contract.functions.verify(
            [bytes.fromhex(p[2:]) for p in bundle["merkle"]["proof"]],
            bytes.fromhex(bundle["merkle"]["root"][2:]),
            bytes.fromhex(bundle["leaf"]["hash"][2:]),
        ).call()

"""EvidenceRegistry on a real Anvil: roles, reverts, timestamps, on-chain proof checks, and
what reaches the chain (roots only)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from eth_abi import decode
from web3 import Web3
from web3.exceptions import ContractCustomError

from offerseal.evidence.adapters.registry import RegistryClient
from offerseal.shared import chain
from offerseal.shared.config import ANVIL_DEV_KEY
from offerseal_verify import merkle

pytestmark = pytest.mark.chain
ROOT = Path(__file__).resolve().parents[2]
# Anvil's second development account: no role on the registry.
OTHER_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"


@pytest.fixture
def registry(anvil: Any) -> RegistryClient:
    w3 = chain.connect(anvil.url)
    signer = chain.account(ANVIL_DEV_KEY)
    return RegistryClient(
        w3, chain.deploy(w3, signer, "EvidenceRegistry", signer.address, signer.address)
    )


def anchor(registry: RegistryClient, root: bytes, key: str = ANVIL_DEV_KEY) -> Any:
    signer = chain.account(key)
    w3 = registry.w3
    prepared = registry.prepare_anchor(signer, root, w3.eth.get_transaction_count(signer.address))
    registry.send_raw(prepared.raw)
    return w3.eth.wait_for_transaction_receipt(prepared.tx_hash)  # type: ignore[arg-type]


def selector(signature: str) -> bytes:
    return Web3.keccak(text=signature)[:4]


def test_anchor_records_the_block_timestamp_and_emits_anchored(registry: Any) -> None:
    root = os.urandom(32)
    assert registry.anchored_at(root) == 0
    receipt = anchor(registry, root)
    assert receipt["status"] == 1
    block = registry.w3.eth.get_block(receipt["blockNumber"])
    assert registry.anchored_at(root) == block["timestamp"]
    assert registry.anchored_roots(receipt) == ("0x" + root.hex(),)
    event = registry.contract.events.Anchored().process_receipt(receipt)[0]
    assert event["args"]["root"] == root
    assert event["args"]["timestamp"] == block["timestamp"]


def test_second_anchor_of_a_root_reverts_with_root_already_anchored(registry: Any) -> None:
    root = os.urandom(32)
    anchor(registry, root)
    with pytest.raises(ContractCustomError) as info:
        registry.contract.functions.anchor(root).call(
            {"from": chain.account(ANVIL_DEV_KEY).address}
        )
    data = info.value.data if isinstance(info.value.data, str) else info.value.args[0]
    raw = bytes.fromhex(str(data)[2:])
    assert raw[:4] == selector("RootAlreadyAnchored(bytes32)")
    assert decode(["bytes32"], raw[4:])[0] == root


def test_only_the_anchorer_role_may_anchor(registry: Any) -> None:
    outsider = chain.account(OTHER_KEY).address
    with pytest.raises(ContractCustomError) as info:
        registry.contract.functions.anchor(os.urandom(32)).call({"from": outsider})
    data = info.value.data if isinstance(info.value.data, str) else info.value.args[0]
    assert bytes.fromhex(str(data)[2:])[:4] == selector(
        "AccessControlUnauthorizedAccount(address,bytes32)"
    )


def test_zero_root_is_refused(registry: Any) -> None:
    with pytest.raises(ContractCustomError):
        registry.contract.functions.anchor(b"\x00" * 32).call(
            {"from": chain.account(ANVIL_DEV_KEY).address}
        )


def test_verify_on_chain_matches_the_python_tree(registry: Any) -> None:
    leaves = [
        merkle.leaf_hash(hashlib.sha256(os.urandom(8)).digest(), os.urandom(32)) for _ in range(37)
    ]
    tree = merkle.MerkleTree.build(leaves)
    verify = registry.contract.functions.verify
    assert not verify(tree.proof(leaves[0]), tree.root, leaves[0]).call()  # not anchored yet
    anchor(registry, tree.root)
    for leaf in leaves[:10]:
        assert verify(tree.proof(leaf), tree.root, leaf).call()
    bad = bytearray(leaves[3])
    bad[0] ^= 1
    assert not verify(tree.proof(leaves[3]), tree.root, bytes(bad)).call()
    assert registry.contract.functions.version().call() == "1.1.0"


def test_only_the_root_reaches_calldata_and_logs(registry: Any) -> None:
    sha = hashlib.sha256(b"a resignation letter").digest()
    salt = os.urandom(32)
    other = merkle.leaf_hash(os.urandom(32), os.urandom(32))
    tree = merkle.MerkleTree.build([merkle.leaf_hash(sha, salt), other])
    receipt = anchor(registry, tree.root)
    tx = registry.w3.eth.get_transaction(receipt["transactionHash"])
    on_chain = (
        bytes(tx["input"])
        + b"".join(bytes(t) for entry in receipt["logs"] for t in entry["topics"])
        + b"".join(bytes(entry["data"]) for entry in receipt["logs"])
    )
    assert tree.root in on_chain
    for secret in (sha, salt, merkle.leaf_hash(sha, salt)):
        assert secret not in on_chain


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_committed_artifacts_match_a_fresh_compile() -> None:
    result = subprocess.run(
        ["node", "contracts/compile.mjs", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr + result.stdout


def test_deployable_contracts_pin_the_compiler_version() -> None:
    for name in ("EvidenceRegistry", "IntentAgreements"):
        artifact = json.loads((ROOT / f"contracts/build/{name}.json").read_text())
        version = artifact["compiler"].split()[1].split("+")[0]
        source = (ROOT / f"contracts/{name}.sol").read_text()
        assert f"pragma solidity {version};" in source
    package = json.loads((ROOT / "package.json").read_text())
    assert package["devDependencies"]["solc"] == version

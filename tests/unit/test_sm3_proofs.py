"""SM3 in proof bundles (offerseal-proof/3): the receipt signs the document's SM3, the bundle
states it, the verifier checks it against the document's bytes; a forged SM3 fails; a document
registered by hash only has none and still verifies; a bundle of today's format 2 (a fixture made
by the code before format 3) still verifies; new bundles match the published schema."""

from __future__ import annotations

import copy
import hashlib
import json
import os
from typing import Any

import jsonschema
import pytest

from offerseal.evidence.domain.statements import sm3_of, statement_of
from offerseal.evidence.published import load_schema, schema_for_bundle
from offerseal_verify import merkle
from offerseal_verify.deposits import deposited_digest
from offerseal_verify.hexbytes import to_hex
from offerseal_verify.proofs import AnchorFacts, build_bundle, verify_bundle
from offerseal_verify.receipts import ReceiptSigner
from offerseal_verify.report import witness_summary
from offerseal_verify.sm3 import sm3_hex
from tests.conftest import IN_CI, ROOT
from tests.unit.test_proofs import BLOCK_HASH, REGISTRY, TX, FakeChain

FIXTURES = ROOT / "tests" / "fixtures"
DOCUMENT = "离职证明：李四的离职申请已于2026年11月20日批准。".encode()


def make(document: bytes = DOCUMENT, *, with_sm3: bool = True) -> tuple[dict[str, Any], Any, Any]:
    signer = ReceiptSigner.from_seed(os.urandom(32))
    sha = hashlib.sha256(document).digest()
    salt = os.urandom(32)
    leaf = merkle.leaf_hash(sha, salt)
    tree = merkle.MerkleTree.build([leaf, merkle.leaf_hash(os.urandom(32), os.urandom(32))])
    sm3 = sm3_hex(document) if with_sm3 else None
    statement = statement_of(
        "d-7", to_hex(sha), len(document), "employment_certificate", 7, True, sm3
    )
    receipt = signer.sign({**statement, "tenant": "acme", "received_at": "2026-12-01T08:00:00Z"})
    described = {
        "id": "d-7",
        "sha256": to_hex(sha),
        "kind": "employment_certificate",
        "received_at": "2026-12-01T08:00:00Z",
    }
    if sm3_of(receipt) is not None:
        described["sm3"] = sm3_of(receipt)
    bundle = build_bundle(
        document=described,
        salt=salt,
        proof=tree.proof(leaf),
        root=tree.root,
        anchor=AnchorFacts(31337, REGISTRY, TX, 12, BLOCK_HASH, 1_764_087_600),
        receipt=receipt,
    )
    return bundle, FakeChain({tree.root: 1_764_087_600}), signer


def check(bundle: dict[str, Any], chain: Any, signer: Any, document: bytes = DOCUMENT) -> Any:
    return verify_bundle(
        bundle,
        document_sha256=to_hex(hashlib.sha256(document).digest()),
        document_sm3=sm3_hex(document),
        trusted_keys={signer.key_id: signer.public_raw},
        chain=chain,
    )


def statuses(verdict: Any) -> dict[str, bool | None]:
    return {c.name: c.ok for c in verdict.checks}


def test_the_receipt_signs_the_sm3_and_the_verifier_checks_it() -> None:
    bundle, chain, signer = make()
    assert bundle["format"] == "offerseal-proof/3"
    assert bundle["document"]["sm3"] == sm3_hex(DOCUMENT)
    assert bundle["intake_receipt"]["payload"]["sm3"] == sm3_hex(DOCUMENT)
    verdict = check(bundle, chain, signer)
    assert verdict.valid, verdict.as_dict()
    assert statuses(verdict)["document_sm3"] is True
    assert "sm3 not in this bundle" not in witness_summary(bundle, verdict)


def test_another_file_fails_the_sm3_check_as_well_as_the_sha256_one() -> None:
    bundle, chain, signer = make()
    verdict = check(bundle, chain, signer, document=DOCUMENT + b" ")
    assert verdict.failed[:2] == ["document_hash", "document_sm3"]


def test_a_forged_sm3_in_the_bundle_is_not_what_the_receipt_signed() -> None:
    bundle, chain, signer = make()
    forged = copy.deepcopy(bundle)
    forged["document"]["sm3"] = sm3_hex(b"another document")
    verdict = check(forged, chain, signer, document=b"another document")
    assert "receipt_signature" in verdict.failed
    assert [c.detail for c in verdict.checks if c.name == "receipt_signature"] == [
        "receipt does not sign the bundle's sm3"
    ]
    malformed = copy.deepcopy(bundle)
    malformed["document"]["sm3"] = "0x1234"
    assert verify_bundle(malformed, document_sha256=None, trusted_keys=None, chain=None).failed == [
        "structure"
    ]


def test_a_hash_only_document_has_no_sm3_and_still_verifies() -> None:
    bundle, chain, signer = make(with_sm3=False)
    assert "sm3" not in bundle["document"] and "sm3" not in bundle["intake_receipt"]["payload"]
    verdict = check(bundle, chain, signer)
    assert verdict.valid and "document_sm3" not in statuses(verdict)
    assert "sm3 not in this bundle" in witness_summary(bundle, verdict)


def test_a_bundle_of_todays_format_2_still_verifies() -> None:
    bundle = json.loads((FIXTURES / "proof-bundle-2.json").read_text())
    document = (FIXTURES / "proof-bundle-2.document.txt").read_bytes()
    assert bundle["format"] == "offerseal-proof/2" and "deposits" not in bundle
    root = bytes.fromhex(bundle["merkle"]["root"][2:])
    key = bytes.fromhex("bd829bf856e7649843dcd710233c7d690fbf0c96f8234a14c6a4a307fa3a4ad8")
    verdict = verify_bundle(
        bundle,
        document_sha256=to_hex(hashlib.sha256(document).digest()),
        document_sm3=sm3_hex(document),
        trusted_keys={"ed25519:a85b0a29a99dccf7": key},
        chain=FakeChain({root: 1_764_087_600}),
    )
    assert verdict.valid, verdict.as_dict()
    assert "document_sm3" not in statuses(verdict)
    jsonschema.Draft202012Validator(load_schema("proof-bundle-2")).validate(bundle)


def test_new_bundles_match_the_published_schema_of_format_3() -> None:
    validator = jsonschema.Draft202012Validator(load_schema("proof-bundle-3"))
    jsonschema.Draft202012Validator.check_schema(load_schema("proof-bundle-3"))
    with_sm3, _, _ = make()
    hash_only, _, _ = make(with_sm3=False)
    assert schema_for_bundle(with_sm3) == "proof-bundle-3"
    validator.validate(with_sm3)
    validator.validate(hash_only)
    root = bytes.fromhex(with_sm3["merkle"]["root"][2:])
    digest = deposited_digest("sm3", root)
    deposited = copy.deepcopy(with_sm3)
    deposited["witnesses"].append("tencent-btoe")
    deposited["deposits"] = [
        {
            "type": "tencent-btoe",
            "subject": "merkle_root",
            "hash_algorithm": "sm3",
            "hash": digest,
            "evidence_id": "ev-1",
            "tx_hash": "0x" + "aa" * 32,
            "evidence_time": "2026-12-01 16:00:03",
            "block_height": 800,
            "certificate": None,
            "request": {"EvidenceHash": digest, "HashType": 0},
            "response": {"EvidenceId": "ev-1"},
            "deposited_at": "2026-12-01T08:00:03Z",
        }
    ]
    validator.validate(deposited)
    bad = copy.deepcopy(with_sm3)
    bad["document"]["sm3"] = "0xnothex"
    assert [list(e.absolute_path) for e in validator.iter_errors(bad)] == [["document", "sm3"]]


def btoe_entry(root: bytes, **changes: Any) -> dict[str, Any]:
    """A deposit entry as the BTOE adapter stores it (what the provider answered)."""
    digest = deposited_digest("sm3", root)
    entry: dict[str, Any] = {
        "type": "tencent-btoe",
        "subject": "merkle_root",
        "hash_algorithm": "sm3",
        "hash": digest,
        "evidence_id": "ev-1",
        "tx_hash": "0x" + "aa" * 32,
        "evidence_time": "2026-12-01 16:00:03",
        "block_height": 800,
        "certificate": None,
        "request": {"Action": "CreateHashDepositNoCert", "EvidenceHash": digest, "HashType": 0},
        "response": {
            "EvidenceId": "ev-1",
            "EvidenceTxHash": "0x" + "aa" * 32,
            "EvidenceTime": "2026-12-01 16:00:03",
            "BlockchainHeight": 800,
        },
        "deposited_at": "2026-12-01T08:00:03Z",
    }
    entry.update(changes)
    return entry


def with_deposit(bundle: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(bundle)
    out["witnesses"].append("tencent-btoe")
    out["deposits"] = [entry]
    return out


def test_a_deposit_of_the_roots_sm3_is_reported_as_present_and_needing_the_provider() -> None:
    bundle, chain, signer = make()
    root = bytes.fromhex(bundle["merkle"]["root"][2:])
    good = with_deposit(bundle, btoe_entry(root))
    verdict = check(good, chain, signer)
    assert verdict.valid, verdict.as_dict()
    detail = next(c.detail for c in verdict.checks if c.name == "judicial_deposit")
    assert "present, checked against the provider's answer" in detail
    assert "on-line confirmation needs the provider" in detail
    assert "tencent-btoe PASS" in witness_summary(good, verdict)
    for forged in (
        btoe_entry(root, hash=deposited_digest("sm3", b"\x00" * 32)),  # another root's digest
        btoe_entry(root, evidence_id="ev-2"),  # an id the provider did not answer
    ):
        assert check(with_deposit(bundle, forged), chain, signer).failed == ["judicial_deposit"]
    unlisted = copy.deepcopy(good)
    unlisted["witnesses"].remove("tencent-btoe")
    assert check(unlisted, chain, signer).failed == ["judicial_deposit"]


def test_the_verify_pages_checks_agree_on_sm3_and_deposits() -> None:
    import shutil
    import subprocess

    node = shutil.which("node")
    if node is None:
        if IN_CI:
            pytest.fail("node is needed to run the verify page's checks")
        pytest.skip("node is not installed")
    bundle, _chain, _signer = make()
    root = bytes.fromhex(bundle["merkle"]["root"][2:])
    forged = copy.deepcopy(bundle)
    forged["document"]["sm3"] = sm3_hex(b"x")
    cases = [
        (with_deposit(bundle, btoe_entry(root)), DOCUMENT),
        (with_deposit(bundle, btoe_entry(root, evidence_id="ev-2")), DOCUMENT),
        (bundle, DOCUMENT + b"!"),
        (forged, b"x"),
    ]
    given = [
        {
            "bundle": b,
            "sha": to_hex(hashlib.sha256(d).digest()),
            "sm3": sm3_hex(d),
        }
        for b, d in cases
    ]
    script = (
        "import { verifyOffline, depositChecks } from './web/src/verify/checks.js';"
        "let text = '';"
        "process.stdin.on('data', (c) => (text += c));"
        "process.stdin.on('end', () => {"
        "  const out = JSON.parse(text).map(({ bundle, sha, sm3 }) => {"
        "    const { checks, facts } = verifyOffline(bundle, sha, null, sm3);"
        "    return checks.concat(depositChecks(bundle, facts.root))"
        "      .filter((c) => c.ok === false).map((c) => c.name);"
        "  });"
        "  process.stdout.write(JSON.stringify(out));"
        "});"
    )
    answer = subprocess.run(
        [node, "--no-warnings", "--input-type=module", "-e", script],
        input=json.dumps(given),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    assert json.loads(answer.stdout) == [
        [],
        ["judicial_deposit"],
        ["document_hash", "document_sm3"],
        ["document_hash", "receipt_signature"],
    ]

"""Hash-only intake's column-wise shortcuts give exactly what the per-item code gives: the
batch check, the ids, the statements' leaves, the paths rebuilt from stored leaves, the sha256
parsing and the JSON depth guard."""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

import pytest

from offerseal.evidence.adapters.storage import copy_value
from offerseal.evidence.arguments import check_hash_item, hash_items_valid
from offerseal.evidence.domain.documents import KINDS
from offerseal.evidence.domain.statements import (
    hash_only_statement_leaves,
    sha256_bytes,
    statement_of,
    uuid4_strings,
)
from offerseal.evidence.trees import leaves_of, path_hex, tree_of
from offerseal.shared.guards import _NOT_BRACKETS, _STRING, json_too_deep
from offerseal_verify import merkle
from offerseal_verify.hexbytes import from_hex32
from offerseal_verify.receipts import ReceiptSigner, item_leaf, member_receipt, verify_receipt

from .test_hash_items import CASES, GOOD


def _good(i: int, **extra: Any) -> dict[str, Any]:
    return {"sha256": "0x" + f"{i:064x}", "kind": KINDS[i % len(KINDS)], "candidate_ref": f"c{i}"}


@pytest.mark.parametrize("bad", CASES)
def test_the_batch_check_passes_only_what_every_item_check_passes(bad: Any) -> None:
    """Any one item the schema refuses (or changes) anywhere in a large batch sends the batch
    down the item-by-item path; a batch of valid items passes as it is."""
    items = [_good(i) for i in range(300)]
    assert hash_items_valid(items)
    for at in (0, 137, 299):
        batch = [*items[:at], bad, *items[at + 1 :]]
        _, errors = check_hash_item(bad)
        assert hash_items_valid(batch) == (not errors), (at, bad)


def test_the_batch_check_bounds_every_optional_field() -> None:
    base = [_good(i) for i in range(5)]
    ok = dict(base[0], agreement_id="a" * 100, milestone="m" * 60)
    assert hash_items_valid([*base, ok])
    for field, value in (
        ("agreement_id", "a" * 101),
        ("agreement_id", ""),
        ("agreement_id", 5),
        ("milestone", "m" * 61),
        ("milestone", None),
        ("candidate_ref", ["x"]),
        ("kind", ["other"]),
        ("kind", {"a": 1}),
        ("sha256", GOOD.replace("a", "g", 1)),
        ("sha256", GOOD[:-2] + "\n"),
    ):
        item = dict(base[1], **{field: value})
        assert not hash_items_valid([*base, item]), (field, value)
        assert check_hash_item(item)[1], (field, value)
    assert not hash_items_valid([*base, dict(base[1], extra="x")])


def test_uuid4_strings_equal_the_uuid_module() -> None:
    random = os.urandom(16 * 500)
    expected = [str(uuid.UUID(bytes=random[i : i + 16], version=4)) for i in range(0, 8000, 16)]
    assert uuid4_strings(random) == expected


def test_statement_leaves_equal_the_canonical_json_of_each_statement() -> None:
    ids = uuid4_strings(os.urandom(16 * 40))
    sha256s = ["0x" + os.urandom(32).hex() for _ in ids]
    kinds = [KINDS[i % len(KINDS)] for i in range(len(ids))]
    kinds[3] = 'odd "kind" \\ é'  # encoded by json.dumps, as canonical JSON does
    sequences = [i * 977 + 1 for i in range(len(ids))]
    expected = [
        item_leaf(statement_of(doc_id, sha256, None, kind, sequence, False))
        for doc_id, sha256, kind, sequence in zip(ids, sha256s, kinds, sequences, strict=True)
    ]
    assert hash_only_statement_leaves(ids, sha256s, kinds, sequences) == expected


@pytest.mark.parametrize("count", [1, 2, 3, 7, 64, 1000])
def test_a_tree_rebuilt_from_its_stored_leaves_gives_each_leaf_its_proof(count: int) -> None:
    leaves = [os.urandom(32) for _ in range(count)]
    tree = merkle.MerkleTree.build(leaves)
    stored = leaves_of(leaves)
    assert len(stored) == 32 * count
    rebuilt = tree_of(stored)
    assert rebuilt.root == tree.root
    for leaf in leaves:
        path = path_hex(rebuilt, leaf)
        assert path == ["0x" + p.hex() for p in tree.proof(leaf)]
        assert merkle.verify(tree.root, leaf, [from_hex32(p) for p in path])
    for bad in (b"", stored[:-1], None):
        with pytest.raises(ValueError):
            tree_of(bad)


def test_a_batch_receipt_from_the_tree_verifies_for_every_member() -> None:
    signer = ReceiptSigner.from_seed(b"\x07" * 32)
    ids = uuid4_strings(os.urandom(16 * 50))
    sha256s = ["0x" + os.urandom(32).hex() for _ in ids]
    statements = [
        statement_of(doc_id, sha256, None, "other", i + 1, False)
        for i, (doc_id, sha256) in enumerate(zip(ids, sha256s, strict=True))
    ]
    leaves = hash_only_statement_leaves(ids, sha256s, ["other"] * 50, range(1, 51))
    common = {"tenant": "t", "api_key_id": "k", "received_at": "2026-11-26T12:00:00.000000Z"}
    batch, _tree = signer.sign_batch_tree(common, leaves)
    old_batch, old_paths = signer.sign_batch_paths(common, statements)
    assert batch == old_batch  # Ed25519 signatures are deterministic
    rebuilt = tree_of(leaves_of(leaves))  # as served: from the leaves stored once
    for statement, old in zip(statements, old_paths, strict=True):
        path = path_hex(rebuilt, item_leaf(statement))
        assert path == old
        ok, _detail, proven = verify_receipt(member_receipt(batch, statement, path), None)
        assert ok and proven == statement


def test_sha256_bytes_parses_every_value_or_refuses_as_from_hex32() -> None:
    values = ["0x" + os.urandom(32).hex() for _ in range(20)]
    values[5] = values[5].upper().replace("0X", "0x")
    assert sha256_bytes(values) == b"".join(from_hex32(v) for v in values)
    for bad in (values[0][:-1], values[0] + "0", "0X" + values[0][2:], values[0][:-1] + "g", 5):
        with pytest.raises(ValueError, match="expected 0x followed by 64 hexadecimal digits"):
            sha256_bytes([*values[:3], bad, *values[3:]])  # type: ignore[list-item]
    # Misaligned values whose concatenation looks right are refused too.
    with pytest.raises(ValueError):
        sha256_bytes([values[0][:-1], values[1][0:1] + values[1]])


def test_copy_text_escapes_what_copy_would_read_otherwise() -> None:
    assert copy_value(None) == "\\N"
    assert copy_value("plain ref") == "plain ref"
    assert copy_value("a\tb\nc\rd\\e") == "a\\tb\\nc\\rd\\\\e"


def _too_deep_by_the_regex(data: bytes, limit: int = 32) -> bool:
    depth = 0
    for byte in _STRING.sub(b"", data).translate(None, _NOT_BRACKETS):
        if byte in (0x5B, 0x7B):
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


@pytest.mark.parametrize(
    "data",
    [
        json.dumps({"items": [_good(i) for i in range(100)]}).encode(),
        b"[" * 40 + b"]" * 40,
        b'{"a": "' + b"[" * 40 + b'"}' + b"{}" * 20,
        b'["]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", ' + b"[" * 33 + b"]" * 33 + b"]",
        b'["\\"]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", ' + b"[" * 33 + b"]" * 33 + b"]",
        b'"' + b"[" * 40,
        b'"a" ' + b"[" * 40,
        b"{" * 20 + b'"x' + b"[" * 40,
    ],
)
def test_the_depth_guard_agrees_with_the_regex(data: bytes) -> None:
    assert json_too_deep(data) == _too_deep_by_the_regex(data)

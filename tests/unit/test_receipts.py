"""Intake receipts: canonical, signed, and any change to them is detected."""

from __future__ import annotations

import os

import pytest

from offerseal_verify.canonical import canonical_json
from offerseal_verify.receipts import (
    ReceiptSigner,
    TrustedKey,
    parse_time,
    verify_receipt,
)

PAYLOAD = {
    "document_id": "d-1",
    "sha256": "0x" + "ab" * 32,
    "size": 10,
    "kind": "other",
    "tenant": "acme",
    "api_key_id": "k1",
    "received_at": "2026-11-25T16:20:00.000000Z",
    "sequence": 7,
    "content_stored": True,
}


def test_canonical_json_is_sorted_compact_utf8() -> None:
    assert canonical_json({"b": 1, "a": "离职"}) == '{"a":"离职","b":1}'.encode()
    with pytest.raises(ValueError):
        canonical_json({"x": 1.5})


def test_signed_receipt_verifies_with_the_trusted_key() -> None:
    signer = ReceiptSigner.from_seed(os.urandom(32))
    receipt = signer.sign(PAYLOAD)
    ok, detail, _ = verify_receipt(receipt, {signer.key_id: signer.public_raw})
    assert ok, detail
    assert receipt["payload"]["sequence"] == 7


@pytest.mark.parametrize(
    "field,value",
    [("sha256", "0x" + "cd" * 32), ("sequence", 8), ("tenant", "globex"), ("size", 11)],
)
def test_any_changed_field_breaks_the_signature(field: str, value: object) -> None:
    signer = ReceiptSigner.from_seed(os.urandom(32))
    receipt = signer.sign(PAYLOAD)
    receipt["payload"][field] = value
    ok, detail, _ = verify_receipt(receipt, {signer.key_id: signer.public_raw})
    assert not ok
    assert "signature" in detail


def test_a_receipt_signed_by_another_key_is_refused_when_keys_are_pinned() -> None:
    ours = ReceiptSigner.from_seed(os.urandom(32))
    forger = ReceiptSigner.from_seed(os.urandom(32))
    ok, detail, _ = verify_receipt(forger.sign(PAYLOAD), {ours.key_id: ours.public_raw})
    assert not ok
    assert "not a trusted key" in detail
    # Without pinning, the embedded key is used and the answer says so.
    ok, detail, _ = verify_receipt(forger.sign(PAYLOAD), None)
    assert ok and "pin it" in detail


def test_malformed_receipts_fail_without_raising() -> None:
    for bad in ({}, {"payload": "x"}, {"payload": {}, "alg": "Ed25519"}, None):
        ok, _, _ = verify_receipt(bad, None)  # type: ignore[arg-type]
        assert not ok


def _items(n: int) -> list[dict[str, object]]:
    return [
        {
            "document_id": f"d-{i}",
            "sha256": "0x" + f"{i:064x}",
            "size": None,
            "kind": "other",
            "sequence": 100 + i,
            "content_stored": False,
        }
        for i in range(n)
    ]


def test_batch_receipt_proves_each_statement_with_one_signature() -> None:
    signer = ReceiptSigner.from_seed(os.urandom(32))
    common = {"tenant": "acme", "api_key_id": "k1", "received_at": "2026-11-25T16:20:00Z"}
    batch, receipts = signer.sign_batch(common, _items(50))
    assert batch["payload"]["count"] == 50
    assert len({r["signature"] for r in receipts}) == 1
    for receipt, item in zip(receipts, _items(50), strict=True):
        ok, detail, statement = verify_receipt(receipt, {signer.key_id: signer.public_raw})
        assert ok, detail
        assert statement == item


def test_batch_receipt_refuses_a_changed_statement_or_path() -> None:
    signer = ReceiptSigner.from_seed(os.urandom(32))
    _, receipts = signer.sign_batch({"tenant": "acme"}, _items(8))
    forged = dict(receipts[3], item={**receipts[3]["item"], "sha256": "0x" + "ee" * 32})
    ok, detail, _ = verify_receipt(forged, None)
    assert not ok and "not in the signed batch" in detail
    moved = dict(receipts[3], item=receipts[4]["item"])
    assert not verify_receipt(moved, None)[0]


def _period(start: str | None, end: str | None, signer: ReceiptSigner) -> TrustedKey:
    return TrustedKey(
        signer.public_raw,
        parse_time(start) if start else None,
        parse_time(end) if end else None,
    )


@pytest.mark.parametrize(
    "start,end,valid",
    [
        ("2026-11-01T00:00:00Z", "2026-11-30T00:00:00Z", True),
        ("2026-11-25T16:20:00Z", None, True),  # the bounds themselves belong to the period
        (None, "2026-11-25T16:20:00Z", True),
        ("2026-11-01T00:00:00Z", "2026-11-25T16:19:59Z", False),  # the key was retired before
        ("2026-11-26T00:00:00Z", None, False),  # the key did not sign yet
    ],
)
def test_a_key_vouches_only_for_receipts_dated_inside_its_period(
    start: str | None, end: str | None, valid: bool
) -> None:
    signer = ReceiptSigner.from_seed(os.urandom(32))
    receipt = signer.sign(PAYLOAD)  # received_at 2026-11-25T16:20:00Z
    ok, detail, _ = verify_receipt(receipt, {signer.key_id: _period(start, end, signer)})
    assert ok is valid, detail
    if not valid:
        assert "outside the period" in detail


def test_a_retired_key_still_verifies_its_own_receipts_beside_the_new_key() -> None:
    old = ReceiptSigner.from_seed(os.urandom(32))
    new = ReceiptSigner.from_seed(os.urandom(32))
    trusted = {
        old.key_id: _period("2026-01-01T00:00:00Z", "2026-11-26T00:00:00Z", old),
        new.key_id: _period("2026-11-26T00:00:00Z", None, new),
    }
    assert verify_receipt(old.sign(PAYLOAD), trusted)[0]
    late = old.sign({**PAYLOAD, "received_at": "2026-11-27T09:00:00.000000Z"})
    ok, detail, _ = verify_receipt(late, trusted)
    assert not ok and "outside the period" in detail
    later = new.sign({**PAYLOAD, "received_at": "2026-11-27T09:00:00.000000Z"})
    assert verify_receipt(later, trusted)[0]

"""The hash-batch fast path accepts and refuses exactly what the documented HashItem schema does,
with the same messages."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
import pytest

from offerseal.evidence.arguments import HashBatch, HashItem, check_hash_item

GOOD = "0x" + "ab" * 32
CASES: list[Any] = [
    {"sha256": GOOD, "kind": "salary_statement", "candidate_ref": "c1"},
    {"sha256": GOOD, "kind": "other", "candidate_ref": "c", "agreement_id": "a", "milestone": "m"},
    {"sha256": GOOD.upper().replace("0X", "0x"), "kind": "other", "candidate_ref": "c"},
    {"sha256": GOOD + "\n", "kind": "other", "candidate_ref": "c"},
    {"sha256": GOOD[:-1], "kind": "other", "candidate_ref": "c"},
    {"sha256": 12, "kind": "other", "candidate_ref": "c"},
    {"sha256": GOOD, "kind": "passport", "candidate_ref": "c"},
    {"sha256": GOOD, "kind": "other", "candidate_ref": ""},
    {"sha256": GOOD, "kind": "other", "candidate_ref": "x" * 201},
    {"sha256": GOOD, "kind": "other", "candidate_ref": "c", "milestone": "m" * 61},
    {"sha256": GOOD, "kind": "other", "candidate_ref": "c", "agreement_id": None},
    {"sha256": GOOD, "kind": "other", "candidate_ref": "c", "extra": 1},
    {"kind": "other"},
    {},
    "not an object",
    [GOOD],
]


@pytest.mark.parametrize("item", CASES)
def test_fast_path_equals_the_schema(item: Any) -> None:
    try:
        expected, expected_errors = HashItem().load(item), {}
    except ma.ValidationError as exc:
        expected, expected_errors = None, exc.normalized_messages()
    loaded, errors = check_hash_item(item)
    assert errors == expected_errors
    if not errors:
        assert loaded == expected


def test_the_batch_reports_items_by_index() -> None:
    with pytest.raises(ma.ValidationError) as info:
        HashBatch().load({"items": [CASES[0], CASES[4], CASES[0], CASES[6]]})
    assert set(info.value.normalized_messages()["items"]) == {1, 3}
    assert HashBatch().load({"items": [CASES[0]]}) == {"items": [CASES[0]]}

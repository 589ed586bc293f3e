"""The contracts core: the 30% cap in integers and the eth_signTypedData_v4 payloads."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from offerseal.contracts.domain.agreements import (
    Terms,
    cancellation_typed_data,
    commitment_typed_data,
    damages_cap,
    within_cap,
)

TERMS = Terms(
    "0x" + "11" * 20,
    "0x" + "22" * 20,
    "0x" + "33" * 32,
    1_800_000_000,
    259_200,
    1_790_000_000,
    2**100,
    3 * 2**100 // 10,
)


@given(st.integers(min_value=0, max_value=2**128 - 1))
def test_cap_is_the_largest_amount_within_thirty_percent(salary: int) -> None:
    cap = damages_cap(salary)
    assert within_cap(cap, salary)
    assert not within_cap(cap + 1, salary)


@pytest.mark.parametrize("salary,cap", [(10_000, 3_000), (3, 0), (4, 1), (2_500_000, 750_000)])
def test_cap_examples(salary: int, cap: int) -> None:
    assert damages_cap(salary) == cap


def test_commitment_payload_is_what_wallets_take() -> None:
    typed = commitment_typed_data(
        chain_id=31337,
        registry="0x" + "44" * 20,
        agreement_id="0x" + "55" * 32,
        terms=TERMS,
        milestones=[(2, 1_900_000_000), (5, 1_900_500_000)],
        nonce=7,
        ceremony_hash="0x" + "66" * 32,
    )
    assert set(typed) == {"types", "primaryType", "domain", "message"}
    assert typed["primaryType"] == "Commitment"
    assert [f["name"] for f in typed["types"]["EIP712Domain"]] == [
        "name",
        "version",
        "chainId",
        "verifyingContract",
    ]
    assert typed["domain"] == {
        "name": "OfferSeal IntentAgreements",
        "version": "2",
        "chainId": 31337,
        "verifyingContract": "0x" + "44" * 20,
    }
    message = typed["message"]
    assert message["deadline"] == TERMS.offer_expires_at  # the offer's expiry bounds the signature
    # Every term the candidate agrees to is shown: the grace period and each milestone too.
    assert message["graceSeconds"] == TERMS.grace_seconds
    assert message["milestoneKinds"] == [2, 5]
    assert message["milestoneDues"] == [1_900_000_000, 1_900_500_000]
    # Amounts above 2**53 travel as decimal strings so JavaScript wallets keep every digit.
    assert message["monthlySalary"] == str(2**100) and message["nonce"] == "7"
    # The candidate's signature covers the record of how they signed (IntentAgreements 2.3.0).
    assert message["ceremonyHash"] == "0x" + "66" * 32
    assert {"name": "ceremonyHash", "type": "bytes32"} in typed["types"]["Commitment"]
    json.dumps(typed)  # plain JSON


def test_cancellation_payload() -> None:
    typed = cancellation_typed_data(
        chain_id=1, registry="0x" + "44" * 20, agreement_id="0x" + "55" * 32, nonce=0, deadline=5
    )
    assert typed["primaryType"] == "Cancellation"
    assert [f["name"] for f in typed["types"]["Cancellation"]] == [
        "agreementId",
        "nonce",
        "deadline",
    ]

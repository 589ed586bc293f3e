"""Transactions signed without eth-account are byte for byte the ones it signs: same raw
bytes, same hash, for any EIP-1559 call; anything else is left to it."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from offerseal.shared import chain
from offerseal.shared.config import ANVIL_DEV_KEY

SIGNER = chain.account("0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d")
CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


def eth_account(fields: dict[str, Any], nonce: int) -> tuple[bytes, str]:
    signed = SIGNER.sign_transaction({**fields, "nonce": nonce})
    return bytes(signed.raw_transaction), signed.hash.to_0x_hex()


@settings(max_examples=60, deadline=None)
@given(
    data=st.binary(max_size=700),
    value=st.integers(0, 10**21),
    gas=st.integers(21_000, 30_000_000),
    cap=st.integers(1, 10**13),
    tip=st.integers(0, 10**10),
    nonce=st.integers(0, 2**40),
    chain_id=st.sampled_from([1, 31337, 11155111]),
)
def test_an_eip1559_call_is_signed_as_eth_account_signs_it(
    data: bytes, value: int, gas: int, cap: int, tip: int, nonce: int, chain_id: int
) -> None:
    fields = {
        "type": 2,
        "chainId": chain_id,
        "to": CONTRACT,
        "data": "0x" + data.hex(),
        "value": value,
        "gas": gas,
        "maxFeePerGas": cap,
        "maxPriorityFeePerGas": tip,
    }
    prepared = chain.sign_eip1559(SIGNER, fields, nonce)
    assert (prepared.raw, prepared.tx_hash) == eth_account(fields, nonce)
    assert prepared.nonce == nonce


def test_a_self_transfer_and_unknown_fields_are_signed_too() -> None:
    transfer = {
        "type": 2,
        "chainId": 31337,
        "to": SIGNER.address,
        "data": "0x",
        "value": 0,
        "gas": 21_000,
        "maxFeePerGas": 3 * 10**9,
        "maxPriorityFeePerGas": 10**9,
    }
    fees = {"maxFeePerGas": 3 * 10**9, "maxPriorityFeePerGas": 10**9}
    assert chain.self_transfer_fields(31337, SIGNER.address, fees) == transfer
    prepared = chain.sign_eip1559(SIGNER, transfer, 7)
    assert (prepared.raw, prepared.tx_hash) == eth_account(transfer, 7)
    listed = {**transfer, "accessList": [{"address": CONTRACT, "storageKeys": ["0x" + "00" * 32]}]}
    prepared = chain.sign_eip1559(SIGNER, listed, 8)  # left to eth-account
    assert (prepared.raw, prepared.tx_hash) == eth_account(listed, 8)


def test_the_fields_read_back_from_signed_bytes_sign_the_same_transaction() -> None:
    """A stored transaction's fields, read from its bytes (the anchorer keeps no others),
    signed again with its nonce give the same bytes: with other fees, its replacement."""
    signer = chain.account(ANVIL_DEV_KEY)
    fields = {
        "type": 2,
        "chainId": 31337,
        "to": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
        "data": "0xabcdef01",
        "value": 0,
        "gas": 120_000,
        "maxFeePerGas": 3_000_000_000,
        "maxPriorityFeePerGas": 1_000_000_000,
    }
    signed = chain.sign_eip1559(signer, fields, 7)
    assert chain.fields_of(signed.raw) == fields
    assert chain.sign_eip1559(signer, chain.fields_of(signed.raw), 7) == signed

"""web3 plumbing every service shares: artifacts, connecting, deploying, signing and a generic
client for one deployed contract. Clients of a particular contract live in the adapters of the
service that owns it; this module imports no service."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, cast

import rlp
from coincurve import PrivateKey
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_account.typed_transactions import TypedTransaction
from eth_hash.auto import keccak
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import TransactionNotFound
from web3.types import RPCEndpoint

from .errors import TransientError
from .guards import sane_recursion_limit
from .redact import redact_text

sane_recursion_limit()  # importing web3 (py_ecc) raised it to 100,000

log = logging.getLogger(__name__)

ARTIFACTS = Path(__file__).resolve().parents[2] / "contracts" / "build"


class ChainUnavailable(TransientError):
    title = "Chain unavailable"


@cache
def artifact(name: str) -> dict[str, Any]:
    path = ARTIFACTS / f"{name}.json"
    with path.open() as fh:
        data: dict[str, Any] = json.load(fh)
    return data


def connect(rpc_url: str, timeout: float = 10.0) -> Web3:
    """A client of the node at `rpc_url`. The chain id is asked once: web3 checks it before
    every call, estimate and send that carries one, a round trip each otherwise."""
    provider = Web3.HTTPProvider(
        rpc_url,
        request_kwargs={"timeout": timeout},
        cache_allowed_requests=True,
        cacheable_requests={RPCEndpoint("eth_chainId")},
    )
    return Web3(provider)


def wait_for_rpc(rpc_url: str, timeout: float = 30.0) -> Web3:
    w3 = connect(rpc_url)
    deadline = time.monotonic() + timeout
    while True:
        try:
            w3.eth.chain_id  # noqa: B018  (a cheap call that proves the node answers)
            return w3
        except Exception as exc:
            if time.monotonic() > deadline:
                raise ChainUnavailable(
                    redact_text(f"no Ethereum node answers at {rpc_url}: {exc}")
                ) from None
            time.sleep(0.1)


def account(private_key: str) -> LocalAccount:
    acct: LocalAccount = Account.from_key(private_key)
    return acct


def send_signed(w3: Web3, signer: LocalAccount, tx: dict[str, Any]) -> Any:
    tx.setdefault("from", signer.address)
    tx.setdefault("nonce", w3.eth.get_transaction_count(signer.address, "pending"))
    tx.setdefault("chainId", w3.eth.chain_id)
    if "gas" not in tx:
        tx["gas"] = int(w3.eth.estimate_gas(cast(Any, tx)) * 1.2) + 10_000
    fees = suggested_fees(w3)
    for key, value in fees.items():
        tx.setdefault(key, value)
    signed = signer.sign_transaction(tx)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60)
    if receipt["status"] != 1:
        raise RuntimeError(f"transaction {tx_hash.to_0x_hex()} reverted")
    return receipt


def suggested_fees(w3: Web3) -> dict[str, int]:
    block = w3.eth.get_block("latest")
    base = int(block.get("baseFeePerGas", 0) or 0)
    tip = 1_000_000_000
    return {"maxFeePerGas": base * 2 + tip, "maxPriorityFeePerGas": tip}


def deploy(w3: Web3, signer: LocalAccount, name: str, *args: Any) -> str:
    art = artifact(name)
    factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    tx = factory.constructor(*args).build_transaction(
        {"from": signer.address, "nonce": w3.eth.get_transaction_count(signer.address, "pending")}
    )
    receipt = send_signed(w3, signer, dict(tx))
    address: str = receipt["contractAddress"]
    log.info("deployed %s at %s", name, address)
    return address


def has_code(w3: Web3, address: str) -> bool:
    return len(w3.eth.get_code(Web3.to_checksum_address(address))) > 0


@dataclass(frozen=True)
class PreparedTx:
    raw: bytes
    tx_hash: str
    nonce: int


# The fields of an EIP-1559 transaction `sign_eip1559` signs itself; anything else (an access
# list, another type) goes through eth-account.
_EIP1559_FIELDS = frozenset(
    {"type", "chainId", "to", "data", "value", "gas", "maxFeePerGas", "maxPriorityFeePerGas"}
)


def self_transfer_fields(chain_id: int, address: str, fees: Mapping[str, int]) -> dict[str, Any]:
    """A transaction (without its nonce) that does nothing: 0 from `address` to itself, with
    `fees` (`maxFeePerGas`, `maxPriorityFeePerGas`). It fills a nonce nothing else is sent for,
    so the transactions above it can be mined."""
    return {
        "type": 2,
        "chainId": chain_id,
        "to": address,
        "data": "0x",
        "value": 0,
        "gas": 21_000,
        "maxFeePerGas": int(fees["maxFeePerGas"]),
        "maxPriorityFeePerGas": int(fees["maxPriorityFeePerGas"]),
    }


def _quantity(value: Any) -> int:
    return int(value, 16) if isinstance(value, str) else int(value)


def _hex_bytes(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    text = str(value)
    return bytes.fromhex(text[2:] if text.startswith(("0x", "0X")) else text)


def sign_eip1559(signer: LocalAccount, fields: dict[str, Any], nonce: int) -> PreparedTx:
    """`fields` (an EIP-1559 transaction without its nonce) signed with `nonce`: the same bytes
    as `signer.sign_transaction`, RLP-encoded and signed by libsecp256k1 (coincurve) directly,
    without eth-account's validation and normalisation (tenfold faster: it runs under the
    signer's lock). Fields it does not know go through eth-account."""
    if (
        set(fields) - _EIP1559_FIELDS
        or _quantity(fields.get("type", 2)) != 2
        or not fields.get("to")
    ):
        signed = signer.sign_transaction({**fields, "nonce": nonce})
        return PreparedTx(bytes(signed.raw_transaction), signed.hash.to_0x_hex(), nonce)
    body = [
        _quantity(fields["chainId"]),
        nonce,
        _quantity(fields["maxPriorityFeePerGas"]),
        _quantity(fields["maxFeePerGas"]),
        _quantity(fields["gas"]),
        _hex_bytes(fields["to"]),
        _quantity(fields.get("value", 0)),
        _hex_bytes(fields.get("data", b"")),
        [],  # access list
    ]
    digest = keccak(b"\x02" + rlp.encode(body))
    signature = _private_key(bytes(signer.key)).sign_recoverable(digest, hasher=None)
    r, s, v = (
        int.from_bytes(signature[:32], "big"),
        int.from_bytes(signature[32:64], "big"),
        signature[64],
    )
    raw = b"\x02" + rlp.encode([*body, v, r, s])
    return PreparedTx(raw, "0x" + keccak(raw).hex(), nonce)


@cache
def _private_key(secret: bytes) -> PrivateKey:
    return PrivateKey(secret)


class ContractClient:
    """One deployed contract: prepare signed transactions, send them, look them up."""

    artifact_name = ""

    def __init__(self, w3: Web3, address: str) -> None:
        self.w3 = w3
        self.address = Web3.to_checksum_address(address)
        self.abi: list[dict[str, Any]] = artifact(self.artifact_name)["abi"]
        self.contract = w3.eth.contract(address=self.address, abi=self.abi)

    @property
    def functions(self) -> Any:
        return self.contract.functions

    def prepare(
        self,
        fn: Any,
        signer: LocalAccount,
        nonce: int,
        gas: int | None = None,
        fees: dict[str, int] | None = None,
    ) -> PreparedTx:
        """`fn` signed with an explicit nonce (and the chain's suggested fees unless `fees` are
        given: a replacement's), ready to store before it is sent."""
        params: Any = {"from": signer.address, "nonce": nonce, **(fees or suggested_fees(self.w3))}
        if gas is not None:
            params["gas"] = gas
        tx: Any = fn.build_transaction(params)
        signed = signer.sign_transaction(tx)
        return PreparedTx(bytes(signed.raw_transaction), signed.hash.to_0x_hex(), nonce)

    def send_raw(self, raw: bytes) -> None:
        self.w3.eth.send_raw_transaction(raw)

    def receipt(self, tx_hash: str) -> Any | None:
        try:
            return self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            return None

    def wait(self, tx_hash: str, timeout: float = 120) -> Any:
        return self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout)  # type: ignore[arg-type]


def typed_data_digest(typed_data: dict[str, Any]) -> bytes:
    """The EIP-712 digest of an `eth_signTypedData_v4` payload."""
    from eth_account.messages import _hash_eip191_message, encode_typed_data

    return bytes(_hash_eip191_message(encode_typed_data(full_message=typed_data)))


def sign_typed_data(private_key: str, typed_data: dict[str, Any]) -> bytes:
    signed = Account.sign_typed_data(private_key, full_message=typed_data)
    return bytes(signed.signature)


def fees_of(raw: bytes) -> dict[str, int]:
    """The EIP-1559 fees a stored signed transaction was signed with."""
    fields = TypedTransaction.from_bytes(HexBytes(raw)).as_dict()
    return {
        "maxFeePerGas": int(fields["maxFeePerGas"]),
        "maxPriorityFeePerGas": int(fields["maxPriorityFeePerGas"]),
    }


def fields_of(raw: bytes) -> dict[str, Any]:
    """The EIP-1559 fields (without the nonce) a stored signed transaction was signed from:
    signed again with its nonce and other fees, it is its replacement."""
    fields = TypedTransaction.from_bytes(HexBytes(raw)).as_dict()
    to = fields.get("to") or b""
    data = fields.get("data") or b""
    return {
        "type": 2,
        "chainId": int(fields["chainId"]),
        "to": Web3.to_checksum_address(to if isinstance(to, str) else "0x" + bytes(to).hex()),
        "data": data if isinstance(data, str) else "0x" + bytes(data).hex(),
        "value": int(fields.get("value", 0)),
        "gas": int(fields["gas"]),
        "maxFeePerGas": int(fields["maxFeePerGas"]),
        "maxPriorityFeePerGas": int(fields["maxPriorityFeePerGas"]),
    }

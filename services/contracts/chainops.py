"""web3 adapter for IntentAgreements: simulate a call (refusals come back as the contract's
custom error), prepare and send signed transactions, read state and digests."""

from __future__ import annotations

from typing import Any

from eth_abi import decode
from web3 import Web3
from web3.exceptions import ContractCustomError, ContractLogicError

from ..shared import chain
from .domain.agreements import STATES
from .errors import ChainRefusal


def _explain(name: str, args: tuple[Any, ...]) -> str:
    """The contract's custom error in words a person can act on."""
    import datetime as dt

    def when(ts: int) -> str:
        return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat()

    if name == "InvalidState" and len(args) == 2:
        return f"InvalidState: the agreement is {STATES[int(args[1])]} on chain"
    if name == "BreachNotDeclarable" and len(args) == 2:
        return f"BreachNotDeclarable: a breach can be declared only after {when(int(args[1]))}"
    if name == "OfferStillOpen" and len(args) == 2:
        return f"OfferStillOpen: the offer can be signed until {when(int(args[1]))}"
    if name == "OfferExpired" and len(args) == 2:
        return f"OfferExpired: the offer expired at {when(int(args[1]))}"
    if name == "DamagesAboveCap" and len(args) == 2:
        return f"DamagesAboveCap: {args[0]} exceeds the cap of {args[1]} (30% of the salary)"
    shown = ", ".join(a.hex() if isinstance(a, bytes) else str(a) for a in args)
    return f"{name}({shown})"


class AgreementsClient(chain.ContractClient):
    artifact_name = "IntentAgreements"

    def __init__(self, w3: Web3, address: str) -> None:
        super().__init__(w3, address)
        self._errors: dict[bytes, tuple[str, list[str]]] = {}
        for item in self.abi:
            if item["type"] == "error":
                types = [i["type"] for i in item["inputs"]]
                selector = Web3.keccak(text=f"{item['name']}({','.join(types)})")[:4]
                self._errors[bytes(selector)] = (item["name"], types)

    def decode_error(self, data: str | bytes) -> ChainRefusal:
        raw = bytes.fromhex(data[2:]) if isinstance(data, str) else bytes(data)
        known = self._errors.get(raw[:4])
        if known is None:
            return ChainRefusal("Reverted", (), f"the contract refused (0x{raw[:4].hex()})")
        name, types = known
        try:
            args = tuple(decode(types, raw[4:]))
        except Exception:  # malformed revert data
            args = ()
        return ChainRefusal(name, args, _explain(name, args))

    def simulate(self, fn: Any, sender: str) -> None:
        """Run the call without a transaction; raises ChainRefusal with the custom error."""
        try:
            fn.call({"from": sender})
        except ContractCustomError as exc:
            data = exc.data if isinstance(exc.data, str) else exc.args[0]
            raise self.decode_error(str(data)) from None
        except ContractLogicError as exc:
            raise ChainRefusal("Reverted", (), str(exc)) from None

    def state_of(self, onchain_id: str) -> str:
        return STATES[int(self.functions.stateOf(bytes.fromhex(onchain_id[2:])).call())]

    def nonce_of(self, address: str) -> int:
        return int(self.functions.nonces(address).call())

    def commitment_digest(self, onchain_id: str) -> bytes:
        return bytes(self.functions.commitmentDigest(bytes.fromhex(onchain_id[2:])).call())

    def chain_time(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def is_contract(self, address: str) -> bool:
        return chain.has_code(self.w3, address)

    def erc1271_valid(self, wallet: str, digest: bytes, signature: bytes) -> bool:
        abi = [
            {
                "type": "function",
                "name": "isValidSignature",
                "stateMutability": "view",
                "inputs": [
                    {"name": "hash", "type": "bytes32"},
                    {"name": "signature", "type": "bytes"},
                ],
                "outputs": [{"name": "", "type": "bytes4"}],
            }
        ]
        try:
            result = (
                self.w3.eth.contract(address=Web3.to_checksum_address(wallet), abi=abi)
                .functions.isValidSignature(digest, signature)
                .call()
            )
        except Exception:
            return False
        return bytes(result) == bytes.fromhex("1626ba7e")

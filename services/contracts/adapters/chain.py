"""The IntentAgreements contract over web3: builds the call for each thing the service layer
does (offer, commit, confirm a milestone, amend, transition), makes it a transaction with its
gas estimated (a refusal comes back as the contract's custom error), and reads state, terms,
nonces and whether a signature is an address's own (ECDSA or ERC-1271). Signing and sending are
the relayer's transaction path's (`shared/transactions/onchain.py`)."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

from eth_abi import decode, encode
from eth_account import Account
from web3 import Web3
from web3._utils.error_formatters_utils import raise_contract_logic_error_on_revert
from web3.exceptions import ContractCustomError, ContractLogicError, Web3RPCError
from web3.types import RPCResponse

from ...shared import chain
from ...shared.transactions.onchain import Web3SigningChain
from ..domain.agreements import MILESTONE_KINDS, STATES, Terms, bundles_calls
from ..errors import ChainRefusal
from ..ports import ChainCall

# The contract function of each transition an agreement can take.
TRANSITION_FUNCTIONS = {
    "start": "confirmStart",
    "breach": "declareBreach",
    "withdraw": "withdrawOffer",
    "cancel": "cancel",
    "expire": "expire",
    "dispute_arrival": "disputeArrival",
    "fulfil_by_arrival": "fulfilByArrival",
}


def _explain(name: str, args: tuple[Any, ...]) -> str:
    """The contract's custom error in words a person can act on."""

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
    if name == "CandidateArrived" and len(args) == 2:
        return (
            f"CandidateArrived: the candidate's arrival was recorded at {when(int(args[1]))}; "
            "a breach needs the employer's dispute of it first"
        )
    if name == "ArrivalNotOpen" and len(args) == 2:
        return f"ArrivalNotOpen: an arrival can be recorded from {when(int(args[1]))}"
    if name == "DisputeWindowClosed" and len(args) == 2:
        return f"DisputeWindowClosed: the arrival could be disputed until {when(int(args[1]))}"
    if name == "DisputeWindowOpen" and len(args) == 2:
        return f"DisputeWindowOpen: the employer may dispute the arrival until {when(int(args[1]))}"
    if name == "DamagesAboveCap" and len(args) == 2:
        return f"DamagesAboveCap: {args[0]} exceeds the cap of {args[1]} (30% of the salary)"
    shown = ", ".join(a.hex() if isinstance(a, bytes) else str(a) for a in args)
    return f"{name}({shown})"


def _plain(value: Any) -> Any:
    """An event argument as JSON: bytes as 0x hex, tuples as lists."""
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _b32(hex_id: str) -> bytes:
    return bytes.fromhex(hex_id[2:])


FEES_TTL = 1.0  # seconds the suggested fees of new transactions are reused

# The one event whose first indexed topic is not an agreement id.
_OPERATOR_SET = bytes(Web3.keccak(text="OperatorSet(address,address,bool)"))


class IntentAgreementsChain(chain.ContractClient):
    """The deployed IntentAgreements contract, sent to by `signer` (the relayer)."""

    artifact_name = "IntentAgreements"

    def __init__(self, w3: Web3, address: str, signing: Web3SigningChain) -> None:
        super().__init__(w3, address)
        self.signing = signing  # the relayer's key on this chain
        self._fees: tuple[float, dict[str, int]] | None = None  # (when read, fees)
        self._fees_lock = threading.Lock()
        self._errors: dict[bytes, tuple[str, list[str]]] = {}
        self._multicall: bool | None = None  # whether the deployment has `multicall` (read once)
        for item in self.abi:
            if item["type"] == "error":
                types = [i["type"] for i in item["inputs"]]
                selector = Web3.keccak(text=f"{item['name']}({','.join(types)})")[:4]
                self._errors[bytes(selector)] = (item["name"], types)

    def _decode_error(self, data: str | bytes) -> ChainRefusal:
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

    @property
    def relayer(self) -> str:
        return self.signing.signer

    # ---- the calls the service layer makes ---------------------------------------------------

    def agreement_id(self, salt: bytes) -> str:
        """The contract's `agreementIdOf(relayer, salt)`, computed here before sending."""
        return Web3.keccak(encode(["address", "bytes32"], [self.relayer, salt])).to_0x_hex()

    def offer(
        self, salt: bytes, terms: Terms, milestones: Sequence[tuple[str, dt.datetime]]
    ) -> ChainCall:
        schedule = [(MILESTONE_KINDS[kind], int(due.timestamp()), 0) for kind, due in milestones]
        return ChainCall("offer", (salt, terms.as_tuple(), schedule))

    def bind_candidate(self, onchain_id: str, address: str) -> ChainCall:
        return ChainCall("bindCandidate", (_b32(onchain_id), Web3.to_checksum_address(address)))

    def commit(self, onchain_id: str, ceremony_hash: str, signature: bytes) -> ChainCall:
        return ChainCall("commit", (_b32(onchain_id), _b32(ceremony_hash), signature))

    def confirm_milestone(
        self, onchain_id: str, index: int, root: str, values: Sequence[str], proof: Sequence[str]
    ) -> ChainCall:
        # keccak256(abi.encode(sha256, salt)): the contract hashes it once more into the leaf,
        # so the document's sha256 and salt never reach the chain.
        sha256, salt = values
        values_hash = Web3.keccak(_b32(sha256) + _b32(salt))
        return ChainCall(
            "confirmMilestone",
            (_b32(onchain_id), index, _b32(root), bytes(values_hash), [_b32(p) for p in proof]),
        )

    def record_arrival(self, onchain_id: str, deadline: int, signature: bytes) -> ChainCall:
        return ChainCall("recordArrival", (_b32(onchain_id), deadline, signature))

    def amend(
        self,
        onchain_id: str,
        terms_hash: str,
        start: int,
        dues: Sequence[int],
        deadline: int,
        signature: bytes,
    ) -> ChainCall:
        change = (_b32(terms_hash), start, list(dues))
        return ChainCall("amend", (_b32(onchain_id), change, deadline, signature))

    def transition(
        self, onchain_id: str, action: str, deadline: int = 0, signature: bytes = b""
    ) -> ChainCall:
        args: tuple[Any, ...] = (_b32(onchain_id),)
        if action == "cancel":
            args = (*args, deadline, signature)
        return ChainCall(TRANSITION_FUNCTIONS[action], args)

    # ---- sending ---------------------------------------------------------------------------

    def _fn(self, call: ChainCall) -> Any:
        return getattr(self.functions, call.function)(*call.args)

    def _data(self, call: ChainCall) -> str:
        """The call's calldata, 0x hex."""
        encoded = self._fn(call)._encode_transaction_data()
        return encoded if isinstance(encoded, str) else "0x" + bytes(encoded).hex()

    def bundle(self, calls: Sequence[ChainCall]) -> ChainCall | None:
        """The calls as one `multicall` (each runs as if the relayer sent it alone; the whole
        transaction reverts when one does); None when the deployment has no `multicall`."""
        if self._multicall is None:
            self._multicall = bundles_calls(self.version())
        if not self._multicall:
            return None
        return ChainCall("multicall", ([bytes.fromhex(self._data(c)[2:]) for c in calls],))

    @contextmanager
    def _refusals(self) -> Iterator[None]:
        """A revert (in a call or in gas estimation) as ChainRefusal with the custom error."""
        try:
            yield
        except ContractCustomError as exc:
            data = exc.data if isinstance(exc.data, str) else exc.args[0]
            raise self._decode_error(str(data)) from None
        except ContractLogicError as exc:
            raise ChainRefusal("Reverted", (), str(exc)) from None

    def unsigned(self, call: ChainCall) -> dict[str, Any]:
        """The call as an EIP-1559 transaction without its nonce: gas estimated with a fifth
        more as margin (the estimate runs the call on the chain as it is now: a refusal comes
        back as the contract's custom error, so it is the simulation too), and the chain's
        suggested fees, read once per `FEES_TTL`."""
        data = self._data(call)
        reply = self.signing.rpc(
            "eth_estimateGas", [{"from": self.relayer, "to": self.address, "data": data}]
        )
        if "error" in reply:
            with self._refusals():  # a revert as web3 raises it, then as our refusal
                raise_contract_logic_error_on_revert(cast(RPCResponse, reply))
            raise Web3RPCError(str(reply["error"]), rpc_response=cast(RPCResponse, reply))
        gas = int(reply["result"], 16)
        return {
            "type": 2,
            "chainId": self.signing.chain_id(),
            "to": self.address,
            "data": data,
            "value": 0,
            "gas": int(gas * 6 // 5),
            **self._recent_fees(),
        }

    def _recent_fees(self) -> dict[str, int]:
        """`suggested_fees()`, kept for FEES_TTL: a fee cap of twice the base fee outlasts
        the six full blocks it takes the base fee to double, and a transaction whose cap the
        base fee overtakes anyway is replaced by the confirmer with fresh fees."""
        now = time.monotonic()
        with self._fees_lock:
            if self._fees is not None and now - self._fees[0] < FEES_TTL:
                return dict(self._fees[1])
        fees = self.signing.suggested_fees()
        with self._fees_lock:
            self._fees = (now, fees)
        return dict(fees)

    # ---- reading ---------------------------------------------------------------------------

    def chain_id(self) -> int:
        return self.signing.chain_id()

    def block_number(self) -> int:
        return int(self.w3.eth.block_number)

    def agreements_in_events(self, from_block: int, to_block: int) -> set[str]:
        """The on-chain ids of the agreements the contract's events name in these blocks."""
        logs = self.w3.eth.get_logs(
            {"address": self.address, "fromBlock": from_block, "toBlock": to_block}
        )
        return {
            "0x" + bytes(entry["topics"][1]).hex()
            for entry in logs
            if len(entry["topics"]) > 1 and bytes(entry["topics"][0]) != _OPERATOR_SET
        }

    def events_of(self, onchain_id: str) -> list[dict[str, Any]]:
        """Every event the contract emitted about this agreement, oldest first: its name, its
        arguments, the transaction, the block and the block's time."""
        names: dict[bytes, str] = {}
        for item in self.abi:
            if item["type"] == "event":
                types = ",".join(i["type"] for i in item["inputs"])
                names[bytes(Web3.keccak(text=f"{item['name']}({types})"))] = item["name"]
        logs = self.w3.eth.get_logs(
            {
                "address": self.address,
                "fromBlock": 0,
                "toBlock": "latest",
                "topics": [None, "0x" + _b32(onchain_id).hex()],
            }
        )
        times: dict[int, int] = {}
        out: list[dict[str, Any]] = []
        for entry in logs:
            name = names.get(bytes(entry["topics"][0]))
            if name is None:
                continue
            decoded = getattr(self.contract.events, name)().process_log(entry)
            block = int(entry["blockNumber"])
            if block not in times:
                times[block] = int(self.w3.eth.get_block(block)["timestamp"])
            out.append(
                {
                    "event": name,
                    "args": {k: _plain(v) for k, v in dict(decoded["args"]).items()},
                    "transaction": "0x" + bytes(entry["transactionHash"]).hex(),
                    "block_number": block,
                    "log_index": int(entry["logIndex"]),
                    "block_time": dt.datetime.fromtimestamp(times[block], dt.UTC).isoformat(),
                }
            )
        return out

    def terms_of(self, onchain_id: str) -> Terms:
        """The terms as the chain holds them."""
        t = self.functions.termsOf(_b32(onchain_id)).call()
        return Terms(
            employer=t[0],
            candidate=t[1],
            terms_hash="0x" + bytes(t[2]).hex(),
            start_date=int(t[3]),
            grace_seconds=int(t[4]),
            offer_expires_at=int(t[5]),
            monthly_salary=int(t[6]),
            liquidated_damages=int(t[7]),
        )

    def milestones_of(self, onchain_id: str) -> list[tuple[int, int]]:
        return [
            (int(m[0]), int(m[1])) for m in self.functions.milestonesOf(_b32(onchain_id)).call()
        ]

    def arrival_of(self, onchain_id: str) -> tuple[int, bool]:
        arrived_at, disputed = self.functions.arrivalOf(_b32(onchain_id)).call()
        return int(arrived_at), bool(disputed)

    def version(self) -> str:
        return str(self.functions.version().call())

    def operator_approved(self, employer: str) -> bool:
        return bool(self.functions.isOperator(employer, self.relayer).call())

    def signed_by(self, address: str, digest: bytes, signature: bytes) -> bool:
        """`signature` over `digest` is `address`'s: its ECDSA key's, or (for a contract
        wallet) accepted by its ERC-1271 `isValidSignature`."""
        if len(signature) == 65:
            try:
                if Account._recover_hash(digest, signature=signature).lower() == address.lower():
                    return True
            except Exception:  # not a valid ECDSA signature at all
                pass
        if self.is_contract(address):
            return self._erc1271_valid(address, digest, signature)
        if len(signature) == 65:
            return False
        # A passkey's assertion: checked by the contract itself, as commit() will.
        try:
            return bool(self.functions.isCandidateSignature(address, digest, signature).call())
        except Exception:  # undecodable: the contract would refuse it all the same
            return False

    def state_of(self, onchain_id: str) -> str:
        return STATES[int(self.functions.stateOf(bytes.fromhex(onchain_id[2:])).call())]

    def nonce_of(self, address: str) -> int:
        return int(self.functions.nonces(address).call())

    def chain_time(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def is_contract(self, address: str) -> bool:
        return chain.has_code(self.w3, address)

    def _erc1271_valid(self, wallet: str, digest: bytes, signature: bytes) -> bool:
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

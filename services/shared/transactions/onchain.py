"""The chain over JSON-RPC as one signing key sees it (the path's `SigningChain`): the calls
every transaction makes (send, receipts) go without web3's middleware and formatters (a tenth
of the time); the rest through web3."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, cast

import requests
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.exceptions import TransactionNotFound, Web3RPCError
from web3.types import RPCResponse

from .. import chain
from ..chain import ChainUnavailable, PreparedTx
from .ports import Mined

RECEIPTS_PER_BATCH = 200  # receipts asked in one JSON-RPC batch
RPC_TIMEOUT = 10.0  # seconds, as chain.connect's


class Web3SigningChain:
    def __init__(self, w3: Web3, account: LocalAccount) -> None:
        self.w3 = w3
        self.account = account
        self._cached_chain_id: int | None = None
        self._sessions = threading.local()  # an HTTP session per thread

    @property
    def signer(self) -> str:
        return str(self.account.address)

    def rpc(self, method: str, params: list[Any]) -> dict[str, Any]:
        """One JSON-RPC call without web3's middleware and formatters; its reply as the node
        sent it."""
        answer = self._rpc_session().post(
            str(self.w3.provider.endpoint_uri),  # type: ignore[attr-defined]
            json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params},
            timeout=RPC_TIMEOUT,
        )
        answer.raise_for_status()
        reply: dict[str, Any] = answer.json()
        return reply

    def _rpc_session(self) -> requests.Session:
        session = getattr(self._sessions, "session", None)
        if session is None:
            session = self._sessions.session = requests.Session()
        return session

    def chain_id(self) -> int:
        if self._cached_chain_id is None:
            self._cached_chain_id = int(self.w3.eth.chain_id)
        return self._cached_chain_id

    def block_number(self) -> int:
        return int(self.w3.eth.block_number)

    def sent_count(self, address: str, pending: bool = False) -> int:
        address = Web3.to_checksum_address(address)
        if pending:
            return int(self.w3.eth.get_transaction_count(address, "pending"))
        return int(self.w3.eth.get_transaction_count(address, "latest"))

    def suggested_fees(self) -> dict[str, int]:
        return chain.suggested_fees(self.w3)

    def self_transfer(self) -> dict[str, Any]:
        """A transaction that does nothing (0 to itself): fills a nonce nothing is stored for."""
        return chain.self_transfer_fields(self.chain_id(), self.signer, self.suggested_fees())

    def sign(self, fields: dict[str, Any], nonce: int) -> PreparedTx:
        return chain.sign_eip1559(self.account, fields, nonce)

    def fields_of(self, raw: bytes) -> dict[str, Any]:
        return chain.fields_of(raw)

    def send(self, raw: bytes) -> None:
        reply = self.rpc("eth_sendRawTransaction", ["0x" + raw.hex()])
        if "error" in reply:  # the node's refusal (fee too low, nonce used, ...)
            raise Web3RPCError(str(reply["error"]), rpc_response=cast(RPCResponse, reply))

    def receipt(self, tx_hash: str) -> Any | None:
        try:
            return self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            return None

    def mined(self, tx_hash: str) -> Mined | None:
        receipt = self.receipt(tx_hash)
        if receipt is None:
            return None
        return Mined(receipt["transactionHash"].to_0x_hex(), receipt["status"] == 1)

    def mined_many(self, tx_hashes: Sequence[str]) -> dict[str, Mined]:
        """The receipts of `tx_hashes` in JSON-RPC batches of RECEIPTS_PER_BATCH (one round
        trip, none of web3's formatting): those in a block, by hash. Raises when the node
        answers any of them with an error, so a missing receipt always means not mined."""
        out: dict[str, Mined] = {}
        hashes = list(dict.fromkeys(tx_hashes))
        for start in range(0, len(hashes), RECEIPTS_PER_BATCH):
            chunk = hashes[start : start + RECEIPTS_PER_BATCH]
            answer = self._rpc_session().post(
                str(self.w3.provider.endpoint_uri),  # type: ignore[attr-defined]
                json=[
                    {
                        "jsonrpc": "2.0",
                        "id": i,
                        "method": "eth_getTransactionReceipt",
                        "params": [h],
                    }
                    for i, h in enumerate(chunk)
                ],
                timeout=RPC_TIMEOUT,
            )
            answer.raise_for_status()
            replies = answer.json()
            if not isinstance(replies, list) or len(replies) != len(chunk):
                raise ChainUnavailable(
                    f"the node answered a batch of receipts with {replies!r:.200}"
                )
            for reply in replies:
                if "error" in reply or not isinstance(reply.get("id"), int):
                    raise ChainUnavailable(f"the node refused a receipt: {reply!r:.200}")
                receipt = reply.get("result")
                if receipt is not None:
                    out[chunk[reply["id"]]] = Mined(
                        str(receipt["transactionHash"]), int(receipt["status"], 16) == 1
                    )
        return out

    def transaction_known(self, tx_hash: str) -> bool:
        try:
            self.w3.eth.get_transaction(tx_hash)  # type: ignore[arg-type]
            return True
        except TransactionNotFound:
            return False

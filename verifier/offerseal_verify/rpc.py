"""A `ChainView` over plain JSON-RPC (urllib, no web3): the four questions the chain checks ask
of any Ethereum endpoint, the same ones the verify page asks from the browser."""

from __future__ import annotations

import itertools
import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from .hexbytes import to_hex
from .merkle import keccak
from .proofs import AnchorTx

ANCHORED_AT_SELECTOR = keccak(b"anchoredAt(bytes32)")[:4]
CEREMONY_OF_SELECTOR = keccak(b"ceremonyOf(bytes32)")[:4]
ANCHORED_TOPIC = to_hex(keccak(b"Anchored(bytes32,uint64,address)"))
MAX_ANSWER_BYTES = 16 * 1024 * 1024
TIMEOUT_SECONDS = 10.0


class RpcUnreachable(ConnectionError):
    """The endpoint did not answer, or did not answer JSON-RPC."""


class RpcRefused(Exception):
    """The endpoint answered with a JSON-RPC error (e.g. an eth_call that reverted)."""


class JsonRpcChainView:
    """`ChainView` over one JSON-RPC endpoint (http or https)."""

    def __init__(self, url: str, timeout: float = TIMEOUT_SECONDS) -> None:
        if urlsplit(url).scheme not in ("http", "https"):
            raise ValueError(f"not an http(s) JSON-RPC endpoint: {url}")
        self.url = url
        self.timeout = timeout
        self._ids = itertools.count(1)

    def call(self, method: str, params: list[Any]) -> Any:
        body = json.dumps(
            {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        ).encode()
        request = urllib.request.Request(
            self.url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read(MAX_ANSWER_BYTES + 1)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise RpcUnreachable(f"{method}: {exc}") from None
        if len(raw) > MAX_ANSWER_BYTES:
            raise RpcUnreachable(f"{method}: answer larger than {MAX_ANSWER_BYTES} bytes")
        try:
            answer = json.loads(raw)
        except ValueError:
            raise RpcUnreachable(f"{method}: not a JSON-RPC answer") from None
        if not isinstance(answer, dict):
            raise RpcUnreachable(f"{method}: not a JSON-RPC answer")
        if answer.get("error") is not None:
            error = answer["error"]
            message = error.get("message") if isinstance(error, dict) else None
            raise RpcRefused(f"{method}: {message or json.dumps(error)}")
        if "result" not in answer:
            raise RpcUnreachable(f"{method}: not a JSON-RPC answer")
        return answer["result"]

    def chain_id(self) -> int:
        return int(str(self.call("eth_chainId", [])), 16)

    def anchored_at(self, registry: str, root: bytes) -> int:
        data = to_hex(ANCHORED_AT_SELECTOR + root)
        try:
            answer = self.call("eth_call", [{"to": registry, "data": data}, "latest"])
            return int(str(answer), 16) if answer and answer != "0x" else 0
        except (RpcRefused, ValueError):
            return 0  # no contract there, or not a registry

    def ceremony_of(self, agreements: str, onchain_id: bytes) -> str | None:
        """IntentAgreements.ceremonyOf(id): the ceremony hash the candidate's commitment
        covered (`0x` and 64 hex digits; all zeros before the commitment), or None when the
        contract does not answer it (no contract there, or one older than 2.3.0)."""
        try:
            answer = self.call(
                "eth_call",
                [{"to": agreements, "data": to_hex(CEREMONY_OF_SELECTOR + onchain_id)}, "latest"],
            )
        except RpcRefused:
            return None
        text = str(answer or "")
        return text.lower() if len(text) == 66 else None

    def block(self, number: int) -> tuple[str, int] | None:
        try:
            block = self.call("eth_getBlockByNumber", [hex(number), False])
            if not isinstance(block, dict):
                return None
            return str(block["hash"]).lower(), int(str(block["timestamp"]), 16)
        except (RpcRefused, KeyError, ValueError):
            return None

    def anchor_tx(self, tx_hash: str) -> AnchorTx | None:
        try:
            receipt = self.call("eth_getTransactionReceipt", [tx_hash])
            if not isinstance(receipt, dict):
                return None
            to = str(receipt.get("to") or "")
            roots = tuple(
                str(log["topics"][1]).lower()
                for log in receipt.get("logs") or []
                if str(log.get("address", "")).lower() == to.lower()
                and len(log.get("topics") or []) > 1
                and str(log["topics"][0]).lower() == ANCHORED_TOPIC
            )
            return AnchorTx(
                block_number=int(str(receipt["blockNumber"]), 16),
                block_hash=str(receipt["blockHash"]).lower(),
                to=to,
                succeeded=int(str(receipt["status"]), 16) == 1,
                anchored_roots=roots,
            )
        except (RpcRefused, KeyError, TypeError, ValueError, AttributeError):
            return None

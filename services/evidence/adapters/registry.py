"""The EvidenceRegistry contract on chain: the anchoring worker's client (prepare, send and
inspect anchor transactions) and the verifier's read-only `ChainView` over any JSON-RPC endpoint."""

from __future__ import annotations

import logging
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.exceptions import TransactionNotFound

from offerseal_verify.hexbytes import to_hex
from offerseal_verify.proofs import AnchorTx

from ...shared.chain import ContractClient, PreparedTx

log = logging.getLogger(__name__)
DEFAULT_ADMIN_ROLE = b"\x00" * 32  # OpenZeppelin AccessControl's admin role


class RegistryClient(ContractClient):
    """Thin client for EvidenceRegistry: build, send and inspect anchor transactions."""

    artifact_name = "EvidenceRegistry"

    def __init__(self, w3: Web3, address: str) -> None:
        super().__init__(w3, address)
        topic = self.contract.events.Anchored().topic
        self._anchored_topic = topic.to_0x_hex() if isinstance(topic, bytes) else str(topic)

    def anchored_at(self, root: bytes) -> int:
        return int(self.functions.anchoredAt(root).call())

    def may_anchor(self, account: str) -> bool:
        return bool(self.functions.hasRole(self.functions.ANCHORER_ROLE().call(), account).call())

    def is_admin(self, account: str) -> bool:
        return bool(self.functions.hasRole(DEFAULT_ADMIN_ROLE, account).call())

    def prepare_anchor(
        self, signer: LocalAccount, root: bytes, nonce: int, fees: dict[str, int] | None = None
    ) -> PreparedTx:
        # A fixed gas limit: no estimate round trip, and the stored bytes stay valid to resend.
        return self.prepare(self.functions.anchor(root), signer, nonce, gas=120_000, fees=fees)

    def anchor_fields(self, root: bytes, chain_id: int, fees: dict[str, int]) -> dict[str, Any]:
        """`anchor(root)` as an EIP-1559 transaction without its nonce, for the signer's
        transaction path to sign (the fixed gas limit of `prepare_anchor`)."""
        data = self.functions.anchor(root)._encode_transaction_data()
        return {
            "type": 2,
            "chainId": chain_id,
            "to": self.address,
            "data": data if isinstance(data, str) else "0x" + bytes(data).hex(),
            "value": 0,
            "gas": 120_000,
            "maxFeePerGas": int(fees["maxFeePerGas"]),
            "maxPriorityFeePerGas": int(fees["maxPriorityFeePerGas"]),
        }

    def receipt_of_anchor(self, root: bytes) -> Any | None:
        """The receipt of whichever transaction anchored `root` on this registry, if any."""
        logs = self.w3.eth.get_logs(
            {
                "address": self.address,
                "fromBlock": 0,
                "toBlock": "latest",
                "topics": [self._anchored_topic, to_hex(root)],
            }
        )
        if not logs:
            return None
        return self.receipt(logs[0]["transactionHash"].to_0x_hex())

    def anchored_roots(self, receipt: Any) -> tuple[str, ...]:
        roots = []
        for entry in receipt["logs"]:
            topics = [t.to_0x_hex() for t in entry["topics"]]
            if (
                entry["address"].lower() == self.address.lower()
                and len(topics) > 1
                and topics[0].lower() == self._anchored_topic.lower()
            ):
                roots.append(topics[1].lower())
        return tuple(roots)


class Web3ChainView:
    """`ChainView` over any JSON-RPC endpoint, for the verifier (CLI and /v1/verify)."""

    def __init__(self, w3: Web3) -> None:
        self.w3 = w3

    def chain_id(self) -> int:
        return int(self.w3.eth.chain_id)

    def anchored_at(self, registry: str, root: bytes) -> int:
        try:
            return RegistryClient(self.w3, registry).anchored_at(root)
        except Exception as exc:  # no contract there, or not a registry
            log.info("anchoredAt failed on %s: %s", registry, exc)
            return 0

    def ceremony_of(self, agreements: str, onchain_id: bytes) -> str | None:
        """IntentAgreements.ceremonyOf(id) at `agreements` (None: no such function there)."""
        from offerseal_verify.rpc import CEREMONY_OF_SELECTOR

        try:
            answer = self.w3.eth.call({"to": agreements, "data": CEREMONY_OF_SELECTOR + onchain_id})
        except Exception as exc:  # no contract there, or one without ceremonyOf
            log.info("ceremonyOf failed on %s: %s", agreements, exc)
            return None
        return "0x" + bytes(answer).hex() if len(answer) == 32 else None

    def block(self, number: int) -> tuple[str, int] | None:
        try:
            block = self.w3.eth.get_block(number)
        except Exception:
            return None
        return block["hash"].to_0x_hex(), int(block["timestamp"])

    def anchor_tx(self, tx_hash: str) -> AnchorTx | None:
        try:
            receipt = self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        except (TransactionNotFound, ValueError):
            return None
        to = receipt.get("to") or ""
        roots: tuple[str, ...] = ()
        if to:
            roots = RegistryClient(self.w3, to).anchored_roots(receipt)
        return AnchorTx(
            block_number=int(receipt["blockNumber"]),
            block_hash=receipt["blockHash"].to_0x_hex(),
            to=str(to),
            succeeded=receipt["status"] == 1,
            anchored_roots=roots,
        )

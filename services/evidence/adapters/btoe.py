"""Tencent Cloud BTOE (区块链可信取证) as a judicial-chain witness, through Tencent's official SDK
(`tencentcloud-sdk-python-btoe`, API version 2021-03-03, whose CreateHashDepositNoCert takes a
HashType and answers with the evidence id, the chain transaction, its time and height).

What is deposited: the SM3 (HashType 0, BTOE's default) or SHA-256 (HashType 1) of the anchored
Merkle root's 32 bytes. One deposit a batch, whatever its size, and nothing personal leaves
OfferSeal: `EvidenceInfo` names the root and the anchoring transaction, so the deposit can be
tied to the Ethereum anchor by anyone who reads it. No certificate is issued by this action
(`certificate` is null); a document's own SM3 is in its intake receipt and bundle.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import urlsplit

from tencentcloud.btoe.v20210303 import btoe_client, models
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile

from offerseal_verify.deposits import BTOE, BTOE_HASH_TYPES, SUBJECT_ROOT, deposited_digest
from offerseal_verify.hexbytes import to_hex

from ...shared.models import utcnow
from ..witnesses import AnchoredRoot, WitnessRefused, WitnessUnavailable

ACTION = "CreateHashDepositNoCert"
VERSION = "2021-03-03"
# Error codes after which the same request may succeed later (the platform's or the network's
# state); any other code (AuthFailure.*, InvalidParameter*, UnauthorizedOperation...) is a refusal.
TRANSIENT = ("RequestLimitExceeded", "InternalError", "ResourceUnavailable", "ServiceUnavailable")
NETWORK = ("ClientNetworkError", "ServerNetworkError")


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class BtoeWitness:
    name = BTOE

    def __init__(
        self,
        secret_id: str,
        secret_key: str,
        *,
        region: str = "ap-guangzhou",
        endpoint: str = "https://btoe.tencentcloudapi.com",
        hash_algorithm: str = "sm3",
        timeout: int = 10,
    ) -> None:
        if hash_algorithm not in BTOE_HASH_TYPES:
            raise ValueError("hash_algorithm: sm3 or sha256")
        parts = urlsplit(endpoint)
        profile = HttpProfile(
            protocol=parts.scheme or "https",
            endpoint=parts.netloc or parts.path,
            reqTimeout=timeout,
        )
        self.hash_algorithm = hash_algorithm
        self.region = region
        self._client = btoe_client.BtoeClient(
            credential.Credential(secret_id, secret_key),
            region,
            ClientProfile(httpProfile=profile),
        )

    def __repr__(self) -> str:  # never the credentials
        return f"BtoeWitness(region={self.region!r}, hash={self.hash_algorithm!r})"

    def deposit(self, anchored: AnchoredRoot) -> dict[str, Any]:
        digest = deposited_digest(self.hash_algorithm, anchored.root)
        params: dict[str, Any] = {
            "EvidenceHash": digest,
            "HashType": BTOE_HASH_TYPES[self.hash_algorithm],
            "BusinessId": f"offerseal-batch-{anchored.batch_id}",
            "EvidenceInfo": json.dumps(
                {
                    "offerseal": "merkle-root",
                    "root": to_hex(anchored.root),
                    "chain_id": anchored.chain_id,
                    "anchor_tx": anchored.tx_hash,
                },
                sort_keys=True,
                separators=(",", ":"),
            ),
        }
        request = models.CreateHashDepositNoCertRequest()
        request.from_json_string(json.dumps(params))
        try:
            answer = self._client.CreateHashDepositNoCert(request)
        except TencentCloudSDKException as exc:
            code = str(exc.get_code() or "")
            reason = f"{code} (request {exc.get_request_id() or '-'})"
            if code in NETWORK or code.startswith(TRANSIENT):
                raise WitnessUnavailable(f"Tencent Cloud BTOE: {reason}") from None
            raise WitnessRefused(f"Tencent Cloud BTOE: {reason}") from None
        response = json.loads(answer.to_json_string())
        return {
            "type": BTOE,
            "subject": SUBJECT_ROOT,
            "hash_algorithm": self.hash_algorithm,
            "hash": digest,
            "evidence_id": response.get("EvidenceId"),
            "tx_hash": response.get("EvidenceTxHash"),
            "evidence_time": response.get("EvidenceTime"),
            "block_height": response.get("BlockchainHeight"),
            "certificate": None,  # CreateHashDepositNoCert issues none
            "request": {"Action": ACTION, "Version": VERSION, "Region": self.region, **params},
            "response": response,
            "deposited_at": _iso(utcnow()),
        }

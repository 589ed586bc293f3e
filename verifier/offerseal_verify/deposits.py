"""Judicial-chain deposits: the third kind of witness, a digest of the anchored root deposited
with an evidence platform that Chinese courts already read (Tencent Cloud BTOE; Ant Chain TWC
would be a second `type` of the same shape).

A bundle entry keeps what was asked (`request`) and what the provider answered (`response`, as
its SDK parsed it). Off line a verifier can check that the entry is about this bundle's root
(the deposited digest is the SM3, or SHA-256, of the root's 32 bytes) and that the ids it shows
are the ones in the provider's answer. Whether the provider really recorded it can only be
confirmed on line, by the provider (BTOE: VerifyEvidenceHash or GetDepositInfo with a Tencent
Cloud account): a verifier says so rather than pretend it checked.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from .sm3 import sm3

BTOE = "tencent-btoe"
SUBJECT_ROOT = "merkle_root"
# BTOE's HashType: 0 SM3 (its default), 1 SHA-256, 2 SHA-384.
BTOE_HASH_TYPES = {"sm3": 0, "sha256": 1}
DIGESTS: dict[str, Callable[[bytes], bytes]] = {
    "sm3": sm3,
    "sha256": lambda data: hashlib.sha256(data).digest(),
}
PROVIDER_NAMES = {BTOE: "Tencent Cloud BTOE"}
MAX_DEPOSITS = 8


def deposited_digest(algorithm: str, root: bytes) -> str:
    """What is deposited for a root: the digest of its 32 bytes, 64 lower-case hex digits
    without `0x` (as the platforms take it)."""
    return DIGESTS[algorithm](root).hex()


def online_note(entry_type: str) -> str:
    if entry_type == BTOE:
        return (
            "its on-line confirmation needs the provider: ask Tencent Cloud BTOE "
            "(VerifyEvidenceHash with the digest, or GetDepositInfo with the evidence id)"
        )
    return "its on-line confirmation needs the provider"


def _btoe_problems(entry: dict[str, Any], digest: str) -> list[str]:
    request, response = entry.get("request"), entry.get("response")
    if not isinstance(request, dict) or not isinstance(response, dict):
        return ["request and response must be objects"]
    problems = []
    if str(request.get("EvidenceHash", "")).lower() != digest:
        problems.append("the request deposited another digest")
    if request.get("HashType") != BTOE_HASH_TYPES.get(str(entry.get("hash_algorithm"))):
        problems.append("the request's HashType is not the entry's hash_algorithm")
    for field, answer in (
        ("evidence_id", "EvidenceId"),
        ("tx_hash", "EvidenceTxHash"),
        ("evidence_time", "EvidenceTime"),
    ):
        if entry.get(field) != response.get(answer):
            problems.append(f"{field} is not the provider's {answer}")
    if not entry.get("evidence_id"):
        problems.append("no evidence id")
    return problems


def verify_deposit(entry: Any, root: bytes) -> tuple[bool, str]:
    """(ok, detail) for one deposit entry against the bundle's root: off-line checks only, and
    the detail says what only the provider can confirm."""
    if not isinstance(entry, dict):
        return False, "a deposit entry must be an object"
    kind = str(entry.get("type", "?"))
    algorithm = str(entry.get("hash_algorithm", ""))
    if kind not in PROVIDER_NAMES:
        return False, f"unknown deposit type {kind!r}"
    if entry.get("subject") != SUBJECT_ROOT or algorithm not in DIGESTS:
        return False, f"{kind}: not a deposit of the Merkle root by sm3 or sha256"
    digest = deposited_digest(algorithm, root)
    if str(entry.get("hash", "")).lower() != digest:
        return False, f"{kind}: the deposited digest is not {algorithm}(root)"
    problems = _btoe_problems(entry, digest)
    if problems:
        return False, f"{kind}: " + "; ".join(problems)
    return True, (
        f"{PROVIDER_NAMES[kind]} evidence {entry['evidence_id']} (tx {entry.get('tx_hash')}, "
        f"{entry.get('evidence_time')}) holds {algorithm}(root): present, checked against the "
        f"provider's answer; {online_note(kind)}"
    )

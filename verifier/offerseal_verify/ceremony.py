"""The signing ceremony: the record of how a candidate came to sign, which their own signature
covers. The candidate's EIP-712 `Commitment` (IntentAgreements 2.3.0) includes `ceremonyHash`,
the keccak256 of this record in canonical JSON; the contract stores it (`ceremonyOf`) and emits
it in `Committed`. Anyone holding the signing record can recompute the hash and compare it with
the chain: a record changed after the signature no longer matches what the candidate signed.

The record holds no personal data beyond what the signing record already shows (masked
destination, a keyed hash of it): the chain holds only the hash.
"""

from __future__ import annotations

from typing import Any

from .canonical import canonical_json
from .merkle import keccak

CEREMONY_FORMAT = "offerseal-ceremony/1"
# Client-reported figures are bounded before they enter the record: a reading time above a day
# says nothing more than "a day".
MAX_REPORTED_SECONDS = 86_400

# The members every ceremony has, and their members (None where nothing happened).
SECTIONS = {
    "agreement": ("onchain_id", "chain_id", "registry", "terms_hash"),
    "text": ("opened_at", "read_at", "read_seconds_reported_by_browser"),
    "consent": ("given_at",),
    "code": ("id", "channel", "destination", "destination_hash", "sent_at", "verified_at"),
    "signer": ("kind", "address", "credential_id", "public_key", "bound_at", "replaces"),
}


def ceremony_hash(ceremony: dict[str, Any]) -> str:
    """`0x` + keccak256 of the ceremony's canonical JSON: what `Commitment.ceremonyHash` is."""
    return "0x" + keccak(canonical_json(ceremony)).hex()


def ceremony_problems(ceremony: Any) -> list[str]:
    """What is wrong with a ceremony's shape (empty: well formed)."""
    if not isinstance(ceremony, dict):
        return ["ceremony: an object is required"]
    problems = []
    if ceremony.get("format") != CEREMONY_FORMAT:
        problems.append(f"ceremony.format: {CEREMONY_FORMAT!r} is required")
    for section, members in SECTIONS.items():
        value = ceremony.get(section)
        if value is None and section in ("code", "signer"):
            if section == "signer":
                problems.append("ceremony.signer: an object is required")
            continue
        if not isinstance(value, dict):
            problems.append(f"ceremony.{section}: an object is required")
            continue
        missing = [m for m in members if m not in value]
        if missing:
            problems.append(f"ceremony.{section}: missing {', '.join(missing)}")
    seconds = (ceremony.get("text") or {}).get("read_seconds_reported_by_browser")
    if seconds is not None and (
        not isinstance(seconds, int) or isinstance(seconds, bool) or seconds < 0
    ):
        problems.append("ceremony.text.read_seconds_reported_by_browser: an integer >= 0")
    try:
        canonical_json(ceremony)
    except ValueError as exc:
        problems.append(str(exc))
    return problems


def check_record(record: Any, onchain_hash: str | None) -> tuple[bool, str]:
    """A signing record's ceremony against the hash the chain holds for the agreement
    (`onchain_hash`; None when no chain was asked). The verdict and what it rests on."""
    if not isinstance(record, dict) or "ceremony" not in record:
        return False, "the signing record holds no ceremony (signed before IntentAgreements 2.3.0?)"
    ceremony = record["ceremony"]
    problems = ceremony_problems(ceremony)
    if problems:
        return False, "; ".join(problems)
    computed = ceremony_hash(ceremony)
    stated = record.get("ceremony_hash")
    if stated is not None and str(stated).lower() != computed:
        return False, f"the record states ceremony hash {stated}, its ceremony hashes to {computed}"
    agreement = ceremony["agreement"]
    if record.get("onchain_id") is not None and agreement["onchain_id"] != record["onchain_id"]:
        return False, "the ceremony names another agreement than its signing record"
    if onchain_hash is None:
        return True, (
            f"ceremony hash {computed} recomputed from the record; "
            "not compared with the chain (no RPC given)"
        )
    if onchain_hash.lower() != computed:
        return False, (
            f"the chain holds ceremony hash {onchain_hash} for agreement "
            f"{agreement['onchain_id']}, the record hashes to {computed}: "
            "the record is not the one the candidate signed"
        )
    return True, (
        f"ceremony hash {computed} recomputed from the record equals ceremonyOf() on chain: "
        "the candidate's own signature covers this record of how they signed"
    )

"""Intent agreement terms, the liquidated-damages cap and the EIP-712 payloads a candidate signs.

The typed data is exactly what `eth_signTypedData_v4` takes (MetaMask, ethers' signTypedData,
viem, eth-account, `cast wallet sign --data`), and its digest equals the contract's
`commitmentDigest` / `cancellationDigest` / `amendmentDigest` / `arrivalDigest`. The
`Commitment` carries every term the candidate agrees to, milestones and grace period included,
so a wallet shows them all.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

# Milestone kinds (DOMAIN.md's staged confirmations and checkpoints) and their on-chain codes.
MILESTONE_KINDS: dict[str, int] = {
    "expected_resignation_date": 1,
    "resignation_submitted": 2,
    "resignation_accepted": 3,
    "handover_started": 4,
    "handover_halfway": 5,
    "last_working_day_fixed": 6,
    "social_insurance_stop": 7,
}
# On-chain state names, in the contract's enum order.
STATES = (
    "none",
    "offered",
    "committed",
    "fulfilled",
    "breached",
    "employer_breached",
    "cancelled",
    "expired",
)

DOMAIN_NAME = "OfferSeal IntentAgreements"
DOMAIN_VERSION = "2"  # IntentAgreements 2.x; its major version
CONTRACT_MAJOR_VERSION = 2  # the IntentAgreements this service speaks to
CONTRACT_MIN_MINOR = 1  # 2.1: candidates bound after the offer, passkey signatures
BUNDLES_MINOR = 2  # 2.2: `multicall`, several offers in one transaction
ARRIVAL_LEAD = 12 * 3600  # the contract accepts an arrival from the start date minus this
DISPUTE_WINDOW = 7 * 86400  # the contract's window to dispute an arrival
CAP_BPS = 3_000  # 30% of one month's salary, in basis points
MAX_MILESTONES = 8

EIP712_DOMAIN = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
COMMITMENT = [
    {"name": "agreementId", "type": "bytes32"},
    {"name": "candidate", "type": "address"},
    {"name": "employer", "type": "address"},
    {"name": "termsHash", "type": "bytes32"},
    {"name": "startDate", "type": "uint64"},
    {"name": "graceSeconds", "type": "uint32"},
    {"name": "milestoneKinds", "type": "uint8[]"},
    {"name": "milestoneDues", "type": "uint64[]"},
    {"name": "monthlySalary", "type": "uint128"},
    {"name": "liquidatedDamages", "type": "uint128"},
    {"name": "ceremonyHash", "type": "bytes32"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint64"},
]
# The naive one-contract-per-agreement design of bench/ signs the Commitment as it was before
# the ceremony hash (IntentAgreements 2.2.0).
COMMITMENT_WITHOUT_CEREMONY = [f for f in COMMITMENT if f["name"] != "ceremonyHash"]
ARRIVAL = [
    {"name": "agreementId", "type": "bytes32"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint64"},
]
CANCELLATION = [
    {"name": "agreementId", "type": "bytes32"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint64"},
]
AMENDMENT = [
    {"name": "agreementId", "type": "bytes32"},
    {"name": "termsHash", "type": "bytes32"},
    {"name": "startDate", "type": "uint64"},
    {"name": "dues", "type": "uint64[]"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint64"},
]


def damages_cap(monthly_salary: int) -> int:
    """The largest allowed liquidated damages, in the salary's minor units (rounded down)."""
    return monthly_salary * CAP_BPS // 10_000


def within_cap(liquidated_damages: int, monthly_salary: int) -> bool:
    """The contract's own rule, in integers: damages * 10_000 <= salary * 3_000."""
    return liquidated_damages * 10_000 <= monthly_salary * CAP_BPS


@dataclass(frozen=True)
class Terms:
    employer: str
    candidate: str
    terms_hash: str  # 0x sha256 of the exact UTF-8 agreement text
    start_date: int
    grace_seconds: int
    offer_expires_at: int
    monthly_salary: int
    liquidated_damages: int

    def as_tuple(self) -> tuple[Any, ...]:
        """The ABI tuple of the contract's `Terms` struct."""
        return (
            self.employer,
            self.candidate,
            bytes.fromhex(self.terms_hash[2:]),
            self.start_date,
            self.grace_seconds,
            self.offer_expires_at,
            self.monthly_salary,
            self.liquidated_damages,
        )


def _domain(chain_id: int, registry: str) -> dict[str, Any]:
    return {
        "name": DOMAIN_NAME,
        "version": DOMAIN_VERSION,
        "chainId": chain_id,
        "verifyingContract": registry,
    }


def commitment_typed_data(
    *,
    chain_id: int,
    registry: str,
    agreement_id: str,
    terms: Terms,
    milestones: Sequence[tuple[int, int]],
    nonce: int,
    ceremony_hash: str | None,
) -> dict[str, Any]:
    """The `Commitment` a candidate signs: the terms and every milestone as `(kind code, due)`
    in index order, as the chain holds them, and the hash of the signing ceremony's record
    (`ceremony_hash`; None only for bench/'s contract, which predates it); the deadline is the
    offer's expiry."""
    typed: dict[str, Any] = {
        "types": {
            "EIP712Domain": EIP712_DOMAIN,
            "Commitment": COMMITMENT if ceremony_hash else COMMITMENT_WITHOUT_CEREMONY,
        },
        "primaryType": "Commitment",
        "domain": _domain(chain_id, registry),
        "message": {
            "agreementId": agreement_id,
            "candidate": terms.candidate,
            "employer": terms.employer,
            "termsHash": terms.terms_hash,
            "startDate": terms.start_date,
            "graceSeconds": terms.grace_seconds,
            "milestoneKinds": [int(kind) for kind, _ in milestones],
            "milestoneDues": [int(due) for _, due in milestones],
            # Above 2**53 a JSON number loses precision in JavaScript wallets: decimal strings.
            "monthlySalary": str(terms.monthly_salary),
            "liquidatedDamages": str(terms.liquidated_damages),
            "nonce": str(nonce),
            "deadline": terms.offer_expires_at,
        },
    }
    if ceremony_hash:
        typed["message"]["ceremonyHash"] = ceremony_hash
    return typed


EMPLOYER_BINDING = [
    {"name": "tenant", "type": "string"},
    {"name": "employer", "type": "address"},
    {"name": "relayer", "type": "address"},
    {"name": "deadline", "type": "uint64"},
]


def employer_binding_typed_data(
    *, chain_id: int, registry: str, tenant: str, employer: str, relayer: str, deadline: int
) -> dict[str, Any]:
    """What a company's own address signs (off chain) before a tenant may offer in its name:
    this tenant, through this relayer, on this chain and contract, until `deadline`."""
    return {
        "types": {"EIP712Domain": EIP712_DOMAIN, "EmployerBinding": EMPLOYER_BINDING},
        "primaryType": "EmployerBinding",
        "domain": _domain(chain_id, registry),
        "message": {
            "tenant": tenant,
            "employer": employer,
            "relayer": relayer,
            "deadline": deadline,
        },
    }


def arrival_typed_data(
    *, chain_id: int, registry: str, agreement_id: str, nonce: int, deadline: int
) -> dict[str, Any]:
    """The `Arrival` a committed candidate signs on their first day: recorded on chain, it
    keeps the agreement from being declared breached unless the employer disputes it."""
    return {
        "types": {"EIP712Domain": EIP712_DOMAIN, "Arrival": ARRIVAL},
        "primaryType": "Arrival",
        "domain": _domain(chain_id, registry),
        "message": {"agreementId": agreement_id, "nonce": str(nonce), "deadline": deadline},
    }


def cancellation_typed_data(
    *, chain_id: int, registry: str, agreement_id: str, nonce: int, deadline: int
) -> dict[str, Any]:
    """The `Cancellation` a committed candidate signs to release both sides."""
    return {
        "types": {"EIP712Domain": EIP712_DOMAIN, "Cancellation": CANCELLATION},
        "primaryType": "Cancellation",
        "domain": _domain(chain_id, registry),
        "message": {"agreementId": agreement_id, "nonce": str(nonce), "deadline": deadline},
    }


def amendment_typed_data(
    *,
    chain_id: int,
    registry: str,
    agreement_id: str,
    terms_hash: str,
    start_date: int,
    dues: list[int],
    nonce: int,
    deadline: int,
) -> dict[str, Any]:
    """The `Amendment` a committed candidate signs to move the start and milestone dates to
    those of the re-issued text whose sha256 is `terms_hash`."""
    return {
        "types": {"EIP712Domain": EIP712_DOMAIN, "Amendment": AMENDMENT},
        "primaryType": "Amendment",
        "domain": _domain(chain_id, registry),
        "message": {
            "agreementId": agreement_id,
            "termsHash": terms_hash,
            "startDate": start_date,
            "dues": list(dues),
            "nonce": str(nonce),
            "deadline": deadline,
        },
    }


START_TIME = dt.time(9, 0)  # a start date means 09:00 in the candidate's time zone
DUE_TIME = dt.time(23, 59, 59)  # a due date means the end of that day


def at_local(value: dt.date | dt.datetime, tz: ZoneInfo, default: dt.time) -> dt.datetime:
    """A calendar date at `default` in `tz`; a date-time without offset in `tz`."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=tz)
    return dt.datetime.combine(value, default, tzinfo=tz)


def _version(version: str) -> tuple[int, int] | None:
    major, _, rest = version.partition(".")
    minor = rest.partition(".")[0]
    return (int(major), int(minor)) if major.isdigit() and minor.isdigit() else None


def bundles_calls(version: str) -> bool:
    """Whether an IntentAgreements deployment of `version` has `multicall` (since 2.2): several
    offers sent as one transaction."""
    parsed = _version(version)
    return parsed is not None and parsed[0] == CONTRACT_MAJOR_VERSION and parsed[1] >= BUNDLES_MINOR


def supported_contract(version: str) -> bool:
    """Whether an IntentAgreements deployment of `version` speaks this service's interface
    (ids from a salt, the full `Commitment`, leaves computed on chain, arrivals; since 2.1
    candidates bound after the offer and passkey signatures)."""
    parsed = _version(version)
    return (
        parsed is not None
        and parsed[0] == CONTRACT_MAJOR_VERSION
        and parsed[1] >= CONTRACT_MIN_MINOR
    )

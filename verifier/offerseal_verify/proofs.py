"""The self-contained proof bundle and the checks that verify it.

`offerseal-proof/2` adds the witnesses beside the chain: `witnesses` lists what the bundle
carries (`ethereum`, and `rfc3161` once a Time-Stamp Authority stamped the root) and
`timestamps` holds the RFC 3161 tokens. `offerseal-proof/3` adds the document's SM3 digest
(`document.sm3`, when its bytes were received; the intake receipt signs it) and judicial-chain
deposits of the root (`deposits`, witness `tencent-btoe`). Bundles of formats 1 and 2 still verify.

Verification needs only the document (or its sha256), the bundle, the receipt signer's public key,
the TSA roots one trusts and, for the chain checks, any view of the chain (`ChainView`): not the
OfferSeal service.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Protocol

from . import merkle
from .deposits import MAX_DEPOSITS, verify_deposit
from .hexbytes import from_hex32, is_hex32, to_hex
from .receipts import TrustedKey, verify_receipt

if TYPE_CHECKING:
    from cryptography.x509 import Certificate

PROOF_FORMAT_V1 = "offerseal-proof/1"
PROOF_FORMAT_V2 = "offerseal-proof/2"
PROOF_FORMAT = "offerseal-proof/3"
FORMATS = (PROOF_FORMAT, PROOF_FORMAT_V2, PROOF_FORMAT_V1)
CHAIN_WITNESS = "ethereum"
MAX_TIMESTAMPS = 8
# A tree of 10,000 leaves (the largest batch) needs 14 siblings; 2**32 leaves would need 32.
MAX_PROOF_LENGTH = 32
MAX_BUNDLE_BYTES = 64 * 1024  # a real bundle is about 2 KB


def bundle_size_problem(bundle: Any) -> str | None:
    """Why a bundle is too large to be a proof (before any check runs), or None."""
    merkle_part = bundle.get("merkle") if isinstance(bundle, dict) else None
    path = merkle_part.get("proof") if isinstance(merkle_part, dict) else None
    if isinstance(path, list) and len(path) > MAX_PROOF_LENGTH:
        return f"a Merkle path has at most {MAX_PROOF_LENGTH} siblings (got {len(path)})"
    return None


@dataclass(frozen=True)
class AnchorFacts:
    chain_id: int
    registry: str
    tx_hash: str
    block_number: int
    block_hash: str
    block_timestamp: int


@dataclass(frozen=True)
class AnchorTx:
    """What the chain says about an anchoring transaction."""

    block_number: int
    block_hash: str
    to: str
    succeeded: bool
    anchored_roots: tuple[str, ...]


class ChainView(Protocol):
    def chain_id(self) -> int: ...

    def anchored_at(self, registry: str, root: bytes) -> int: ...

    def block(self, number: int) -> tuple[str, int] | None: ...

    def anchor_tx(self, tx_hash: str) -> AnchorTx | None: ...


def build_bundle(
    *,
    document: dict[str, Any],
    salt: bytes,
    proof: Sequence[bytes],
    root: bytes,
    anchor: AnchorFacts,
    receipt: dict[str, Any],
    timestamps: Sequence[dict[str, Any]] = (),
    deposits: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """A bundle; `timestamps` are RFC 3161 entries (`timestamps.bundle_entry`) of the root,
    `deposits` judicial-chain entries (`deposits.verify_deposit` reads them). `document` may
    carry `sm3` (documents whose bytes were received)."""
    sha = from_hex32(document["sha256"])
    leaf = merkle.leaf_hash(sha, salt)
    witnesses = [CHAIN_WITNESS] + (["rfc3161"] if timestamps else [])
    for entry in deposits:
        if entry["type"] not in witnesses:
            witnesses.append(str(entry["type"]))
    return {
        "format": PROOF_FORMAT,
        "witnesses": witnesses,
        "document": document,
        "leaf": {
            "encoding": list(merkle.LEAF_ENCODING),
            "values": [to_hex(sha), to_hex(salt)],
            "hash": to_hex(leaf),
        },
        "merkle": {"root": to_hex(root), "proof": [to_hex(p) for p in proof]},
        "anchor": asdict(anchor),
        "intake_receipt": receipt,
        "timestamps": list(timestamps),
        "deposits": list(deposits),
    }


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool | None  # None: not performed (offline, or nothing to compare with)
    detail: str
    parts: tuple[Check, ...] = ()  # the checks this one sums up (a dossier's proof bundles)

    def as_dict(self) -> dict[str, Any]:
        status = "skipped" if self.ok is None else ("pass" if self.ok else "fail")
        out: dict[str, Any] = {
            "name": self.name,
            "status": status,
            "ok": self.ok,
            "detail": self.detail,
        }
        if self.parts:
            out["checks"] = [c.as_dict() for c in self.parts]
        return out


@dataclass(frozen=True)
class Verdict:
    checks: tuple[Check, ...]

    @property
    def valid(self) -> bool:
        """Every check performed passed and none was skipped."""
        return all(c.ok is True for c in self.checks)

    @property
    def failed(self) -> list[str]:
        return [c.name for c in self.checks if c.ok is False]

    def as_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "failed": self.failed,
            "checks": [c.as_dict() for c in self.checks],
        }


def sha256_hex(data: bytes) -> str:
    return to_hex(hashlib.sha256(data).digest())


def claimed_sm3(bundle: Any) -> str | None:
    """The SM3 digest a bundle states for its document (None: format 1 or 2, or a document
    registered by hash only, whose bytes OfferSeal never had)."""
    document = bundle.get("document") if isinstance(bundle, dict) else None
    value = document.get("sm3") if isinstance(document, dict) else None
    return str(value).lower() if value is not None else None


def verify_bundle(
    bundle: Any,
    *,
    document_sha256: str | None,
    trusted_keys: Mapping[str, bytes | TrustedKey] | None,
    chain: ChainView | None,
    tsa_roots: Sequence[Certificate] | None = None,
    document_sm3: str | None = None,
) -> Verdict:
    """Run every check; a forged or mismatched bundle gives failing checks, never an exception.
    `tsa_roots`: the TSA root certificates trusted for RFC 3161 stamps (None: the roots the
    bundle names, and the checks say so). `document_sm3`: the SM3 of the document's bytes, when
    they are given: checked against the bundle's `document.sm3` where it has one."""
    checks: list[Check] = []
    if not isinstance(bundle, dict) or bundle.get("format") not in FORMATS:
        return Verdict((Check("format", False, f"not an {' or '.join(FORMATS)} bundle"),))
    version = str(bundle["format"])
    checks.append(Check("format", True, version))

    try:
        claimed = str(bundle["document"]["sha256"]).lower()
        leaf_values = [str(v).lower() for v in bundle["leaf"]["values"]]
        leaf_hash = from_hex32(bundle["leaf"]["hash"])
        root = from_hex32(bundle["merkle"]["root"])
        path = [from_hex32(p) for p in bundle["merkle"]["proof"]]
        anchor = bundle["anchor"]
        receipt = bundle["intake_receipt"]
        if len(leaf_values) != 2 or not all(is_hex32(v) for v in leaf_values):
            raise ValueError("leaf.values must be two 32-byte hex values")
        stamps, deposits, witnesses = _witness_sections(bundle, version)
        sm3_claim = claimed_sm3(bundle)
        if sm3_claim is not None and not is_hex32(sm3_claim):
            raise ValueError("document.sm3 must be a 32-byte hex value")
    except (KeyError, TypeError, ValueError) as exc:
        checks.append(Check("structure", False, f"malformed bundle: {exc}"))
        return Verdict(tuple(checks))

    if document_sha256 is None:
        checks.append(Check("document_hash", None, "no document or hash given to compare"))
    else:
        ok = document_sha256.lower() == claimed
        detail = f"sha256 {document_sha256.lower()}" + ("" if ok else f", bundle says {claimed}")
        checks.append(Check("document_hash", ok, detail))
    if document_sm3 is not None and sm3_claim is not None:
        ok = document_sm3.lower() == sm3_claim
        detail = f"sm3 {document_sm3.lower()}" + ("" if ok else f", bundle says {sm3_claim}")
        checks.append(Check("document_sm3", ok, detail))

    ok, detail, statement = verify_receipt(receipt, trusted_keys)
    if ok:
        signed_sm3 = statement.get("sm3")
        if str(statement.get("sha256", "")).lower() != claimed:
            ok, detail = False, "receipt is for another sha256"
        elif statement.get("document_id") != bundle["document"].get("id"):
            ok, detail = False, "receipt is for another document id"
        elif sm3_claim is not None and str(signed_sm3 or "").lower() != sm3_claim:
            ok, detail = False, "receipt does not sign the bundle's sm3"
    checks.append(Check("receipt_signature", ok, detail))

    recomputed = merkle.leaf_hash(from_hex32(leaf_values[0]), from_hex32(leaf_values[1]))
    leaf_ok = leaf_values[0] == claimed and recomputed == leaf_hash
    checks.append(
        Check(
            "leaf",
            leaf_ok,
            "keccak256(keccak256(abi.encode(sha256, salt))) matches"
            if leaf_ok
            else "leaf does not commit to this document's sha256",
        )
    )
    path_ok = merkle.verify(root, leaf_hash, path)
    checks.append(
        Check(
            "merkle_path",
            path_ok,
            f"{len(path)} sibling(s) lead to the root"
            if path_ok
            else "proof does not lead to root",
        )
    )
    checks.extend(_chain_checks(chain, anchor, root))
    checks.extend(_timestamp_checks(stamps, witnesses, root, tsa_roots))
    checks.extend(_deposit_checks(deposits, witnesses, root))
    return Verdict(tuple(checks))


def _witness_sections(
    bundle: dict[str, Any], version: str
) -> tuple[list[Any], list[Any], list[str]]:
    """(RFC 3161 stamps, judicial-chain deposits, witnesses) as the bundle's format has them."""
    if version == PROOF_FORMAT_V1:
        return [], [], [CHAIN_WITNESS]
    stamps, witnesses = bundle["timestamps"], bundle["witnesses"]
    deposits = bundle["deposits"] if version == PROOF_FORMAT else []
    if not all(isinstance(x, list) for x in (stamps, witnesses, deposits)):
        raise ValueError("timestamps, deposits and witnesses must be lists")
    if len(stamps) > MAX_TIMESTAMPS:
        raise ValueError(f"at most {MAX_TIMESTAMPS} time-stamps")
    if len(deposits) > MAX_DEPOSITS:
        raise ValueError(f"at most {MAX_DEPOSITS} deposits")
    return stamps, deposits, [str(w) for w in witnesses]


def _deposit_checks(deposits: list[Any], witnesses: list[str], root: bytes) -> list[Check]:
    """One check per judicial-chain deposit; every deposit witness listed has an entry and
    every entry's type is listed."""
    listed = {w for w in witnesses if w not in (CHAIN_WITNESS, "rfc3161")}
    present = {str(e.get("type")) for e in deposits if isinstance(e, dict)}
    if listed != present:
        return [
            Check(
                "judicial_deposit",
                False,
                f"witnesses list {sorted(listed)} but the deposits are of {sorted(present)}",
            )
        ]
    out = []
    for entry in deposits:
        ok, detail = verify_deposit(entry, root)
        out.append(Check("judicial_deposit", ok, detail))
    return out


def _timestamp_checks(
    stamps: list[Any],
    witnesses: list[str],
    root: bytes,
    tsa_roots: Sequence[Certificate] | None,
) -> list[Check]:
    """One check per RFC 3161 stamp; a bundle that claims the witness must carry a stamp."""
    from .timestamps import verify_entry  # the rfc3161 library loads only when needed

    if "rfc3161" in witnesses and not stamps:
        return [Check("rfc3161_timestamp", False, "witness rfc3161 is listed but no stamp")]
    if stamps and "rfc3161" not in witnesses:
        return [Check("rfc3161_timestamp", False, "stamps present but rfc3161 not listed")]
    out = []
    for entry in stamps:
        ok, detail = verify_entry(entry, root, tsa_roots)
        out.append(Check("rfc3161_timestamp", ok, detail))
    return out


def _chain_checks(chain: ChainView | None, anchor: Any, root: bytes) -> list[Check]:
    names = ("chain_id", "root_anchored", "anchor_transaction", "block_timestamp")
    if chain is None:
        return [Check(n, None, "offline: chain not consulted") for n in names]
    try:
        registry = str(anchor["registry"])
        tx_hash = str(anchor["tx_hash"])
        block_number = int(anchor["block_number"])
        block_hash = str(anchor["block_hash"]).lower()
        stated_ts = int(anchor["block_timestamp"])
        stated_chain = int(anchor["chain_id"])
    except (KeyError, TypeError, ValueError) as exc:
        return [Check("anchor", False, f"malformed anchor section: {exc}")]
    out: list[Check] = []
    actual_chain = chain.chain_id()
    out.append(
        Check(
            "chain_id",
            actual_chain == stated_chain,
            f"RPC serves chain {actual_chain}, bundle states {stated_chain}",
        )
    )
    anchored_at = chain.anchored_at(registry, root)
    out.append(
        Check(
            "root_anchored",
            anchored_at != 0,
            f"anchoredAt(root) = {anchored_at} on registry {registry}"
            if anchored_at
            else f"root is not anchored on registry {registry}",
        )
    )
    tx = chain.anchor_tx(tx_hash)
    root_hex = to_hex(root)
    if tx is None:
        out.append(Check("anchor_transaction", False, f"transaction {tx_hash} not found"))
    else:
        tx_ok = (
            tx.succeeded
            and tx.to.lower() == registry.lower()
            and tx.block_number == block_number
            and tx.block_hash.lower() == block_hash
            and root_hex in tx.anchored_roots
        )
        detail = (
            f"{tx_hash} in block {block_number} emitted Anchored(root)"
            if tx_ok
            else f"{tx_hash} does not anchor this root in block {block_number} ({block_hash})"
        )
        out.append(Check("anchor_transaction", tx_ok, detail))
    block = chain.block(block_number)
    ts_ok = (
        block is not None
        and block[0].lower() == block_hash
        and block[1] == stated_ts
        and anchored_at == stated_ts
    )
    out.append(
        Check(
            "block_timestamp",
            ts_ok,
            f"block {block_number} has timestamp {stated_ts}"
            if ts_ok
            else f"block {block_number} or its timestamp differs from the bundle ({stated_ts})",
        )
    )
    return out

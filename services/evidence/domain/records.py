"""A stored document and the batch that anchored it, as the service layer reads them, and what
is said about them: a document's description, the facts of its anchor, its proof bundle."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from offerseal_verify.hexbytes import from_hex32
from offerseal_verify.proofs import AnchorFacts, build_bundle

from .documents import ANCHORED, status_of
from .statements import provenance_of, receipt_time, sm3_of


@dataclass(frozen=True, slots=True)
class StoredDocument:
    """A document's row: what intake stored and where its proof stands."""

    seq: int  # the internal row number
    id: str
    tenant: str
    sequence: int  # the tenant's receipt sequence
    kind: str
    candidate_ref: str
    agreement_id: str | None
    milestone: str | None
    sha256: str
    salt: str
    leaf: str
    size: int | None
    content_type: str | None
    filename: str | None
    has_content: bool
    received_at: dt.datetime
    receipt: dict[str, Any] | None  # its own receipt, or (batch) its path; None: rebuilt
    intake_batch_id: int | None  # hash-only intake: the batch receipt it is a member of
    batch_id: int | None  # the anchoring batch of its current proof


@dataclass(frozen=True, slots=True)
class StoredBatch:
    """An anchoring batch: its root and, once mined, its transaction."""

    id: int
    state: str
    root: str
    chain_id: int
    registry_address: str
    tx_hash: str | None
    block_number: int | None
    block_hash: str | None
    block_timestamp: int | None
    superseded_at: dt.datetime | None


def anchor_facts(batch: StoredBatch) -> AnchorFacts:
    """Where an anchored batch's root is on chain."""
    assert batch.tx_hash and batch.block_hash is not None
    return AnchorFacts(
        chain_id=batch.chain_id,
        registry=batch.registry_address,
        tx_hash=batch.tx_hash,
        block_number=int(batch.block_number or 0),
        block_hash=batch.block_hash,
        block_timestamp=int(batch.block_timestamp or 0),
    )


def describe(
    doc: StoredDocument, batch: StoredBatch | None, receipt: dict[str, Any]
) -> dict[str, Any]:
    """A document as the API describes it: its facts, status, receipt and provenance, and its
    anchor once its batch is anchored."""
    out: dict[str, Any] = {
        "id": doc.id,
        "sha256": doc.sha256,
        "sm3": sm3_of(receipt),
        "kind": doc.kind,
        "candidate_ref": doc.candidate_ref,
        "agreement_id": doc.agreement_id,
        "milestone": doc.milestone,
        "size": doc.size,
        "content_type": doc.content_type,
        "filename": doc.filename,
        "has_content": doc.has_content,
        "status": status_of(batch.state if batch else None),
        "received_at": receipt_time(doc.received_at),
        "intake_receipt": receipt,
        "provenance": provenance_of(receipt),
        "anchor": None,
    }
    if batch is not None and batch.state == ANCHORED:
        out["anchor"] = anchor_facts(batch).__dict__
    return out


def bundle(
    doc: StoredDocument,
    batch: StoredBatch,
    proof: Sequence[str],
    stamps: list[dict[str, Any]],
    receipt: dict[str, Any],
    deposits: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The proof bundle of a document in a batch: its statement, salt and path to the root,
    the anchor, its receipt, and the root's stamps and deposits."""
    document = {
        "id": doc.id,
        "sha256": doc.sha256,
        "kind": doc.kind,
        "received_at": receipt_time(doc.received_at),
    }
    sm3 = sm3_of(receipt)
    if sm3 is not None:
        document["sm3"] = sm3
    return build_bundle(
        document=document,
        salt=from_hex32(doc.salt),
        proof=[from_hex32(p) for p in proof],
        root=from_hex32(batch.root),
        anchor=anchor_facts(batch)
        if batch.tx_hash and batch.block_hash
        else AnchorFacts(batch.chain_id, batch.registry_address, batch.tx_hash or "", 0, "", 0),
        receipt=receipt,
        timestamps=stamps,
        deposits=deposits or [],
    )


def deposit_key(witness: str, tenant: str) -> str:
    """How a deposit made with a tenant's own account is stored (`batch_deposits.witness`):
    the witness and a digest of the tenant (40 characters at most, whatever the tenant id)."""
    return f"{witness}@{hashlib.sha256(tenant.encode()).hexdigest()[:16]}"


def deposits_seen_by(
    rows: Sequence[tuple[str, dict[str, Any]]], tenant: str
) -> list[dict[str, Any]]:
    """A batch root's judicial-chain deposits as the tenant's bundle entries, by witness: made
    with the tenant's own account where it has one, else the deployment's; never another
    tenant's."""
    own: dict[str, dict[str, Any]] = {}
    for witness, entry in rows:
        platform, mine, _ = witness.partition("@")
        if mine and witness == deposit_key(platform, tenant):
            own[platform] = entry
    shared = {w: e for w, e in rows if "@" not in w and w not in own}
    return [dict(entry) for _, entry in sorted({**shared, **own}.items())]

"""Finalizing an anchored batch: the batch and its documents recorded as anchored, with the
messages that tell each tenant (and each agreement's milestone) where its proof stands."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, any_, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from offerseal_verify.hexbytes import from_hex32

from ..shared import messages
from ..shared.broker import enqueue
from ..shared.db import Database
from ..shared.models import utcnow
from .domain.documents import CANDIDATE_LINK
from .models import Batch, BatchMember, Document
from .trees import path_hex, tree_of

log = logging.getLogger("offerseal.evidence.anchoring")


def seq_among(session: Session, seqs: Sequence[int]) -> ColumnElement[bool]:
    """`Document.seq IN seqs`; on PostgreSQL as `= ANY(array)`, one parameter (an IN list of
    10,000 takes longer to compile and to plan than the update takes)."""
    if session.connection().dialect.name == "postgresql":
        return Document.seq == any_(bindparam("seqs", list(seqs), type_=ARRAY(BigInteger)))
    return Document.seq.in_(seqs)


def finalize(db: Database, batch_id: int, receipt: Any, block_timestamp: int) -> None:
    """The batch's transaction is mined and confirmed: in one database transaction the batch
    and its documents become anchored, and the `evidence.anchored` messages go into the outbox
    (one per tenant and batch, one per document tied to an agreement's milestone)."""
    with db.transaction() as session:
        batch = session.get(Batch, batch_id)
        assert batch is not None
        if batch.state == "anchored":
            return
        batch.state = "anchored"
        batch.tx_hash = receipt["transactionHash"].to_0x_hex()
        batch.block_number = int(receipt["blockNumber"])
        batch.block_hash = receipt["blockHash"].to_0x_hex()
        batch.block_timestamp = block_timestamp
        batch.gas_used = int(receipt["gasUsed"])
        batch.anchored_at = utcnow()
        # The batch's documents found by its members (by primary key), not by `batch_id`
        # (no index: a scan of every document ever taken in, twice a batch).
        members_seq = seq_among(
            session,
            session.execute(
                select(BatchMember.document_seq).where(BatchMember.batch_id == batch_id)
            )
            .scalars()
            .all(),
        )
        members = session.execute(
            select(
                Document.id,
                Document.tenant,
                Document.kind,
                Document.candidate_ref,
                Document.agreement_id,
                Document.milestone,
                Document.leaf,
                Document.sha256,
                Document.salt,
                Document.api_key_id,
                BatchMember.proof,
            )
            .join(BatchMember, BatchMember.document_seq == Document.seq)
            .where(
                BatchMember.batch_id == batch_id,
                members_seq,
                Document.agreement_id.is_not(None),
            )
        ).all()
        per_tenant = session.execute(
            select(Document.tenant, func.count())
            .where(Document.batch_id == batch_id, members_seq)
            .group_by(Document.tenant)
        ).all()
        anchor_facts = {
            "batch_id": batch.id,
            "root": batch.root,
            "chain_id": batch.chain_id,
            "registry": batch.registry_address,
            "tx_hash": batch.tx_hash,
            "block_number": batch.block_number,
            "block_timestamp": batch.block_timestamp,
        }
        # One message per tenant and batch; a message per document only where a consumer
        # acts on it (documents tied to an agreement milestone). Thousands of per-document
        # messages nobody reads would only slow the relay and the broker.
        enqueue(
            session,
            [
                messages.build(
                    messages.EVIDENCE_BATCH_ANCHORED,
                    tenant,
                    {**anchor_facts, "documents": int(count)},
                )
                for tenant, count in per_tenant
            ]
            + [
                messages.build(
                    messages.EVIDENCE_ANCHORED,
                    m.tenant,
                    {
                        "document_id": m.id,
                        "kind": m.kind,
                        "candidate_ref": m.candidate_ref,
                        "agreement_id": m.agreement_id,
                        "milestone": m.milestone,
                        "leaf": m.leaf,
                        "values": [m.sha256, m.salt],  # the leaf's values
                        "via_candidate_link": m.api_key_id == CANDIDATE_LINK,
                        "root": batch.root,
                        "proof": proof,
                        "chain_id": batch.chain_id,
                        "registry": batch.registry_address,
                        "tx_hash": batch.tx_hash,
                        "block_number": batch.block_number,
                        "block_timestamp": batch.block_timestamp,
                        "batch_id": batch.id,
                    },
                )
                for m, proof in zip(members, _paths(batch, members), strict=True)
            ],
        )
    log.info(
        "batch %s anchored in block %s (%s gas for %s leaves)",
        batch_id,
        receipt["blockNumber"],
        receipt["gasUsed"],
        batch.leaf_count,
    )


def _paths(batch: Batch, members: Sequence[Any]) -> list[list[str]]:
    """The members' proofs: as stored (batches prepared before revision 0022), or rebuilt
    from the batch's stored leaves (the tree built only if some member needs it)."""
    tree = None
    paths = []
    for m in members:
        if m.proof is not None:
            paths.append(list(m.proof))
            continue
        if tree is None:
            tree = tree_of(batch.leaves)
        paths.append(path_hex(tree, from_hex32(m.leaf)))
    return paths

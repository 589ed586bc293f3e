"""Evidence tables: documents, their encrypted bytes, anchor batches and per-batch proofs, each
tenant's receipt counter and every receipt key that ever signed."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from ..shared.db import Base
from ..shared.models import BigId, IdempotencyRecord, utcnow

__all__ = [
    "Batch",
    "BatchDeposit",
    "BatchMember",
    "BatchTimestamp",
    "Document",
    "DocumentBlob",
    "IdempotencyRecord",
    "IntakeBatch",
]


class Document(Base):
    __tablename__ = "documents"

    # `seq` is the internal row number (intake order across tenants, never shown); `sequence` is
    # the tenant's own intake number that receipts carry; `id` is the public identifier.
    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    tenant: Mapped[str] = mapped_column(String(128))
    sequence: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(40))
    candidate_ref: Mapped[str] = mapped_column(String(200))
    agreement_id: Mapped[str | None] = mapped_column(String(100))
    milestone: Mapped[str | None] = mapped_column(String(60))
    sha256: Mapped[str] = mapped_column(String(66))
    salt: Mapped[str] = mapped_column(String(66))
    leaf: Mapped[str] = mapped_column(String(66), unique=True)
    size: Mapped[int | None] = mapped_column(BigInteger)
    content_type: Mapped[str | None] = mapped_column(String(200))
    filename: Mapped[str | None] = mapped_column(String(300))
    has_content: Mapped[bool] = mapped_column(Boolean, default=False)
    api_key_id: Mapped[str] = mapped_column(String(32))
    received_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    # The signed receipt; JSON null (None) for hash-only intake since revision 0022: rebuilt
    # from the intake batch's receipt and stored leaves when served.
    receipt: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=False)
    # A document's status is its batch's (`status_of`): no column, so anchoring a batch
    # does not touch its documents' rows a second time (revision 0022 dropped `status`).
    # The batch whose proof is current; NULL while pending (first time or after a chain reset).
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("batches.id"))
    # Hash-only intake: the signed batch receipt and its statements' leaves stored once;
    # `receipt` is JSON null (before revision 0022 it held this document's path,
    # {"item_proof": [...]}).
    intake_batch_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("intake_batches.id"))

    __table_args__ = (
        Index("ix_documents_tenant_sequence", "tenant", "sequence", unique=True),
        Index("ix_documents_tenant_candidate", "tenant", "candidate_ref", "sequence"),
        # The documents of one agreement (the console's board and timeline).
        Index("ix_documents_tenant_agreement", "tenant", "agreement_id"),
        # The anchoring worker's query: unbatched documents in intake order.
        Index(
            "ix_documents_unbatched",
            "seq",
            postgresql_where=text("batch_id IS NULL"),
            sqlite_where=text("batch_id IS NULL"),
        ),
    )


class IntakeBatch(Base):
    """The signed receipt of one hash-only intake request, stored once for all its documents."""

    __tablename__ = "intake_batches"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(128))
    receipt: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The statements' leaves in tree order, 32 bytes each: every document's path is rebuilt
    # from them (NULL for batches stored before revision 0022, whose rows keep their paths).
    leaves: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TenantSequence(Base):
    """The last intake sequence number a tenant's receipts carry (gap-free within a tenant)."""

    __tablename__ = "tenant_sequences"

    tenant: Mapped[str] = mapped_column(String(128), primary_key=True)
    last_sequence: Mapped[int] = mapped_column(BigInteger)


class ReceiptKey(Base):
    """A public key that signs (or signed) intake receipts, and when it did: from its first use
    until another key took over (NULL while current)."""

    __tablename__ = "receipt_keys"

    key_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    public_key_hex: Mapped[str] = mapped_column(String(64))
    valid_from: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    valid_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class DocumentBlob(Base):
    """AES-256-GCM ciphertext of a document; its data key is wrapped by the master key whose
    version (fingerprint) `key_version` names."""

    __tablename__ = "document_blobs"

    document_seq: Mapped[int] = mapped_column(ForeignKey("documents.seq"), primary_key=True)
    key_version: Mapped[str] = mapped_column(String(32))
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    nonce: Mapped[bytes] = mapped_column(LargeBinary)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)


class Batch(Base):
    """One Merkle tree and its anchor transaction.

    state: `prepared` (tree stored, transaction signed, maybe sent) -> `anchored`;
    `superseded` when the chain no longer holds the root (reset or reorg).
    """

    __tablename__ = "batches"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    root: Mapped[str] = mapped_column(String(66))
    leaf_count: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default="prepared")
    chain_id: Mapped[int] = mapped_column(BigInteger)
    registry_address: Mapped[str] = mapped_column(String(42))
    signer: Mapped[str] = mapped_column(String(42))
    nonce: Mapped[int | None] = mapped_column(BigInteger)
    tx_hash: Mapped[str | None] = mapped_column(String(66))
    raw_tx: Mapped[bytes | None] = mapped_column(LargeBinary)
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    block_hash: Mapped[str | None] = mapped_column(String(66))
    block_timestamp: Mapped[int | None] = mapped_column(BigInteger)
    gas_used: Mapped[int | None] = mapped_column(BigInteger)
    # The tree's leaves in tree order, 32 bytes each: each member's proof is rebuilt from them
    # (NULL for batches prepared before revision 0022, whose members keep their proofs).
    # Deferred: loaded only when a proof is rebuilt, not with every batch.
    leaves: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    anchored_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    superseded_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_batches_state", "state", "id"),)


class BatchMember(Base):
    """A document's leaf in one batch with its Merkle proof; kept when the batch is superseded."""

    __tablename__ = "batch_members"

    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"), primary_key=True)
    document_seq: Mapped[int] = mapped_column(ForeignKey("documents.seq"), primary_key=True)
    # JSON null (None) since revision 0022: rebuilt from `batches.leaves` when served.
    proof: Mapped[list[str] | None] = mapped_column(JSON, nullable=False)

    __table_args__ = (Index("ix_batch_members_document", "document_seq"),)


class BatchTimestamp(Base):
    """An RFC 3161 time-stamp of a batch's root by one TSA (the second witness): the TSA's
    reply as it came, checked against the root and the request's nonce before it was stored."""

    __tablename__ = "batch_timestamps"

    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"), primary_key=True)
    tsa: Mapped[str] = mapped_column(String(500), primary_key=True)
    response: Mapped[bytes] = mapped_column(LargeBinary)
    gen_time: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    serial_number: Mapped[str] = mapped_column(String(80))
    policy: Mapped[str] = mapped_column(String(200))
    certificates: Mapped[list[str]] = mapped_column(JSON)
    stamped_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class BatchDeposit(Base):
    """A judicial-chain deposit of a batch's root by one witness (the third kind): the bundle
    entry as the adapter made it from the provider's answer (`deposits.verify_deposit` reads it)."""

    __tablename__ = "batch_deposits"

    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"), primary_key=True)
    witness: Mapped[str] = mapped_column(String(40), primary_key=True)
    entry: Mapped[dict[str, Any]] = mapped_column(JSON)
    deposited_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class WitnessAccount(Base):
    """A tenant's own account with a judicial-chain witness (its credentials sealed under the
    master key, the tenant and witness bound in): the tenant's batches are deposited with it,
    instead of the deployment's account (OFFERSEAL_BTOE_*)."""

    __tablename__ = "evidence_witness_accounts"

    tenant: Mapped[str] = mapped_column(String(128), primary_key=True)
    witness: Mapped[str] = mapped_column(String(40), primary_key=True)
    key_version: Mapped[str] = mapped_column(String(32))
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    nonce: Mapped[bytes] = mapped_column(LargeBinary)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    secret_id_hint: Mapped[str] = mapped_column(String(16))  # its first characters, to show
    region: Mapped[str] = mapped_column(String(40))
    hash_algorithm: Mapped[str] = mapped_column(String(8))
    updated_by: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

"""Contracts tables: agreements (terms off chain, text, contact), milestones, chain operations
(prepared before sending, so a crash never loses or doubles a transaction) and risk signals."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from ..shared.db import Base
from ..shared.models import BigId, utcnow


class Agreement(Base):
    __tablename__ = "agreements"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128))
    onchain_id: Mapped[str] = mapped_column(String(66), unique=True)
    candidate_ref: Mapped[str] = mapped_column(String(200))
    # Null until the candidate enrols (a passkey's address, or their wallet's).
    candidate_address: Mapped[str | None] = mapped_column(String(42))
    contact: Mapped[dict[str, Any]] = mapped_column(JSON)  # never leaves our database/broker
    employer_name: Mapped[str] = mapped_column(String(200))
    employer_address: Mapped[str] = mapped_column(String(42))
    position: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
    monthly_salary: Mapped[int] = mapped_column(BigInteger)
    liquidated_damages: Mapped[int] = mapped_column(BigInteger)
    start_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    grace_days: Mapped[int] = mapped_column(Integer)
    offer_expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    language: Mapped[str] = mapped_column(String(8))
    terms_text: Mapped[str] = mapped_column(Text)
    terms_hash: Mapped[str] = mapped_column(String(66))
    non_compete: Mapped[bool] = mapped_column(Boolean, default=False)
    project_wrap_up: Mapped[bool] = mapped_column(Boolean, default=False)
    replacement_days: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(20))
    # The candidate's signed arrival on chain, and the employer's dispute of it.
    arrived_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    arrival_disputed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # The breach date (start plus grace) an `agreement.breach_due` was announced for: once each.
    breach_due_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    risk_level: Mapped[str] = mapped_column(String(8), default="blue")
    risk_score: Mapped[int] = mapped_column(Integer, default=100)
    risk_reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        Index("ix_agreements_tenant_state", "tenant", "state", "created_at"),
        Index("ix_agreements_tenant_risk", "tenant", "risk_level", "created_at"),
        Index("ix_agreements_state", "state"),
    )


class AgreementMilestone(Base):
    __tablename__ = "agreement_milestones"

    agreement_id: Mapped[str] = mapped_column(ForeignKey("agreements.id"), primary_key=True)
    idx: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    due_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    confirmed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    document_id: Mapped[str | None] = mapped_column(String(36))
    leaf: Mapped[str | None] = mapped_column(String(66))
    leaf_values: Mapped[list[str] | None] = mapped_column(JSON)  # [sha256, salt] of the leaf
    root: Mapped[str | None] = mapped_column(String(66))
    proof: Mapped[list[str] | None] = mapped_column(JSON)
    tx_hash: Mapped[str | None] = mapped_column(String(66))
    overdue_notified: Mapped[bool] = mapped_column(Boolean, default=False)


class ChainOp(Base):
    """A transaction about an agreement: stored signed before it is sent; `mined` once its
    effect is recorded. After a crash, prepared operations are finished, never sent twice."""

    __tablename__ = "chain_ops"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    agreement_id: Mapped[str] = mapped_column(ForeignKey("agreements.id"))
    op: Mapped[str] = mapped_column(String(32))
    args: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    signer: Mapped[str] = mapped_column(String(42))
    nonce: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[str] = mapped_column(String(66))
    raw_tx: Mapped[bytes] = mapped_column(LargeBinary)
    state: Mapped[str] = mapped_column(String(16), default="prepared")
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # The unsigned transaction (to re-sign it with the same nonce and a higher fee when it is
    # stuck), when and at which block its current bytes were last sent, and the hashes of the
    # attempts it replaced (any of which may be the one mined).
    tx_fields: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    sent_block: Mapped[int | None] = mapped_column(BigInteger)
    earlier_hashes: Mapped[list[str] | None] = mapped_column(JSON)

    __table_args__ = (
        Index("ix_chain_ops_state", "state", "id"),
        Index("ix_chain_ops_agreement", "agreement_id", "id"),  # one agreement's history
        Index("ix_chain_ops_signer_nonce", "signer", "nonce"),
    )


class AgreementSignal(Base):
    """What the candidate did (answered or missed a check-in), as reported by notify."""

    __tablename__ = "agreement_signals"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    agreement_id: Mapped[str] = mapped_column(ForeignKey("agreements.id"))
    kind: Mapped[str] = mapped_column(String(16))  # replied | missed
    answer: Mapped[str | None] = mapped_column(String(20))
    new_date: Mapped[str | None] = mapped_column(String(40))
    delay_hours: Mapped[float | None] = mapped_column(Float)
    occurred_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_agreement_signals_agreement", "agreement_id", "id"),)


class AgreementAmendment(Base):
    """New dates for an agreement and the re-issued text stating them. While offered it is
    applied at once; once committed it waits for the candidate's `Amendment` signature."""

    __tablename__ = "agreement_amendments"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    agreement_id: Mapped[str] = mapped_column(ForeignKey("agreements.id"))
    number: Mapped[int] = mapped_column(Integer)
    start_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    dues: Mapped[list[str]] = mapped_column(JSON)  # ISO date-times, one per milestone
    terms_text: Mapped[str] = mapped_column(Text)
    terms_hash: Mapped[str] = mapped_column(String(66))
    deadline: Mapped[int] = mapped_column(BigInteger)  # unix seconds; 0 when none is needed
    reason: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(
        String(20)
    )  # pending|awaiting_signature|applied|superseded|void|failed
    tx_hash: Mapped[str | None] = mapped_column(String(66))
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    applied_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_agreement_amendments_agreement", "agreement_id", "number", unique=True),
    )


class TenantEmployer(Base):
    """The tenant's own employer address on chain, which appointed the relayer as operator
    (`setOperator`). Without one, the relayer itself is the employer."""

    __tablename__ = "tenant_employers"

    tenant: Mapped[str] = mapped_column(String(128), primary_key=True)
    address: Mapped[str] = mapped_column(String(42), unique=True, index=True)
    updated_by: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TenantPolicy(Base):
    """A tenant's own choices (see policy.py); a null column means the default from settings."""

    __tablename__ = "tenant_policies"

    tenant: Mapped[str] = mapped_column(String(128), primary_key=True)
    auto_breach: Mapped[bool | None] = mapped_column(Boolean)
    candidate_uploads: Mapped[str | None] = mapped_column(String(16))
    updated_by: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class CandidateCode(Base):
    """A one-time code sent to the contact HR gave; only its hash is kept."""

    __tablename__ = "candidate_codes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    agreement_id: Mapped[str] = mapped_column(String(36), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    destination: Mapped[str] = mapped_column(String(80))  # masked: z***@example.com
    # keyed hash of the offer's contact it went to (the record shows it, not the contact)
    destination_hash: Mapped[str | None] = mapped_column(String(64))
    code_hash: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    verified_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # the enrolment session the proof opened (keyed hash of the browser's cookie), and when
    # the proof bound a signer: one proof binds once
    session_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class CandidateSigner(Base):
    """A signer bound to the agreement's candidate: a passkey (its P-256 public key and the
    address IntentAgreements derives from it) or a wallet's address, after a verified code."""

    __tablename__ = "candidate_signers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    agreement_id: Mapped[str] = mapped_column(String(36), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(42))
    credential_id: Mapped[str | None] = mapped_column(String(400))
    public_key_x: Mapped[str | None] = mapped_column(String(66))
    public_key_y: Mapped[str | None] = mapped_column(String(66))
    code_id: Mapped[str] = mapped_column(String(36))
    tx_hash: Mapped[str | None] = mapped_column(String(66))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class CandidateEvent(Base):
    """What the candidate did in the portal (the signing record is made of these)."""

    __tablename__ = "candidate_events"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    agreement_id: Mapped[str] = mapped_column(String(36), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(400))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RiskChange(Base):
    """Each change of an agreement's traffic light or its reasons, kept as its history (the
    `risk.changed` message announces the same, but the outbox forgets it after retention)."""

    __tablename__ = "agreement_risk_changes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    agreement_id: Mapped[str] = mapped_column(ForeignKey("agreements.id"))
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    previous: Mapped[str] = mapped_column(String(8))
    level: Mapped[str] = mapped_column(String(8))
    score: Mapped[int] = mapped_column(Integer)
    reasons: Mapped[list[str]] = mapped_column(JSON)

    __table_args__ = (Index("ix_agreement_risk_changes_agreement", "agreement_id", "id"),)

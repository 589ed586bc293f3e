"""Tables every service shares: API keys, the transactional outbox, handled-message ledger,
idempotency records, contract deployments and withdrawn links."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from .db import Base

# Big integer keys that SQLite still auto-increments (it only does so for INTEGER).
BigId = BigInteger().with_variant(Integer, "sqlite")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def aware(moment: dt.datetime) -> dt.datetime:
    """Times are stored in UTC; SQLite hands them back without an offset."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def iso(moment: dt.datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z, as every API answer shows times."""
    if moment is None:
        return None
    return aware(moment).astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


class ApiKey(Base):
    __tablename__ = "api_keys"

    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    tenant: Mapped[str] = mapped_column(String(128), index=True)
    label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class OutboxMessage(Base):
    """A message written in the same transaction as the state change it announces."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(36), unique=True)
    exchange: Mapped[str] = mapped_column(String(100))
    routing_key: Mapped[str] = mapped_column(String(200))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (
        # The relay's query: unsent rows in order. Partial index keeps it small.
        Index(
            "ix_outbox_unsent",
            "id",
            postgresql_where=text("sent_at IS NULL"),
            sqlite_where=text("sent_at IS NULL"),
        ),
        # The retention sweep's query: rows sent before a cutoff.
        Index(
            "ix_outbox_sent",
            "sent_at",
            postgresql_where=text("sent_at IS NOT NULL"),
            sqlite_where=text("sent_at IS NOT NULL"),
        ),
    )


class HandledMessage(Base):
    """Ledger of message ids a consumer has processed, written in its own transaction."""

    __tablename__ = "handled_messages"

    consumer: Mapped[str] = mapped_column(String(100), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    handled_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )


class IdempotencyRecord(Base):
    """The answer given to a request with an Idempotency-Key (per tenant), replayed to a retry
    with the same body; kept for the retention period."""

    __tablename__ = "idempotency_keys"

    tenant: Mapped[str] = mapped_column(String(128), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_sha256: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )


class ChainDeployment(Base):
    """Where a contract lives on a chain: shared by every replica through the database."""

    __tablename__ = "chain_deployments"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    address: Mapped[str] = mapped_column(String(42))
    deployed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Hash of block 0 of the chain the address was recorded on: a chain answering with another
    # genesis was reset; one with the same genesis but no code is a node that is behind.
    genesis_hash: Mapped[str | None] = mapped_column(String(66))


class LinkRevocation(Base):
    """Candidate links withdrawn: every link of the agreement (and, where set, of this
    candidate, purpose and subject) issued before `revoked_at` is refused with 410."""

    __tablename__ = "link_revocations"
    __table_args__ = (Index("ix_link_revocations_scope", "tenant", "agreement_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(128))
    agreement_id: Mapped[str] = mapped_column(String(100))
    candidate_ref: Mapped[str | None] = mapped_column(String(200))
    purpose: Mapped[str | None] = mapped_column(String(32))
    subject: Mapped[str | None] = mapped_column(String(100))
    revoked_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str] = mapped_column(String(200))
    revoked_by: Mapped[str] = mapped_column(String(64))


class ShortLink(Base):
    """A short path on the people's origin (`/l/<code>`) standing for one signed candidate link:
    the e-mail shows the code, never the token. It lives as long as its link (same expiry, same
    revocation scope)."""

    __tablename__ = "short_links"
    __table_args__ = (
        Index("ix_short_links_scope", "tenant", "agreement_id"),
        Index("ix_short_links_expires_at", "expires_at"),
    )

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    target: Mapped[str] = mapped_column(Text)
    tenant: Mapped[str] = mapped_column(String(128))
    agreement_id: Mapped[str] = mapped_column(String(100))
    candidate_ref: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(200))
    issued_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class BoardSummary(Base):
    """One agreement on the HR console's board (offered or committed), as the board shows it
    (`web/console/board.py`), kept so that the database filters, sorts and pages the board
    instead of deriving every row per request.
    Rebuilt from the facts when a row of `board_changes` names the agreement, or when
    `next_change_at` (a checkpoint's due date or the start of its "due soon" window) passes."""

    __tablename__ = "board_summaries"
    __table_args__ = (
        Index(
            "ix_board_summaries_urgency",
            "tenant",
            "urgency",
            "start_at",
            "candidate_ref",
            "agreement_id",
        ),
        Index("ix_board_summaries_start", "tenant", "start_at", "candidate_ref", "agreement_id"),
        Index("ix_board_summaries_score", "tenant", "risk_score", "candidate_ref", "agreement_id"),
        Index("ix_board_summaries_candidate", "tenant", "candidate_key", "agreement_id"),
        Index("ix_board_summaries_next_change", "tenant", "next_change_at"),
        Index("ix_board_summaries_choices", "tenant", "position", "start_week"),
    )

    agreement_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(20))
    candidate_ref: Mapped[str] = mapped_column(String(200))
    candidate_key: Mapped[str] = mapped_column(String(200))  # lower-cased, for sorting
    position: Mapped[str] = mapped_column(String(200))
    search: Mapped[str] = mapped_column(Text)  # case-folded text the board's search looks in
    risk_level: Mapped[str] = mapped_column(String(8))
    risk_score: Mapped[int] = mapped_column(Integer)
    overdue: Mapped[int] = mapped_column(Integer)
    due_soon: Mapped[int] = mapped_column(Integer)
    # Red, yellow, blue; then more overdue, more due soon, lower score (fixed-width digits).
    urgency: Mapped[str] = mapped_column(String(16))
    start_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    start_week: Mapped[str] = mapped_column(String(10))
    next_change_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)  # the cells and the rest of the row
    built_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class BoardChange(Base):
    """An agreement whose board summary is out of date: written by database triggers in the
    same transaction as the change to the agreement, its milestones, check-in answers, chain
    operations, touchpoints or documents (migration 0018), consumed by the board's refresh."""

    __tablename__ = "board_changes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    agreement_id: Mapped[str] = mapped_column(String(100))


class SignerNonce(Base):
    """The next nonce a signer sends with on a chain (see `nonces.py`): taken in the same
    database transaction that stores the transaction signed with it."""

    __tablename__ = "signer_nonces"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    signer: Mapped[str] = mapped_column(String(42), primary_key=True)
    next_nonce: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

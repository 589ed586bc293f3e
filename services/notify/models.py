"""Notify tables: what we know to reach a candidate, the agreements we follow, and the durable
schedule of touchpoints with every delivery attempt."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from ..shared.db import Base
from ..shared.models import BigId, utcnow


class NotifyCandidate(Base):
    __tablename__ = "notify_candidates"

    tenant: Mapped[str] = mapped_column(String(128), primary_key=True)
    candidate_ref: Mapped[str] = mapped_column(String(200), primary_key=True)
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(40))
    timezone: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(8))
    quiet_hours: Mapped[str] = mapped_column(String(11), default="21:00-09:00")
    channels: Mapped[list[str]] = mapped_column(JSON, default=list)
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class FollowedAgreement(Base):
    __tablename__ = "notify_agreements"

    agreement_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128))
    candidate_ref: Mapped[str] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(8))
    employer_name: Mapped[str] = mapped_column(String(200))
    position: Mapped[str] = mapped_column(String(200))
    start_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    milestones: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(20))


class Touchpoint(Base):
    """One planned message. `key` (agreement, kind, occurrence) makes planning idempotent."""

    __tablename__ = "touchpoints"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    key: Mapped[str] = mapped_column(String(120), unique=True)
    tenant: Mapped[str] = mapped_column(String(128))
    agreement_id: Mapped[str] = mapped_column(String(36))
    candidate_ref: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    occurrence: Mapped[int] = mapped_column(Integer)
    essential: Mapped[bool] = mapped_column(Boolean)
    due_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    state: Mapped[str] = mapped_column(String(16), default="planned")
    claimed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # the sent-journal slot of the dispatcher that claimed it (SentJournal.claimer)
    claimed_by: Mapped[str | None] = mapped_column(String(80))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    channel: Mapped[str | None] = mapped_column(String(16))
    message_id: Mapped[str | None] = mapped_column(String(200))
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    answer: Mapped[str | None] = mapped_column(String(20))
    new_date: Mapped[str | None] = mapped_column(String(10))
    answered_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    missed: Mapped[bool] = mapped_column(Boolean, default=False)
    detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        # The dispatcher's query: planned rows by due time. Partial, so rows planned for later
        # and finished rows cost nothing.
        Index(
            "ix_touchpoints_due",
            "due_at",
            postgresql_where=text("state = 'planned'"),
            sqlite_where=text("state = 'planned'"),
        ),
        Index(
            "ix_touchpoints_sending",
            "claimed_at",
            postgresql_where=text("state = 'sending'"),
            sqlite_where=text("state = 'sending'"),
        ),
        Index("ix_touchpoints_agreement", "agreement_id", "kind", "occurrence"),
        Index("ix_touchpoints_candidate", "tenant", "candidate_ref", "due_at"),
    )


class DeliveryAttempt(Base):
    __tablename__ = "touchpoint_attempts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    touchpoint_id: Mapped[str] = mapped_column(ForeignKey("touchpoints.id"))
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    channel: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str] = mapped_column(String(16))  # sent|retry|failed|skipped|deferred|moved
    detail: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_touchpoint_attempts_touchpoint", "touchpoint_id", "id"),)


class UsedToken(Base):
    """Reply tokens are single-use: a second use is refused, and nothing changes."""

    __tablename__ = "notify_used_tokens"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    used_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )


class TenantTemplate(Base):
    """A tenant's own subject and text for one touchpoint kind and language."""

    __tablename__ = "notify_templates"

    tenant: Mapped[str] = mapped_column(String(128), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    language: Mapped[str] = mapped_column(String(8), primary_key=True)
    subject: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TenantBranding(Base):
    """How a tenant's messages look and who answers them: the name candidates know, a logo, an
    accent colour, and the HR address replies go to (Reply-To)."""

    __tablename__ = "notify_branding"

    tenant: Mapped[str] = mapped_column(String(128), primary_key=True)
    display_name: Mapped[str | None] = mapped_column(String(100))
    logo_url: Mapped[str | None] = mapped_column(String(500))
    accent_colour: Mapped[str | None] = mapped_column(String(7))
    reply_to: Mapped[str | None] = mapped_column(String(320))
    updated_by: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class WeeklyReport(Base):
    """The weekly report e-mailed to one address of a tenant's HR list for one ISO week (sent,
    or refused for good): each is sent once (`weekly.py`)."""

    __tablename__ = "notify_weekly_reports"

    tenant: Mapped[str] = mapped_column(String(128), primary_key=True)
    week: Mapped[str] = mapped_column(String(10), primary_key=True)
    recipient: Mapped[str] = mapped_column(String(320), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))  # sent | failed
    detail: Mapped[str] = mapped_column(String(500))
    sent_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class SmsSend(Base):
    """One SMS handed to a provider (Aliyun, Tencent): its whole answer, kept as proof of
    notice, and the delivery report once the provider has one. Accepted rows are also what the
    providers' per-number limits count (`domain/sms.py`)."""

    __tablename__ = "notify_sms_sends"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    touchpoint_id: Mapped[str] = mapped_column(String(36))
    tenant: Mapped[str] = mapped_column(String(128))
    provider: Mapped[str] = mapped_column(String(16))
    phone: Mapped[str] = mapped_column(String(20))  # E.164
    sign_name: Mapped[str] = mapped_column(String(64))
    template: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    digest: Mapped[str] = mapped_column(String(64))  # template and parameters
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    outcome: Mapped[str] = mapped_column(String(16))  # accepted|throttled|invalid|unavailable
    code: Mapped[str] = mapped_column(String(100))
    request_id: Mapped[str] = mapped_column(String(100))
    message_ref: Mapped[str] = mapped_column(String(100))  # BizId / SerialNo
    answer: Mapped[dict[str, Any]] = mapped_column(JSON)
    report_status: Mapped[str | None] = mapped_column(String(16))  # delivered | failed
    report_code: Mapped[str | None] = mapped_column(String(100))
    report_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    __table_args__ = (
        Index("ix_notify_sms_sends_phone", "phone", "at"),
        Index("ix_notify_sms_sends_touchpoint", "touchpoint_id", "id"),
        Index(
            "ix_notify_sms_sends_waiting",
            "provider",
            "at",
            postgresql_where=text("outcome = 'accepted' AND report_status IS NULL"),
            sqlite_where=text("outcome = 'accepted' AND report_status IS NULL"),
        ),
    )


class TenantSms(Base):
    """A tenant's approved SMS sign name and one approved template id per message kind (the
    deployment's defaults apply where it set none)."""

    __tablename__ = "notify_sms_settings"

    tenant: Mapped[str] = mapped_column(String(128), primary_key=True)
    sign_name: Mapped[str | None] = mapped_column(String(64))
    templates: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    # The tenant's own account (`aliyun` or `tencent`) and its credentials sealed with the master
    # key; None: the deployment's account (OFFERSEAL_SMS_*).
    provider: Mapped[str | None] = mapped_column(String(16))
    sealed: Mapped[str | None] = mapped_column(Text)
    updated_by: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AlertHooks(Base):
    """A tenant's chat robots for HR alerts (DingTalk, WeCom, Feishu): their webhook URLs and
    signing secrets sealed with the master key (`sealed`), never shown again in clear."""

    __tablename__ = "notify_alert_hooks"

    tenant: Mapped[str] = mapped_column(String(128), primary_key=True)
    sealed: Mapped[str] = mapped_column(Text)
    platforms: Mapped[list[str]] = mapped_column(JSON)
    language: Mapped[str] = mapped_column(String(8))
    updated_by: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class HrAlert(Base):
    """Something HR should act on (a risk turned red, a check-in missed, ...), waiting for the
    tenant's robots: `pending` lists the platforms it has not reached yet."""

    __tablename__ = "notify_alerts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(32))
    agreement_id: Mapped[str] = mapped_column(String(36))
    candidate_ref: Mapped[str] = mapped_column(String(200))
    position: Mapped[str] = mapped_column(String(200))
    detail: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    pending: Mapped[list[str]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending | done

    __table_args__ = (
        Index(
            "ix_notify_alerts_pending",
            "tenant",
            "id",
            postgresql_where=text("state = 'pending'"),
            sqlite_where=text("state = 'pending'"),
        ),
    )


class AlertPost(Base):
    """One message posted to a robot (several alerts merged): what the platform answered."""

    __tablename__ = "notify_alert_posts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(128))
    platform: Mapped[str] = mapped_column(String(16))
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    outcome: Mapped[str] = mapped_column(String(16))  # accepted|throttled|refused|unavailable
    code: Mapped[str] = mapped_column(String(32))
    alerts: Mapped[list[int]] = mapped_column(JSON)
    answer: Mapped[dict[str, Any]] = mapped_column(JSON)

    __table_args__ = (Index("ix_notify_alert_posts_robot", "tenant", "platform", "at"),)


class TenantCalendar(Base):
    """A tenant's holiday calendar (`cn`: mainland China's public holidays and adjusted working
    days): check-ins wait out holidays, document requests count working days, the weekly report
    waits for the week's first working day. No row: plain calendar days."""

    __tablename__ = "notify_calendars"

    tenant: Mapped[str] = mapped_column(String(128), primary_key=True)
    calendar: Mapped[str] = mapped_column(String(8))
    updated_by: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class EmployerConsent(Base):
    """The candidate's authorisation, given in the portal, for HR to ask the former employer
    at `employer_domain` to confirm a certificate it issued; `statement` is the text the
    candidate read (what is shared, with whom, why)."""

    __tablename__ = "notify_employer_consents"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128))
    agreement_id: Mapped[str] = mapped_column(String(36))
    candidate_ref: Mapped[str] = mapped_column(String(200))
    employer_domain: Mapped[str] = mapped_column(String(253))
    statement: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(8))
    given_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    withdrawn_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_notify_employer_consents_scope", "tenant", "agreement_id", "employer_domain"),
    )


class EmployerConfirmation(Base):
    """HR's request to the former employer to confirm one document, and its answer (given once,
    through the link or by e-mail). One per document and employer domain."""

    __tablename__ = "notify_employer_confirmations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128))
    agreement_id: Mapped[str] = mapped_column(String(36))
    candidate_ref: Mapped[str] = mapped_column(String(200))
    document_id: Mapped[str] = mapped_column(String(36))
    document_kind: Mapped[str] = mapped_column(String(40))
    sha256: Mapped[str] = mapped_column(String(66))
    sm3: Mapped[str] = mapped_column(String(66))
    employer_domain: Mapped[str] = mapped_column(String(253))
    employer_email: Mapped[str] = mapped_column(String(320))
    consent_id: Mapped[str] = mapped_column(String(36))
    requested_by: Mapped[str] = mapped_column(String(32))
    requested_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    message_id: Mapped[str] = mapped_column(String(300))
    state: Mapped[str] = mapped_column(String(16))  # sending|sent|answered
    answer: Mapped[str | None] = mapped_column(String(16))
    answered_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    answered_via: Mapped[str | None] = mapped_column(String(8))
    reply: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # the e-mail reply and its DKIM
    attestation_document_id: Mapped[str | None] = mapped_column(String(36))

    __table_args__ = (
        Index(
            "ux_notify_employer_confirmations_once",
            "tenant",
            "document_id",
            "employer_domain",
            unique=True,
        ),
        Index("ix_notify_employer_confirmations_agreement", "agreement_id"),
        Index("ix_notify_employer_confirmations_recent", "tenant", "requested_at"),
    )

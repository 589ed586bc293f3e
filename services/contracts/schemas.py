"""What the contracts API accepts: one marshmallow schema per request body or query, and the
conversion of an offer request into the service layer's command. No business rules here (the
date rules are in `domain/dates.py`, the 30% cap in `domain/agreements.py`)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import marshmallow as ma
from eth_utils import is_checksum_address
from flask import current_app
from marshmallow import fields, validate, validates_schema

from .cover import LANGS as COVER_LANGS
from .domain.agreements import (
    DUE_TIME,
    MILESTONE_KINDS,
    START_TIME,
    STATES,
    at_local,
    damages_cap,
    within_cap,
)
from .domain.templates import LANGUAGES
from .service import NewAgreement

HEX_BYTES = validate.Regexp(r"^0x([0-9a-fA-F]{2})+$", error="expected 0x-prefixed hex bytes")


class Moment(fields.Field):
    """`2026-12-15` (a calendar date) or an ISO 8601 date-time (with or without offset)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, str):
            raise ma.ValidationError("expected a date (YYYY-MM-DD) or an ISO 8601 date-time")
        try:
            if len(value) == 10:
                return dt.date.fromisoformat(value)
            return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ma.ValidationError(
                "expected a date (YYYY-MM-DD) or an ISO 8601 date-time"
            ) from None


def _zone(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ma.ValidationError(f"unknown time zone {name!r} (use e.g. Asia/Shanghai)") from None


class Contact(ma.Schema):
    email = fields.Email(load_default=None)
    phone = fields.String(load_default=None, validate=validate.Length(max=40))
    timezone = fields.String(load_default=None, validate=_zone)
    language = fields.String(load_default=None, validate=validate.OneOf(LANGUAGES))


class MilestoneIn(ma.Schema):
    kind = fields.String(required=True, validate=validate.OneOf(list(MILESTONE_KINDS)))
    due = Moment(required=True)


class CreateAgreement(ma.Schema):
    candidate_ref = fields.String(required=True, validate=validate.Length(min=1, max=200))
    # Optional: without it the candidate enrols a passkey (or a wallet) in the portal.
    candidate_address = fields.String(load_default=None, allow_none=True)
    candidate_contact = fields.Nested(Contact, required=True)
    employer_name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    position = fields.String(required=True, validate=validate.Length(min=1, max=200))
    currency = fields.String(required=True, validate=validate.Regexp(r"^[A-Z]{3}$"))
    monthly_salary = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=1, max=2**127)
    )
    liquidated_damages = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=0, max=2**127)
    )
    start_date = Moment(required=True)
    grace_days = fields.Integer(load_default=3, validate=validate.Range(min=0, max=90))
    offer_expires_at = Moment(required=True)
    milestones = fields.List(
        fields.Nested(MilestoneIn), load_default=list, validate=validate.Length(max=8)
    )
    language = fields.String(load_default="zh-CN", validate=validate.OneOf(LANGUAGES))
    non_compete = fields.Boolean(load_default=False)
    project_wrap_up = fields.Boolean(load_default=False)
    replacement_days = fields.Integer(load_default=0, validate=validate.Range(min=0, max=3650))

    @validates_schema(skip_on_field_errors=True)
    def _rules(self, data: dict[str, Any], **_: Any) -> None:
        address = data["candidate_address"]
        if address is not None and not is_checksum_address(address):
            raise ma.ValidationError(
                "expected a checksummed 0x address (EIP-55)", "candidate_address"
            )
        if not within_cap(data["liquidated_damages"], data["monthly_salary"]):
            raise ma.ValidationError(
                f"above the legal cap of 30% of one month's salary "
                f"({damages_cap(data['monthly_salary'])})",
                "liquidated_damages",
            )


def to_new_agreement(data: dict[str, Any]) -> NewAgreement:
    """The request as the service layer's command: calendar dates mean their time of day in the
    candidate's zone (the tenant's default zone if none is given). The date rules are checked
    by the service layer (`domain/dates.py`)."""
    contact = data["candidate_contact"]
    tz = ZoneInfo(contact.get("timezone") or current_app.config["OFFERSEAL_DEFAULT_TIMEZONE"])
    contact = {**contact, "timezone": str(tz)}
    milestones = tuple((m["kind"], at_local(m["due"], tz, DUE_TIME)) for m in data["milestones"])
    return NewAgreement(
        candidate_ref=data["candidate_ref"],
        candidate_address=data["candidate_address"],
        contact=contact,
        employer_name=data["employer_name"],
        position=data["position"],
        currency=data["currency"],
        monthly_salary=data["monthly_salary"],
        liquidated_damages=data["liquidated_damages"],
        start_at=at_local(data["start_date"], tz, START_TIME),
        grace_days=data["grace_days"],
        offer_expires_at=at_local(data["offer_expires_at"], tz, DUE_TIME),
        milestones=milestones,
        language=data["language"],
        non_compete=data["non_compete"],
        project_wrap_up=data["project_wrap_up"],
        replacement_days=data["replacement_days"],
    )


class ListArgs(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE

    state = fields.String(validate=validate.OneOf([*STATES[1:], "offering", "failed"]))
    risk = fields.String(validate=validate.OneOf(["red", "yellow", "blue"]))
    after = fields.String()
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))


class TypedDataArgs(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE

    purpose = fields.String(
        load_default="commitment", validate=validate.OneOf(["commitment", "cancellation"])
    )
    deadline = fields.Integer(validate=validate.Range(min=1, max=2**64 - 1))


B64URL = validate.Regexp(r"^[A-Za-z0-9_-]+$", error="expected base64url")


class PasskeyAssertionIn(ma.Schema):
    """What `navigator.credentials.get()` returned, base64url without padding."""

    credential_id = fields.String(required=True, validate=[validate.Length(max=400), B64URL])
    authenticator_data = fields.String(
        required=True, validate=[validate.Length(min=50, max=2000), B64URL]
    )
    client_data_json = fields.String(
        required=True, validate=[validate.Length(min=20, max=4000), B64URL]
    )
    signature = fields.String(required=True, validate=[validate.Length(min=8, max=200), B64URL])


class _Signed(ma.Schema):
    """A signature: hex bytes (an Ethereum key or wallet), or a passkey's assertion."""

    signature = fields.String(load_default=None, validate=HEX_BYTES)
    passkey = fields.Nested(PasskeyAssertionIn, load_default=None)

    @validates_schema(skip_on_field_errors=True)
    def _one(self, data: dict[str, Any], **_: Any) -> None:
        if (data["signature"] is None) == (data["passkey"] is None):
            raise ma.ValidationError("give either signature or passkey", "signature")


class SignatureIn(_Signed):
    pass


class CodeRequestIn(ma.Schema):
    channel = fields.String(load_default="email", validate=validate.OneOf(["email", "sms"]))


class CodeIn(ma.Schema):
    code = fields.String(required=True, validate=validate.Regexp(r"^[0-9]{6}$", error="6 digits"))


class SignerIn(ma.Schema):
    kind = fields.String(required=True, validate=validate.OneOf(["passkey", "wallet"]))
    credential_id = fields.String(load_default=None, validate=[validate.Length(max=400), B64URL])
    public_key = fields.String(load_default=None, validate=[validate.Length(max=400), B64URL])
    address = fields.String(load_default=None)

    @validates_schema(skip_on_field_errors=True)
    def _complete(self, data: dict[str, Any], **_: Any) -> None:
        if data["kind"] == "passkey":
            for name in ("credential_id", "public_key"):
                if not data[name]:
                    raise ma.ValidationError("required for a passkey", name)
        elif not data["address"] or not is_checksum_address(data["address"]):
            raise ma.ValidationError("expected a checksummed 0x address (EIP-55)", "address")


class PortalEventIn(ma.Schema):
    kind = fields.String(
        required=True, validate=validate.OneOf(["text_opened", "text_read", "consent"])
    )
    seconds = fields.Integer(load_default=0, validate=validate.Range(min=0, max=86400 * 30))


class ArrivalArgs(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE

    deadline = fields.Integer(load_default=None, validate=validate.Range(min=1, max=2**64 - 1))


class ArrivalIn(_Signed):
    deadline = fields.Integer(required=True, validate=validate.Range(min=1, max=2**64 - 1))


class EvidenceIn(ma.Schema):
    document_id = fields.String(required=True, validate=validate.Length(min=1, max=36))


class CancelIn(ma.Schema):
    deadline = fields.Integer(load_default=0, validate=validate.Range(min=0, max=2**64 - 1))
    signature = fields.String(load_default="0x", validate=validate.Regexp(r"^0x([0-9a-fA-F]{2})*$"))


class MilestoneDateIn(ma.Schema):
    index = fields.Integer(required=True, strict=True, validate=validate.Range(min=0, max=7))
    due = Moment(required=True)


class AmendmentIn(ma.Schema):
    start_date = Moment(load_default=None)
    milestones = fields.List(
        fields.Nested(MilestoneDateIn), load_default=list, validate=validate.Length(max=8)
    )
    reason = fields.String(load_default=None, validate=validate.Length(max=1000))

    @validates_schema(skip_on_field_errors=True)
    def _something(self, data: dict[str, Any], **_: Any) -> None:
        if data["start_date"] is None and not data["milestones"]:
            raise ma.ValidationError("give a new start date or milestone dates", "start_date")
        indexes = [m["index"] for m in data["milestones"]]
        if len(set(indexes)) != len(indexes):
            raise ma.ValidationError("each milestone at most once", "milestones")


class EmployerIn(ma.Schema):
    address = fields.String(required=True, allow_none=True)
    signature = fields.String(
        load_default=None, validate=validate.Regexp(r"^0x([0-9a-fA-F]{2})+\Z")
    )
    deadline = fields.Integer(load_default=None, validate=validate.Range(min=0, max=2**64 - 1))

    @validates_schema(skip_on_field_errors=True)
    def _checksummed(self, data: dict[str, Any], **_: Any) -> None:
        if data["address"] is not None and not is_checksum_address(data["address"]):
            raise ma.ValidationError("expected a checksummed 0x address (EIP-55)", "address")


class BindingArgs(ma.Schema):
    address = fields.String(required=True)
    deadline = fields.Integer(load_default=None, validate=validate.Range(min=0, max=2**64 - 1))

    @validates_schema(skip_on_field_errors=True)
    def _checksummed(self, data: dict[str, Any], **_: Any) -> None:
        if not is_checksum_address(data["address"]):
            raise ma.ValidationError("expected a checksummed 0x address (EIP-55)", "address")


class RevokeIn(ma.Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=200))


class PolicyIn(ma.Schema):
    auto_breach = fields.Boolean(allow_none=True)
    candidate_uploads = fields.String(allow_none=True, validate=validate.OneOf(["review", "auto"]))


class DossierArgs(ma.Schema):
    lang = fields.String(
        load_default="zh-CN",
        validate=validate.OneOf(COVER_LANGS),
        metadata={"description": "language of the cover report"},
    )
    wait = fields.Float(
        load_default=20.0,
        validate=validate.Range(min=0, max=60),
        metadata={"description": "seconds to wait for the manifest's anchoring before 202"},
    )

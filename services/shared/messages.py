"""Every message OfferSeal services exchange, each declared once: schema, type, version, routing.

Publishers `dump()` and consumers `load()` with the same class; the broker carries JSON only.
A message is an envelope (`message_id`, `type`, `version`, `occurred_at`, `producer`, `tenant`,
`payload`) whose payload is validated by the schema registered for its type and version.
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from dataclasses import dataclass
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

EXCHANGE = "offerseal.events"

HEX32 = validate.Regexp(r"^0x[0-9a-fA-F]{64}\Z", error="expected 0x followed by 64 hex digits")
ADDRESS = validate.Regexp(r"^0x[0-9a-fA-F]{40}$", error="expected a 20-byte 0x address")


class MessageError(ValueError):
    """A message that cannot be accepted; `reason` says why (sent to the dead-letter queue)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Envelope(ma.Schema):
    message_id = fields.UUID(required=True)
    type = fields.String(required=True)
    version = fields.Integer(required=True, validate=validate.Range(min=1))
    occurred_at = fields.AwareDateTime(required=True, default_timezone=dt.UTC)
    producer = fields.String(required=True)
    tenant = fields.String(required=True)
    payload = fields.Dict(required=True)


class EvidenceAnchoredV1(ma.Schema):
    """A document tied to an agreement milestone is anchored; carries what a consumer needs to
    confirm the milestone on chain without calling back (no personal data). Published only for
    documents with an `agreement_id`; every batch also gets `evidence.batch_anchored`."""

    document_id = fields.String(required=True)
    kind = fields.String(required=True)
    candidate_ref = fields.String(required=True)
    agreement_id = fields.String(load_default=None, allow_none=True)
    milestone = fields.String(load_default=None, allow_none=True)
    leaf = fields.String(required=True, validate=HEX32)
    # The leaf's [sha256, salt]: IntentAgreements 2 computes the leaf from them. Optional while
    # publishers that send only the leaf exist (a milestone is then confirmed through the API).
    values = fields.List(
        fields.String(validate=HEX32),
        load_default=None,
        allow_none=True,
        validate=validate.Length(equal=2),
    )
    # uploaded by the candidate through their link (a tenant may want HR to review it first)
    via_candidate_link = fields.Boolean(load_default=False)
    root = fields.String(required=True, validate=HEX32)
    proof = fields.List(fields.String(validate=HEX32), required=True)
    chain_id = fields.Integer(required=True)
    registry = fields.String(required=True, validate=ADDRESS)
    tx_hash = fields.String(required=True, validate=HEX32)
    block_number = fields.Integer(required=True)
    block_timestamp = fields.Integer(required=True)
    batch_id = fields.Integer(required=True)


class EvidenceBatchAnchoredV1(ma.Schema):
    """A batch of a tenant's documents is anchored: one message per tenant and batch."""

    batch_id = fields.Integer(required=True)
    root = fields.String(required=True, validate=HEX32)
    documents = fields.Integer(required=True, validate=validate.Range(min=1))
    chain_id = fields.Integer(required=True)
    registry = fields.String(required=True, validate=ADDRESS)
    tx_hash = fields.String(required=True, validate=HEX32)
    block_number = fields.Integer(required=True)
    block_timestamp = fields.Integer(required=True)


class EvidenceSupersededV1(ma.Schema):
    """The chain no longer holds a root (reset or reorg); its proofs are superseded and the
    documents will be anchored again (a new `evidence.anchored` follows)."""

    root = fields.String(required=True, validate=HEX32)
    batch_id = fields.Integer(required=True)
    chain_id = fields.Integer(required=True)
    document_ids = fields.List(fields.String(), required=True)


class ContactSchema(ma.Schema):
    email = fields.Email(load_default=None, allow_none=True)
    phone = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=40))
    timezone = fields.String(load_default=None, allow_none=True)
    language = fields.String(load_default=None, allow_none=True)


class MilestoneDueSchema(ma.Schema):
    kind = fields.String(required=True)
    due_at = fields.AwareDateTime(required=True, default_timezone=dt.UTC)


class AgreementOfferedV1(ma.Schema):
    """An agreement was offered on chain: notify sends the signing invitation. Carries the
    candidate's contact data, which stays inside OfferSeal (broker and databases, never chain)."""

    agreement_id = fields.String(required=True)
    onchain_id = fields.String(required=True, validate=HEX32)
    candidate_ref = fields.String(required=True)
    candidate_contact = fields.Nested(ContactSchema, required=True)
    language = fields.String(required=True)
    position = fields.String(required=True)
    employer_name = fields.String(required=True)
    start_at = fields.AwareDateTime(required=True, default_timezone=dt.UTC)
    offer_expires_at = fields.AwareDateTime(required=True, default_timezone=dt.UTC)
    signing_link = fields.Url(required=True, require_tld=False)
    milestones = fields.List(fields.Nested(MilestoneDueSchema), required=True)
    liquidated_damages = fields.Integer(required=True)
    currency = fields.String(required=True)


class CandidateCodeRequestedV1(ma.Schema):
    """The candidate asked for a one-time code to prove the contact HR gave: notify sends it at
    once (essential). The code lives ten minutes; contracts keeps only its keyed hash."""

    agreement_id = fields.String(required=True)
    candidate_ref = fields.String(required=True)
    channel = fields.String(required=True, validate=validate.OneOf(["email", "sms"]))
    # The offer's own contact for the channel: the code goes there and nowhere else (not to an
    # address notify keeps for the candidate reference, which another offer may have changed).
    destination = fields.String(required=True, validate=validate.Length(min=3, max=320))
    code_id = fields.String(required=True)
    code = fields.String(required=True, validate=validate.Regexp(r"^[0-9]{6}$"))
    expires_at = fields.AwareDateTime(required=True, default_timezone=dt.UTC)


class CandidateSignerBoundV1(ma.Schema):
    """A passkey or wallet was bound as the candidate's signer (`replaced`: another was bound
    before): notify tells the candidate at once on every contact the offer names."""

    agreement_id = fields.String(required=True)
    candidate_ref = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(["passkey", "wallet"]))
    replaced = fields.Boolean(required=True)
    bound_at = fields.AwareDateTime(required=True, default_timezone=dt.UTC)
    email = fields.String(load_default=None, allow_none=True)
    phone = fields.String(load_default=None, allow_none=True)


class AgreementStateChangedV1(ma.Schema):
    """An agreement reached a new state on chain (committed, fulfilled, breached, ...)."""

    agreement_id = fields.String(required=True)
    onchain_id = fields.String(required=True, validate=HEX32)
    candidate_ref = fields.String(required=True)
    state = fields.String(required=True)
    tx_hash = fields.String(load_default=None, allow_none=True)
    liquidated_damages = fields.Integer(required=True)
    currency = fields.String(required=True)
    start_at = fields.AwareDateTime(required=True, default_timezone=dt.UTC)


class AgreementBreachDueV1(ma.Schema):
    """A committed agreement's candidate has no arrival standing (none recorded, or disputed)
    and a breach becomes declarable at `declarable_at` (start plus grace), soon or already:
    HR is told once, before it falls due. `automatic`: the sweeper will declare it itself."""

    agreement_id = fields.String(required=True)
    candidate_ref = fields.String(required=True)
    declarable_at = fields.AwareDateTime(required=True, default_timezone=dt.UTC)
    automatic = fields.Boolean(required=True)
    liquidated_damages = fields.Integer(required=True)
    currency = fields.String(required=True)


class AgreementArrivalDisputedV1(ma.Schema):
    """The employer disputed the candidate's recorded arrival on chain: a breach becomes
    declarable again from `declarable_at` (start plus grace)."""

    agreement_id = fields.String(required=True)
    candidate_ref = fields.String(required=True)
    arrived_at = fields.AwareDateTime(load_default=None, allow_none=True, default_timezone=dt.UTC)
    disputed_at = fields.AwareDateTime(required=True, default_timezone=dt.UTC)
    declarable_at = fields.AwareDateTime(required=True, default_timezone=dt.UTC)


class MilestoneAtSchema(ma.Schema):
    index = fields.Integer(required=True)
    kind = fields.String(required=True)
    due_at = fields.AwareDateTime(required=True, default_timezone=dt.UTC)


class _AmendmentFields(ma.Schema):
    agreement_id = fields.String(required=True)
    candidate_ref = fields.String(required=True)
    amendment_id = fields.String(required=True)
    number = fields.Integer(required=True, validate=validate.Range(min=1))
    start_at = fields.AwareDateTime(required=True, default_timezone=dt.UTC)
    milestones = fields.List(fields.Nested(MilestoneAtSchema), required=True)


class AgreementAmendmentProposedV1(_AmendmentFields):
    """HR proposed new dates for a committed agreement: the candidate is asked to read the
    re-issued text and sign the `Amendment` before `deadline`."""

    signing_link = fields.Url(required=True, require_tld=False)
    deadline = fields.AwareDateTime(required=True, default_timezone=dt.UTC)
    reason = fields.String(load_default=None, allow_none=True)


class AgreementAmendedV1(_AmendmentFields):
    """The chain holds new dates for an agreement (by the employer alone while offered, with
    the candidate's signature once committed): planned touchpoints move with them."""

    terms_hash = fields.String(required=True, validate=HEX32)
    tx_hash = fields.String(required=True, validate=HEX32)
    mutual = fields.Boolean(required=True)
    # While offered: the candidate's signing link, so notify can tell them the terms changed.
    signing_link = fields.Url(load_default=None, allow_none=True, require_tld=False)


class MilestoneEventV1(ma.Schema):
    """A milestone was confirmed on chain with anchored evidence, or became overdue."""

    agreement_id = fields.String(required=True)
    candidate_ref = fields.String(required=True)
    index = fields.Integer(required=True)
    kind = fields.String(required=True)
    due_at = fields.AwareDateTime(required=True, default_timezone=dt.UTC)
    document_id = fields.String(load_default=None, allow_none=True)
    tx_hash = fields.String(load_default=None, allow_none=True)


class RiskChangedV1(ma.Schema):
    agreement_id = fields.String(required=True)
    candidate_ref = fields.String(required=True)
    level = fields.String(required=True, validate=validate.OneOf(["red", "yellow", "blue"]))
    previous = fields.String(load_default=None, allow_none=True)
    reasons = fields.List(fields.String(), required=True)
    response = fields.String(required=True)
    score = fields.Integer(required=True, validate=validate.Range(min=0, max=100))


CHECKIN_ANSWERS = ("on_track", "delayed", "need_help", "withdrawing")


class TouchpointRepliedV1(ma.Schema):
    """The candidate answered a touchpoint (e.g. the 48-hour check-in)."""

    touchpoint_id = fields.String(required=True)
    agreement_id = fields.String(required=True)
    candidate_ref = fields.String(required=True)
    kind = fields.String(required=True)
    answer = fields.String(required=True, validate=validate.OneOf(CHECKIN_ANSWERS))
    new_date = fields.Date(load_default=None, allow_none=True)
    sent_at = fields.AwareDateTime(required=True, default_timezone=dt.UTC)
    replied_at = fields.AwareDateTime(required=True, default_timezone=dt.UTC)


class TouchpointMissedV1(ma.Schema):
    """A touchpoint that asked for an answer got none before the next one was due."""

    touchpoint_id = fields.String(required=True)
    agreement_id = fields.String(required=True)
    candidate_ref = fields.String(required=True)
    kind = fields.String(required=True)
    sent_at = fields.AwareDateTime(required=True, default_timezone=dt.UTC)


class TouchpointDeliveredV1(ma.Schema):
    """A touchpoint went out (`touchpoint.sent`) or could not be delivered (`touchpoint.failed`)."""

    touchpoint_id = fields.String(required=True)
    agreement_id = fields.String(required=True)
    candidate_ref = fields.String(required=True)
    kind = fields.String(required=True)
    channel = fields.String(load_default=None, allow_none=True)
    detail = fields.String(load_default=None, allow_none=True)
    # Added compatibly (both optional): the e-mail's Message-ID, and the sender's reference
    # (a one-time code's id), so the signing record can show the code's delivery evidence.
    message_id = fields.String(load_default=None, allow_none=True)
    reference = fields.String(load_default=None, allow_none=True)


@dataclass(frozen=True)
class MessageType:
    name: str
    version: int
    schema: type[ma.Schema]
    producer: str

    @property
    def routing_key(self) -> str:
        return f"{self.name}.v{self.version}"


EVIDENCE_ANCHORED = MessageType("evidence.anchored", 1, EvidenceAnchoredV1, "evidence")
EVIDENCE_BATCH_ANCHORED = MessageType(
    "evidence.batch_anchored", 1, EvidenceBatchAnchoredV1, "evidence"
)
EVIDENCE_SUPERSEDED = MessageType("evidence.superseded", 1, EvidenceSupersededV1, "evidence")

AGREEMENT_OFFERED = MessageType("agreement.offered", 1, AgreementOfferedV1, "contracts")
# One schema for every state an agreement reaches after the offer.
AGREEMENT_STATES = {
    state: MessageType(f"agreement.{state}", 1, AgreementStateChangedV1, "contracts")
    for state in ("committed", "fulfilled", "breached", "employer_breached", "cancelled", "expired")
}
# The states an agreement ends in (every one above but `committed`): nothing follows them.
FINAL_STATES: frozenset[str] = frozenset(AGREEMENT_STATES) - {"committed"}
AGREEMENT_AMENDMENT_PROPOSED = MessageType(
    "agreement.amendment_proposed", 1, AgreementAmendmentProposedV1, "contracts"
)
AGREEMENT_AMENDED = MessageType("agreement.amended", 1, AgreementAmendedV1, "contracts")
AGREEMENT_BREACH_DUE = MessageType("agreement.breach_due", 1, AgreementBreachDueV1, "contracts")
AGREEMENT_ARRIVAL_DISPUTED = MessageType(
    "agreement.arrival_disputed", 1, AgreementArrivalDisputedV1, "contracts"
)
# v2: the code carries the offer's own contact (v1 went to notify's address for the reference).
CANDIDATE_CODE_REQUESTED = MessageType(
    "candidate.code_requested", 2, CandidateCodeRequestedV1, "contracts"
)
CANDIDATE_SIGNER_BOUND = MessageType(
    "candidate.signer_bound", 1, CandidateSignerBoundV1, "contracts"
)
MILESTONE_CONFIRMED = MessageType("milestone.confirmed", 1, MilestoneEventV1, "contracts")
MILESTONE_OVERDUE = MessageType("milestone.overdue", 1, MilestoneEventV1, "contracts")
RISK_CHANGED = MessageType("risk.changed", 1, RiskChangedV1, "contracts")
TOUCHPOINT_REPLIED = MessageType("touchpoint.replied", 1, TouchpointRepliedV1, "notify")
TOUCHPOINT_MISSED = MessageType("touchpoint.missed", 1, TouchpointMissedV1, "notify")
TOUCHPOINT_SENT = MessageType("touchpoint.sent", 1, TouchpointDeliveredV1, "notify")
TOUCHPOINT_FAILED = MessageType("touchpoint.failed", 1, TouchpointDeliveredV1, "notify")

REGISTRY: dict[tuple[str, int], MessageType] = {
    (m.name, m.version): m
    for m in (
        EVIDENCE_ANCHORED,
        EVIDENCE_BATCH_ANCHORED,
        EVIDENCE_SUPERSEDED,
        AGREEMENT_OFFERED,
        *AGREEMENT_STATES.values(),
        AGREEMENT_AMENDMENT_PROPOSED,
        AGREEMENT_AMENDED,
        AGREEMENT_BREACH_DUE,
        AGREEMENT_ARRIVAL_DISPUTED,
        CANDIDATE_CODE_REQUESTED,
        CANDIDATE_SIGNER_BOUND,
        MILESTONE_CONFIRMED,
        MILESTONE_OVERDUE,
        RISK_CHANGED,
        TOUCHPOINT_REPLIED,
        TOUCHPOINT_MISSED,
        TOUCHPOINT_SENT,
        TOUCHPOINT_FAILED,
    )
}


@functools.cache
def _schema(cls: type[ma.Schema]) -> ma.Schema:
    """One instance per schema class: marshmallow 4 schemas hold no per-call state, and
    building one costs more than the load and dump it serves."""
    return cls()


def build(message_type: MessageType, tenant: str, payload: dict[str, Any]) -> dict[str, Any]:
    """A complete, validated envelope ready to publish (JSON-safe)."""
    schema = _schema(message_type.schema)
    body = schema.dump(schema.load(payload))
    return _schema(Envelope).dump(
        {
            "message_id": uuid.uuid4(),
            "type": message_type.name,
            "version": message_type.version,
            "occurred_at": dt.datetime.now(dt.UTC),
            "producer": message_type.producer,
            "tenant": tenant,
            "payload": body,
        }
    )


@dataclass(frozen=True)
class Message:
    message_id: str
    type: MessageType
    occurred_at: dt.datetime
    producer: str
    tenant: str
    payload: dict[str, Any]


def parse(body: Any) -> Message:
    """Validate an incoming body; raises MessageError with the reason when it is not acceptable."""
    if not isinstance(body, dict):
        raise MessageError("body is not a JSON object")
    try:
        envelope = _schema(Envelope).load(body)
    except ma.ValidationError as exc:
        raise MessageError(f"invalid envelope: {exc.messages}") from None
    message_type = REGISTRY.get((envelope["type"], envelope["version"]))
    if message_type is None:
        raise MessageError(f"unknown message type {envelope['type']} v{envelope['version']}")
    try:
        payload = _schema(message_type.schema).load(envelope["payload"])
    except ma.ValidationError as exc:
        raise MessageError(f"invalid {message_type.routing_key} payload: {exc.messages}") from None
    return Message(
        message_id=str(envelope["message_id"]),
        type=message_type,
        occurred_at=envelope["occurred_at"],
        producer=envelope["producer"],
        tenant=envelope["tenant"],
        payload=payload,
    )

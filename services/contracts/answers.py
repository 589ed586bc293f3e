"""What the contracts API answers: one response schema per answer, dumped by the routes
(`@blp.response(code, Schema)`) and shown in the OpenAPI document. Times are ISO 8601 in UTC
with a Z (strings); null where not known yet."""

from __future__ import annotations

from marshmallow import fields

from ..shared.answers import Answer, Items, Number, Object

Str = fields.String


def _opt(**kwargs: object) -> Str:
    return Str(allow_none=True, **kwargs)  # type: ignore[arg-type]


class ChainStatus(Answer):
    """The offer's transaction: `pending` (sent, not in a block yet), `confirmed`, `failed`."""

    status = _opt()
    tx = _opt()
    nonce = fields.Integer(allow_none=True)
    error = _opt()


class RiskSummary(Answer):
    level = _opt()
    score = Number(allow_none=True)
    reasons = fields.List(Str(), allow_none=True)


class ArrivalView(Answer):
    arrived_at = _opt()
    disputed_at = _opt()


class MilestoneView(Answer):
    index = fields.Integer(required=True)
    kind = Str(required=True)
    due_at = _opt(required=True)
    confirmed_at = _opt()
    document_id = _opt()
    tx_hash = _opt()
    overdue = fields.Boolean()


class AgreementView(Answer):
    id = Str(required=True)
    onchain_id = Str(required=True)
    state = Str(required=True)
    candidate_ref = Str(required=True)
    candidate_address = _opt()
    employer_name = Str()
    employer_address = _opt()
    position = Str()
    currency = Str()
    monthly_salary = fields.Integer()
    liquidated_damages = fields.Integer()
    start_at = _opt()
    grace_days = fields.Integer()
    offer_expires_at = _opt()
    language = Str()
    terms_hash = _opt()
    contract = Str(metadata={"description": "the IntentAgreements contract's address"})
    risk = fields.Nested(RiskSummary, metadata={"description": "HR's view; not in the portal"})
    arrival = fields.Nested(ArrivalView)
    milestones = Items(MilestoneView)
    created_at = _opt()
    chain = fields.Nested(ChainStatus, metadata={"description": "one agreement's answers"})
    transaction = _opt(metadata={"description": "the offer's transaction hash (on creation)"})
    signing_link = _opt(metadata={"description": "the candidate's link (on creation)"})


class AgreementPage(Answer):
    items = Items(AgreementView, required=True)
    next = _opt(required=True, metadata={"description": "the next page's path, or null"})


class SignedAgreement(AgreementView):
    signing_record_document = _opt(
        metadata={"description": "through the candidate's link: the anchored signing record"}
    )


class TypedPayload(Answer):
    """An EIP-712 payload for `eth_signTypedData_v4`."""

    types = Object(required=True)
    primaryType = Str(required=True)
    domain = Object(required=True)
    message = Object(required=True)


class CeremonyAnswer(Answer):
    ceremony = Object(required=True)
    ceremony_hash = Str(required=True)


class SignerView(Answer):
    kind = Str(required=True)
    address = _opt()
    credential_id = _opt()
    bound = fields.Boolean()


class PendingAmendment(Answer):
    id = Str(required=True)
    number = fields.Integer()
    start_at = _opt()
    reason = _opt()
    link = _opt()


class EnrolmentView(Answer):
    agreement = fields.Nested(AgreementView, required=True)
    transactions = fields.Dict(keys=Str(), values=_opt(), required=True)
    amendments = Items(PendingAmendment, required=True)
    arrival_opens_at = _opt()
    arrival_open = fields.Boolean()
    chain_id = fields.Integer()
    code_verified = fields.Boolean()
    can_bind = fields.Boolean()
    channels = fields.List(Str())
    signer = fields.Nested(SignerView, allow_none=True)


class CodeSent(Answer):
    channel = Str(required=True)
    destination = Str(required=True, metadata={"description": "masked"})
    expires_at = Str(required=True)
    next_code_at = Str(required=True)


class CodeVerified(Answer):
    verified = fields.Boolean(required=True)
    channel = Str(required=True)
    destination = Str(required=True)


class SignerBound(Answer):
    kind = Str(required=True)
    address = _opt()
    credential_id = _opt()
    replaced = fields.Boolean()


class SigningRecordView(Answer):
    """The evidence of intent (format `offerseal-signing-record/2`)."""

    format = Str(required=True)
    agreement_id = Str(required=True)
    onchain_id = Str()
    registry = Str()
    chain_id = fields.Integer()
    terms_hash = _opt()
    candidate_address = _opt()
    state = Str()
    ceremony = Object()
    ceremony_hash = Str()
    events = fields.List(Object())
    evidence_document_id = _opt()


class RiskView(Answer):
    agreement_id = Str(required=True)
    level = Str(required=True)
    reasons = fields.List(Str())
    response = _opt()
    stability_score = Number()
    score_factors = fields.List(Str())
    exposure = Object()


class AmendmentView(Answer):
    id = Str(required=True)
    agreement_id = Str(required=True)
    number = fields.Integer()
    state = Str(required=True)
    start_at = _opt()
    milestone_dues = fields.List(fields.Raw())
    terms_hash = _opt()
    reason = _opt()
    deadline = _opt()
    tx_hash = _opt()
    created_at = _opt()
    applied_at = _opt()
    signing_link = _opt(metadata={"description": "to HR while it awaits the signature"})
    signer = fields.Nested(
        SignerView, allow_none=True, metadata={"description": "through the candidate's link"}
    )


class AmendmentList(Answer):
    items = Items(AmendmentView, required=True)


class EmployerView(Answer):
    address = Str(required=True)
    source = Str(required=True, metadata={"enum": ["relayer", "tenant"]})
    relayer = Str(required=True)
    contract = Str(required=True)
    operator_approved = fields.Boolean(required=True)


class LinksRevoked(Answer):
    agreement_id = Str(required=True)
    candidate_ref = Str(required=True)
    revoked_at = Str(required=True)
    reason = Str(required=True)


class PolicyDefaults(Answer):
    auto_breach = fields.Boolean()
    candidate_uploads = Str()


class PolicyView(Answer):
    auto_breach = fields.Boolean(required=True)
    candidate_uploads = Str(required=True)
    defaults = fields.Nested(PolicyDefaults, required=True)
    updated_at = _opt(required=True)


class DossierAnchoring(Answer):
    """202: the manifest waits for its anchoring (Retry-After)."""

    status = Str(required=True)
    detail = Str()
    manifest_sha256 = _opt()
    manifest_document_id = _opt()

"""What the evidence API answers: one response schema per answer, shown in the OpenAPI
document and dumped by the routes that return the service layer's values. Signed structures
(receipts, proof bundles) are objects described by the published JSON Schemas
(`GET /v1/schemas`), passed through as signed, never re-shaped."""

from __future__ import annotations

from marshmallow import fields

from ..shared.answers import Answer, Items, Object, Verbatim

Str = fields.String


def _opt(**kwargs: object) -> Str:
    return Str(allow_none=True, **kwargs)  # type: ignore[arg-type]


class AnchorView(Answer):
    chain_id = fields.Integer(required=True)
    registry = Str(required=True)
    tx_hash = Str(required=True)
    block_number = fields.Integer(required=True)
    block_hash = Str(required=True)
    block_timestamp = fields.Integer(required=True)


class DocumentView(Answer):
    id = Str(required=True)
    sha256 = Str(required=True)
    sm3 = _opt(metadata={"description": "null: registered by hash only"})
    kind = Str(required=True)
    candidate_ref = Str(required=True)
    agreement_id = _opt()
    milestone = _opt()
    size = fields.Integer(allow_none=True)
    content_type = _opt()
    filename = _opt()
    has_content = fields.Boolean(required=True)
    status = Str(required=True, metadata={"description": "pending, anchored"})
    received_at = Str(required=True)
    intake_receipt = Object(required=True, metadata={"description": "the signed receipt"})
    provenance = Object(allow_none=True)
    anchor = fields.Nested(AnchorView, allow_none=True, required=True)


class DocumentPage(Answer):
    items = Items(DocumentView, required=True)
    next = _opt(required=True, metadata={"description": "the next page's path, or null"})


class Accepted(Answer):
    """201: a document taken in (its own signed receipt), or one item of a hash batch (whose
    receipt is the batch's; the document's own is served by `GET /v1/documents/{id}`)."""

    id = Str(required=True)
    sha256 = Str(required=True)
    sm3 = _opt()
    kind = Str(required=True)
    sequence = fields.Integer()
    status = Str(required=True)
    received_at = Str()
    intake_receipt = Object()


class HashBatchAccepted(Answer):
    count = fields.Integer(required=True)
    intake_receipt = Object(required=True, metadata={"description": "the batch's receipt"})
    items = Items(Accepted, required=True)


class ProofBundle(Verbatim):
    """A proof bundle, as `GET /v1/schemas/proof-bundle-3.json` describes it."""

    format = Str(required=True)
    document = Object()
    leaf = Object()
    merkle = Object()
    anchor = Object()
    intake_receipt = Object()
    timestamps = fields.List(Object())
    deposits = fields.List(Object())
    witnesses = fields.List(Str(), metadata={"description": "ethereum, rfc3161, tencent-btoe"})


class ProofHistoryItem(Answer):
    state = Str(required=True, metadata={"description": "anchored, superseded"})
    superseded_at = _opt()
    bundle = Object(required=True, metadata={"description": "a proof bundle"})


class ProofHistory(Answer):
    items = Items(ProofHistoryItem, required=True)


class CheckView(Answer):
    name = Str(required=True)
    status = Str(required=True, metadata={"description": "pass, fail, skipped"})
    ok = fields.Boolean(allow_none=True, required=True)
    detail = Str(allow_none=True)
    checks = fields.List(Object(), metadata={"description": "the parts of this check"})


class VerdictView(Answer):
    valid = fields.Boolean(required=True)
    failed = fields.List(Str(), required=True)
    checks = Items(CheckView, required=True)


class PublicKey(Answer):
    key_id = Str(required=True)
    alg = Str(required=True)
    public_key = Str(required=True, metadata={"description": "base64url"})
    public_key_hex = Str(required=True)
    use = Str()
    current = fields.Boolean()
    valid_from = _opt()
    valid_until = _opt()


class PublicKeys(Answer):
    keys = Items(PublicKey, required=True)


class PublishedSchema(Answer):
    name = Str(required=True)
    format = Str(required=True)
    url = Str(required=True)


class PublishedSchemas(Answer):
    items = Items(PublishedSchema, required=True)

"""HTTP entry point of the evidence service: parses input, calls the service layer, shapes the
answer. No business rules here."""

from __future__ import annotations

import hashlib
import html
import json
import urllib.parse
from collections.abc import Callable
from functools import wraps
from typing import Any, cast
from urllib.parse import urlencode

import marshmallow as ma
from flask import Response, current_app, redirect, request
from flask.views import MethodView
from flask_smorest import Blueprint

from offerseal_verify.hexbytes import is_hex32, to_hex
from offerseal_verify.proofs import MAX_BUNDLE_BYTES, ChainView, Check, Verdict, bundle_size_problem
from offerseal_verify.sm3 import Sm3

from ..shared.answers import BINARY, TEXT, problems
from ..shared.auth import READ_ROLES, WRITE_ROLES
from ..shared.errors import PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from ..shared.guards import access, check_json_text, max_json_bytes, roles
from ..shared.idempotency import key_from_header
from ..shared.links import PURPOSE_RECORD, PURPOSE_UPLOAD, Link, LinkSigner
from ..shared.redact import redact_text
from ..shared.web import principal
from .answers import (
    Accepted,
    DocumentPage,
    DocumentView,
    HashBatchAccepted,
    ProofBundle,
    ProofHistory,
    PublicKeys,
    PublishedSchemas,
    VerdictView,
)
from .arguments import (
    UPLOAD_FILE,
    UPLOAD_FORM,
    CertificateQuery,
    DocumentFile,
    DocumentForm,
    HashBatch,
    ListArgs,
    VerifyJson,
)
from .domain.documents import RECORD_KINDS, NewDocument
from .errors import SchemaNotFound
from .issuer import CertificateIssuer
from .provenance import Provenance, SourceInvalid, check_source
from .published import SCHEMAS, load_schema, schema_name
from .service import EvidenceService

blp = Blueprint("documents", __name__, url_prefix="/v1", description="Documents and proofs")
verify_blp = Blueprint(
    "verify",
    __name__,
    url_prefix="/v1",
    description="Proof verification and public keys (no API key needed)",
)

# Content types a browser does not execute; anything else is served as application/octet-stream.
INERT_TYPES = frozenset(
    {"application/pdf", "image/png", "image/jpeg", "image/gif", "image/webp", "text/plain"}
)
BEARER: list[dict[str, list[str]]] = [{"bearer": []}]


def service() -> EvidenceService:
    svc: EvidenceService = current_app.extensions["offerseal.evidence"]
    return svc


def requires_multipart(func: Callable[..., Any]) -> Callable[..., Any]:
    """415 before anything is parsed when the body is not multipart/form-data."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if request.mimetype != "multipart/form-data":
            raise UnsupportedMediaType(
                f"send multipart/form-data (got {request.mimetype or 'no content type'})"
            )
        return func(*args, **kwargs)

    return wrapper


def read_upload(upload: Any) -> bytes:
    """The uploaded bytes, refused above OFFERSEAL_MAX_DOCUMENT_BYTES (413) or empty (422)."""
    limit = current_app.config["OFFERSEAL_MAX_DOCUMENT_BYTES"]
    content: bytes = upload.stream.read(limit + 1)
    if len(content) > limit:
        raise PayloadTooLarge(f"the document exceeds {limit} bytes")
    if not content:
        raise ValidationFailed("file", "the file is empty")
    return content


def idempotency_key() -> str | None:
    return key_from_header(request.headers.get("Idempotency-Key"))


MAX_SOURCE_BYTES = 16 * 1024


def seen(source: Any = None) -> Provenance:
    """What this request says about where its documents come from: the client's address (as
    the server saw it), its user agent and the optional `source` metadata (checked, 422)."""
    checked: dict[str, str] = {}
    if source is not None:
        if isinstance(source, str):
            if len(source) > MAX_SOURCE_BYTES:
                raise ValidationFailed("source", f"at most {MAX_SOURCE_BYTES} bytes")
            check_json_text(source, "source")
            try:
                source = json.loads(source)
            except ValueError as exc:
                raise ValidationFailed("source", f"not valid JSON: {exc}") from None
        try:
            checked = check_source(source)
        except SourceInvalid as exc:
            raise ValidationFailed("source", str(exc)) from None
    return Provenance(
        client_address=request.remote_addr,
        user_agent=request.headers.get("User-Agent"),
        source=checked,
    )


def _created(status: int, body: dict[str, Any], replayed: bool, location: str | None) -> Response:
    response = current_app.response_class(
        json.dumps(body), status=status, mimetype="application/json"
    )
    if location:
        response.headers["Location"] = location
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


def documented_arguments(
    schema: type[ma.Schema], location: str
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`blp.arguments(schema, location=...)` for the API document only: the view loads the
    input itself (`FlatForm`)."""

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        documented = blp.arguments(schema, location=location)(func)
        func._apidoc = documented._apidoc  # type: ignore[attr-defined]
        return func

    return decorator


@blp.route("/documents")
class Documents(MethodView):
    @roles(*WRITE_ROLES)
    @blp.doc(security=BEARER, summary="Upload a document (multipart)")
    @requires_multipart
    @documented_arguments(DocumentForm, location="form")
    @documented_arguments(DocumentFile, location="files")
    @blp.response(201, Accepted)
    @problems(blp, 409, 413, 415)
    def post(self) -> Response:
        who = principal()
        form = UPLOAD_FORM.load(request.form)
        upload = UPLOAD_FILE.load(request.files)["file"]
        content = read_upload(upload)
        doc = NewDocument(
            kind=form["kind"],
            candidate_ref=form["candidate_ref"],
            agreement_id=form.get("agreement_id"),
            milestone=form.get("milestone"),
            sha256=to_hex(hashlib.sha256(content).digest()),
            content=content,
            filename=(upload.filename or None),
            content_type=(upload.mimetype or None),
        )
        status, body, replayed = service().ingest(
            who, doc, idempotency_key(), seen(form.get("source"))
        )
        return _created(status, body, replayed, f"/v1/documents/{body['id']}")

    @roles(*READ_ROLES)
    @blp.doc(security=BEARER, summary="List the tenant's documents, oldest first")
    @blp.arguments(ListArgs, location="query")
    @blp.response(200, DocumentPage)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        items, cursor = service().list_documents(
            principal(), args.get("candidate_ref"), args["after"], args["limit"]
        )
        next_link = None
        if cursor is not None:
            query = {
                k: v
                for k, v in {
                    "candidate_ref": args.get("candidate_ref"),
                    "limit": args["limit"],
                    "after": cursor,
                }.items()
                if v is not None
            }
            next_link = "/v1/documents?" + urllib.parse.urlencode(query)
        return {"items": items, "next": next_link}


@blp.route("/documents/hashes")
@max_json_bytes(4 << 20)  # 10,000 items of about 130 bytes
class DocumentHashes(MethodView):
    @roles(*WRITE_ROLES)
    @blp.doc(security=BEARER, summary="Register up to 10,000 documents by sha256 only")
    @blp.arguments(HashBatch)
    @blp.response(201, HashBatchAccepted)
    def post(self, batch: dict[str, Any]) -> Response:
        who = principal()
        docs = [
            NewDocument(  # positional: kind, candidate_ref, sha256, agreement_id, milestone
                i["kind"],
                i["candidate_ref"],
                i["sha256"].lower(),
                i.get("agreement_id"),
                i.get("milestone"),
            )
            for i in batch["items"]
        ]
        status, body, replayed = service().ingest_hashes(
            who, docs, idempotency_key(), seen(batch.get("source"))
        )
        return _created(status, body, replayed, None)


@blp.route("/documents/<string:document_id>")
class DocumentItem(MethodView):
    @roles(*READ_ROLES)
    @blp.doc(security=BEARER, summary="A document's metadata and status")
    @blp.response(200, DocumentView)
    @problems(blp, 404)
    def get(self, document_id: str) -> dict[str, Any]:
        return service().get(principal(), document_id)


@blp.route("/documents/<string:document_id>/content")
class DocumentContent(MethodView):
    @roles(*READ_ROLES)
    @blp.doc(security=BEARER, summary="The decrypted document bytes")
    @blp.response(200, BINARY, content_type="application/octet-stream")
    def get(self, document_id: str) -> Response:
        data, mimetype, filename = service().content(principal(), document_id)
        # Stored bytes are always a download, never a page: an uploader's `text/html` (or a
        # missing file name) must not turn a document into script on our origin.
        if mimetype not in INERT_TYPES:
            mimetype = "application/octet-stream"
        response = current_app.response_class(data, mimetype=mimetype)
        response.headers["Cache-Control"] = "no-store"
        quoted = urllib.parse.quote(filename or document_id)
        response.headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quoted}"
        return response


@blp.route("/documents/<string:document_id>/proof")
class DocumentProof(MethodView):
    @roles(*READ_ROLES)
    @blp.doc(security=BEARER, summary="The self-contained proof bundle (409 while pending)")
    @blp.response(200, ProofBundle)
    @problems(blp, 404, 409)
    def get(self, document_id: str) -> dict[str, Any]:
        return service().proof(principal(), document_id)


@blp.route("/documents/<string:document_id>/proofs")
class DocumentProofHistory(MethodView):
    @roles(*READ_ROLES)
    @blp.doc(security=BEARER, summary="Every proof the document had, superseded ones included")
    @blp.response(200, ProofHistory)
    def get(self, document_id: str) -> dict[str, Any]:
        return {"items": service().proofs(principal(), document_id)}


@blp.route("/documents/<string:document_id>/certificate")
class DocumentCertificate(MethodView):
    @roles(*READ_ROLES)
    @blp.arguments(CertificateQuery, location="query")
    @blp.doc(
        security=BEARER,
        summary="The signed evidence certificate (PDF) of an anchored document (409 before)",
    )
    @blp.response(200, BINARY, content_type="application/pdf")
    @problems(blp, 404, 409)
    def get(self, args: dict[str, Any], document_id: str) -> Response:
        issuer: CertificateIssuer = current_app.extensions["offerseal.certificates"]
        pdf = issuer.issue(principal(), document_id, args["lang"])
        response = current_app.response_class(pdf, mimetype="application/pdf")
        response.headers["Cache-Control"] = "no-store"
        name = f"offerseal-certificate-{document_id}-{args['lang']}.pdf"
        response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


def _parse_proof(raw: str | bytes) -> Any:
    if len(raw) > MAX_BUNDLE_BYTES:
        raise PayloadTooLarge(f"a proof bundle has at most {MAX_BUNDLE_BYTES} bytes")
    check_json_text(raw, "proof")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationFailed("proof", f"not valid JSON: {exc}") from None


def _bounded(bundle: Any) -> Any:
    problem = bundle_size_problem(bundle)
    if problem:
        raise ValidationFailed("proof.merkle.proof", problem)
    return bundle


def _verify(bundle: Any, sha: str | None, sm3: str | None = None) -> Verdict:
    factory: Callable[[], ChainView] = current_app.extensions["offerseal.chain_view"]
    try:
        chain = factory()
        chain.chain_id()
    except Exception as exc:
        verdict = service().verify(bundle, sha, None, sm3)
        return Verdict(
            (
                *verdict.checks,
                Check("chain", False, redact_text(f"the chain could not be reached: {exc}")),
            )
        )
    return service().verify(bundle, sha, chain, sm3)


@verify_blp.route("/verify")
@access("public")
class Verify(MethodView):
    @verify_blp.doc(
        summary="Verify a proof bundle against a document or its sha256",
        description="multipart (`file` and/or `sha256`, `proof` as a JSON field or "
        "file) or JSON `{proof, sha256}`. Always 200 with `valid` and "
        "every check; a forged proof is `valid: false`.",
    )
    @verify_blp.response(200, VerdictView)
    def post(self) -> dict[str, Any]:
        sha: str | None = None
        sm3: str | None = None  # only from the file's bytes: checked where the bundle has one
        if request.mimetype == "multipart/form-data":
            upload = request.files.get("file")
            proof_file = request.files.get("proof")
            proof_text = (
                proof_file.read(MAX_BUNDLE_BYTES + 1) if proof_file else request.form.get("proof")
            )
            if not proof_text:
                raise ValidationFailed("proof", "missing the proof bundle (JSON)")
            bundle = _parse_proof(proof_text)
            if upload is not None:
                digest, digest_sm3 = hashlib.sha256(), Sm3()
                for chunk in iter(lambda: upload.stream.read(1 << 20), b""):
                    digest.update(chunk)
                    digest_sm3.update(chunk)
                sha, sm3 = to_hex(digest.digest()), to_hex(digest_sm3.digest())
            given = request.form.get("sha256")
            if given is not None:
                if not is_hex32(given):
                    raise ValidationFailed("sha256", "expected 0x followed by 64 hex digits")
                if sha is not None and sha != given.lower():
                    raise ValidationFailed("sha256", "does not match the uploaded file")
                sha = given.lower()
        elif request.mimetype == "application/json":
            body = request.get_json(silent=True)
            if body is None:
                raise_bad_json()
            try:
                parsed = VerifyJson().load(cast(dict[str, Any], body))
            except ma.ValidationError as exc:
                field, messages = next(iter(exc.normalized_messages().items()))
                raise ValidationFailed(str(field), str(messages)) from None
            bundle = parsed["proof"]
            sha = parsed.get("sha256", "").lower() or None
        else:
            raise UnsupportedMediaType("send multipart/form-data or application/json")
        return _verify(_bounded(bundle), sha, sm3).as_dict()


def raise_bad_json() -> None:
    from werkzeug.exceptions import BadRequest

    raise BadRequest("the body is not valid JSON")


@verify_blp.route("/keys")
@access("public")
class Keys(MethodView):
    @verify_blp.doc(summary="Public keys that sign intake receipts")
    @verify_blp.response(200, PublicKeys)
    def get(self) -> dict[str, Any]:
        return {"keys": service().public_keys()}


@verify_blp.route("/schemas")
@access("public")
class Schemas(MethodView):
    @verify_blp.doc(
        summary="The published JSON Schemas (draft 2020-12): proof bundle, dossier manifest"
    )
    @verify_blp.response(200, PublishedSchemas)
    def get(self) -> dict[str, Any]:
        return {
            "items": [
                {"name": name, "format": fmt, "url": f"/v1/schemas/{name}.json"}
                for name, fmt in SCHEMAS.items()
            ]
        }


@verify_blp.route("/schemas/<string:name>")
@access("public")
class SchemaItem(MethodView):
    @verify_blp.doc(summary="One published JSON Schema, e.g. proof-bundle-2.json")
    @verify_blp.response(200, {"type": "object"}, content_type="application/schema+json")
    def get(self, name: str) -> Response:
        found = schema_name(name)
        if found is None:
            raise SchemaNotFound(f"no schema {name!r}; published: {', '.join(SCHEMAS)}")
        body = json.dumps(load_schema(found), indent=2, ensure_ascii=False)
        response = current_app.response_class(body, mimetype="application/schema+json")
        response.headers["Cache-Control"] = "public, max-age=300"
        return response


DOCUMENT_KIND_FOR_MILESTONE = {  # what each staged confirmation asks the candidate for
    "expected_resignation_date": "resignation_application",
    "resignation_submitted": "resignation_application",
    "resignation_accepted": "resignation_acceptance",
    "handover_started": "handover_progress",
    "handover_halfway": "handover_progress",
    "last_working_day_fixed": "other",
    "social_insurance_stop": "social_insurance_stop",
    "signing_record": "signing_record",  # not a stage: the portal's record of a signature
}


def _candidate_link(token: str) -> Link:
    signer: LinkSigner = current_app.extensions["offerseal.links"]
    return signer.verify(token, PURPOSE_UPLOAD)


@blp.route("/uploads/<string:token>")
@access("token")
class CandidateUpload(MethodView):
    @blp.doc(summary="The candidate's upload page for one staged confirmation (signed link)")
    @blp.response(200, TEXT, content_type="text/html")
    @blp.alt_response(303, description="a browser goes to the portal", success=True)
    def get(self, token: str) -> Response:
        link = _candidate_link(token)
        portal = str(current_app.config.get("OFFERSEAL_PORTAL_URL") or "")
        if portal and request.accept_mimetypes.best == "text/html":
            # A browser lands in the candidate's portal, which posts the file back here.
            query = urlencode({"token": token, "milestone": link.subject})
            landing = redirect(f"{portal}/portal/{link.agreement_id}/upload?{query}", code=303)
            landing.headers["Referrer-Policy"] = "no-referrer"
            return landing  # type: ignore[return-value]
        page = (
            '<!doctype html><html><head><meta charset="utf-8"><title>Upload</title></head>'
            f"<body><h1>Upload: {html.escape(link.subject)}</h1>"
            '<form method="post" enctype="multipart/form-data">'
            '<input type="file" name="file" required> '
            '<button type="submit">Upload</button></form></body></html>'
        )
        return current_app.response_class(page, mimetype="text/html")

    @blp.doc(summary="Upload through the link: stored, receipted and anchored like any document")
    @requires_multipart
    @blp.response(201, Accepted)
    def post(self, token: str) -> Response:
        link = _candidate_link(token)
        upload = request.files.get("file")
        if upload is None:
            raise ValidationFailed("file", "missing the file")
        content = read_upload(upload)
        doc = NewDocument(
            kind=DOCUMENT_KIND_FOR_MILESTONE.get(link.subject, "other"),
            candidate_ref=link.candidate_ref,
            agreement_id=link.agreement_id,
            milestone=link.subject,
            sha256=to_hex(hashlib.sha256(content).digest()),
            content=content,
            filename=upload.filename or None,
            content_type=upload.mimetype or None,
        )
        body = service().ingest_from_candidate(link, doc, seen())
        return _created(201, body, False, None)


@blp.route("/documents/records/<string:token>")
@access("token")
class ServiceRecord(MethodView):
    @blp.doc(
        summary="Deposit a record OfferSeal made about an agreement (the dossier's manifest)",
        description="The contracts service's signed `record` link is the authorization; the "
        "record is stored, receipted and anchored like any document of the agreement.",
    )
    @requires_multipart
    @blp.response(201, Accepted)
    def post(self, token: str) -> Response:
        signer: LinkSigner = current_app.extensions["offerseal.links"]
        link = signer.verify(token, PURPOSE_RECORD)
        kind = RECORD_KINDS.get(link.subject)
        if kind is None:
            raise ValidationFailed("token", "this link deposits no known record")
        upload = request.files.get("file")
        if upload is None:
            raise ValidationFailed("file", "missing the file")
        content = read_upload(upload)
        doc = NewDocument(
            kind=kind,
            candidate_ref=link.candidate_ref,
            agreement_id=link.agreement_id,
            milestone=None,
            sha256=to_hex(hashlib.sha256(content).digest()),
            content=content,
            filename=upload.filename or None,
            content_type=upload.mimetype or None,
        )
        body = service().ingest_record(link, doc, seen())
        return _created(201, body, False, f"/v1/documents/{body['id']}")

"""The candidate's routes of the contracts API, opened by their link (`?token=`): enrolment
(code, signer, portal events), the signing record and the ceremony the signature covers."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from ..shared.guards import access
from . import answers
from .contact_proof import ENROL_WITHIN, CodeSent, CodeVerified
from .edge import (
    BEARER,
    blp,
    caller,
    enrolment_session,
    evidence,
    keep_enrolment_session,
    required,
    service,
    visitor,
)
from .schemas import CodeIn, CodeRequestIn, PortalEventIn, SignerIn
from .signatures import CeremonyShown


@blp.route("/agreements/<string:agreement_id>/enrolment")
@access("link")
class EnrolmentStatus(MethodView):
    @blp.doc(summary="The candidate's enrolment: code verified, channels, the bound signer")
    @blp.response(200, answers.EnrolmentView)
    def get(self, agreement_id: str) -> dict[str, Any]:
        who, link = caller()
        return service().enrolment.status(who, link, agreement_id, enrolment_session())


@blp.route("/agreements/<string:agreement_id>/enrolment/code")
@access("link")
class EnrolmentCode(MethodView):
    @blp.doc(summary="Send a one-time code to the contact HR gave (e-mail, or SMS)")
    @blp.arguments(CodeRequestIn)
    @blp.response(202, answers.CodeSent)
    def post(self, data: dict[str, Any], agreement_id: str) -> CodeSent:
        _, link = caller()
        return service().contact_proof.request_code(
            required(link), agreement_id, data["channel"], visitor()
        )


@blp.route("/agreements/<string:agreement_id>/enrolment/verify")
@access("link")
class EnrolmentVerify(MethodView):
    @blp.doc(
        summary="Check the one-time code (expires in 10 minutes, 5 attempts)",
        description="A right code opens an enrolment session held by this browser only (an "
        "HttpOnly, SameSite=Strict cookie): binding a signer needs it, within "
        f"{int(ENROL_WITHIN.total_seconds() // 60)} minutes, once per code.",
    )
    @blp.arguments(CodeIn)
    @blp.response(200, answers.CodeVerified)
    def post(self, data: dict[str, Any], agreement_id: str) -> CodeVerified:
        _, link = caller()
        proven = service().contact_proof.verify_code(
            required(link), agreement_id, data["code"], visitor()
        )
        keep_enrolment_session(agreement_id, proven.session)
        return proven.answer


@blp.route("/agreements/<string:agreement_id>/enrolment/signer")
@access("link")
class EnrolmentSigner(MethodView):
    @blp.doc(
        summary="Bind the candidate's passkey (P-256 public key) or wallet to the offer",
        description="Only from the browser that proved a code (its enrolment session cookie; "
        "403 otherwise), once per code: a replacement needs a fresh code, is announced to the "
        "candidate, and delays any commitment by a day on chain. Relayed to bindCandidate(); a "
        "passkey's identity on chain is IntentAgreements.passkeyAddress(x, y).",
    )
    @blp.arguments(SignerIn)
    @blp.response(200, answers.SignerBound)
    def post(self, data: dict[str, Any], agreement_id: str) -> dict[str, Any]:
        _, link = caller()
        return service().enrolment.enrol(
            required(link), agreement_id, data, visitor(), enrolment_session()
        )


@blp.route("/agreements/<string:agreement_id>/enrolment/events")
@access("link")
class EnrolmentEvents(MethodView):
    @blp.doc(summary="Record that the candidate opened or read the text, or ticked the consent")
    @blp.arguments(PortalEventIn)
    @blp.response(204)
    def post(self, data: dict[str, Any], agreement_id: str) -> None:
        _, link = caller()
        service().enrolment.record(
            required(link),
            agreement_id,
            data["kind"],
            data["seconds"],
            visitor(),
            enrolment_session(),
        )


@blp.route("/agreements/<string:agreement_id>/signing-record")
@access("link")
class SigningRecord(MethodView):
    @blp.doc(
        summary="The candidate's signing record (evidence of intent), as JSON",
        description="The candidate's link, or an API key of the tenant (hr, legal, admin).",
    )
    @blp.response(200, answers.SigningRecordView)
    def get(self, agreement_id: str) -> dict[str, Any]:
        who, link = caller()
        if link is not None:  # anchored at the signature; tried again if evidence was down
            service().signing_records.anchor_signing_record(link, agreement_id, evidence())
        return service().signing_records.signing_record(
            who, link, agreement_id, enrolment_session()
        )


@blp.route("/agreements/<string:agreement_id>/ceremony")
@access("link")
class CeremonyView(MethodView):
    @blp.doc(
        security=BEARER,
        summary="The signing ceremony the candidate's Commitment covers, and its hash",
        description="`ceremony_hash` is keccak256 of the ceremony's canonical JSON; it is the "
        "Commitment's `ceremonyHash`, stored on chain by commit() (`ceremonyOf`).",
    )
    @blp.response(200, answers.CeremonyAnswer)
    def get(self, agreement_id: str) -> CeremonyShown:
        who, link = caller()
        return service().signatures.ceremony(who, link, agreement_id)

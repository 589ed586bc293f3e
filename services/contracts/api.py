"""HTTP entry point of the contracts service: HR's routes (offer, read, transitions,
amendments, employer, policy, dossier); the candidate's are in `portal_api.py`. Parses input,
calls the service layer's parts; the answers are dumped by the schemas of `answers.py`."""

from __future__ import annotations

import json
from typing import Any
from zoneinfo import ZoneInfo

import marshmallow as ma
from flask import Response, current_app, request
from flask.views import MethodView

from ..shared.answers import BINARY, TEXT, problems
from ..shared.auth import READ_ROLES, WRITE_ROLES
from ..shared.errors import NotFound, ValidationFailed
from ..shared.guards import access, roles
from ..shared.idempotency import key_from_header
from ..shared.web import principal
from . import (
    answers,
    portal_api,  # noqa: F401 - the candidate's routes, on the same blueprint
)
from .adapters.evidence import EvidenceArchiveClient
from .domain.agreements import DUE_TIME, MILESTONE_KINDS, START_TIME, at_local
from .domain.dates import DateChange
from .dossier import DOSSIER_ROLES, Dossiers
from .edge import (
    BEARER,
    MAX_PREFER_WAIT,
    STATUSES,
    blp,
    caller,
    created,
    evidence,
    preferred_wait,
    service,
    signed_bytes,
    terms_text,
    visitor,
)
from .errors import DossierPending
from .policy import PolicyView
from .records import AMEND_PURPOSE
from .risk_tracking import RiskView
from .schemas import (
    AmendmentIn,
    ArrivalArgs,
    ArrivalIn,
    BindingArgs,
    CancelIn,
    CreateAgreement,
    DossierArgs,
    EmployerIn,
    EvidenceIn,
    ListArgs,
    PolicyIn,
    RevokeIn,
    SignatureIn,
    TypedDataArgs,
    to_new_agreement,
)
from .service import EmployerAddress, LinksRevoked

__all__ = ["STATUSES", "blp"]


@blp.route("/agreements")
class Agreements(MethodView):
    @roles(*WRITE_ROLES)
    @blp.doc(
        security=BEARER,
        summary="Offer an intent agreement (recorded on chain)",
        description="Answers at once, once the agreement and its signed transaction are "
        'committed: `state` is `offering` and `chain` is `{"status": "pending", "tx", '
        '"nonce"}`; it becomes `offered` (and the invitation goes out) when the transaction '
        "is mined: poll the Location. `Prefer: wait=N` (RFC 7240, N <= "
        f"{MAX_PREFER_WAIT} seconds) waits up to N seconds for that before answering.",
    )
    @blp.arguments(CreateAgreement)
    @blp.response(201, answers.AgreementView)
    @problems(blp, 409)
    def post(self, data: dict[str, Any]) -> Response:
        who = principal()
        key = key_from_header(request.headers.get("Idempotency-Key"))
        wait = preferred_wait(request.headers.get("Prefer"))
        body = service().agreements.create(who, to_new_agreement(data), key, wait=wait)
        response = created(body, f"/v1/agreements/{body['id']}")
        if wait:
            response.headers["Preference-Applied"] = f"wait={wait:g}"
        return response

    @roles(*READ_ROLES)
    @blp.doc(security=BEARER, summary="The tenant's agreements, filtered by state and risk")
    @blp.arguments(ListArgs, location="query")
    @blp.response(200, answers.AgreementPage)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        items, cursor = service().agreements.list_agreements(
            principal(), args.get("state"), args.get("risk"), args.get("after"), args["limit"]
        )
        next_link = None
        if cursor:
            query = "&".join(f"{k}={args[k]}" for k in ("state", "risk") if args.get(k))
            next_link = (
                f"/v1/agreements?{query + '&' if query else ''}limit={args['limit']}&after={cursor}"
            )
        return {"items": items, "next": next_link}


@blp.route("/agreements/<string:agreement_id>")
class AgreementItem(MethodView):
    @roles(*READ_ROLES)
    @blp.doc(security=BEARER, summary="An agreement, its milestones and its risk")
    @blp.response(200, answers.AgreementView)
    @problems(blp, 404)
    def get(self, agreement_id: str) -> dict[str, Any]:
        return service().agreements.get(principal(), agreement_id)


@blp.route("/agreements/<string:agreement_id>/terms")
@access("link")
class AgreementTerms(MethodView):
    @blp.doc(security=BEARER, summary="The exact text whose sha256 is on chain (text/plain)")
    @blp.response(200, TEXT, content_type="text/plain")
    def get(self, agreement_id: str) -> Response:
        who, link = caller()
        return terms_text(*service().agreements.terms(who, link, agreement_id))


@blp.route("/agreements/<string:agreement_id>/typed-data")
@access("link")
class TypedData(MethodView):
    @blp.doc(
        security=BEARER,
        summary="The EIP-712 payload to sign (eth_signTypedData_v4)",
        description="The `Commitment`; with `?purpose=cancellation&deadline=<unix s>` the "
        "`Cancellation` a committed candidate signs for a mutual release.",
    )
    @blp.arguments(TypedDataArgs, location="query")
    @blp.response(200, answers.TypedPayload)
    def get(self, args: dict[str, Any], agreement_id: str) -> dict[str, Any]:
        who, link = caller()
        deadline = None
        if args["purpose"] == "cancellation":
            if args.get("deadline") is None:
                raise ValidationFailed("deadline", "required for a cancellation")
            deadline = args["deadline"]
        return service().signatures.typed_data(who, link, agreement_id, deadline)


@blp.route("/agreements/<string:agreement_id>/signature")
@access("link")
class Signature(MethodView):
    @blp.doc(security=BEARER, summary="Submit the candidate's signature; relayed to commit()")
    @blp.arguments(SignatureIn)
    @blp.response(200, answers.SignedAgreement)
    @problems(blp, 409, 422, 502)
    def post(self, data: dict[str, Any], agreement_id: str) -> dict[str, Any]:
        who, link = caller()
        signature = signed_bytes(data, link, agreement_id, "commitment")
        answer = service().signatures.submit_signature(who, link, agreement_id, signature)
        if link is not None:
            enrolment = service().enrolment
            enrolment.signed(agreement_id, "commitment", answer.get("transaction"), visitor())
            answer["signing_record_document"] = service().signing_records.anchor_signing_record(
                link, agreement_id, evidence()
            )
        return answer


@blp.route("/agreements/<string:agreement_id>/arrival/typed-data")
@access("link")
class ArrivalTypedData(MethodView):
    @blp.doc(
        security=BEARER,
        summary="The EIP-712 `Arrival` the candidate signs on their first day",
        description="Valid for a day unless `?deadline=<unix s>` is given; send the signature "
        "and this deadline to `POST .../arrival`.",
    )
    @blp.arguments(ArrivalArgs, location="query")
    @blp.response(200, answers.TypedPayload)
    def get(self, args: dict[str, Any], agreement_id: str) -> dict[str, Any]:
        who, link = caller()
        return service().arrivals.typed_data(who, link, agreement_id, args["deadline"])


@blp.route("/agreements/<string:agreement_id>/arrival")
@access("link")
class Arrival(MethodView):
    @blp.doc(
        security=BEARER,
        summary="The candidate's signed arrival; relayed to recordArrival()",
        description="From the start date's day until a breach is declared. While recorded and "
        "not disputed, the contract refuses to declare a breach; after the dispute window the "
        "agreement is fulfilled.",
    )
    @blp.arguments(ArrivalIn)
    @blp.response(200, answers.AgreementView)
    @problems(blp, 409, 422)
    def post(self, data: dict[str, Any], agreement_id: str) -> dict[str, Any]:
        who, link = caller()
        signature = signed_bytes(data, link, agreement_id, "arrival")
        answer = service().arrivals.submit(who, link, agreement_id, data["deadline"], signature)
        if link is not None:
            service().enrolment.signed(agreement_id, "arrival", None, visitor())
        return answer


@blp.route("/agreements/<string:agreement_id>/arrival/dispute")
class ArrivalDispute(MethodView):
    @roles(*WRITE_ROLES)
    @blp.doc(
        security=BEARER,
        summary="The employer disputes the candidate's arrival (within the dispute window)",
    )
    @blp.response(200, answers.AgreementView)
    def post(self, agreement_id: str) -> dict[str, Any]:
        return service().arrivals.dispute(principal(), agreement_id)


@blp.route("/agreements/<string:agreement_id>/milestones/<string:kind>/evidence")
class MilestoneEvidence(MethodView):
    @roles(*WRITE_ROLES)
    @blp.doc(security=BEARER, summary="Confirm a milestone on chain with an anchored document")
    @blp.arguments(EvidenceIn)
    @blp.response(200, answers.AgreementView)
    def post(self, data: dict[str, Any], agreement_id: str, kind: str) -> dict[str, Any]:
        who = principal()
        if kind not in MILESTONE_KINDS:
            raise NotFound(f"unknown milestone kind {kind!r}")
        return service().milestones.confirm_with_document(
            who,
            agreement_id,
            kind,
            data["document_id"],
            evidence=evidence(),
            authorization=request.headers["Authorization"],
        )


def _transition(action: str) -> type[MethodView]:
    class Transition(MethodView):
        @roles(*WRITE_ROLES)
        @blp.doc(security=BEARER, summary=f"{action}: the contract decides by its own clock")
        @blp.response(200, answers.AgreementView)
        @problems(blp, 409, 502)
        def post(self, agreement_id: str) -> dict[str, Any]:
            deadline, signature = 0, b""
            if action == "cancel" and request.get_data():
                try:
                    body = CancelIn().load(request.get_json(force=True))
                except ma.ValidationError as exc:
                    field, messages = next(iter(exc.normalized_messages().items()))
                    raise ValidationFailed(str(field), str(messages)) from None
                deadline, signature = body["deadline"], bytes.fromhex(body["signature"][2:])
            return service().agreements.transition(
                principal(), agreement_id, action, deadline=deadline, signature=signature
            )

    Transition.__name__ = f"Agreement{action.title()}"
    return Transition


for _action in ("start", "breach", "withdraw", "cancel", "expire"):
    blp.route(f"/agreements/<string:agreement_id>/{_action}", endpoint=f"agreement_{_action}")(
        _transition(_action)
    )


@blp.route("/agreements/<string:agreement_id>/risk")
class AgreementRisk(MethodView):
    @roles(*READ_ROLES)
    @blp.doc(security=BEARER, summary="Traffic light, reasons, response, stability, exposure")
    @blp.response(200, answers.RiskView)
    def get(self, agreement_id: str) -> RiskView:
        return service().risk.risk(principal(), agreement_id)


@blp.route("/agreements/<string:agreement_id>/amendments")
class Amendments(MethodView):
    @roles(*WRITE_ROLES)
    @blp.doc(
        security=BEARER,
        summary="Move the start date and/or milestone dates",
        description="Offered: applied on chain at once (the candidate signs the new terms). "
        "Committed: proposed; the candidate receives a link to read the re-issued text and sign "
        "the EIP-712 `Amendment`, and nothing changes until that signature is relayed.",
    )
    @blp.arguments(AmendmentIn)
    @blp.response(201, answers.AmendmentView)
    def post(self, data: dict[str, Any], agreement_id: str) -> Response:
        who = principal()
        tz = ZoneInfo(service().agreements.timezone_of(who, agreement_id))
        change = DateChange(
            start_at=at_local(data["start_date"], tz, START_TIME) if data["start_date"] else None,
            milestones=tuple(
                (m["index"], at_local(m["due"], tz, DUE_TIME)) for m in data["milestones"]
            ),
            reason=data["reason"],
        )
        body = service().amendments.amend(who, agreement_id, change)
        return created(body, f"/v1/agreements/{agreement_id}/amendments/{body['id']}")

    @roles(*READ_ROLES)
    @blp.doc(security=BEARER, summary="Every amendment of the agreement and its state")
    @blp.response(200, answers.AmendmentList)
    def get(self, agreement_id: str) -> dict[str, Any]:
        return {"items": service().amendments.amendments(principal(), agreement_id)}


@blp.route("/agreements/<string:agreement_id>/amendments/<string:amendment_id>")
@access("link")
class AmendmentItem(MethodView):
    @blp.doc(security=BEARER, summary="One amendment (an API key or the candidate's link)")
    @blp.response(200, answers.AmendmentView)
    def get(self, agreement_id: str, amendment_id: str) -> dict[str, Any]:
        who, link = caller(AMEND_PURPOSE)
        answer = service().amendments.amendment(who, agreement_id, amendment_id, link)
        if link is not None:  # the candidate's page signs with the signer they enrolled
            answer["signer"] = service().enrolment.signer_view(agreement_id)
        return answer


@blp.route("/agreements/<string:agreement_id>/amendments/<string:amendment_id>/terms")
@access("link")
class AmendmentTerms(MethodView):
    @blp.doc(security=BEARER, summary="The re-issued text whose sha256 the amendment carries")
    @blp.response(200, TEXT, content_type="text/plain")
    def get(self, agreement_id: str, amendment_id: str) -> Response:
        who, link = caller(AMEND_PURPOSE)
        return terms_text(
            *service().amendments.amendment_terms(who, link, agreement_id, amendment_id)
        )


@blp.route("/agreements/<string:agreement_id>/amendments/<string:amendment_id>/typed-data")
@access("link")
class AmendmentTypedData(MethodView):
    @blp.doc(security=BEARER, summary="The EIP-712 `Amendment` to sign (eth_signTypedData_v4)")
    @blp.response(200, answers.TypedPayload)
    def get(self, agreement_id: str, amendment_id: str) -> dict[str, Any]:
        who, link = caller(AMEND_PURPOSE)
        return service().amendments.amendment_typed_data(who, link, agreement_id, amendment_id)


@blp.route("/agreements/<string:agreement_id>/amendments/<string:amendment_id>/signature")
@access("link")
class AmendmentSignature(MethodView):
    @blp.doc(security=BEARER, summary="The candidate's signature; relayed to amend()")
    @blp.arguments(SignatureIn)
    @blp.response(200, answers.AmendmentView)
    def post(self, data: dict[str, Any], agreement_id: str, amendment_id: str) -> dict[str, Any]:
        who, link = caller(AMEND_PURPOSE)
        signature = signed_bytes(data, link, agreement_id, f"amendment {amendment_id}")
        answer = service().amendments.submit_amendment_signature(
            who, link, agreement_id, amendment_id, signature
        )
        if link is not None:
            service().enrolment.signed(agreement_id, f"amendment {amendment_id}", None, visitor())
        return answer


@blp.route("/employer")
class Employer(MethodView):
    @roles(*READ_ROLES)
    @blp.doc(security=BEARER, summary="The employer address new agreements are offered from")
    @blp.response(200, answers.EmployerView)
    def get(self) -> EmployerAddress:
        return service().agreements.employer(principal())

    @roles("admin")
    @blp.doc(
        security=BEARER,
        summary="Use the tenant's own address as employer (admin)",
        description="The address signs the `EmployerBinding` from `GET /v1/employer/binding` "
        "(422 without it or for another signer) and calls `setOperator(<relayer>, true)` on "
        "the IntentAgreements contract (409 with those values otherwise); an address another "
        'tenant holds is 409. `{"address": null}` goes back to the relayer.',
    )
    @blp.arguments(EmployerIn)
    @blp.response(200, answers.EmployerView)
    def put(self, data: dict[str, Any]) -> EmployerAddress:
        signature = data["signature"]
        return service().agreements.set_employer(
            principal(),
            data["address"],
            bytes.fromhex(signature[2:]) if signature else None,
            data["deadline"],
        )


@blp.route("/employer/binding")
class EmployerBinding(MethodView):
    @roles("admin")
    @blp.doc(
        security=BEARER,
        summary="The EIP-712 EmployerBinding the company's address signs (admin)",
        description="Sign it with `eth_signTypedData_v4` from the address (or its ERC-1271 "
        "wallet) and send the signature and the deadline with `PUT /v1/employer`.",
    )
    @blp.arguments(BindingArgs, location="query")
    @blp.response(200, answers.TypedPayload)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        return service().agreements.employer_binding(principal(), args["address"], args["deadline"])


@blp.route("/agreements/<string:agreement_id>/links/revoke")
class RevokeLinks(MethodView):
    @roles(*WRITE_ROLES)
    @blp.doc(
        security=BEARER,
        summary="Withdraw every link sent so far for this agreement's candidate",
        description="Signing, check-in, upload and unsubscribe links issued before now answer "
        "410; links sent afterwards (a corrected invitation) work.",
    )
    @blp.arguments(RevokeIn)
    @blp.response(200, answers.LinksRevoked)
    def post(self, data: dict[str, Any], agreement_id: str) -> LinksRevoked:
        return service().agreements.revoke_links(principal(), agreement_id, data["reason"])


@blp.route("/policy")
class TenantPolicy(MethodView):
    @roles(*READ_ROLES)
    @blp.doc(security=BEARER, summary="The tenant's choices: automatic breach, candidate uploads")
    @blp.response(200, answers.PolicyView)
    def get(self) -> PolicyView:
        return service().policies.describe(principal())

    @roles("admin")
    @blp.doc(
        security=BEARER,
        summary="Change the tenant's choices (admin); null goes back to the default",
        description="`auto_breach`: the sweeper declares a candidate's breach by itself once "
        "the contract allows it. `candidate_uploads`: `review` (HR confirms the milestone "
        "with POST .../milestones/{kind}/evidence) or `auto` (the anchored upload confirms it).",
    )
    @blp.arguments(PolicyIn)
    @blp.response(200, answers.PolicyView)
    def put(self, data: dict[str, Any]) -> PolicyView:
        return service().policies.update(principal(), data)


@blp.route("/agreements/<string:agreement_id>/dossier")
class AgreementDossier(MethodView):
    @roles(*DOSSIER_ROLES)
    @blp.arguments(DossierArgs, location="query")
    @blp.doc(
        security=BEARER,
        summary="The agreement's dossier (ZIP) made before by POST, as the agreement stands",
        description="Never creates or anchors anything: 404 when no dossier was made for the "
        "agreement as it stands now (POST makes one); 202 with Retry-After while its manifest "
        "waits for its anchoring.",
    )
    @blp.response(200, BINARY, content_type="application/zip")
    @blp.alt_response(202, schema=answers.DossierAnchoring, success=True)
    def get(self, args: dict[str, Any], agreement_id: str) -> Response:
        return _dossier(args, agreement_id, create=False)

    @roles(*DOSSIER_ROLES)
    @blp.arguments(DossierArgs, location="query")
    @blp.doc(
        security=BEARER,
        summary="Make the agreement's dossier (ZIP): every file listed in a manifest anchored "
        "on chain, a signed cover report, the offline verifier",
        description="Deposits the manifest for anchoring unless the same manifest already is "
        "(asking again while nothing changed makes nothing new). 202 with Retry-After while it "
        "waits for its anchoring; the same request, or a GET, gives the ZIP once it is "
        "anchored. With the console's session cookie the CSRF token is required.",
    )
    @blp.response(200, BINARY, content_type="application/zip")
    @blp.alt_response(202, schema=answers.DossierAnchoring, success=True)
    def post(self, args: dict[str, Any], agreement_id: str) -> Response:
        return _dossier(args, agreement_id, create=True)


def _dossier(args: dict[str, Any], agreement_id: str, *, create: bool) -> Response:
    dossiers: Dossiers = current_app.extensions["offerseal.dossiers"]
    archive: EvidenceArchiveClient = current_app.extensions["offerseal.archive"]
    # The evidence and notify services are asked with the caller's own credentials.
    auth = {
        name: request.headers[name]
        for name in ("Authorization", "Cookie")
        if name in request.headers
    }
    try:
        dossier = dossiers.build(
            principal(),
            agreement_id,
            auth,
            archive,
            archive,
            archive,
            lang=args["lang"],
            wait=args["wait"],
            create=create,
        )
    except DossierPending as pending:
        response = current_app.response_class(
            json.dumps(
                {
                    "status": "anchoring",
                    "detail": pending.detail,
                    "manifest_sha256": pending.extra.get("manifest_sha256"),
                    "manifest_document_id": pending.extra.get("document_id"),
                }
            ),
            status=202,
            mimetype="application/json",
        )
        response.headers["Retry-After"] = "2"
        return response
    response = current_app.response_class(dossier.content, mimetype="application/zip")
    response.headers["Content-Disposition"] = f'attachment; filename="{dossier.filename}"'
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Manifest-SHA256"] = dossier.manifest_sha256
    return response

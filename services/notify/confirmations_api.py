"""HTTP entry points of the employer's confirmation: the candidate's authorisation in the portal
(their portal link), HR's request and its answer (an API key of the tenant), and the page the
former employer's HR opens from the e-mail (the link is a bearer secret; GET shows, POST
answers)."""

from __future__ import annotations

import html
from typing import Any

import marshmallow as ma
from flask import Response, request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import fields, validate

from ..shared import i18n
from ..shared.auth import READ_ROLES, WRITE_ROLES
from ..shared.errors import OfferSealError, ValidationFailed
from ..shared.guards import access, roles
from ..shared.web import principal
from .api import BEARER, _portal_token, error_page, page, service, wants_html
from .domain.confirmations import ANSWERS, kind_names

blp = Blueprint(
    "confirmations",
    __name__,
    url_prefix="/v1",
    description="The issuing employer confirms a certificate",
)


class ConsentIn(ma.Schema):
    employer_domain = fields.String(required=True, validate=validate.Length(min=1, max=300))
    lang = fields.String(load_default="zh-CN", validate=validate.OneOf(["zh-CN", "en"]))


class PortalArgs(ma.Schema):
    class Meta:
        unknown = ma.INCLUDE

    lang = fields.String(load_default="zh-CN", validate=validate.OneOf(["zh-CN", "en"]))


class RequestIn(ma.Schema):
    document_id = fields.String(required=True, validate=validate.Length(min=1, max=36))
    employer_email = fields.String(required=True, validate=validate.Length(min=3, max=320))


@blp.route("/inbox/employer-consents")
@access("link")
class Consents(MethodView):
    @blp.doc(
        summary="What the candidate authorised former employers to be asked, and the text "
        "they authorise (portal)"
    )
    @blp.arguments(PortalArgs, location="query")
    @blp.response(200)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        return service().confirmations.portal(_portal_token(), args["lang"])

    @blp.doc(
        summary="The candidate authorises HR to ask the former employer at a domain to "
        "confirm a certificate (portal)",
        description="The statement shown (what is shared, with whom, why) is kept with it.",
    )
    @blp.arguments(ConsentIn)
    @blp.response(201)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        return service().confirmations.consent(
            _portal_token(), data["employer_domain"], data["lang"]
        )


@blp.route("/inbox/employer-consents/<string:consent_id>")
@access("link")
class ConsentItem(MethodView):
    @blp.doc(summary="The candidate withdraws an authorisation (portal)")
    @blp.response(200)
    def delete(self, consent_id: str) -> dict[str, Any]:
        return service().confirmations.withdraw(_portal_token(), consent_id)


@blp.route("/employer-confirmations")
class Requests(MethodView):
    @roles(*WRITE_ROLES)
    @blp.doc(
        security=BEARER,
        summary="Ask the former employer to confirm a certificate (the candidate's "
        "authorisation for that domain first)",
        description="409 without the candidate's authorisation, or when the document was "
        "already sent to that employer; 429 beyond the hourly allowance.",
    )
    @blp.arguments(RequestIn)
    @blp.response(201)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        return service().confirmations.request(
            principal(),
            request.headers.get("Authorization", ""),
            data["document_id"],
            data["employer_email"],
        )


@blp.route("/employer-confirmations/<string:request_id>")
class RequestItem(MethodView):
    @roles(*READ_ROLES)
    @blp.doc(security=BEARER, summary="A confirmation request and the former employer's answer")
    @blp.response(200)
    def get(self, request_id: str) -> dict[str, Any]:
        return service().confirmations.view(principal(), request_id)


@blp.route("/employer-confirmations/<string:request_id>/email-reply")
class EmailReply(MethodView):
    @roles(*WRITE_ROLES)
    @blp.doc(
        security=BEARER,
        summary="Record the former employer's answer that came back by e-mail (multipart: "
        "`answer`, `email` the .eml); its DKIM result is kept",
    )
    @blp.response(200)
    def post(self, request_id: str) -> dict[str, Any]:
        if request.mimetype != "multipart/form-data":
            raise ValidationFailed("email", "send multipart/form-data with the .eml as `email`")
        answer = request.form.get("answer", "")
        if answer not in ANSWERS:
            raise ValidationFailed("answer", f"one of {', '.join(ANSWERS)}")
        upload = request.files.get("email")
        content = upload.read() if upload is not None else b""
        if not content:
            raise ValidationFailed("email", "the former employer's e-mail (.eml) is required")
        return service().confirmations.answer_by_email(
            principal(), request_id, answer, content, (upload and upload.filename) or "reply.eml"
        )


def _both(key: str, sep: str = " / ", **params: str) -> str:
    """A text of the former employer's page in both languages: the page cannot know which
    the employer's HR reads (the catalogue's `notify.confirm.*`)."""
    return sep.join(i18n.text(lang, f"notify.confirm.{key}", **params) for lang in i18n.LANGUAGES)


def _confirm_page(token: str, facts: dict[str, Any]) -> Response:
    e = html.escape
    zh, en = kind_names(facts["document_kind"])
    if facts["answered"]:
        return page(_both("answered.title"), f"<p>{_both('answered.body')}</p>")
    employer = e(facts["employer"])
    body = (
        f"<p>{i18n.text('zh-CN', 'notify.confirm.ask', employer=employer, kind=e(zh))}<br>"
        f"{i18n.text('en', 'notify.confirm.ask', employer=employer, kind=e(en))}</p>"
        f"<p>{_both('compare')}</p>"
        f"<dl><dt>SHA-256</dt><dd><code>{e(facts['sha256'])}</code></dd>"
        f"<dt>SM3</dt><dd><code>{e(facts['sm3'])}</code></dd></dl>"
        '<form method="post">'
        '<p><button type="submit" name="answer" value="genuine">'
        f"{_both('genuine')}</button></p>"
        '<p><button type="submit" name="answer" value="not_ours">'
        f"{_both('not_ours')}</button></p></form>"
        f"<p>{_both('once')}</p>"
    )
    response = page(_both("title"), body)
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


@blp.route("/confirm/<string:token>")
@access("token")
class Confirm(MethodView):
    @blp.doc(
        summary="The former employer's page: the document's fingerprints and two buttons "
        "(GET records nothing: mail scanners fetch links)"
    )
    def get(self, token: str) -> Any:
        try:
            facts = service().confirmations.open(token)
        except OfferSealError as exc:
            if wants_html():
                return error_page(exc)
            raise
        if not wants_html():
            return {**facts, "answers": list(ANSWERS)}
        return _confirm_page(token, facts)

    @blp.doc(summary="Record the former employer's answer (form or JSON); once per request")
    def post(self, token: str) -> Any:
        as_html = request.mimetype != "application/json"
        raw = request.form.to_dict() if as_html else (request.get_json(silent=True) or {})
        answer = raw.get("answer", "") if isinstance(raw, dict) else ""
        try:
            result = service().confirmations.answer(token, str(answer))
        except OfferSealError as exc:
            if as_html:
                return error_page(exc)
            raise
        if as_html:
            return page(_both("thanks.title"), f"<p>{_both('thanks.body')}</p>")
        return result

"""HTTP entry point of the notify service: the candidate's reply and unsubscribe pages (signed,
single-purpose links) and HR's view of touchpoints and preferences."""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import urlencode

import marshmallow as ma
from flask import Response, current_app, redirect, request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import fields, validate

from ..shared import messages
from ..shared.answers import TEXT
from ..shared.auth import READ_ROLES, WRITE_ROLES
from ..shared.errors import OfferSealError, ValidationFailed
from ..shared.guards import access, roles
from ..shared.links import PURPOSE_UNSUBSCRIBE
from ..shared.problems import status_of
from ..shared.web import principal
from . import answers
from .domain.templates import answers as answer_labels
from .service import NotifyService

blp = Blueprint("notify", __name__, url_prefix="/v1", description="Candidate touchpoints")
BEARER: list[dict[str, list[str]]] = [{"bearer": []}]


def service() -> NotifyService:
    svc: NotifyService = current_app.extensions["offerseal.notify"]
    return svc


def wants_html() -> bool:
    return request.accept_mimetypes.best_match(["application/json", "text/html"]) == "text/html"


def page(title: str, body: str, status: int = 200) -> Response:
    doc = (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}'
        '</title><meta name="viewport" content="width=device-width"></head><body>'
        f"<h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return Response(doc, status=status, mimetype="text/html")


def to_portal(agreement_id: str, action: str, token: str, **extra: str) -> Response | None:
    """A browser opening an e-mail's link lands in the candidate's portal (on the people's
    origin) at the right place; programs keep this JSON API."""
    portal = str(current_app.config.get("OFFERSEAL_PORTAL_URL") or "")
    if not portal or not wants_html():
        return None
    query = urlencode({"token": token, **{k: v for k, v in extra.items() if v}})
    response = redirect(f"{portal}/portal/{agreement_id}/{action}?{query}", code=303)
    response.headers["Referrer-Policy"] = "no-referrer"
    return response  # type: ignore[return-value]


def error_page(exc: OfferSealError) -> Response:
    return page(exc.title, f"<p>{html.escape(exc.detail)}</p>", status_of(exc))


class ReplyIn(ma.Schema):
    answer = fields.String(required=True, validate=validate.OneOf(messages.CHECKIN_ANSWERS))
    new_date = fields.Date(load_default=None)


@blp.route("/replies/<string:token>")
@access("token")
class Replies(MethodView):
    @blp.doc(summary="The check-in page (answers are one click away; nothing changes on GET)")
    @blp.response(200, answers.CheckinPage)
    @blp.alt_response(200, schema=TEXT, content_type="text/html", success=True)
    @blp.alt_response(303, description="a browser goes to the portal", success=True)
    def get(self, token: str) -> Any:
        try:
            link, tp = service().replies.open_reply(token)
        except OfferSealError as exc:
            if wants_html():
                return error_page(exc)
            raise
        landing = to_portal(
            link.agreement_id, "reply", token, answer=request.args.get("answer", "")
        )
        if landing is not None:
            return landing
        if not wants_html():
            return {"touchpoint_id": tp.id, "kind": tp.kind, "answers": messages.CHECKIN_ANSWERS}
        chosen = request.args.get("answer", "")
        options = "".join(
            f'<p><label><input type="radio" name="answer" value="{key}"'
            f"{' checked' if key == chosen else ''}> {html.escape(label)}</label></p>"
            for key, label in answer_labels("en").items()
        )
        return page(
            "How is your resignation going?",
            f'<form method="post">{options}<p><label>New date (if delayed): '
            f'<input type="date" name="new_date"></label></p>'
            f'<p><button type="submit">Send</button></p></form>',
        )

    @blp.doc(summary="Record the answer (form or JSON); a link works once")
    @blp.response(200, answers.Replied)
    @blp.alt_response(200, schema=TEXT, content_type="text/html", success=True)
    def post(self, token: str) -> Any:
        as_html = request.mimetype != "application/json"
        raw = request.form.to_dict() if as_html else (request.get_json(silent=True) or {})
        if not isinstance(raw, dict):
            raise ValidationFailed("body", "expected a JSON object with `answer`")
        raw = {k: v for k, v in raw.items() if v not in ("", None)}
        try:
            data = ReplyIn().load(raw)
        except ma.ValidationError as exc:
            field, problems = next(iter(exc.normalized_messages().items()))
            error = ValidationFailed(str(field), str(problems))
            if as_html:
                return error_page(error)
            raise error from None
        try:
            result = service().replies.reply(token, data["answer"], data.get("new_date"))
        except OfferSealError as exc:
            if as_html:
                return error_page(exc)
            raise
        if as_html:
            return page("Thank you", "<p>Your answer is recorded.</p>")
        return result


@blp.route("/unsubscribe/<string:token>")
@access("token")
class Unsubscribe(MethodView):
    @blp.doc(summary="Unsubscribe page (non-essential mail only)")
    @blp.response(200, TEXT, content_type="text/html")
    @blp.alt_response(303, description="a browser goes to the portal", success=True)
    def get(self, token: str) -> Response:
        try:
            link = service().replies.links.verify(token, PURPOSE_UNSUBSCRIBE)
        except OfferSealError as exc:
            return error_page(exc)
        landing = to_portal(link.agreement_id, "unsubscribe", token)
        if landing is not None:
            return landing
        return page(
            "Stop non-essential e-mail",
            '<form method="post"><input type="hidden" name="List-Unsubscribe" '
            'value="One-Click"><button type="submit">Unsubscribe</button></form>'
            "<p>Signing links and legal notices will still reach you.</p>",
        )

    @blp.doc(summary="RFC 8058 one-click unsubscribe")
    @blp.response(200, answers.Unsubscribed)
    @blp.alt_response(200, schema=TEXT, content_type="text/html", success=True)
    def post(self, token: str) -> Any:
        try:
            result = service().replies.unsubscribe(token)
        except OfferSealError as exc:
            if request.mimetype != "application/json":
                return error_page(exc)
            raise
        if request.mimetype == "application/json":
            return result
        return page("Unsubscribed", "<p>You will no longer receive non-essential e-mail.</p>")


class InboxPreferencesIn(ma.Schema):
    opted_out = fields.Boolean(load_default=None)
    # e-mail, SMS or both for reminders
    reminders = fields.List(
        fields.String(validate=validate.OneOf(["email", "sms"])),
        load_default=None,
        validate=validate.Length(min=1, max=2),
    )


def _portal_token() -> str:
    token = request.args.get("token", "")
    if not token:
        raise ValidationFailed("token", "the candidate's link is required")
    return token


@blp.route("/inbox")
@access("link")
class InboxView(MethodView):
    @blp.doc(
        summary="The candidate's messages, the open check-in and document requests (portal)",
        description="With the candidate's portal link (`?token=`): what was sent and when, "
        "a reply link for the check-in waiting for an answer, an upload link per document "
        "asked for, and whether non-essential mail is stopped.",
    )
    @blp.response(200, answers.Inbox)
    def get(self) -> dict[str, Any]:
        return service().inbox.view(_portal_token())


@blp.route("/inbox/preferences")
@access("link")
class InboxPreferences(MethodView):
    @blp.doc(
        summary="The candidate stops or resumes non-essential mail, and picks e-mail, SMS or "
        "both for reminders (portal)"
    )
    @blp.arguments(InboxPreferencesIn)
    @blp.response(200, answers.InboxPreferences)
    def put(self, data: dict[str, Any]) -> dict[str, Any]:
        if data.get("opted_out") is None and data.get("reminders") is None:
            raise ValidationFailed("opted_out", "`opted_out` and/or `reminders` is required")
        out: dict[str, Any] = {}
        if data.get("reminders") is not None:
            out.update(service().inbox.set_reminders(_portal_token(), data["reminders"]))
        if data.get("opted_out") is not None:
            out.update(service().inbox.set_opted_out(_portal_token(), data["opted_out"]))
        return out


class PreferencesIn(ma.Schema):
    channels = fields.List(fields.String(validate=validate.OneOf(["email", "sms", "webhook"])))
    language = fields.String(validate=validate.OneOf(["zh-CN", "en"]))
    timezone = fields.String()
    quiet_hours = fields.String()
    opted_out = fields.Boolean()
    email = fields.Email(allow_none=True)
    phone = fields.String(allow_none=True, validate=validate.Length(max=40))


@blp.route("/candidates/<string:candidate_ref>/preferences")
class Preferences(MethodView):
    @roles(*READ_ROLES)
    @blp.doc(security=BEARER, summary="A candidate's channels, language, quiet hours, opt-out")
    @blp.response(200, answers.Preferences)
    def get(self, candidate_ref: str) -> dict[str, Any]:
        return service().candidates.preferences(principal(), candidate_ref)

    @roles(*WRITE_ROLES)
    @blp.doc(security=BEARER, summary="Change them")
    @blp.arguments(PreferencesIn)
    @blp.response(200, answers.Preferences)
    def put(self, changes: dict[str, Any], candidate_ref: str) -> dict[str, Any]:
        if "timezone" in changes:
            try:
                from zoneinfo import ZoneInfo

                ZoneInfo(changes["timezone"])
            except Exception:
                raise ValidationFailed("timezone", "unknown time zone") from None
        return service().candidates.set_preferences(principal(), candidate_ref, changes)


class TouchpointsArgs(ma.Schema):
    attempts = fields.Boolean(load_default=False)  # each one's delivery attempts too
    agreement_id = fields.String(validate=validate.Length(max=36))


@blp.route("/candidates/<string:candidate_ref>/touchpoints")
class CandidateTouchpoints(MethodView):
    @roles(*READ_ROLES)
    @blp.doc(security=BEARER, summary="Everything planned, sent or answered for a candidate")
    @blp.arguments(TouchpointsArgs, location="query")
    @blp.response(200, answers.TouchpointList)
    def get(self, args: dict[str, Any], candidate_ref: str) -> dict[str, Any]:
        items = service().candidates.touchpoints(
            principal(), candidate_ref, attempts=args["attempts"]
        )
        if args.get("agreement_id"):
            items = [i for i in items if i["agreement_id"] == args["agreement_id"]]
        return {"items": items}


@blp.route("/touchpoints/<string:touchpoint_id>")
class TouchpointItem(MethodView):
    @roles(*READ_ROLES)
    @blp.doc(security=BEARER, summary="One touchpoint with its delivery attempts")
    @blp.response(200, answers.TouchpointView)
    def get(self, touchpoint_id: str) -> dict[str, Any]:
        return service().candidates.touchpoint(principal(), touchpoint_id)


class TemplateIn(ma.Schema):
    subject = fields.String(required=True, validate=validate.Length(min=1, max=200))
    text = fields.String(required=True, validate=validate.Length(min=1, max=10_000))


@blp.route("/templates")
class Templates(MethodView):
    @roles(*READ_ROLES)
    @blp.doc(security=BEARER, summary="Every kind and language: the tenant's text or the default")
    @blp.response(200, answers.TemplateList)
    def get(self) -> dict[str, Any]:
        return {"items": service().templates.list_templates(principal())}


@blp.route("/templates/<string:kind>/<string:language>")
class TemplateItem(MethodView):
    @roles(*READ_ROLES)
    @blp.doc(security=BEARER, summary="One template, its placeholders and a preview")
    @blp.response(200, answers.TemplateView)
    def get(self, kind: str, language: str) -> dict[str, Any]:
        return service().templates.get_template(principal(), kind, language)

    @roles(*WRITE_ROLES)
    @blp.doc(security=BEARER, summary="Use the tenant's own subject and text ({placeholders})")
    @blp.arguments(TemplateIn)
    @blp.response(200, answers.TemplateView)
    def put(self, body: dict[str, Any], kind: str, language: str) -> dict[str, Any]:
        return service().templates.put_template(
            principal(), kind, language, body["subject"], body["text"]
        )

    @roles(*WRITE_ROLES)
    @blp.doc(security=BEARER, summary="Back to the built-in text")
    @blp.response(204)
    def delete(self, kind: str, language: str) -> None:
        service().templates.delete_template(principal(), kind, language)


class BrandingIn(ma.Schema):
    display_name = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(max=100)
    )
    logo_url = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=500))
    accent_colour = fields.String(load_default=None, allow_none=True)
    reply_to = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=320))


@blp.route("/branding")
class Branding(MethodView):
    @roles(*READ_ROLES)
    @blp.doc(security=BEARER, summary="How the tenant's messages look, and where replies go")
    @blp.response(200, answers.BrandingView)
    def get(self) -> dict[str, Any]:
        return service().branding.get(principal())

    @roles(*WRITE_ROLES)
    @blp.doc(
        security=BEARER,
        summary="Set the display name, logo (https), accent colour (#RRGGBB) and Reply-To",
    )
    @blp.arguments(BrandingIn)
    @blp.response(200, answers.BrandingView)
    def put(self, body: dict[str, Any]) -> dict[str, Any]:
        return service().branding.put(principal(), body)


class SmsAccountIn(ma.Schema):
    """A tenant's own SMS account; checked further (formats, hosts) by the service."""

    provider = fields.String(required=True, validate=validate.OneOf(["aliyun", "tencent"]))
    access_key_id = fields.String(required=True, validate=validate.Length(max=128))
    access_key_secret = fields.String(
        required=True, load_only=True, validate=validate.Length(max=200)
    )
    sdk_app_id = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=12))
    region = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=32))
    endpoint = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))


class SmsSettingsIn(ma.Schema):
    # left out: the tenant's own account is kept as it is; null: removed (the deployment's)
    account = fields.Nested(SmsAccountIn, allow_none=True)
    sign_name = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=12))
    templates = fields.Dict(
        keys=fields.String(validate=validate.Length(max=32)),
        values=fields.String(validate=validate.Length(max=64)),
        load_default=dict,
    )


@blp.route("/sms")
class SmsSettings(MethodView):
    @roles(*READ_ROLES)
    @blp.doc(
        security=BEARER,
        summary="The tenant's approved SMS sign name and template ids, its own account if it "
        "set one (the key id cut short, the secret never shown), and the parameters each "
        "kind's template receives",
    )
    @blp.response(200, answers.SmsView)
    def get(self) -> dict[str, Any]:
        return service().sms.get(principal())

    @roles(*WRITE_ROLES)
    @blp.doc(
        security=BEARER,
        summary="Set them (null or left out: the deployment's default); `account` sets the "
        "tenant's own provider and credentials (sealed; left out: kept; null: removed)",
    )
    @blp.arguments(SmsSettingsIn)
    @blp.response(200, answers.SmsView)
    def put(self, body: dict[str, Any]) -> dict[str, Any]:
        return service().sms.put(principal(), body)


class RobotIn(ma.Schema):
    # left out: the stored robot's URL is kept (and its secret, unless one is given)
    url = fields.String(load_default=None, validate=validate.Length(min=1, max=500))
    secret = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))


class AlertsIn(ma.Schema):
    dingtalk = fields.Nested(RobotIn, load_default=None, allow_none=True)
    wecom = fields.Nested(RobotIn, load_default=None, allow_none=True)
    feishu = fields.Nested(RobotIn, load_default=None, allow_none=True)
    language = fields.String(load_default="zh-CN", validate=validate.OneOf(["zh-CN", "en"]))


@blp.route("/alerts")
class Alerts(MethodView):
    @roles(*READ_ROLES)
    @blp.doc(
        security=BEARER,
        summary="The tenant's chat robots for HR alerts (URLs masked, secrets never shown)",
    )
    @blp.response(200, answers.AlertsView)
    def get(self) -> dict[str, Any]:
        return service().alerts.get(principal())

    @roles(*WRITE_ROLES)
    @blp.doc(
        security=BEARER,
        summary="Set the DingTalk, WeCom and Feishu robots (a platform left out is removed)",
    )
    @blp.arguments(AlertsIn)
    @blp.response(200, answers.AlertsView)
    def put(self, body: dict[str, Any]) -> dict[str, Any]:
        return service().alerts.put(principal(), body)


@blp.route("/alerts/test")
class AlertsTest(MethodView):
    @roles(*WRITE_ROLES)
    @blp.doc(security=BEARER, summary="Post a test message to each robot now")
    @blp.response(200, answers.AlertsTested)
    def post(self) -> dict[str, Any]:
        return service().alerts.test(principal())


class CalendarIn(ma.Schema):
    calendar = fields.String(required=True, validate=validate.OneOf(["none", "cn"]))


@blp.route("/calendar")
class CalendarView(MethodView):
    @roles(*READ_ROLES)
    @blp.doc(security=BEARER, summary="The tenant's holiday calendar (`none` or `cn`)")
    @blp.response(200, answers.CalendarView)
    def get(self) -> dict[str, Any]:
        return service().calendars.get(principal())

    @roles(*WRITE_ROLES)
    @blp.doc(
        security=BEARER,
        summary="Use mainland China's public holidays and adjusted working days (`cn`) or not",
    )
    @blp.arguments(CalendarIn)
    @blp.response(200, answers.CalendarView)
    def put(self, body: dict[str, Any]) -> dict[str, Any]:
        return service().calendars.put(principal(), body["calendar"])

"""What the notify API answers: one response schema per answer, dumped by the routes and shown
in the OpenAPI document. Times are ISO 8601 in UTC with a Z; null where not known."""

from __future__ import annotations

from marshmallow import fields

from ..shared.answers import Answer, Items, Object

Str = fields.String


def _opt(**kwargs: object) -> Str:
    return Str(allow_none=True, **kwargs)  # type: ignore[arg-type]


class CheckinPage(Answer):
    touchpoint_id = Str(required=True)
    kind = Str(required=True)
    answers = fields.List(Str(), required=True)


class Replied(Answer):
    touchpoint_id = Str(required=True)
    answer = Str(required=True)
    new_date = _opt()


class Unsubscribed(Answer):
    candidate_ref = Str(required=True)
    opted_out = fields.Boolean(required=True)


class InboxMessage(Answer):
    kind = Str(required=True)
    state = Str(required=True)
    due_at = _opt()
    sent_at = _opt()
    channel = _opt()
    answer = _opt()
    essential = fields.Boolean()


class OpenCheckin(Answer):
    sent_at = _opt()
    reply = Str(required=True, metadata={"description": "the reply link's path"})


class UploadRequest(Answer):
    milestone = Str(required=True)
    due_at = Str()
    upload = Str(required=True, metadata={"description": "the upload link's path"})


class Inbox(Answer):
    messages = Items(InboxMessage, required=True)
    checkin = fields.Nested(OpenCheckin, allow_none=True, required=True)
    uploads = Items(UploadRequest, required=True)
    opted_out = fields.Boolean(required=True)
    reminders = fields.List(Str(), required=True)


class InboxPreferences(Answer):
    opted_out = fields.Boolean()
    reminders = fields.List(Str())


class Preferences(Answer):
    candidate_ref = Str(required=True)
    channels = fields.List(Str(), allow_none=True)
    language = _opt()
    timezone = _opt()
    quiet_hours = _opt()
    opted_out = fields.Boolean(allow_none=True)
    email = _opt()
    phone = _opt()


class Attempt(Answer):
    at = _opt()
    channel = _opt()
    outcome = _opt()
    detail = _opt()


class TouchpointView(Answer):
    id = Str(required=True)
    agreement_id = Str(required=True)
    candidate_ref = Str(required=True)
    kind = Str(required=True)
    occurrence = fields.Integer()
    essential = fields.Boolean()
    state = Str(required=True)
    due_at = _opt()
    sent_at = _opt()
    channel = _opt()
    message_id = _opt()
    answer = _opt()
    new_date = _opt()
    answered_at = _opt()
    missed = fields.Boolean(allow_none=True)
    detail = _opt()
    attempts = Items(Attempt, metadata={"description": "with ?attempts=true"})
    sms = fields.List(Object(), metadata={"description": "each SMS provider's whole answer"})


class TouchpointList(Answer):
    items = Items(TouchpointView, required=True)


class Preview(Answer):
    subject = Str()
    text = Str()


class TemplateView(Answer):
    kind = Str(required=True)
    language = Str(required=True)
    source = Str(required=True, metadata={"description": "tenant, default"})
    subject = _opt()
    text = _opt()
    placeholders = fields.List(Str())
    required = fields.List(Str())
    updated_at = _opt()
    preview = fields.Nested(Preview)


class TemplateList(Answer):
    items = Items(TemplateView, required=True)


class BrandingView(Answer):
    display_name = _opt(required=True)
    logo_url = _opt(required=True)
    accent_colour = _opt(required=True)
    reply_to = _opt(required=True)
    updated_at = _opt(required=True)


class SmsDefaults(Answer):
    provider = _opt(metadata={"description": "the deployment's provider, if any"})
    sign_name = _opt()
    templates = fields.Dict(keys=Str(), values=Str())


class SmsAccountShown(Answer):
    """What may be shown of a tenant's own SMS account: never the secret."""

    provider = Str(required=True)
    access_key_id = Str(metadata={"description": "its first four characters"})
    access_key_secret = Str(required=True, metadata={"description": "set, or unreadable"})
    sdk_app_id = _opt()
    region = _opt()
    endpoint = _opt()


class SmsView(Answer):
    provider = _opt(required=True)
    account = fields.Nested(SmsAccountShown, allow_none=True)
    sign_name = _opt(required=True)
    templates = fields.Dict(keys=Str(), values=Str(), required=True)
    defaults = fields.Nested(SmsDefaults, required=True)
    parameters = fields.Dict(keys=Str(), values=fields.List(Str()))
    updated_at = _opt(required=True)


class Robot(Answer):
    url = Str(required=True, metadata={"description": "masked"})
    signed = fields.Boolean(required=True)


class AlertsView(Answer):
    dingtalk = fields.Nested(Robot)
    wecom = fields.Nested(Robot)
    feishu = fields.Nested(Robot)
    language = Str(required=True)
    updated_at = _opt(required=True)


class Posted(Answer):
    outcome = Str(required=True)
    code = Str(allow_none=True)


class AlertsTested(Answer):
    dingtalk = fields.Nested(Posted)
    wecom = fields.Nested(Posted)
    feishu = fields.Nested(Posted)


class CalendarView(Answer):
    calendar = Str(required=True, metadata={"description": "none, cn"})
    updated_at = _opt(required=True)
    official_until = fields.Integer(metadata={"description": "cn: the last year known"})

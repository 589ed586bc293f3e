"""A tenant's own touchpoint texts: which kinds and languages can be overridden, what a text
must keep (its placeholders and required links), and a preview of each; and its branding (the
name, logo and accent colour of its messages, and the HR address replies go to)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from ..shared import messages
from ..shared.auth import READ_ROLES, WRITE_ROLES, Principal
from ..shared.db import Database
from ..shared.errors import ValidationFailed
from ..shared.models import iso, utcnow
from .domain import overrides
from .domain import sms as sms_rules
from .domain.overrides import Override, TemplateError
from .domain.templates import Brand
from .errors import TemplateNotFound
from .layout import contrast, render
from .models import TenantBranding, TenantSms, TenantTemplate
from .sms import SmsAccounts

COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
EMAIL = re.compile(r"^[^@\s<>\"',;]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")


def _template_out(kind: str, language: str, row: TenantTemplate | None) -> dict[str, Any]:
    override = Override(row.subject, row.text) if row else None
    sample_links = {
        "sign": "https://example.invalid/sign",
        "upload": "https://example.invalid/upload",
        **{
            f"reply_{a}": f"https://example.invalid/reply?answer={a}"
            for a in messages.CHECKIN_ANSWERS
        },
    }
    preview = render(kind, language, dict(overrides.SAMPLE), sample_links, override)
    return {
        "kind": kind,
        "language": language,
        "source": "tenant" if row else "default",
        "subject": row.subject if row else None,
        "text": row.text if row else None,
        "placeholders": sorted(overrides.COMMON_FIELDS + overrides.FIELDS[kind]),
        "required": list(overrides.REQUIRED[kind]),
        "updated_at": iso(row.updated_at) if row else None,
        "preview": {"subject": preview.subject, "text": preview.text},
    }


def _check_kind(kind: str, language: str) -> None:
    if kind not in overrides.FIELDS:
        raise TemplateNotFound(
            f"no touchpoint kind {kind!r} (one of {', '.join(overrides.FIELDS)})"
        )
    if language not in overrides.LANGUAGES:
        raise TemplateNotFound(
            f"no language {language!r} (one of {', '.join(overrides.LANGUAGES)})"
        )


class TenantTemplates:
    def __init__(self, db: Database) -> None:
        self.db = db

    def list_templates(self, principal: Principal) -> list[dict[str, Any]]:
        principal.require(*READ_ROLES)
        with self.db.sessions() as session:
            rows = {
                (t.kind, t.language): t
                for t in session.execute(
                    select(TenantTemplate).where(TenantTemplate.tenant == principal.tenant)
                ).scalars()
            }
            return [
                _template_out(kind, language, rows.get((kind, language)))
                for kind in overrides.FIELDS
                for language in overrides.LANGUAGES
            ]

    def get_template(self, principal: Principal, kind: str, language: str) -> dict[str, Any]:
        principal.require(*READ_ROLES)
        _check_kind(kind, language)
        with self.db.sessions() as session:
            row = session.get(TenantTemplate, (principal.tenant, kind, language))
            return _template_out(kind, language, row)

    def put_template(
        self, principal: Principal, kind: str, language: str, subject: str, text: str
    ) -> dict[str, Any]:
        """Takes effect for every touchpoint of this kind sent from now on."""
        principal.require(*WRITE_ROLES)
        _check_kind(kind, language)
        try:
            overrides.validate(kind, language, Override(subject, text))
        except TemplateError as exc:
            raise ValidationFailed(exc.field, str(exc)) from None
        with self.db.transaction() as session:
            row = session.get(TenantTemplate, (principal.tenant, kind, language))
            if row is None:
                row = TenantTemplate(tenant=principal.tenant, kind=kind, language=language)
                session.add(row)
            row.subject, row.text = subject, text
            row.updated_by, row.updated_at = principal.key_id, utcnow()
        return self.get_template(principal, kind, language)

    def delete_template(self, principal: Principal, kind: str, language: str) -> None:
        """Back to the built-in text."""
        principal.require(*WRITE_ROLES)
        _check_kind(kind, language)
        with self.db.transaction() as session:
            row = session.get(TenantTemplate, (principal.tenant, kind, language))
            if row is None:
                raise TemplateNotFound(f"no {language} {kind} template of this tenant")
            session.delete(row)


def _branding_out(row: TenantBranding | None) -> dict[str, Any]:
    return {
        "display_name": row.display_name if row else None,
        "logo_url": row.logo_url if row else None,
        "accent_colour": row.accent_colour if row else None,
        "reply_to": row.reply_to if row else None,
        "updated_at": iso(row.updated_at) if row else None,
    }


def check_branding(changes: dict[str, Any]) -> None:
    """422 naming the field: a name on one line, an https logo, a #RRGGBB accent that white or
    black text can be read on (WCAG 4.5:1), an e-mail address for replies."""
    for field in ("display_name", "logo_url", "accent_colour", "reply_to"):
        value = changes.get(field)
        if value is not None and any(
            ord(c) < 32 or ord(c) == 127 or 0xD800 <= ord(c) <= 0xDFFF for c in value
        ):
            raise ValidationFailed(field, "no control characters")
    name = changes.get("display_name")
    if name is not None and (not name.strip() or any(c in name for c in '\r\n<>"')):
        raise ValidationFailed("display_name", "one line of text, without < > or quotes")
    logo = changes.get("logo_url")
    if logo is not None and (not logo.startswith("https://") or any(c.isspace() for c in logo)):
        raise ValidationFailed("logo_url", "an https:// URL (mail clients load it)")
    accent = changes.get("accent_colour")
    if accent is not None:
        if not COLOUR.match(accent):
            raise ValidationFailed("accent_colour", "a colour as #RRGGBB")
        if max(contrast(accent, "#ffffff"), contrast(accent, "#0b0c0c")) < 4.5:
            raise ValidationFailed(
                "accent_colour", "button text cannot be read on it (contrast below 4.5:1)"
            )
    reply_to = changes.get("reply_to")
    if reply_to is not None and not EMAIL.match(reply_to):
        raise ValidationFailed("reply_to", "an e-mail address such as hr@example.com")


class TenantBrandings:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, principal: Principal) -> dict[str, Any]:
        principal.require(*READ_ROLES)
        with self.db.sessions() as session:
            return _branding_out(session.get(TenantBranding, principal.tenant))

    def put(self, principal: Principal, changes: dict[str, Any]) -> dict[str, Any]:
        """Replaces the branding (a field left out or null goes back to the default); takes
        effect for every message sent from now on."""
        principal.require(*WRITE_ROLES)
        check_branding(changes)
        with self.db.transaction() as session:
            row = session.get(TenantBranding, principal.tenant)
            if row is None:
                row = TenantBranding(tenant=principal.tenant)
                session.add(row)
            row.display_name = changes.get("display_name")
            row.logo_url = changes.get("logo_url")
            row.accent_colour = (changes.get("accent_colour") or "").lower() or None
            row.reply_to = changes.get("reply_to")
            row.updated_by, row.updated_at = principal.key_id, utcnow()
        return self.get(principal)

    @staticmethod
    def brand(row: TenantBranding | None) -> Brand:
        if row is None:
            return Brand()
        return Brand(row.display_name, row.logo_url, row.accent_colour, row.reply_to)


SIGN_NAME = re.compile(r"^[\w\u4e00-\u9fff]{2,12}$")  # the providers' sign-name rule
TEMPLATE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def check_sms(changes: dict[str, Any]) -> None:
    """422 naming the field: a sign name of 2-12 letters, digits or Chinese characters; template
    ids only for the kinds SMS carries."""
    sign = changes.get("sign_name")
    if sign is not None and not SIGN_NAME.match(sign):
        raise ValidationFailed("sign_name", "2 to 12 letters, digits or Chinese characters")
    for kind, template in (changes.get("templates") or {}).items():
        if kind not in sms_rules.TEMPLATE_PARAMS:
            raise ValidationFailed(
                f"templates.{kind}"[:60], f"one of {', '.join(sms_rules.TEMPLATE_PARAMS)}"
            )
        if not isinstance(template, str) or not TEMPLATE_ID.match(template):
            raise ValidationFailed(f"templates.{kind}", "an approved template id (SMS_123, 1110)")


class TenantSmsSettings:
    """A tenant's SMS settings (`PUT /v1/sms`): its approved sign name and template ids, and
    optionally its own account (provider and credentials, sealed, never returned). Without an
    account of its own the deployment's applies (OFFERSEAL_SMS_*), with its sign name and
    templates where the tenant set none; with its own, only the tenant's approvals count."""

    def __init__(
        self,
        db: Database,
        defaults: Callable[[], tuple[str, str, dict[str, str]]],
        accounts: Callable[[], SmsAccounts | None] = lambda: None,
    ):
        self.db = db
        self.defaults = defaults  # (provider, sign name, templates); provider "" when none
        self.accounts = accounts

    def get(self, principal: Principal) -> dict[str, Any]:
        principal.require(*READ_ROLES)
        provider, sign_name, templates_ = self.defaults()
        with self.db.sessions() as session:
            row = session.get(TenantSms, principal.tenant)
        accounts = self.accounts()
        account = (
            accounts.shown(principal.tenant, row.provider, row.sealed)
            if accounts is not None and row is not None
            else None
        )
        return {
            "provider": (account or {}).get("provider") or provider or None,
            "account": account,
            "sign_name": row.sign_name if row else None,
            "templates": dict(row.templates or {}) if row else {},
            "defaults": {
                "provider": provider or None,
                "sign_name": sign_name or None,
                "templates": templates_,
            },
            "parameters": {k: list(v) for k, v in sms_rules.TEMPLATE_PARAMS.items()},
            "updated_at": iso(row.updated_at) if row else None,
        }

    def put(self, principal: Principal, changes: dict[str, Any]) -> dict[str, Any]:
        """Replaces the sign name and templates (left out or null: the deployment's default).
        `account`: left out keeps the tenant's own account as it is (its secret cannot be read
        back to send again); null removes it (the deployment's applies again)."""
        principal.require(*WRITE_ROLES)
        check_sms(changes)
        sealed, provider = None, ""
        account = changes.get("account")
        if account is not None:
            accounts = self.accounts()
            if accounts is None:
                raise ValidationFailed("account", "this deployment has no SMS channel")
            checked = accounts.check(account)
            sealed, provider = accounts.seal(principal.tenant, checked), checked["provider"]
        with self.db.transaction() as session:
            row = session.get(TenantSms, principal.tenant)
            if row is None:
                row = TenantSms(tenant=principal.tenant)
                session.add(row)
            row.sign_name = changes.get("sign_name")
            row.templates = dict(changes.get("templates") or {})
            if sealed is not None:
                row.provider, row.sealed = provider, sealed
            elif "account" in changes:  # null: back to the deployment's account
                row.provider, row.sealed = None, None
            row.updated_by, row.updated_at = principal.key_id, utcnow()
        return self.get(principal)

"""A tenant's own touchpoint texts: which kinds and languages can be overridden, what a text
must keep (its placeholders and required links), and a preview of each."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ..shared import messages
from ..shared.auth import READ_ROLES, WRITE_ROLES, Principal
from ..shared.db import Database
from ..shared.errors import ValidationFailed
from ..shared.models import iso, utcnow
from .domain import templates
from .domain.templates import Override, TemplateError, render
from .errors import TemplateNotFound
from .models import TenantTemplate


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
    preview = render(kind, language, templates.SAMPLE, sample_links, override)
    return {
        "kind": kind,
        "language": language,
        "source": "tenant" if row else "default",
        "subject": row.subject if row else None,
        "text": row.text if row else None,
        "placeholders": sorted(templates.COMMON_FIELDS + templates.FIELDS[kind]),
        "required": list(templates.REQUIRED[kind]),
        "updated_at": iso(row.updated_at) if row else None,
        "preview": {"subject": preview.subject, "text": preview.text},
    }


def _check_kind(kind: str, language: str) -> None:
    if kind not in templates.FIELDS:
        raise TemplateNotFound(
            f"no touchpoint kind {kind!r} (one of {', '.join(templates.FIELDS)})"
        )
    if language not in templates.LANGUAGES:
        raise TemplateNotFound(
            f"no language {language!r} (one of {', '.join(templates.LANGUAGES)})"
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
                for kind in templates.FIELDS
                for language in templates.LANGUAGES
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
            templates.validate(kind, language, Override(subject, text))
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

"""A tenant's own subject and text for a touchpoint kind and language (`Override`): what it may
say (the placeholders of each kind, the ones it must keep), how it is checked before it is
stored (`validate`), and how it is filled in. `templates.compose` uses it in place of the
built-in text; the layout, facts and buttons stay, and its text is only ever escaped."""

from __future__ import annotations

import string
from dataclasses import dataclass

from .schedule import (
    AMENDMENT,
    CHECKIN,
    CLOSING,
    CODE,
    INVITATION,
    MILESTONE_REQUEST,
    SIGNER_BOUND,
    WEEKLY_UPDATE,
    WELCOME_PACKAGE,
)

LANGUAGES = ("zh-CN", "en")
# What a tenant's template may use, per kind ({name}; {{ and }} for literal braces). The
# required ones carry the touchpoint's purpose: a template without them is refused.
COMMON_FIELDS = ("employer", "position")
FIELDS: dict[str, tuple[str, ...]] = {
    INVITATION: ("sign_link",),
    CHECKIN: ("answers",),
    MILESTONE_REQUEST: ("milestone", "due_at", "upload_link"),
    WEEKLY_UPDATE: (),
    WELCOME_PACKAGE: (),
    CLOSING: ("outcome", "state"),
    AMENDMENT: ("sign_link", "start_at", "reason"),
    CODE: ("code",),
    SIGNER_BOUND: ("bound_at",),
}
REQUIRED: dict[str, tuple[str, ...]] = {
    INVITATION: ("sign_link",),
    CHECKIN: ("answers",),
    MILESTONE_REQUEST: ("upload_link",),
    WEEKLY_UPDATE: (),
    WELCOME_PACKAGE: (),
    CLOSING: ("outcome",),
    AMENDMENT: ("sign_link",),
    CODE: ("code",),
    SIGNER_BOUND: (),
}
SUBJECT_MAX, TEXT_MAX = 200, 10_000
SAMPLE = {
    "employer": "Acme",
    "position": "Engineer",
    "milestone": "stamped_resignation",
    "due_at": "2027-01-15T00:00:00+00:00",
    "state": "fulfilled",
    "start_at": "2027-02-01",
    "reason": "the current employer asked for a longer handover",
    "code": "123456",
}


@dataclass(frozen=True)
class Override:
    """A tenant's subject and text for one kind and language."""

    subject: str
    text: str


class TemplateError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _placeholders(template: str, field: str) -> set[str]:
    try:
        parsed = [(n, spec, conv) for _, n, spec, conv in string.Formatter().parse(template)]
    except ValueError as exc:
        raise TemplateError(field, f"not a valid template: {exc}") from None
    if any(spec or conv for n, spec, conv in parsed if n is not None):
        # "{employer:>999999999}" would make a gigabyte string: plain names only.
        raise TemplateError(field, "placeholders are plain names such as {employer}")
    return {n for n, _, _ in parsed if n is not None}


def validate(kind: str, language: str, override: Override) -> None:
    """Refuse a template that could not be rendered, or would lose the touchpoint's purpose."""
    if kind not in FIELDS:
        raise TemplateError("kind", f"one of {', '.join(FIELDS)}")
    if language not in LANGUAGES:
        raise TemplateError("language", f"one of {', '.join(LANGUAGES)}")
    if not override.subject.strip() or "\n" in override.subject or "\r" in override.subject:
        raise TemplateError("subject", "one non-empty line")
    if len(override.subject) > SUBJECT_MAX:
        raise TemplateError("subject", f"at most {SUBJECT_MAX} characters")
    if not override.text.strip() or len(override.text) > TEXT_MAX:
        raise TemplateError("text", f"1 to {TEXT_MAX} characters")
    allowed = set(COMMON_FIELDS) | set(FIELDS[kind])
    for field, template in (("subject", override.subject), ("text", override.text)):
        names = _placeholders(template, field)
        unknown = sorted(n for n in names if n not in allowed)
        if unknown:
            raise TemplateError(
                field,
                f"unknown placeholder(s) {', '.join('{' + n + '}' for n in unknown)}; "
                f"{kind} may use {', '.join('{' + n + '}' for n in sorted(allowed))}",
            )
        if field == "subject" and names & {"answers", "sign_link", "upload_link"}:
            raise TemplateError(field, "links belong in the text, not the subject")
    missing = [n for n in REQUIRED[kind] if n not in _placeholders(override.text, "text")]
    if missing:
        raise TemplateError(
            "text", f"must contain {', '.join('{' + n + '}' for n in missing)} (the {kind}'s link)"
        )


LINK_MARK = "\x00"


def override_paragraphs(template: str, values: dict[str, str]) -> list[str]:
    """A tenant's text for the HTML part: its paragraphs without the lines that only carry a
    link (the layout gives every link its button)."""
    marked = dict(values)
    for name in ("sign_link", "upload_link", "answers"):
        marked[name] = LINK_MARK
    out = []
    for paragraph in template.format_map(marked).strip().split("\n\n"):
        lines = [line for line in paragraph.split("\n") if LINK_MARK not in line]
        if any(line.strip() for line in lines):
            out.append("\n".join(lines).strip())
    return out


def override_text(override: Override, values: dict[str, str]) -> str:
    """A tenant's text for the text part, its placeholders filled."""
    return override.text.format_map(values).strip()

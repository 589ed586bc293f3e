"""Touchpoint texts: the built-in ones and a tenant's overrides (validation, escaping)."""

from __future__ import annotations

import pytest

from offerseal.notify.domain.overrides import (
    FIELDS,
    LANGUAGES,
    Override,
    TemplateError,
    validate,
)
from offerseal.notify.layout import render

LINKS = {
    "sign": "https://x.test/sign?token=a&b=1",
    "upload": "https://x.test/upload/t",
    "reply_on_track": "https://x.test/r?answer=on_track",
    "reply_delayed": "https://x.test/r?answer=delayed",
    "reply_need_help": "https://x.test/r?answer=need_help",
    "reply_withdrawing": "https://x.test/r?answer=withdrawing",
}
DATA = {"employer": "Acme <b>", "position": "Engineer", "state": "fulfilled"}


@pytest.mark.parametrize("kind", list(FIELDS))
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_built_in_text_renders(kind: str, language: str) -> None:
    rendered = render(kind, language, DATA, LINKS)
    assert rendered.subject and rendered.text.strip()
    assert "<b>" not in rendered.html  # data is escaped


def test_an_override_replaces_subject_and_text_and_keeps_html_safe() -> None:
    override = Override("Sign for {position}", "Hi from {employer}!\n\nSign here: {sign_link}")
    validate("invitation", "en", override)
    rendered = render("invitation", "en", DATA, LINKS, override)
    assert rendered.subject == "Sign for Engineer"
    assert rendered.text == f"Hi from Acme <b>!\n\nSign here: {LINKS['sign']}\n"
    assert "Acme &lt;b&gt;" in rendered.html
    assert 'href="https://x.test/sign?token=a&amp;b=1"' in rendered.html  # the button


def test_non_essential_overrides_still_carry_the_unsubscribe_link() -> None:
    override = Override("News", "Hello from {employer}")
    rendered = render("weekly_update", "en", DATA, {"unsubscribe": "https://x.test/u/t"}, override)
    assert rendered.text.rstrip().endswith("https://x.test/u/t")


def test_check_in_override_lists_every_answer_link() -> None:
    override = Override("进展如何", "请选择：\n{answers}")
    rendered = render("checkin", "zh-CN", DATA, LINKS, override)
    for key in ("on_track", "delayed", "need_help", "withdrawing"):
        assert LINKS[f"reply_{key}"] in rendered.text


@pytest.mark.parametrize(
    ("kind", "override", "field", "fragment"),
    [
        ("invitation", Override("Sign", "no link here"), "text", "{sign_link}"),
        ("milestone_request", Override("Doc", "by {due_at}"), "text", "{upload_link}"),
        ("checkin", Override("Hi", "{answers} {sign_link}"), "text", "unknown placeholder"),
        ("invitation", Override("Sign", "{sign_link} {employer.__class__}"), "text", "unknown"),
        ("invitation", Override("Sign", "{sign_link:>999999999}"), "text", "plain names"),
        ("invitation", Override("Sign", "{sign_link!r}"), "text", "plain names"),
        ("invitation", Override("Sign", "{sign_link} {"), "text", "not a valid template"),
        ("invitation", Override("two\nlines", "{sign_link}"), "subject", "one non-empty line"),
        ("invitation", Override("{sign_link}", "{sign_link}"), "subject", "links belong"),
        ("invitation", Override("x" * 201, "{sign_link}"), "subject", "at most"),
        ("nonsense", Override("x", "y"), "kind", "one of"),
        ("invitation", Override("x", "{sign_link}"), "language", "one of"),
    ],
)
def test_bad_templates_are_refused_with_the_field_at_fault(
    kind: str, override: Override, field: str, fragment: str
) -> None:
    language = "fr" if field == "language" else "en"
    with pytest.raises(TemplateError) as info:
        validate(kind, language, override)
    assert info.value.field == field
    assert fragment in str(info.value)

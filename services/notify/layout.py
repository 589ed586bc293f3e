"""The HTML part of every message: one table-based Jinja2 layout (`templates/email.html`) whose
stylesheet css-inline writes into each element's style attribute, as mail clients need; the media
queries for phones stay in a <style> block. The tenant's brand gives the name, the logo and the
accent colour of the buttons; every text is escaped.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import css_inline
from jinja2 import Environment, FileSystemLoader, Template, select_autoescape
from markupsafe import Markup, escape

from ..shared import i18n
from .domain.overrides import Override
from .domain.templates import (
    DEFAULT_ACCENT,
    Brand,
    Content,
    Rendered,
    compose,
)

TEMPLATES = Path(__file__).with_name("templates")
INK_DARK, INK_LIGHT = "#0b0c0c", "#ffffff"


def _lines(text: str) -> Markup:
    """Escaped text with its line breaks kept."""
    return Markup("<br>").join(escape(line) for line in text.split("\n"))


@cache
def _template() -> Template:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["lines"] = _lines
    return env.get_template("email.html")


@cache
def _styles() -> tuple[Markup, Markup]:
    return (
        Markup((TEMPLATES / "email.css").read_text(encoding="utf-8")),
        Markup((TEMPLATES / "email-media.css").read_text(encoding="utf-8")),
    )


@cache
def _inliner() -> css_inline.CSSInliner:
    # No remote stylesheets: nothing is fetched while a message is rendered.
    return css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)


def _luminance(colour: str) -> float:
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(one: str, other: str) -> float:
    """WCAG contrast ratio of two #RRGGBB colours."""
    a, b = sorted((_luminance(one), _luminance(other)), reverse=True)
    return (a + 0.05) / (b + 0.05)


def ink_on(accent: str) -> str:
    """The button text colour that reads best on the accent (white unless too light)."""
    return INK_LIGHT if contrast(accent, INK_LIGHT) >= contrast(accent, INK_DARK) else INK_DARK


def html(content: Content, brand: Brand | None = None) -> str:
    brand = brand or Brand()
    accent = brand.accent_colour or DEFAULT_ACCENT
    css, media_css = _styles()
    page = _template().render(
        c=content,
        css=css,
        media_css=media_css,
        accent=accent,
        ink=ink_on(accent),
        logo_url=brand.logo_url,
        preheader=content.paragraphs[0] if content.paragraphs else content.heading,
        fallback=i18n.text(content.language, "notify.email.button_fallback"),
    )
    return str(_inliner().inline(page))


def render(
    kind: str,
    language: str,
    data: dict[str, str],
    links: dict[str, str],
    override: Override | None = None,
    brand: Brand | None = None,
) -> Rendered:
    """Subject, plain text, HTML and SMS text of one touchpoint."""
    content = compose(kind, language, data, links, override, brand)
    return Rendered(content.subject, content.text, html(content, brand), content.sms)

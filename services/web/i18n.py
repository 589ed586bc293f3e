"""Which language a page speaks (zh-CN or en: `?lang=` first, then Accept-Language) and its
texts, from the one catalogue (`shared/catalogue/`) that the pages' scripts bundle as well."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ..shared import i18n as catalogue
from ..shared.i18n import DEFAULT_LANGUAGE, LANGUAGES

__all__ = ["DEFAULT_LANGUAGE", "LANGUAGES", "catalog", "choose_language", "translator"]


def catalog() -> dict[str, Mapping[str, str]]:
    return {language: catalogue.texts(language) for language in LANGUAGES}


def choose_language(asked: str | None, best_match: Callable[[list[str]], str | None]) -> str:
    """`asked` (the `?lang=` parameter) when we speak it, else the best match of the browser's
    Accept-Language (`best_match` from werkzeug, which also matches `zh` to `zh-CN`), else the
    default."""
    if asked in LANGUAGES:
        return str(asked)
    return best_match(list(LANGUAGES)) or DEFAULT_LANGUAGE


def translator(language: str) -> Callable[..., str]:
    """`t(key, **params)` in `language`, falling back to English, then to the key itself."""
    texts, english = catalogue.texts(language), catalogue.texts("en")

    def t(key: str, **params: object) -> str:
        return catalogue.fill(texts.get(key) or english.get(key) or key, params)

    return t

"""Which language a page speaks (zh-CN or en: `?lang=` first, then Accept-Language) and its
texts, from the catalog that the pages' scripts bundle as well: `messages.json` (the site and the
verify page) merged with one file per area in `messages/` (the portal, the console, ...)."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path

LANGUAGES = ("zh-CN", "en")
DEFAULT_LANGUAGE = "zh-CN"
CATALOG_FILE = Path(__file__).with_name("messages.json")
AREA_FILES = Path(__file__).with_name("messages")


@cache
def catalog() -> dict[str, dict[str, str]]:
    data: dict[str, dict[str, str]] = json.loads(CATALOG_FILE.read_text(encoding="utf-8"))
    for area in sorted(AREA_FILES.glob("*.json")):
        for language, texts in json.loads(area.read_text(encoding="utf-8")).items():
            clash = data.setdefault(language, {}).keys() & texts.keys()
            if clash:
                raise ValueError(f"{area.name} redefines {sorted(clash)[:3]}")
            data[language].update(texts)
    return data


def choose_language(asked: str | None, best_match: Callable[[list[str]], str | None]) -> str:
    """`asked` (the `?lang=` parameter) when we speak it, else the best match of the browser's
    Accept-Language (`best_match` from werkzeug, which also matches `zh` to `zh-CN`), else the
    default."""
    if asked in LANGUAGES:
        return str(asked)
    return best_match(list(LANGUAGES)) or DEFAULT_LANGUAGE


def translator(language: str) -> Callable[..., str]:
    """`t(key, **params)` in `language`, falling back to English, then to the key itself."""
    texts, english = catalog()[language], catalog()["en"]

    def t(key: str, **params: object) -> str:
        text = texts.get(key) or english.get(key) or key
        for name, value in params.items():
            text = text.replace("{" + name + "}", str(value))
        return text

    return t

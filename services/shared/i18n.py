"""The one catalogue of what OfferSeal says, per language: `catalogue/zh-CN.json` and
`catalogue/en.json`, flat and sorted, with namespaced keys (`site.*`, `verify.*` and the verify
checks' own keys, `portal.*`, `console.*`, `inapp.*`, `pdf.cover.*`, `pdf.certificate.*`,
`pdf.notary.*`, `notify.*`). The pages, their bundled scripts (`web/build.mjs`), the PDFs and
the messages all read it; both files hold the same keys with the same `{placeholders}`
(tests/unit/test_catalogue.py).

A text with alternatives (an SMS from the longest to the barest) keeps them on separate lines
of one value: `variants()`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path

LANGUAGES = ("zh-CN", "en")
DEFAULT_LANGUAGE = "zh-CN"
FOLDER = Path(__file__).with_name("catalogue")
PLACEHOLDER = re.compile(r"\{(\w+)\}")


@cache
def texts(language: str) -> Mapping[str, str]:
    """Every text of `language` by key (ValueError for a language we do not speak)."""
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {', '.join(LANGUAGES)}")
    loaded: dict[str, str] = json.loads((FOLDER / f"{language}.json").read_text(encoding="utf-8"))
    return loaded


def placeholders(text: str) -> frozenset[str]:
    """The `{name}`s a text expects."""
    return frozenset(PLACEHOLDER.findall(text))


def fill(text: str, params: Mapping[str, object]) -> str:
    """`text` with each `{name}` replaced by `params[name]`; other braces stay as written."""
    return PLACEHOLDER.sub(lambda m: str(params[m[1]]) if m[1] in params else m[0], text)


def text(language: str, key: str, /, **params: object) -> str:
    """The text `key` in `language`, its placeholders filled. Strict: an unknown key, a missing
    or an unexpected parameter is a programming error (KeyError / ValueError), found by tests
    rather than shown to a reader as a raw `{name}`."""
    raw = texts(language)[key]
    expected = placeholders(raw)
    if expected != params.keys():
        raise ValueError(f"{key} takes {sorted(expected)}, given {sorted(params)}")
    return fill(raw, params)


def variants(language: str, key: str) -> list[str]:
    """The alternatives of `key`, one per line, in the catalogue's order (unfilled)."""
    return texts(language)[key].split("\n")


def lookup(language: str, prefix: str) -> Mapping[str, str]:
    """The texts under `prefix` (`"notify.answer."`) by the rest of their key, in key order."""
    return {
        key.removeprefix(prefix): value
        for key, value in sorted(texts(language).items())
        if key.startswith(prefix)
    }

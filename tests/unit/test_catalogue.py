"""The one catalogue per language: both languages say the same things with the same placeholders,
its files stay canonical (sorted, one key a line: simple to merge), its loader is strict, and no
Python module keeps a Chinese table of its own."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from offerseal.shared import i18n

ROOT = Path(__file__).resolve().parents[2]
CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")

# Chinese that stays in code, and why. Nothing else may: a text belongs in the catalogue.
ALLOWED: dict[str, str] = {
    # The agreement's terms: a legal text whose bytes `termsHash` commits to on chain; it is
    # versioned with the contracts, not edited as a page's wording.
    "services/contracts/domain/templates.py": "the agreement's hashed terms",
    # The dossier's README.txt says everything in both languages at once, in one file.
    "services/contracts/domain/dossier.py": "the dossier's bilingual README",
    # What Aliyun's SMS API answers when it throttles (matched, not shown).
    "services/notify/adapters/sms.py": "a provider's error text, matched",
    # The demo tenant's SMS sign name: data a provider approves, not a text of ours.
    "services/demo/sms.py": "the demo's SMS sign name",
    # The local stand-in answers as Aliyun's API does, its Chinese error texts included.
    "services/demo/sms_standin.py": "a provider's answers, as it gives them",
    # Documentation of a setting naming the platform's own Chinese term.
    "services/notify/alerts.py": "a setting's description",
}


def test_both_languages_have_the_same_keys_and_placeholders() -> None:
    zh, en = i18n.texts("zh-CN"), i18n.texts("en")
    assert sorted(set(zh) ^ set(en)) == []
    for key, text in en.items():
        assert i18n.placeholders(text) == i18n.placeholders(zh[key]), key


def test_every_key_is_namespaced() -> None:
    for key in i18n.texts("en"):
        assert re.fullmatch(r"[a-z0-9_]+(\.[a-z0-9_]+)+", key), key


@pytest.mark.parametrize("language", i18n.LANGUAGES)
def test_the_files_are_canonical_so_added_keys_merge_as_added_lines(language: str) -> None:
    path = i18n.FOLDER / f"{language}.json"
    texts = json.loads(path.read_text(encoding="utf-8"))
    canonical = json.dumps(texts, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert path.read_text(encoding="utf-8") == canonical, f"{path.name}: run make catalogue"
    assert sorted(path.parent.glob("*.json")) == sorted(
        i18n.FOLDER / f"{name}.json" for name in i18n.LANGUAGES
    )


def test_the_loader_fills_placeholders_and_refuses_wrong_ones() -> None:
    assert i18n.text("en", "portal.terms.days", n=3) == "3 days"
    assert i18n.text("zh-CN", "portal.terms.days", n=3) == "3 天"
    with pytest.raises(ValueError, match=r"takes \['n'\]"):
        i18n.text("en", "portal.terms.days")
    with pytest.raises(ValueError, match="given"):
        i18n.text("en", "portal.terms.days", n=3, m=4)
    with pytest.raises(KeyError):
        i18n.text("en", "portal.no.such.key")
    with pytest.raises(ValueError, match="language"):
        i18n.texts("fr")


def _chinese_literals(path: Path) -> list[int]:
    """Lines of string literals holding Chinese, docstrings and comments aside."""
    source = path.read_text(encoding="utf-8")
    if not CJK.search(source):
        return []
    tree = ast.parse(source)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
        and CJK.search(node.value)
    ]


def test_no_module_keeps_its_own_chinese_table() -> None:
    found = {
        str(path.relative_to(ROOT)): lines
        for folder in ("services", "verifier")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if (lines := _chinese_literals(path))
    }
    unexplained = {path: lines for path, lines in found.items() if path not in ALLOWED}
    assert unexplained == {}, "move these texts to services/shared/catalogue/"
    assert sorted(set(ALLOWED) - set(found)) == [], "an allowance no longer needed"


@pytest.mark.parametrize(
    ("bundle", "areas"), [("verify", {"site", "verify"}), ("portal", {"site", "verify", "portal"})]
)
def test_each_page_script_bundles_its_part_of_the_catalogue(bundle: str, areas: set[str]) -> None:
    """`web/build.mjs` (run by `make setup`) hands a script the site's texts and its area's,
    never the PDFs', the messages' or another area's."""
    script = (ROOT / "services/web/static/dist" / f"{bundle}.js").read_text(encoding="utf-8")
    namespaces = {"site", "verify", "portal", "console", "inapp", "pdf", "notify"}
    found = set(re.findall(r'"(' + "|".join(namespaces) + r')\.[a-z_.]+"', script))
    assert found == areas

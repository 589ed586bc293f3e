"""The documentation: the README stays short, docs/configuration.md says what the settings table
says (it is generated: `make docs`), and every relative link in README.md and docs/ leads to a
file that exists, and to a heading that exists when it names one."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

from offerseal.shared.config import VARIABLES
from offerseal.shared.config_docs import configuration_page

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def links(text: str) -> list[str]:
    """The targets of the inline links and images outside code."""
    return LINK.findall(CODE.sub("", FENCE.sub("", text)))


def anchors(text: str) -> set[str]:
    """The ids GitHub gives a page's headings: lower case, punctuation dropped, spaces to
    hyphens, a repeated heading numbered (-1, -2, ...)."""
    seen: dict[str, int] = {}
    out = set()
    for heading in re.findall(r"^#{1,6} +(.+?) *#*$", FENCE.sub("", text), re.M):
        plain = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
        slug = re.sub(r"[^\w\- ]", "", plain.lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def test_every_relative_link_resolves() -> None:
    broken = []
    for page in PAGES:
        for target in links(page.read_text(encoding="utf-8")):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):
                continue  # https:, mailto:
            path, _, fragment = target.partition("#")
            file = (page.parent / unquote(path)).resolve() if path else page
            where = f"{page.relative_to(ROOT)}: {target}"
            if not file.exists():
                broken.append(f"{where} (no such file)")
            elif (
                fragment
                and file.suffix == ".md"
                and unquote(fragment) not in anchors(file.read_text(encoding="utf-8"))
            ):
                broken.append(f"{where} (no such heading)")
    assert not broken, "\n".join(broken)


def test_the_link_checker_reads_links_outside_code_and_github_heading_ids() -> None:
    text = "[a](missing.md) `[b](in-code.md)` [c](#a-heading) [d](https://example.com)\n"
    assert links(text) == ["missing.md", "#a-heading", "https://example.com"]
    assert anchors("# The HR console (`/console`, port 8100)\n## Notify\n## Notify\n") == {
        "the-hr-console-console-port-8100",
        "notify",
        "notify-1",
    }


def test_the_readme_is_short_and_links_into_docs() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200
    assert "make demo" in readme and "make test" in readme
    assert "docs/README.md" in links(readme)


def test_the_configuration_page_is_generated_from_the_settings_table() -> None:
    """Fails when a variable was added, changed or removed without `make docs`."""
    page = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert page == configuration_page(), "docs/configuration.md is stale: run `make docs`"
    for variable in VARIABLES:
        assert f"`{variable.env}`" in page


def test_the_command_writes_the_page_and_check_fails_while_it_is_stale(tmp_path: Path) -> None:
    from offerseal.cli import main

    page = tmp_path / "configuration.md"
    assert main(["config", "docs", "--check", str(page)]) == 1  # missing
    assert main(["config", "docs", str(page)]) == 0
    assert page.read_text(encoding="utf-8") == configuration_page()
    assert main(["config", "docs", "--check", str(page)]) == 0
    page.write_text(configuration_page().replace("OFFERSEAL_WORKERS", "OFFERSEAL_X"))
    assert main(["config", "docs", "--check", str(page)]) == 1

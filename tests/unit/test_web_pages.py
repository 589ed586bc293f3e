"""The people's pages: language choice, the verify page's own CSP (and nobody else's), public
static files, and the saved verifier that carries its script and styles inline, pinned by hash."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from offerseal.shared.config import load_settings
from offerseal.shared.web import CONTENT_SECURITY_POLICY
from offerseal.web import i18n, standalone
from offerseal.web.app import create_app

BUILT = standalone.SCRIPT.exists()


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Any]:
    from offerseal.shared.db import Database

    db = Database(f"sqlite:///{tmp_path / 'web.db'}")
    db.migrate()
    app = create_app(load_settings({}, data_dir=tmp_path), db)
    yield app.test_client()
    db.dispose()


def test_both_languages_have_every_text() -> None:
    catalog = i18n.catalog()
    assert set(catalog) == set(i18n.LANGUAGES)
    assert set(catalog["en"]) == set(catalog["zh-CN"])
    for key, text in catalog["en"].items():
        params = set(re.findall(r"\{(\w+)\}", text))
        assert params == set(re.findall(r"\{(\w+)\}", catalog["zh-CN"][key])), key


@pytest.mark.parametrize(
    ("asked", "accept", "expected"),
    [
        ("en", "zh-CN,zh;q=0.9", "en"),
        ("zh-CN", "en-US", "zh-CN"),
        (None, "en-GB,en;q=0.8", "en"),
        (None, "zh-TW,zh;q=0.9", "zh-CN"),
        (None, "fr-FR", "zh-CN"),
        ("xx", "en", "en"),
    ],
)
def test_language_from_the_link_then_the_browser(
    client: Any, asked: str | None, accept: str, expected: str
) -> None:
    query = f"?lang={asked}" if asked else ""
    page = client.get(f"/verify{query}", headers={"Accept-Language": accept})
    assert page.status_code == 200
    assert f'<html lang="{expected}">' in page.text
    assert i18n.translator(expected)("verify.title") in page.text
    assert page.headers["Vary"] == "Accept-Language"


def test_only_the_verify_page_may_connect_to_other_hosts(client: Any) -> None:
    page = client.get("/verify")
    csp = page.headers["Content-Security-Policy"]
    assert "connect-src http: https:" in csp
    assert "script-src 'self';" in csp and "frame-ancestors 'none'" in csp
    assert csp == CONTENT_SECURITY_POLICY.replace("connect-src 'self'", "connect-src http: https:")
    for other in ("/static/site.css", "/healthz", "/no-such-page"):
        assert client.get(other).headers["Content-Security-Policy"] != csp, other
    assert client.get("/static/site.css").headers["Content-Security-Policy"] == (
        CONTENT_SECURITY_POLICY
    )


def test_pages_and_their_files_need_no_key(client: Any) -> None:
    assert client.get("/verify").status_code == 200
    assert client.get("/static/site.css").status_code == 200
    assert client.get("/static/no-such-file.css").status_code == 404


def test_the_page_loads_its_script_and_styles_from_its_own_origin_only(client: Any) -> None:
    html = client.get("/verify").text
    sources = re.findall(r'(?:src|href)="([^"#?]+)', html)
    assert sources and all(s.startswith("/") and not s.startswith("//") for s in sources), sources
    assert "/static/dist/verify.js" in sources and "/static/site.css" in sources
    assert "<script>" not in html and "style=" not in html  # nothing inline: CSP 'self'


@pytest.mark.skipif(not BUILT, reason="the page script is not built (npm run build)")
def test_the_saved_verifier_is_one_file_pinned_by_its_own_csp(client: Any) -> None:
    saved = client.get("/verify/verifier.html?lang=en")
    assert saved.status_code == 200
    assert saved.headers["Content-Disposition"] == 'attachment; filename="offerseal-verifier.html"'
    html = saved.text
    assert not re.search(r'(?:src|href)="(?!\?lang=|#)', html), "it must need no other file"
    script = re.search(r"<script>(.*)</script>", html, re.DOTALL)
    styles = re.search(r"<style>(.*)</style>", html, re.DOTALL)
    assert script and styles
    assert script.group(1) == standalone.SCRIPT.read_text(encoding="utf-8")
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html)
    assert csp

    def pinned(text: str) -> str:
        return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"

    policy = csp.group(1).replace("&#39;", "'")
    assert f"script-src {pinned(script.group(1))};" in policy
    assert f"style-src {pinned(styles.group(1))};" in policy
    assert policy.startswith("default-src 'none'") and "connect-src http: https:" in policy
    assert 'id="save-verifier"' not in html


def test_the_saved_verifier_says_so_when_the_script_is_not_built(
    client: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(standalone, "SCRIPT", tmp_path / "missing.js")
    answer = client.get("/verify/verifier.html")
    assert answer.status_code == 503
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert "npm run build" in answer.json["detail"]


def test_scripts_and_styles_go_gzipped_to_browsers_that_take_it(client: Any) -> None:
    import gzip

    plain = client.get("/static/dist/portal.js")
    assert plain.status_code == 200 and "Content-Encoding" not in plain.headers
    packed = client.get("/static/dist/portal.js", headers={"Accept-Encoding": "gzip, br"})
    assert packed.headers["Content-Encoding"] == "gzip"
    assert packed.headers["Vary"] == "Accept-Encoding"
    assert gzip.decompress(packed.data) == plain.data
    assert len(packed.data) < len(plain.data) / 2
    assert client.get("/static/site.css", headers={"Accept-Encoding": "gzip"}).headers[
        "Content-Type"
    ].startswith("text/css")
    # No way out of the static folder, compressed or not.
    assert client.get("/static/../app.py", headers={"Accept-Encoding": "gzip"}).status_code == 404

"""The saved verifier: the verify page as ONE HTML file with its script and styles inlined, that
checks proofs opened from disk with nothing but an RPC endpoint. It decides what that file
contains and the Content-Security-Policy it carries in a meta element (a file has no headers):
only its own inline script and styles (by hash), and connections to http(s) RPC endpoints."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from .errors import AssetsMissing

STATIC = Path(__file__).with_name("static")
SCRIPT = STATIC / "dist" / "verify.js"
STYLES = STATIC / "site.css"
FILENAME = "offerseal-verifier.html"


@dataclass(frozen=True)
class InlineAssets:
    script: str
    styles: str

    @property
    def content_security_policy(self) -> str:
        return (
            "default-src 'none'; "
            f"script-src '{_csp_hash(self.script)}'; style-src '{_csp_hash(self.styles)}'; "
            "img-src data:; connect-src http: https:; base-uri 'none'; form-action 'none'"
        )


def _csp_hash(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


@cache
def _load(script_mtime: float, styles_mtime: float) -> InlineAssets:
    script = SCRIPT.read_text(encoding="utf-8")
    if "</script" in script.lower():  # would end the inline element early
        raise AssetsMissing(f"{SCRIPT} contains '</script' and cannot be inlined")
    return InlineAssets(script=script, styles=STYLES.read_text(encoding="utf-8"))


def inline_assets() -> InlineAssets:
    """The built script and the styles, read once per build."""
    try:
        return _load(SCRIPT.stat().st_mtime, STYLES.stat().st_mtime)
    except FileNotFoundError as exc:
        raise AssetsMissing(f"{exc.filename} is missing: run `npm run build`") from None

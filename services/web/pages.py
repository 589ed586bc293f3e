"""The pages' HTTP entry point: which page answers which path, in which language, with which
Content-Security-Policy. Pages are public (no key) and rate limited like every anonymous call."""

from __future__ import annotations

from flask import Blueprint, Response, render_template, request
from markupsafe import Markup

from ..shared.guards import access
from ..shared.web import CONTENT_SECURITY_POLICY
from . import i18n, standalone

blp = Blueprint("pages", __name__)

# The verify page talks to the RPC endpoints its user types, wherever they are; everything else
# stays as strict as on every other page (own scripts only, never framed).
VERIFY_CSP = CONTENT_SECURITY_POLICY.replace("connect-src 'self'", "connect-src http: https:")


def _language() -> str:
    return i18n.choose_language(request.args.get("lang"), request.accept_languages.best_match)


def _page(template: str, language: str, **context: object) -> str:
    return render_template(
        template,
        lang=language,
        languages=[(code, i18n.catalog()[code]["lang.name"]) for code in i18n.LANGUAGES],
        t=i18n.translator(language),
        **context,
    )


@blp.get("/verify")
@access("public")
def verify() -> Response:
    language = _language()
    response = Response(_page("verify.html", language, standalone=None))
    response.headers["Content-Security-Policy"] = VERIFY_CSP
    response.headers["Vary"] = "Accept-Language"
    return response


@blp.get("/verify/verifier.html")
@access("public")
def verifier() -> Response:
    """The verify page as one self-contained file to keep beside the evidence."""
    language = _language()
    assets = standalone.inline_assets()
    html = _page(
        "verify.html",
        language,
        standalone={
            "csp": assets.content_security_policy,
            "script": Markup(assets.script),
            "styles": Markup(assets.styles),
        },
    )
    response = Response(html, mimetype="text/html")
    response.headers["Content-Disposition"] = f'attachment; filename="{standalone.FILENAME}"'
    response.headers["Vary"] = "Accept-Language"
    return response

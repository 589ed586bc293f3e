"""The pages' HTTP entry point: which page answers which path, in which language, with which
Content-Security-Policy. Pages are public (no key) and rate limited like every anonymous call."""

from __future__ import annotations

import re
from urllib.parse import urlencode

from flask import Blueprint, Response, redirect, render_template, request
from markupsafe import Markup

from ..shared.guards import access, own_path
from ..shared.web import CONTENT_SECURITY_POLICY
from . import i18n, inapp, standalone

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


UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _wants_json() -> bool:
    """Browsers name text/html when they open a link; programs (integrators, curl) do not."""
    return not any(mimetype == "text/html" for mimetype, _ in request.accept_mimetypes)


def _portal(
    agreement_id: str, amendment_id: str | None, typed_data: str, mode: str = ""
) -> Response:
    if not UUID.match(agreement_id) or (amendment_id is not None and not UUID.match(amendment_id)):
        return Response(_page("portal_missing.html", _language()), status=404)
    if _wants_json() and not mode:
        # Integrators' signing links always answered the typed data: they still do.
        query = urlencode({k: v for k, v in request.args.items() if k == "token"})
        response = redirect(f"{typed_data}?{query}", code=307)
        response.headers["Vary"] = "Accept"
        return response  # type: ignore[return-value]
    response = Response(
        _page(
            "portal.html",
            _language(),
            agreement_id=agreement_id,
            amendment_id=amendment_id,
            mode=mode,
            # in-app browsers (WeChat, ...): a guide before the candidate starts
            inapp=inapp.detect(request.headers.get("User-Agent", "")),
            page_url=request.url,
            qr=inapp.qr_svg(request.url),
        )
    )
    response.headers["Vary"] = "Accept, Accept-Language, User-Agent"
    response.headers["Cache-Control"] = "no-store"
    return response


@blp.get("/portal/<string:agreement_id>")
@access("public")
@own_path
def portal(agreement_id: str) -> Response:
    """The candidate's portal: read, enrol, sign, follow the progress, arrive. The page holds
    no data; its script calls the agreement's APIs on this origin with the link's token."""
    return _portal(agreement_id, None, f"/v1/agreements/{agreement_id}/typed-data")


@blp.get("/portal/<string:agreement_id>/amendments/<string:amendment_id>")
@access("public")
@own_path
def portal_amendment(agreement_id: str, amendment_id: str) -> Response:
    """The portal at one amendment waiting for the candidate's signature."""
    return _portal(
        agreement_id,
        amendment_id,
        f"/v1/agreements/{agreement_id}/amendments/{amendment_id}/typed-data",
    )


def _action(action: str) -> None:
    def view(agreement_id: str) -> Response:
        """Where an e-mail's check-in answer, document request or unsubscribe link lands for a
        browser: the portal at that one action, done with that link's own token."""
        return _portal(agreement_id, None, "", mode=action)

    view.__name__ = f"portal_{action}"
    blp.get(f"/portal/<string:agreement_id>/{action}")(access("public")(own_path(view)))


for _name in ("reply", "upload", "unsubscribe"):
    _action(_name)

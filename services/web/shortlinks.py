"""`/l/<code>`: the short links in candidates' messages. A valid code answers 303 to the signed
link it stands for; an unknown code 404 and an expired or withdrawn one 410, each as a page in
the candidate's language (never a stack trace). Public and rate limited like every anonymous
call; the codes carry about 71 random bits, so they cannot be enumerated."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, redirect
from werkzeug.wrappers import Response as BaseResponse

from ..shared import shortlinks
from ..shared.guards import access, own_path
from .pages import _language, _page

blp = Blueprint("shortlinks", __name__)
STATUS = {"unknown": 404, "expired": 410, "revoked": 410}


@blp.get("/l/<string:code>")
@access("public")
@own_path
def follow(code: str) -> BaseResponse:
    db = current_app.extensions["offerseal.db"]
    with db.sessions() as session:
        found = shortlinks.resolve(session, code)
    response: BaseResponse
    if found.state == "ok" and found.target:
        response = redirect(found.target, code=303)
    else:
        language = _language()
        response = Response(
            _page("link_unavailable.html", language, state=found.state),
            status=STATUS[found.state],
            mimetype="text/html",
        )
        response.headers["Vary"] = "Accept-Language"
    response.headers["Cache-Control"] = "no-store"
    return response

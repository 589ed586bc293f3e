"""Wiring of the web app (the people's origin): `create_app()` with the shared guards, security
headers and problem+json, the pages, and static files served publicly. No work at import time."""

from __future__ import annotations

from pathlib import Path
from typing import cast

from flask import Flask, Response, request, send_file

from ..shared import problems, users
from ..shared.config import Settings
from ..shared.db import Database
from ..shared.guards import access
from ..shared.web import create_base_app, health_route, standard_checks
from . import console, pages, shortlinks
from .errors import AssetsMissing


def create_app(settings: Settings, db: Database, public_origin: str = "") -> Flask:
    """The console's actions go to the contracts service's HTTP API
    (`settings.contracts_base_url`), with the signed-in person's session as the caller.
    `public_origin`: where people reach these pages (the stack's portal URL), which links made
    here name; unset, OFFERSEAL_WEB_PUBLIC_URL, else http://localhost:<web port>. Never the
    request's Host header, which whoever sends the request chooses."""
    app, _api, _registry = create_base_app("web", db, settings=settings)
    problems.map_statuses(app, {AssetsMissing: 503})  # an operator's fix, not the client's
    app.config["OFFERSEAL_DEFAULT_TIMEZONE"] = settings.default_timezone
    app.config["OFFERSEAL_PUBLIC_ORIGIN"] = (
        public_origin or settings.web_public_url or f"http://localhost:{settings.web_port}"
    ).rstrip("/")
    app.register_blueprint(pages.blp)
    app.register_blueprint(shortlinks.blp)
    app.register_blueprint(console.blueprint())
    users.prepare_sign_in()
    # Styles, images and the bundled scripts (services/web/static/) need no key.
    serve_static = app.view_functions["static"]

    def static(filename: str) -> Response:
        """A bundled script or the stylesheet gzipped at set-up (`<file>.gz`), to a browser
        that takes gzip: a phone on a slow network loads a third of the bytes."""
        folder = Path(app.static_folder or "")
        packed = (folder / filename).with_name(Path(filename).name + ".gz")
        if (
            "gzip" in request.headers.get("Accept-Encoding", "")
            and folder in packed.resolve().parents
            and packed.is_file()
        ):
            response = send_file(packed, mimetype=_mimetype(filename), conditional=True)
            response.headers["Content-Encoding"] = "gzip"
            response.headers["Vary"] = "Accept-Encoding"
            return response
        answer = app.make_response(cast(Response, serve_static(filename=filename)))
        answer.headers["Vary"] = "Accept-Encoding"
        return answer

    app.view_functions["static"] = access("public")(static)
    health_route(app, standard_checks(db, None, "web"))
    return app


def _mimetype(filename: str) -> str:
    if filename.endswith(".js"):
        return "text/javascript; charset=utf-8"
    if filename.endswith(".css"):
        return "text/css; charset=utf-8"
    return "application/octet-stream"

"""Wiring of the web app (the people's origin): `create_app()` with the shared guards, security
headers and problem+json, the pages, and static files served publicly. No work at import time."""

from __future__ import annotations

from flask import Flask

from ..shared.config import Settings
from ..shared.db import Database
from ..shared.guards import access
from ..shared.web import create_base_app, health_route, standard_checks
from . import pages, shortlinks


def create_app(settings: Settings, db: Database) -> Flask:
    app, _api, _registry = create_base_app("web", db, settings=settings)
    app.register_blueprint(pages.blp)
    app.register_blueprint(shortlinks.blp)
    # Styles, images and the bundled scripts (services/web/static/) need no key.
    access("public")(app.view_functions["static"])
    health_route(app, standard_checks(db, None, "web"))
    return app

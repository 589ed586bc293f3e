"""One origin for people: the pages' server also answers the services' API paths, routed by
path prefix to the service that owns them, in this process (what `offerseal up` runs). In a
deployment of separate processes a standard gateway in front routes the same prefixes
(docker-compose.yml). Browsers then never call another origin: no CORS."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# Which service owns which API path (every /v1 route of each service's blueprints).
PREFIXES: dict[str, tuple[str, ...]] = {
    "contracts": ("/v1/agreements", "/v1/employer", "/v1/policy"),
    "evidence": (
        "/v1/documents",
        "/v1/uploads",
        "/v1/verify",
        "/v1/keys",
        "/v1/schemas",
        "/v1/witnesses",
    ),
    "notify": (
        "/v1/alerts",
        "/v1/branding",
        "/v1/calendar",
        "/v1/candidates",
        "/v1/confirm",
        "/v1/employer-confirmations",
        "/v1/inbox",
        "/v1/replies",
        "/v1/sms",
        "/v1/templates",
        "/v1/touchpoints",
        "/v1/unsubscribe",
    ),
}


class PathGateway:
    """WSGI: a request whose path starts with one of a service's prefixes goes to that
    service's app, unchanged; everything else to the pages."""

    def __init__(self, pages: WSGIApp, services: dict[str, WSGIApp]) -> None:
        self.pages = pages
        self.routes = sorted(
            ((prefix, app) for name, app in services.items() for prefix in PREFIXES.get(name, ())),
            key=lambda route: -len(route[0]),
        )

    def route(self, path: str) -> WSGIApp:
        for prefix, app in self.routes:
            if path == prefix or path.startswith(prefix + "/"):
                return app
        return self.pages

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        return self.route(environ.get("PATH_INFO", ""))(environ, start_response)

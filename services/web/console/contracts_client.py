"""The console's actions through the services' HTTP APIs (as contracts reaches evidence): on
agreements through contracts' (`ContractsClient`), on the tenant's chat-robot alerts through
notify's (`NotifyClient`). The web node needs neither service in its process, so the console
works as docker-compose runs it (`offerseal serve web` alone). The person's console session
travels with each call (its cookie and its CSRF token): each API checks the role and tenant
itself, exactly as for any other caller. A problem document comes back as the same error the
service would have raised (status, detail, the fields named)."""

from __future__ import annotations

from typing import Any

import requests
from flask import current_app, g, request

from ...shared.config import Settings
from ...shared.errors import NotFound, OfferSealError, TransientError
from ...shared.web import CSRF_HEADER, SESSION_COOKIE

TIMEOUT = 90.0  # an offer waits up to 30 s for its block; a transition for its own


class ServiceRefused(OfferSealError):
    """What a service's API answered with a problem document: the console answers with the
    same status (`http_status`, which `problems.status_of` keeps)."""

    def __init__(self, status: int, title: str, detail: str, **extra: Any) -> None:
        super().__init__(detail or title, **extra)
        self.http_status = status
        self.title = title


ContractsRefused = ServiceRefused


class ServiceClient:
    """One service's HTTP API, called with the person's console session."""

    service = "a service"

    def __init__(self, base: str, session: requests.Session | None = None) -> None:
        self.base = base.rstrip("/")
        self.http = session or requests.Session()

    def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        sent = {"Accept": "application/json", **(headers or {})}
        held = g.get("offerseal_session")
        if held is not None:
            sent[CSRF_HEADER] = held.csrf_token
        elif request.headers.get("Authorization"):  # a key calling the page: the same key
            sent["Authorization"] = str(request.headers["Authorization"])
        cookies = {SESSION_COOKIE: request.cookies.get(SESSION_COOKIE, "")}
        try:
            answer = self.http.request(
                method,
                self.base + path,
                json=body,
                headers=sent,
                cookies=cookies,
                timeout=TIMEOUT,
            )
        except requests.RequestException as exc:
            raise TransientError(
                f"the {self.service} service did not answer ({type(exc).__name__}); try again"
            ) from None
        if answer.status_code < 400:
            return dict(answer.json()) if answer.content else {}
        try:
            problem = answer.json()
        except ValueError:
            problem = {}
        detail = str(problem.get("detail") or problem.get("title") or answer.reason)
        if answer.status_code == 404:
            raise NotFound(detail)
        if answer.status_code >= 502:
            raise TransientError(detail)
        extra = {k: v for k, v in problem.items() if k in ("errors", "error")}
        raise ServiceRefused(
            answer.status_code, str(problem.get("title") or "Refused"), detail, **extra
        )


class ContractsClient(ServiceClient):
    service = "contracts"

    # ---- what the console does ------------------------------------------------------------

    def create(self, body: dict[str, Any], request_id: str) -> dict[str, Any]:
        return self._call(
            "POST",
            "/v1/agreements",
            body,
            {"Idempotency-Key": "console-offer-" + request_id, "Prefer": "wait=30"},
        )

    def transition(self, agreement_id: str, action: str) -> dict[str, Any]:
        return self._call("POST", f"/v1/agreements/{agreement_id}/{action}", None)

    def revoke_links(self, agreement_id: str, reason: str) -> dict[str, Any]:
        return self._call("POST", f"/v1/agreements/{agreement_id}/links/revoke", {"reason": reason})

    def amend(self, agreement_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", f"/v1/agreements/{agreement_id}/amendments", body)


def contracts_client() -> ContractsClient:
    """The app's client, made once with the configured contracts URL."""
    client = current_app.extensions.get("offerseal.contracts_client")
    if client is None:
        settings: Settings = current_app.extensions["offerseal.settings"]
        client = ContractsClient(settings.contracts_base_url)
        current_app.extensions["offerseal.contracts_client"] = client
    return client


class NotifyClient(ServiceClient):
    service = "notify"

    def alerts(self) -> dict[str, Any]:
        return self._call("GET", "/v1/alerts", None)

    def set_alerts(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("PUT", "/v1/alerts", body)

    def test_alerts(self) -> dict[str, Any]:
        return self._call("POST", "/v1/alerts/test", None)


def notify_client() -> NotifyClient:
    """The app's client, made once with the configured notify URL."""
    client = current_app.extensions.get("offerseal.notify_client")
    if client is None:
        settings: Settings = current_app.extensions["offerseal.settings"]
        client = NotifyClient(settings.notify_base_url)
        current_app.extensions["offerseal.notify_client"] = client
    return client

"""The pre-fork server's request routing: each bound port goes to its service's app, and every
answer names the process that gave it."""

from __future__ import annotations

import os
from typing import Any

from offerseal.shared.prefork import PROCESS_HEADER, ByPort, server_options


def app_named(name: str) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [name.encode()]

    return app


def call(app: Any, port: str) -> tuple[str, dict[str, str], bytes]:
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], *exc: Any) -> None:
        seen["status"], seen["headers"] = status, dict(headers)

    body = b"".join(app({"SERVER_PORT": port}, start_response))
    return seen["status"], seen["headers"], body


def test_each_port_reaches_its_service_and_answers_name_the_process() -> None:
    routed = ByPort({8101: app_named("evidence"), 8102: app_named("contracts")})
    status, headers, body = call(routed, "8102")
    assert status == "200 OK" and body == b"contracts"
    assert headers[PROCESS_HEADER] == str(os.getpid())
    assert call(routed, "8101")[2] == b"evidence"
    assert call(routed, "9999")[0].startswith("404")


def test_one_service_answers_on_its_only_port() -> None:
    assert call(ByPort({8101: app_named("evidence")}), "")[2] == b"evidence"


def test_server_trusts_no_proxy_header_and_opens_no_control_socket() -> None:
    options = server_options(["127.0.0.1:8101"], 3, 16, "INFO")
    assert options["workers"] == 3 and options["worker_class"] == "gthread"
    assert options["forwarded_allow_ips"] == "" and options["control_socket_disable"] is True
    assert options["loglevel"] == "info"

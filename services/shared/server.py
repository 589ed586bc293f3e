"""Runs WSGI apps with waitress in threads and stops them cleanly on SIGINT/SIGTERM."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Callable
from typing import Any

from waitress.server import create_server

log = logging.getLogger(__name__)


class LateApp:
    """A WSGI app whose real app arrives after its socket is bound (the port is reserved while
    the service behind it is built); until then it answers 503."""

    def __init__(self) -> None:
        self.app: Any = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if self.app is None:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"starting\n"]
        return self.app(environ, start_response)


class HttpServer:
    def __init__(
        self, app: Any, host: str, port: int, threads: int, trust_forwarded: bool = False
    ) -> None:
        # Behind trusted proxies the app (werkzeug's ProxyFix, OFFERSEAL_TRUSTED_PROXIES)
        # reads X-Forwarded-*; otherwise waitress drops those headers before the app sees them.
        self.server = create_server(
            app,
            host=host,
            port=port,
            threads=threads,
            ident="offerseal",
            clear_untrusted_proxy_headers=not trust_forwarded,
            channel_timeout=120,
            connection_limit=1000,
        )
        self.port = int(self.server.effective_port)
        self.thread = threading.Thread(target=self._serve, name=f"http-{port}", daemon=True)

    def _serve(self) -> None:
        with contextlib.suppress(OSError, ValueError):  # raised when closed during shutdown
            self.server.run()

    def start(self) -> HttpServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        # Let in-flight requests finish before the sockets close under them.
        self.server.task_dispatcher.shutdown(cancel_pending=False, timeout=5)
        self.server.close()
        if self.thread.is_alive():
            self.thread.join(5)


def wait_for_signal(on_stop: Callable[[], None]) -> None:
    """Block until SIGINT or SIGTERM, then call `on_stop` once."""
    stopped = threading.Event()

    def _handler(signum: int, _frame: Any) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        stopped.set()

    signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)
    while not stopped.wait(0.5):
        pass
    on_stop()

"""`offerseal serve --workers N`: the services under gunicorn's pre-fork server, so that requests
use every core. Python runs one thread at a time per process; N processes take requests in
parallel.

Exactly one worker process runs the background (the anchoring, stamping, chain and notify
workers, the message consumers and the outbox relay): the arbiter gives that role to the first
worker it forks and, when that process ends (a crash or SIGKILL included), to the worker it forks
in its place. The others only take requests; the arbiter forks them once the background process
is ready (the contracts are deployed and recorded, so no two processes deploy). The anchoring
lock (`locks.py`) stays: two anchorers for one signer still cannot run at once.

Nothing that must not cross a fork is made before it: the arbiter only migrates the database (its
engine disposed before forking) and binds the sockets; each worker builds its own stack after the
fork (database pools, broker connections, web3 providers, threads).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from gunicorn.app.base import BaseApplication

from .config import Settings

log = logging.getLogger(__name__)

PROCESS_HEADER = "OfferSeal-Process"  # the worker process's id, on every answer (load checks)
BOOT_SECONDS = 120.0  # longest wait for the background process before forking the others


class ByPort:
    """One WSGI app for every bound port: the request goes to the service listening there. Each
    answer names the process that gave it (`OfferSeal-Process`)."""

    def __init__(self, apps: dict[int, Any]) -> None:
        self.apps = {str(port): app for port, app in apps.items()}
        self.only = next(iter(apps.values())) if len(apps) == 1 else None
        self.pid = str(os.getpid())

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        app = self.only or self.apps.get(str(environ.get("SERVER_PORT", "")))
        if app is None:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"no service on this port\n"]
        pid = self.pid

        def respond(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            headers.append((PROCESS_HEADER, pid))
            return start_response(status, headers, *exc)

        return app(environ, respond)


def _zombie_or_gone(pid: int) -> bool:
    """True when `pid` has ended (a zombie not yet reaped counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False
    return state in ("Z", "X")


def server_options(binds: list[str], workers: int, threads: int, log_level: str) -> dict[str, Any]:
    """gunicorn's settings for OfferSeal's services (and the bench's ceiling app, measured on
    the same server): threaded workers, no proxy headers trusted, no control socket."""
    return {
        "bind": binds,
        "workers": workers,
        "worker_class": "gthread",
        "threads": threads,
        # The worker's main loop beats, so a long request does not count against it; the first
        # boot of the background process may deploy contracts.
        "timeout": int(BOOT_SECONDS),
        "graceful_timeout": 20,
        "keepalive": 75,
        "backlog": 2048,
        "forwarded_allow_ips": "",  # proxy headers are not trusted (as with waitress)
        "loglevel": log_level.lower(),
        "accesslog": None,
        "control_socket_disable": True,  # no socket in the home directory per server
    }


class GunicornApp(BaseApplication):
    """gunicorn's arbiter with `options`; each worker calls `loader()` after the fork."""

    def __init__(self, options: dict[str, Any], loader: Callable[[], Any] | None = None) -> None:
        self.options = options
        self.loader = loader
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        assert self.loader is not None
        return self.loader()


class WorkerStack(Protocol):
    """What each worker process runs: the services' apps (`apps`, by name; `web_app`, the pages
    behind the gateway), started after the fork. `stack.Stack` is one."""

    apps: dict[str, Any]
    web_app: Any

    def start(self) -> WorkerStack: ...
    def wait_ready(self, timeout: float = 60.0) -> None: ...
    def stop(self) -> None: ...


class PreforkServer(GunicornApp):
    """The services under gunicorn's arbiter; `run()` returns when it stops. `ports` names each
    service's port; `build(background)` makes a worker's stack after the fork (with the
    background workers only in the process that has that role). The caller (`stack.py`, the
    floor that knows the services) supplies both, so this module knows none of them."""

    def __init__(
        self,
        settings: Settings,
        ports: Mapping[str, int],
        workers: int,
        build: Callable[[bool], WorkerStack],
    ) -> None:
        self.settings = settings
        self.ports = dict(ports)
        self.services = tuple(ports)
        self.build = build
        self.state_dir = Path(tempfile.mkdtemp(prefix="offerseal-prefork-"))
        self.ready_file = self.state_dir / "background-ready"
        self.background_worker: Any = None  # in the arbiter: the worker that has the role
        self.is_background = False  # in a worker: whether it has the role
        self.stack: Any = None
        self.forked_at = 0.0  # in a worker: monotonic time of its fork
        self.modules_at_fork = 0  # in a worker: modules imported when it was forked
        self.start_cost: dict[str, Any] = {}  # in a worker: what its start took (`/healthz`)
        s = settings
        options = server_options(
            [f"{s.host}:{port}" for port in self.ports.values()],
            workers,
            s.web_threads,
            s.log_level,
        )
        options.update(
            proc_name="offerseal " + " ".join(self.services),
            pre_fork=self._pre_fork,
            post_fork=self._post_fork,
            child_exit=self._child_exit,
            worker_exit=self._worker_exit,
            on_exit=self._on_exit,
        )
        super().__init__(options)

    def load(self) -> Any:
        """In a worker, after the fork: its own stack, the background only if it has the role."""
        stack = self.build(self.is_background)
        self.stack = stack.start()
        role = "background" if self.is_background else "requests"
        if self.is_background:
            stack.wait_ready(BOOT_SECONDS)
        # A warm fork imports (almost) nothing: the arbiter preloaded the services' modules.
        self.start_cost = {
            "seconds_from_fork": round(time.monotonic() - self.forked_at, 3),
            "imported_after_fork": len(sys.modules) - self.modules_at_fork,
        }
        log.info("%s process %s serving: %s", role, os.getpid(), self.start_cost)
        for name, app in stack.apps.items():
            if name == "web":
                continue  # the pages' gateway routes to the services' apps below
            self._describe(app, role)
        if "web" in stack.apps:
            self._describe(stack.web_app, role)
        if self.is_background:
            self.ready_file.write_text(str(os.getpid()))
            log.info("background process %s ready (anchoring, relay, consumers)", os.getpid())
        return ByPort({self.ports[name]: app for name, app in stack.apps.items()})

    def _describe(self, app: Any, role: str) -> None:
        """`/healthz` names this process and its role; a request-only process is healthy only
        while the background process is up."""
        watched: dict[str, Callable[[], Any]] = app.extensions.setdefault("offerseal.watched", {})
        watched["process"] = lambda: {"pid": os.getpid(), "role": role, **self.start_cost}
        if role == "requests":
            ready_file = self.ready_file

            def background() -> str:
                if not ready_file.exists():
                    raise RuntimeError("the background process is starting again")
                return "ok"

            watched["background_process"] = background

    # ---- hooks (arbiter unless said otherwise) -------------------------------------------

    def _pre_fork(self, server: Any, worker: Any) -> None:
        current = self.background_worker
        if current is None or current not in server.WORKERS.values():
            self.ready_file.unlink(missing_ok=True)
            self.background_worker = worker
            worker.offerseal_background = True
            return
        worker.offerseal_background = False
        deadline = time.monotonic() + BOOT_SECONDS
        while not self.ready_file.exists() and time.monotonic() < deadline:
            if current.pid and _zombie_or_gone(current.pid):
                return  # the arbiter reaps it next and gives the role to a new worker
            time.sleep(0.05)

    def _post_fork(self, server: Any, worker: Any) -> None:  # in the worker
        self.forked_at = time.monotonic()
        self.modules_at_fork = len(sys.modules)
        self.is_background = bool(getattr(worker, "offerseal_background", False))
        self.background_worker = None

    def _child_exit(self, server: Any, worker: Any) -> None:
        if worker is self.background_worker:
            log.warning("the background process %s ended; the next worker takes it", worker.pid)
            self.background_worker = None
            self.ready_file.unlink(missing_ok=True)

    def _worker_exit(self, server: Any, worker: Any) -> None:  # in the worker
        if self.stack is not None:
            self.stack.stop()
            self.stack = None

    def _on_exit(self, server: Any) -> None:
        shutil.rmtree(self.state_dir, ignore_errors=True)

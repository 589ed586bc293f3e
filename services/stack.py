"""The running stack behind `offerseal up`, `offerseal serve` and the demo: Anvil unless
OFFERSEAL_RPC_URL is set, each chosen service node with its workers and HTTP server, the pages
for people (`web`), one outbox relay for the process. It decides what starts, in which order,
and with which keys and ports."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable
from typing import Any

from .shared.config import ANVIL_DEV_KEY, ANVIL_DEV_KEY_2, ConfigError, Settings
from .shared.errors import OfferSealError

SERVICES = ("evidence", "contracts", "notify", "web")

# What `Stack.start` imports for each service (and for the process: relay, housekeeping,
# failpoints), so that a supervisor can import it all once and fork warm processes (`preload`).
MODULES: dict[str, tuple[str, ...]] = {
    "": (
        "offerseal.shared.anvil",
        "offerseal.shared.broker",
        "offerseal.shared.db",
        "offerseal.shared.failpoints",
        "offerseal.shared.retention",
        "offerseal.shared.server",
        "offerseal.shared.web",
    ),
    "evidence": ("offerseal.evidence.app",),
    "contracts": ("offerseal.contracts.app",),
    "notify": ("offerseal.notify.app", "offerseal.web.console.report_mail"),
    "web": ("offerseal.shared.gateway", "offerseal.web.app"),
}


def preload(services: Iterable[str]) -> None:
    """Import what the stacks of `services` will need, making nothing (no connection, thread or
    socket: importing our modules does no work). The pre-fork arbiter calls it before forking,
    so a worker it forks again after a crash or SIGKILL starts warm: the imports (most of a
    cold start, seconds on a loaded machine) are already in the parent's memory."""
    import importlib

    for name in ("", *services):
        for module in MODULES.get(name, ()):
            importlib.import_module(module)


def open_database(settings: Settings, migrate: bool = True) -> Any:
    """The database in `settings`, its schema brought up to date (unless `migrate` is False: a
    pre-fork worker, whose server migrated before forking)."""
    from .shared.db import Database

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.effective_database_url)
    if migrate:
        db.migrate()
    return db


def service_port(settings: Settings, name: str) -> int:
    """The configured port of service `name`."""
    return int(
        {
            "evidence": settings.evidence_port,
            "contracts": settings.contracts_port,
            "notify": settings.notify_port,
            "web": settings.web_port,
        }[name]
    )


class Stack:
    """What `offerseal up` (all services) or `offerseal serve NAME` (one) runs: Anvil unless
    OFFERSEAL_RPC_URL is set, each service with its workers and HTTP server, and one outbox
    relay for the process. `start()` then `stop()`.

    Under the pre-fork server (`offerseal serve --workers N`, `shared/prefork.py`) each worker
    process builds its own stack with `http=False` (gunicorn owns the sockets; `apps` holds the
    WSGI app of each service), and only one of them with `background=True`: the anchoring,
    chain and notify workers, the consumers and the outbox relay run there and nowhere else.
    The others only take requests."""

    def __init__(
        self,
        settings: Settings,
        services: tuple[str, ...] = SERVICES,
        *,
        http: bool = True,
        background: bool = True,
    ) -> None:
        self.settings = settings
        self.services = services
        self.http = http
        self.background = background
        self.apps: dict[str, Any] = {}
        self.anvil: Any = None
        self.dev_tsa: Any = None
        self.db: Any = None
        self.servers: list[Any] = []
        self.nodes: list[Any] = []
        self.urls: dict[str, str] = {}
        self.relay: Any = None
        self._slots: dict[str, tuple[Any, Any]] = {}
        self._stop_relay = threading.Event()
        self._relay_thread: threading.Thread | None = None

    def _reserve(self, name: str, configured: int) -> int:
        """Bind `name`'s HTTP socket now (0: any free port) and return its port. The socket
        stays bound until `_serve` hands it its app, so no later `_reserve` can be given the same
        port between choosing it and serving on it. Without `http` the socket is someone else's
        (the pre-fork server bound it): the configured port is the one."""
        from .shared.server import HttpServer, LateApp

        if not self.http:
            return configured
        if name in self._slots:
            return int(self._slots[name][1].port)
        slot = LateApp()
        server = HttpServer(
            slot,
            self.settings.host,
            configured,
            self.settings.web_threads,
            trust_forwarded=self.settings.trusted_proxies > 0,
        )
        self.servers.append(server)
        self._slots[name] = (slot, server)
        return server.port

    def start(self) -> Stack:
        from .shared import failpoints, retention
        from .shared.anvil import AnvilProcess
        from .shared.broker import OutboxRelay

        settings = self.settings
        failpoints.arm(settings.failpoint)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.http and not settings.rpc_url:
            raise ConfigError("worker processes need OFFERSEAL_RPC_URL (no embedded Anvil)")
        rpc_url = settings.rpc_url
        signer_key, contracts_key = settings.signer_key, settings.contracts_signer_key
        if not rpc_url:
            self.anvil = AnvilProcess(
                settings.anvil_port,
                state_file=settings.data_dir / "anvil-state.json",
                log_file=settings.data_dir / "anvil.log",
            )
            rpc_url = self.anvil.url
            signer_key = signer_key or ANVIL_DEV_KEY
            contracts_key = contracts_key or ANVIL_DEV_KEY_2
        elif "evidence" in self.services and not signer_key:
            raise ConfigError("OFFERSEAL_SIGNER_KEY is required when OFFERSEAL_RPC_URL is set")
        elif "contracts" in self.services and not contracts_key:
            raise ConfigError(
                "OFFERSEAL_CONTRACTS_SIGNER_KEY is required when OFFERSEAL_RPC_URL is set"
            )
        self.urls["rpc"] = rpc_url
        # The people's origin is known before the services start: their links point there.
        self.web_port = self._reserve("web", settings.web_port) if "web" in self.services else 0
        # Passkeys need a secure context: http://localhost is one, http://127.0.0.1 is not.
        local = "localhost" if settings.host in ("127.0.0.1", "::1") else settings.host
        if settings.web_public_url:  # a gateway in front (docker-compose.yml), or TLS
            self.portal_url = settings.web_public_url.rstrip("/")
        elif "web" in self.services:
            self.portal_url = f"http://{local}:{self.web_port}"
        else:
            self.portal_url = ""
        try:
            if self.anvil is not None and "evidence" in self.services and not settings.tsa_urls:
                self._start_dev_tsa()
            self.db = open_database(settings, migrate=self.http)
            if "evidence" in self.services:
                self._start_evidence(rpc_url, signer_key)
            if "contracts" in self.services:
                self._start_contracts(rpc_url, contracts_key)
            if "notify" in self.services:
                self._start_notify()
            if "web" in self.services:
                self._start_web()
            if not self.background:
                return self
            self.relay = OutboxRelay(
                self.db,
                settings.broker_url,
                settings.outbox_interval,
                heartbeat=settings.broker_heartbeat,
                housekeeping=lambda: retention.sweep(
                    self.db, settings.retention, settings.link_ttl
                ),
            )
            self._relay_thread = threading.Thread(
                target=self.relay.run, args=(self._stop_relay,), name="outbox-relay", daemon=True
            )
            self._relay_thread.start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_dev_tsa(self) -> None:
        """Embedded defaults: a real RFC 3161 TSA (OpenSSL, with its own CA) beside Anvil, so
        every root gets its second witness; its CA is the trusted root unless one is set."""
        from .shared.dev_tsa import DevTSA

        self.dev_tsa = DevTSA(self.settings.data_dir / "dev-tsa", host=self.settings.host).start()
        self.urls["tsa"] = self.dev_tsa.url
        self.settings = self.settings.with_(
            tsa_urls=(self.dev_tsa.url,),
            tsa_ca_file=self.settings.tsa_ca_file or self.dev_tsa.authority.ca_cert,
        )

    def _serve(self, name: str, app: Any) -> None:
        self.apps[name] = app
        if not self.http:
            self.urls[name] = f"http://{self.settings.host}:{self._port_of(name)}"
            return
        if name not in self._slots:
            self._reserve(name, 0)
        slot, server = self._slots.pop(name)
        slot.app = app
        server.start()
        self.urls[name] = f"http://{self.settings.host}:{server.port}"

    def _port_of(self, name: str) -> int:
        return service_port(self.settings, name)

    def _start_evidence(self, rpc_url: str, signer_key: str) -> None:
        from .evidence.app import EvidenceNode

        self._reserve("evidence", self.settings.evidence_port)
        node = EvidenceNode(self.settings, self.db, rpc_url, signer_key, self.portal_url)
        self._start_workers(node)
        self.nodes.append(node)
        self.evidence = node
        self._serve("evidence", node.app)

    def _start_contracts(self, rpc_url: str, signer_key: str) -> None:
        from .contracts.app import ContractsNode

        settings = self.settings
        if "evidence" in self.urls:
            # The anchorer deploys the EvidenceRegistry. Without the background, the process
            # that has it was ready (the registry recorded) before this one forked.
            if self.background and not self.evidence.anchorer.ready.wait(60):
                raise OfferSealError("the evidence service did not connect to the chain in time")
            settings = self._beside_evidence(settings)
        if "notify" in self.services and not settings.notify_url:
            # The dossier reads the touchpoint log from the notify service started after it.
            notify_port = self._reserve("notify", settings.notify_port)
            settings = settings.with_(notify_url=f"http://{settings.host}:{notify_port}")
        port = self._reserve("contracts", settings.contracts_port)
        public_url = settings.public_url or f"http://{settings.host}:{port}"
        node = ContractsNode(settings, self.db, rpc_url, signer_key, public_url, self.portal_url)
        self._start_workers(node)
        self.nodes.append(node)
        self.contracts = node
        self._serve("contracts", node.app)

    def _start_notify(self) -> None:
        from .notify.app import NotifyNode
        from .web.console.report_mail import WeeklyMail

        settings = self.settings
        if "evidence" in self.urls:
            settings = self._beside_evidence(settings)
        port = self._reserve("notify", settings.notify_port)
        public_url = settings.notify_public_url or f"http://{settings.host}:{port}"
        db = self.db
        node = NotifyNode(
            settings,
            db,
            public_url,
            self._web_url(),
            weekly_report=lambda console_url: WeeklyMail(db, console_url),
        )
        self._start_workers(node)
        self.nodes.append(node)
        self.notify = node
        self._serve("notify", node.app)

    def _web_url(self) -> str:
        """Where candidates reach the pages for people (the portal; short links resolve there):
        its port is chosen before the services start, which puts it in every message."""
        return self.portal_url or self.settings.web_public_url.rstrip("/")

    def _start_web(self) -> None:
        from .shared.gateway import PathGateway
        from .web.app import create_app

        # The console acts through the contracts and notify APIs: the ones beside it, else the
        # configured ones.
        settings = self.settings
        if "contracts" in self.urls and not settings.contracts_url:
            settings = settings.with_(contracts_url=self.urls["contracts"])
        if "notify" in self.urls and not settings.notify_url:
            settings = settings.with_(notify_url=self.urls["notify"])
        self.web_app = create_app(settings, self.db, public_origin=self._web_url())
        services: dict[str, Any] = {
            name: getattr(self, name).app
            for name in ("evidence", "contracts", "notify")
            if name in self.urls
        }
        self._serve("web", PathGateway(self.web_app, services))

    def _start_workers(self, node: Any) -> None:
        """Start a node's workers, its consumer on heartbeats, all of them watched by its
        `/healthz`."""
        from .shared.web import watch

        if not self.background:  # another process runs them; this one's checks say so
            node.ready.set()
            return
        consumer = getattr(node, "consumer", None)
        if consumer is not None:
            consumer.heartbeat = self.settings.broker_heartbeat
        node.start_workers()
        watch(node.app, node.workers, [consumer] if consumer is not None else [])

    def _beside_evidence(self, settings: Settings) -> Settings:
        """`settings` for a service started beside this stack's evidence service: unless
        OFFERSEAL_EVIDENCE_URL says otherwise, that is the evidence service it calls."""
        return settings.with_(evidence_url=settings.evidence_url or self.urls["evidence"])

    def wait_ready(self, timeout: float = 60.0) -> None:
        for node in self.nodes:
            if not node.ready.wait(timeout):
                raise OfferSealError(f"{type(node).__name__} did not become ready in time")

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
        self._stop_relay.set()
        if self._relay_thread is not None:
            self._relay_thread.join(15)
        for node in self.nodes:
            node.stop()
        if self.db is not None:
            self.db.dispose()
        if self.anvil is not None:
            self.anvil.stop()
        if self.dev_tsa is not None:
            self.dev_tsa.stop()
        self.servers, self.nodes, self.anvil, self._relay_thread = [], [], None, None
        self._slots = {}
        self.dev_tsa = None


def serve_prefork(settings: Settings, services: Iterable[str], workers: int) -> int:
    """`offerseal serve --workers N`: migrate once, then run gunicorn's arbiter over the services
    (`shared/prefork.py`) until SIGTERM or SIGINT; each worker builds its own `Stack`."""
    from .shared.prefork import PreforkServer

    services = tuple(services)
    db = open_database(settings)
    db.dispose()  # nothing of it crosses the fork
    preload(services)  # each fork, the first and every replacement, starts warm
    server = PreforkServer(
        settings,
        {name: service_port(settings, name) for name in services},
        workers,
        lambda background: Stack(settings, services, http=False, background=background),
    )
    with contextlib.suppress(SystemExit):
        server.run()
    return 0

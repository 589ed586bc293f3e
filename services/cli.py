"""The `offerseal` command: run the stack or one service, manage API keys, verify proofs."""

from __future__ import annotations

import argparse
import binascii
import json
import logging
import socket
import sys
import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from .shared.config import ANVIL_DEV_KEY, ANVIL_DEV_KEY_2, ConfigError, Settings, load_settings
from .shared.errors import OfferSealError

log = logging.getLogger("offerseal")
SERVICES = ("evidence", "contracts", "notify")


def _setup_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("urllib3", "web3", "waitress.queue", "amqp", "kombu", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _database(settings: Settings) -> Any:
    from .shared.db import Database

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.effective_database_url)
    db.migrate()
    return db


class Stack:
    """What `offerseal up` (all services) or `offerseal serve NAME` (one) runs: Anvil unless
    OFFERSEAL_RPC_URL is set, each service with its workers and HTTP server, and one outbox
    relay for the process. `start()` then `stop()`."""

    def __init__(self, settings: Settings, services: tuple[str, ...] = SERVICES) -> None:
        self.settings = settings
        self.services = services
        self.anvil: Any = None
        self.db: Any = None
        self.servers: list[Any] = []
        self.nodes: list[Any] = []
        self.urls: dict[str, str] = {}
        self.relay: Any = None
        self._stop_relay = threading.Event()
        self._relay_thread: threading.Thread | None = None

    def _port(self, configured: int) -> int:
        if configured:
            return configured
        with socket.socket() as sock:  # 0: any free port (tests, demo)
            sock.bind((self.settings.host, 0))
            return int(sock.getsockname()[1])

    def start(self) -> Stack:
        from .shared import failpoints
        from .shared.anvil import AnvilProcess
        from .shared.broker import OutboxRelay

        settings = self.settings
        failpoints.arm(settings.failpoint)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
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
        try:
            self.db = _database(settings)
            if "evidence" in self.services:
                self._start_evidence(rpc_url, signer_key)
            if "contracts" in self.services:
                self._start_contracts(rpc_url, contracts_key)
            if "notify" in self.services:
                self._start_notify()
            self.relay = OutboxRelay(self.db, settings.broker_url, settings.outbox_interval)
            self._relay_thread = threading.Thread(
                target=self.relay.run, args=(self._stop_relay,), name="outbox-relay", daemon=True
            )
            self._relay_thread.start()
        except BaseException:
            self.stop()
            raise
        return self

    def _serve(self, name: str, app: Any, port: int) -> None:
        from .shared.server import HttpServer

        server = HttpServer(app, self.settings.host, port, self.settings.web_threads).start()
        self.servers.append(server)
        self.urls[name] = f"http://{self.settings.host}:{server.port}"

    def _start_evidence(self, rpc_url: str, signer_key: str) -> None:
        from .evidence.app import EvidenceNode

        node = EvidenceNode(self.settings, self.db, rpc_url, signer_key)
        node.start_workers()
        self.nodes.append(node)
        self.evidence = node
        self._serve("evidence", node.app, self._port(self.settings.evidence_port))

    def _start_contracts(self, rpc_url: str, signer_key: str) -> None:
        from .contracts.app import ContractsNode

        settings = self.settings
        if "evidence" in self.urls:
            if not self.evidence.anchorer.ready.wait(60):  # it deploys the EvidenceRegistry
                raise OfferSealError("the evidence service did not connect to the chain in time")
            settings = settings.with_(evidence_url=settings.evidence_url or self.urls["evidence"])
        port = self._port(settings.contracts_port)
        public_url = settings.public_url or f"http://{settings.host}:{port}"
        node = ContractsNode(settings, self.db, rpc_url, signer_key, public_url)
        node.start_workers()
        self.nodes.append(node)
        self.contracts = node
        self._serve("contracts", node.app, port)

    def _start_notify(self) -> None:
        from .notify.app import NotifyNode

        settings = self.settings
        if "evidence" in self.urls:
            settings = settings.with_(evidence_url=settings.evidence_url or self.urls["evidence"])
        port = self._port(settings.notify_port)
        public_url = settings.notify_public_url or f"http://{settings.host}:{port}"
        node = NotifyNode(settings, self.db, public_url)
        node.start_workers()
        self.nodes.append(node)
        self.notify = node
        self._serve("notify", node.app, port)

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
        self.servers, self.nodes, self.anvil, self._relay_thread = [], [], None, None


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    from .shared.auth import create_key
    from .shared.server import wait_for_signal

    if not (settings.smtp_url or settings.webhook_url or settings.notify_outbox_dir):
        # Embedded defaults: candidates' messages land as .eml files to look at.
        settings = replace(settings, notify_outbox_dir=settings.data_dir / "mail")
    stack = Stack(settings).start()
    _, token = create_key(stack.db, "admin", args.tenant, "bootstrap (offerseal up)")
    print(
        f"OfferSeal is up ({'embedded Anvil' if stack.anvil else 'external chain'}, "
        f"broker {settings.broker_url}, database {settings.effective_database_url})"
    )
    for name in SERVICES:
        print(f"  {name:<10}{stack.urls[name]}   (docs: {stack.urls[name]}/docs)")
    print(f"  chain     {stack.urls['rpc']}")
    if settings.notify_outbox_dir is not None and not settings.smtp_url:
        print(f"  mail      {settings.notify_outbox_dir} (.eml files; set OFFERSEAL_SMTP_URL)")
    print(f"Ctrl-C stops everything. Bootstrap admin key for tenant {args.tenant!r} (shown once):")
    print(token, flush=True)
    wait_for_signal(stack.stop)
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from .shared.server import wait_for_signal

    if not settings.rpc_url:
        raise ConfigError(
            "`offerseal serve` needs OFFERSEAL_RPC_URL (and OFFERSEAL_SIGNER_KEY); "
            "`offerseal up` starts a local Anvil instead"
        )
    stack = Stack(settings, tuple(args.service)).start()
    for name in args.service:
        print(f"{name} listening on {stack.urls[name]}", flush=True)
    wait_for_signal(stack.stop)
    return 0


def cmd_keys_create(args: argparse.Namespace, settings: Settings) -> int:
    from .shared.auth import create_key

    db = _database(settings)
    key_id, token = create_key(db, args.role, args.tenant, args.label or "")
    print(f"created {args.role} key {key_id} for tenant {args.tenant}; it is shown once:")
    print(token)
    return 0


def cmd_migrate(_args: argparse.Namespace, settings: Settings) -> int:
    _database(settings)
    print("database schema is up to date")
    return 0


def _trusted_key(text: str) -> dict[str, bytes]:
    from .evidence.domain.receipts import key_id_of, unb64

    try:
        raw = (
            bytes.fromhex(text[2:] if text.startswith("0x") else text)
            if len(text.removeprefix("0x")) == 64
            else unb64(text)
        )
    except (ValueError, binascii.Error):
        raw = b""
    if len(raw) != 32:
        raise ConfigError("--key must be a 32-byte Ed25519 public key (hex or base64)")
    return {key_id_of(raw): raw}


def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    from .evidence.domain.proofs import Check, Verdict, sha256_hex, verify_bundle

    try:
        bundle = json.loads(Path(args.proof).read_text())
    except (OSError, ValueError) as exc:
        print(f"cannot read proof {args.proof}: {exc}", file=sys.stderr)
        return 2
    try:
        document = Path(args.document).read_bytes()
    except OSError as exc:
        print(f"cannot read document {args.document}: {exc}", file=sys.stderr)
        return 2
    trusted = _trusted_key(args.key) if args.key else None
    chain_view = None
    extra: list[Check] = []
    if not args.offline:
        from .evidence.adapters.registry import Web3ChainView
        from .shared import chain

        rpc = args.rpc or settings.rpc_url or "http://127.0.0.1:8545"
        try:
            chain_view = Web3ChainView(chain.connect(rpc))
            chain_view.chain_id()
        except Exception as exc:
            chain_view = None
            extra.append(Check("chain", False, f"cannot reach {rpc}: {exc}"))
    verdict = verify_bundle(
        bundle, document_sha256=sha256_hex(document), trusted_keys=trusted, chain=chain_view
    )
    verdict = Verdict((*verdict.checks, *extra))
    if args.json:
        out = verdict.as_dict()
        out["offline"] = bool(args.offline)
        print(json.dumps(out, indent=2))
    else:
        for check in verdict.checks:
            mark = {True: "PASS", False: "FAIL", None: "SKIP"}[check.ok]
            print(f"{mark}  {check.name:<20} {check.detail}")
        if args.offline:
            print("offline: the chain was not consulted; run without --offline for a full check")
        print("VALID" if verdict.valid else "NOT VALID")
    if args.offline:
        return 0 if not verdict.failed else 1
    return 0 if verdict.valid else 1


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from .demo import run_demo

    return run_demo(settings, keep=args.keep)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="offerseal", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="run the whole stack on embedded defaults (Anvil included)")
    up.add_argument("--tenant", default="default", help="tenant of the bootstrap admin key")
    up.set_defaults(func=cmd_up)

    serve = sub.add_parser("serve", help="run one service with its workers (production)")
    serve.add_argument(
        "service",
        nargs="+",
        choices=list(SERVICES),
        help="one service, or several to run them in one process",
    )
    serve.set_defaults(func=cmd_serve)

    keys = sub.add_parser("keys", help="manage API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key; the last line printed is the key")
    create.add_argument("--role", required=True, choices=["hr", "legal", "admin"])
    create.add_argument("--tenant", required=True)
    create.add_argument("--label", default="")
    create.set_defaults(func=cmd_keys_create)

    migrate = sub.add_parser("migrate", help="bring the database schema up to date")
    migrate.set_defaults(func=cmd_migrate)

    verify = sub.add_parser(
        "verify",
        help="verify a document against its proof bundle; "
        "needs only the file, the proof and an RPC endpoint",
    )
    verify.add_argument("document", help="the document file")
    verify.add_argument("proof", help="the proof bundle (JSON)")
    verify.add_argument(
        "--rpc", help="Ethereum JSON-RPC URL (default: OFFERSEAL_RPC_URL or http://127.0.0.1:8545)"
    )
    verify.add_argument(
        "--key", help="pin the receipt signer's public key (hex or base64, from GET /v1/keys)"
    )
    verify.add_argument(
        "--offline", action="store_true", help="check everything except the chain, and say so"
    )
    verify.add_argument("--json", action="store_true", help="machine-readable result")
    verify.set_defaults(func=cmd_verify)

    demo = sub.add_parser("demo", help="run the end-to-end scenario on embedded defaults")
    demo.add_argument("--keep", action="store_true", help="keep the demo's data directory")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    _setup_logging(settings)
    try:
        code: int = args.func(args, settings)
        return code
    except (ConfigError, OfferSealError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())

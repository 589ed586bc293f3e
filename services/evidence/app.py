"""Wiring of the evidence service: `create_app()` for HTTP, `EvidenceNode` for the whole
service in one process (HTTP app, anchoring worker, outbox relay). No work at import time."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from flask import Flask
from sqlalchemy import func, select

from offerseal_verify.proofs import ChainView
from offerseal_verify.receipts import ReceiptSigner
from offerseal_verify.timestamps import load_certificates

from ..shared import chain, guards, revocations, secrets
from ..shared.config import ConfigError, Settings
from ..shared.db import Database
from ..shared.group_commit import GroupCommit
from ..shared.links import LinkSigner
from ..shared.multipart import FastFormRequest
from ..shared.pdf import PdfSigningKey
from ..shared.web import create_base_app, health_route, standard_checks
from ..shared.workers import Workers
from . import api, witness_api
from .adapters.registry import Web3ChainView
from .anchoring import Anchorer
from .crypto import DocumentCipher
from .domain.records import deposit_key
from .errors import DocumentNotFound, SchemaNotFound
from .issuer import CertificateIssuer
from .models import Document
from .receipt_keys import record_current
from .service import EvidenceService
from .stamping import Stamper
from .witness_accounts import WitnessAccounts
from .witnesses import Depositor, TenantWitness, Witness

log = logging.getLogger(__name__)

# Anonymous /v1/verify looks the chain up: a slow RPC must not hold an HTTP thread for long.
VERIFY_RPC_TIMEOUT = 5.0


def build_cipher(settings: Settings) -> DocumentCipher:
    """The current master key and the earlier ones that still unwrap documents."""
    return DocumentCipher(secrets.master_key(settings), secrets.previous_master_keys(settings))


def tsa_roots(settings: Settings) -> list[x509.Certificate] | None:
    """The TSA roots of OFFERSEAL_TSA_CA_FILE, or None when it is unset."""
    if settings.tsa_ca_file is None:
        return None
    try:
        roots = load_certificates(settings.tsa_ca_file.read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"OFFERSEAL_TSA_CA_FILE: no PEM certificates ({exc})") from None
    if not roots:
        raise ConfigError("OFFERSEAL_TSA_CA_FILE: no PEM certificates")
    return roots


def build_service(settings: Settings, db: Database) -> EvidenceService:
    """The service layer; its receipt key is recorded as the current one (a changed
    OFFERSEAL_RECEIPT_KEY retires the previous key, which stays published)."""
    signer = ReceiptSigner.from_seed(secrets.receipt_seed(settings))
    record_current(db, signer)
    return EvidenceService(
        db,
        build_cipher(settings),
        signer,
        tsa_roots(settings),
        dkim_dns=settings.extra.get("dkim_dns"),  # tests only; otherwise real DNS
        group=GroupCommit(db, name="evidence-intake"),
    )


def configured_witnesses(settings: Settings) -> list[Witness]:
    """The judicial-chain witnesses the settings turn on (none by default). The SDK loads only
    when one is configured."""
    if not settings.btoe_secret_id:
        return []
    from .adapters.btoe import BtoeWitness

    return [
        BtoeWitness(
            settings.btoe_secret_id,
            settings.btoe_secret_key,
            region=settings.btoe_region,
            endpoint=settings.btoe_endpoint,
            hash_algorithm=settings.btoe_hash,
        )
    ]


def witness_accounts(settings: Settings, db: Database) -> WitnessAccounts:
    """Tenants' own witness accounts; the deployment's (OFFERSEAL_BTOE_*) is the fallback."""

    def deployment(witness: str) -> dict[str, Any] | None:
        if not settings.btoe_secret_id:
            return None
        return {
            "secret_id": settings.btoe_secret_id[:4] + "…",
            "region": settings.btoe_region,
            "hash": settings.btoe_hash,
        }

    return WitnessAccounts(db, build_cipher(settings), deployment)


def tenant_witnesses(settings: Settings, db: Database) -> Callable[[], list[TenantWitness]]:
    """The depositor's reader of tenants' own accounts (the SDK loads only when one exists)."""
    accounts = witness_accounts(settings, db)

    def read() -> list[TenantWitness]:
        found = accounts.accounts()
        if not found:
            return []
        from .adapters.btoe import BtoeWitness

        return [
            TenantWitness(
                deposit_key(a.witness, a.tenant),
                a.tenant,
                BtoeWitness(
                    a.secret_id,
                    a.secret_key,
                    region=a.region,
                    endpoint=settings.btoe_endpoint,
                    hash_algorithm=a.hash_algorithm,
                ),
            )
            for a in found
        ]

    return read


def build_issuer(settings: Settings, service: EvidenceService) -> CertificateIssuer:
    """Signs certificates with OFFERSEAL_CERTIFICATE_KEY/CERT (or the development certificate)
    and time-stamps the signature with the first configured TSA."""
    key_pem, cert_pem = secrets.certificate_signing_pem(settings)
    return CertificateIssuer(
        service,
        PdfSigningKey(key_pem, cert_pem),
        verify_url(settings),
        settings.tsa_urls[0] if settings.tsa_urls else None,
    )


def verify_url(settings: Settings) -> str:
    """The public verify page: on the people's origin."""
    origin = settings.web_public_url or f"http://localhost:{settings.web_port}"
    return origin.rstrip("/") + "/verify"


def create_app(
    settings: Settings,
    db: Database,
    service: EvidenceService,
    chain_view: Callable[[], ChainView],
    anchorer_ready: threading.Event | None = None,
) -> Flask:
    # The body may hold the form fields as well as the file; the file itself is checked
    # against the exact limit after parsing.
    app, flask_api, _registry = create_base_app(
        "evidence",
        db,
        settings=settings,
        max_content_length=settings.max_document_bytes + 64 * 1024,
    )
    app.request_class = FastFormRequest  # uploads: multipart without per-request regexes
    app.config["OFFERSEAL_MAX_DOCUMENT_BYTES"] = settings.max_document_bytes
    app.extensions["offerseal.evidence"] = service
    app.extensions["offerseal.links"] = LinkSigner(
        secrets.link_secret(settings), revocations.checker(db)
    )
    app.extensions["offerseal.chain_view"] = chain_view
    app.extensions["offerseal.certificates"] = build_issuer(settings, service)
    app.extensions["offerseal.witness_accounts"] = witness_accounts(settings, db)
    flask_api.register_blueprint(api.blp)
    flask_api.register_blueprint(api.verify_blp)
    flask_api.register_blueprint(witness_api.blp)
    guards.not_found_as(app, {"document_id": DocumentNotFound, "name": SchemaNotFound})

    def pending() -> int:
        with db.sessions() as session:
            return int(
                session.execute(
                    select(func.count()).select_from(Document).where(Document.batch_id.is_(None))
                ).scalar()
                or 0
            )

    checks = standard_checks(db, anchorer_ready, "anchoring")
    checks["pending_documents"] = pending
    health_route(app, checks)
    return app


@dataclass
class EvidenceNode:
    """The evidence service in one process: HTTP app plus its background workers."""

    settings: Settings
    db: Database
    rpc_url: str
    signer_key: str
    portal_url: str = ""  # the people's origin: a browser opening an upload link lands there

    def __post_init__(self) -> None:
        self.service = build_service(self.settings, self.db)
        self.workers = Workers("evidence")
        w3 = chain.connect(self.rpc_url)
        self.anchorer = Anchorer(
            self.db,
            w3,
            chain.account(self.signer_key),
            batch_interval=self.settings.batch_interval,
            batch_max=self.settings.batch_max,
            confirmations=self.settings.confirmations,
            reconcile_interval=self.settings.reconcile_interval,
            registry_address=self.settings.registry_address,
            registry_admin=self.settings.registry_admin,
            auto_deploy=self.settings.auto_deploy,
            data_dir=self.settings.data_dir,
        )
        self.stamper = (
            Stamper(
                self.db,
                self.settings.tsa_urls,
                self.service.tsa_roots or (),
                interval=max(0.2, min(self.settings.batch_interval, 1.0)),
            )
            if self.settings.tsa_urls
            else None
        )
        # Always running: a tenant may set its own account at any time (an idle depositor
        # reads the accounts every few seconds and nothing else).
        self.depositor: Depositor | None = Depositor(
            self.db,
            configured_witnesses(self.settings),
            interval=max(0.2, min(self.settings.batch_interval, 1.0)),
            tenant_witnesses=tenant_witnesses(self.settings, self.db),
            refresh=max(2.0, min(10 * self.settings.batch_interval, 10.0)),
        )
        rpc_url = self.rpc_url
        self.app = create_app(
            self.settings,
            self.db,
            self.service,
            lambda: Web3ChainView(chain.connect(rpc_url, timeout=VERIFY_RPC_TIMEOUT)),
            self.anchorer.ready,
        )
        self.app.config["OFFERSEAL_PORTAL_URL"] = (
            self.portal_url or self.settings.web_public_url
        ).rstrip("/")
        if self.portal_url:  # certificates point at the verify page on the people's origin
            issuer: CertificateIssuer = self.app.extensions["offerseal.certificates"]
            issuer.verify_url = self.portal_url.rstrip("/") + "/verify"

    @property
    def ready(self) -> threading.Event:
        return self.anchorer.ready

    def start_workers(self) -> None:
        workers: dict[str, Callable[[threading.Event], None]] = {"anchorer": self.anchorer.run}
        if self.stamper is not None:
            workers["stamper"] = self.stamper.run
        if self.depositor is not None:
            workers["depositor"] = self.depositor.run
        self.workers.start(**workers)

    def stop(self, timeout: float = 15.0) -> None:
        self.workers.stop(timeout)

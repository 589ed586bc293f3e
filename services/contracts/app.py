"""Wiring of the contracts service: `create_app()` for HTTP, `ContractsNode` for the whole
service in one process (HTTP app, chain worker with recovery and sweeper, message consumer).
No work at import time."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from flask import Flask

from .. import __version__
from ..shared import chain, guards, problems, revocations, secrets
from ..shared.broker import MessageConsumer
from ..shared.config import Settings
from ..shared.db import Database
from ..shared.deployments import ContractMissing, ensure_deployed, wait_for_registry
from ..shared.links import LinkSigner
from ..shared.pdf import PdfSigningKey
from ..shared.transactions.onchain import Web3SigningChain
from ..shared.web import create_base_app, health_route, standard_checks
from ..shared.workers import IDLE, Workers, reconnect_backoff, run_every
from . import api
from .adapters.chain import IntentAgreementsChain
from .adapters.evidence import EvidenceArchiveClient, EvidenceClient
from .cover import cover_maker
from .domain.agreements import CONTRACT_MAJOR_VERSION, supported_contract
from .dossier import Dossiers
from .errors import AgreementNotFound
from .policy import Policy
from .service_layer import ContractsService

log = logging.getLogger(__name__)
AGREEMENTS = "IntentAgreements"


def create_app(
    settings: Settings,
    db: Database,
    service: ContractsService,
    links: LinkSigner,
    worker_ready: threading.Event | None = None,
    portal_url: str = "",
) -> Flask:
    app, flask_api, _registry = create_base_app("contracts", db, settings=settings)
    problems.map_statuses(app, api.STATUSES)
    app.config["OFFERSEAL_EVIDENCE_URL"] = settings.evidence_base_url
    app.config["OFFERSEAL_DEFAULT_TIMEZONE"] = settings.default_timezone
    app.extensions["offerseal.contracts"] = service
    app.extensions["offerseal.evidence"] = EvidenceClient(app.config["OFFERSEAL_EVIDENCE_URL"])
    app.extensions["offerseal.links"] = links
    app.extensions["offerseal.archive"] = EvidenceArchiveClient(
        settings.evidence_base_url, settings.notify_base_url, portal_url
    )
    app.extensions["offerseal.dossiers"] = build_dossiers(settings, db, service, links, portal_url)
    flask_api.register_blueprint(api.blp)
    guards.not_found_as(app, {"agreement_id": AgreementNotFound, "amendment_id": AgreementNotFound})

    def chain_node() -> int:
        return service.client.block_number()

    checks = standard_checks(db, worker_ready, "worker")
    checks["chain"] = chain_node
    checks["unfinished_transactions"] = service.pending_count
    health_route(app, checks)
    return app


def build_dossiers(
    settings: Settings, db: Database, service: ContractsService, links: LinkSigner, portal_url: str
) -> Dossiers:
    """Dossiers with a cover signed by OFFERSEAL_CERTIFICATE_KEY/CERT (or the development
    certificate), time-stamped by the first configured TSA."""
    key_pem, cert_pem = secrets.certificate_signing_pem(settings)
    origin = portal_url or settings.web_public_url or f"http://localhost:{settings.web_port}"
    assert service.history is not None, "the service is built with the contract's history"
    return Dossiers(
        db,
        service.history,
        links,
        service.signing_records,
        cover_maker(
            PdfSigningKey(key_pem, cert_pem),
            f"OfferSeal {__version__}",
            settings.tsa_urls[0] if settings.tsa_urls else None,
        ),
        origin.rstrip("/") + "/verify",
    )


def require_supported(version: str, address: str, chain_id: int) -> None:
    """Refuse to start against an IntentAgreements this service cannot speak to (a 1.x
    deployment recorded before the upgrade): its agreements stay on chain as they are, and new
    agreements need a 2.x deployment, chosen by whoever runs the service."""
    if supported_contract(version):
        return
    raise ContractMissing(
        f"the IntentAgreements at {address} on chain {chain_id} is version {version}; this "
        f"OfferSeal needs {CONTRACT_MAJOR_VERSION}.1 or later (ids from a salt, the full "
        "Commitment, leaves computed on chain, arrivals, passkeys). Agreements on the old "
        "contract stay valid there. "
        "Deploy a new one for new agreements: set OFFERSEAL_AGREEMENTS_ADDRESS to a "
        f"{CONTRACT_MAJOR_VERSION}.x deployment, or delete the recorded IntentAgreements "
        "deployment (the chain_deployments row and the entry in <data dir>/deployments/"
        f"{chain_id}.json) to let auto-deploy deploy one."
    )


@dataclass
class ContractsNode:
    settings: Settings
    db: Database
    rpc_url: str
    signer_key: str
    public_url: str
    portal_url: str = ""  # the people's origin: e-mail links open the candidate's portal there

    def __post_init__(self) -> None:
        self.workers = Workers("contracts")
        self.ready = threading.Event()
        w3 = chain.connect(self.rpc_url)
        signer = chain.account(self.signer_key)
        registry = wait_for_registry(
            self.db, w3, configured=self.settings.registry_address, timeout=60
        )
        address = ensure_deployed(
            self.db,
            w3,
            signer,
            AGREEMENTS,
            (registry,),
            configured=self.settings.agreements_address,
            auto_deploy=self.settings.auto_deploy,
            data_dir=self.settings.data_dir,
        )
        signing = Web3SigningChain(w3, signer)
        client = IntentAgreementsChain(w3, address, signing)
        require_supported(client.version(), address, int(w3.eth.chain_id))
        self.links = LinkSigner(secrets.link_secret(self.settings), revocations.checker(self.db))
        self.service = ContractsService.build(
            self.db,
            client,
            self.links,
            signing=signing,
            history=client,
            public_url=self.public_url,
            portal_url=self.portal_url,
            link_ttl=self.settings.link_ttl,
            policy=Policy(self.settings.auto_breach, self.settings.candidate_uploads),
            breach_alert_lead=self.settings.breach_alert_lead,
            tx_options={
                "stuck_blocks": self.settings.tx_stuck_blocks,
                "stuck_seconds": self.settings.tx_stuck_after,
                "poll": self.settings.tx_poll_interval,
            },
        )
        self.app = create_app(
            self.settings, self.db, self.service, self.links, self.ready, self.portal_url
        )
        self.consumer = MessageConsumer(
            "contracts",
            self.db,
            self.settings.broker_url,
            {
                "evidence.anchored": self.service.on_evidence_anchored,
                "touchpoint.replied": self.service.on_touchpoint,
                "touchpoint.missed": self.service.on_touchpoint,
                "touchpoint.sent": self.service.contact_proof.on_delivery,
                "touchpoint.failed": self.service.contact_proof.on_delivery,
            },
        )

    def _work(self, stop: threading.Event) -> None:
        recovered = False
        last_sweep = 0.0

        def step() -> object:
            """One pass; IDLE when it changed nothing (the loop then looks less often)."""
            nonlocal recovered, last_sweep
            if not recovered:
                self.service.recover()
                recovered = True
                self.ready.set()
            moved = self.service.confirm_recorded_evidence()
            moved += self.service.follow()  # what others sent to the contract
            if time.monotonic() - last_sweep >= self.settings.sweep_interval:
                moved += sum(self.service.sweep().values())
                last_sweep = time.monotonic()
            return None if moved else IDLE

        run_every(
            stop,
            min(0.5, self.settings.sweep_interval),
            step,
            name="contracts worker",
            log=log,
            backoff=reconnect_backoff(),
        )

    def _confirm(self, stop: threading.Event) -> None:
        """The confirmer: records the outcome of each transaction in flight as soon as it is
        mined (the offers answered before their block), and unsticks the signer's queue."""
        while not self.ready.wait(0.5):  # recovery first
            if stop.is_set():
                return

        def step() -> object:
            """One round; IDLE when no transaction of ours is in flight."""
            recorded = self.service.confirm()
            return recorded if recorded or self.service.transactions.in_flight else IDLE

        run_every(
            stop,
            self.settings.tx_poll_interval,
            step,
            name="contracts confirmer",
            log=log,
            backoff=reconnect_backoff(),
        )

    def start_workers(self) -> None:
        self.workers.start(worker=self._work, confirmer=self._confirm, consumer=self.consumer.run)

    def stop(self, timeout: float = 15.0) -> None:
        self.workers.stop(timeout)

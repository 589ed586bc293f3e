"""Wiring of the notify service: `create_app()` for HTTP, `NotifyNode` for the whole service in
one process (HTTP app, dispatcher, message consumer). No work at import time."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from flask import Flask

from ..shared import messages, revocations, secrets
from ..shared.broker import MessageConsumer
from ..shared.config import Settings
from ..shared.db import Database, is_sqlite
from ..shared.links import LinkSigner
from ..shared.shortlinks import Shortener
from ..shared.web import create_base_app, health_route, standard_checks
from ..shared.workers import Workers, reconnect_backoff, run_every
from . import api
from .adapters.channels import FolderChannel, SmtpChannel, WebhookChannel
from .adapters.journal import SentJournal
from .adapters.signing import signer_from
from .service import NotifyService
from .weekly import WeeklyReports, parse_recipients

log = logging.getLogger(__name__)
LEASE_SECONDS = 120.0
REPORT_CHECK_SECONDS = 60.0


def channels_from(settings: Settings) -> dict[str, Any]:
    out: dict[str, Any] = {}
    signer = signer_from(settings)
    if signer is None and (settings.smtp_url or settings.notify_outbox_dir is not None):
        log.info("e-mail is not DKIM-signed (OFFERSEAL_DKIM_SELECTOR and _PRIVATE_KEY unset)")
    if settings.smtp_url:
        out["email"] = SmtpChannel(settings.smtp_url, settings.mail_from, signer=signer)
    elif settings.notify_outbox_dir is not None:
        out["email"] = FolderChannel(settings.notify_outbox_dir, settings.mail_from, signer)
    if settings.webhook_url:
        out["webhook"] = WebhookChannel(settings.webhook_url, secrets.webhook_secret(settings))
    return out


def create_app(
    db: Database,
    service: NotifyService,
    ready: threading.Event | None,
    settings: Settings | None = None,
) -> Flask:
    app, flask_api, _registry = create_base_app("notify", db, settings=settings)
    app.extensions["offerseal.notify"] = service
    app.extensions["offerseal.links"] = service.replies.links
    flask_api.register_blueprint(api.blp)
    checks = standard_checks(db, ready, "dispatcher")
    checks["channels"] = lambda: sorted(service.channels) or "none configured"
    health_route(app, checks)
    return app


@dataclass
class NotifyNode:
    settings: Settings
    db: Database
    public_url: str
    web_url: str = ""  # the people's origin, where short links resolve

    def __post_init__(self) -> None:
        self.workers = Workers("notify")
        self.ready = threading.Event()
        settings = self.settings
        links = LinkSigner(secrets.link_secret(settings), revocations.checker(self.db))
        web_url = (settings.web_public_url or self.web_url).rstrip("/")
        if not web_url:
            log.warning(
                "no people's origin (OFFERSEAL_WEB_PUBLIC_URL unset, web app not started here): "
                "messages carry full signed links instead of short ones"
            )
        elif len(web_url) > 40:
            log.warning(
                "OFFERSEAL_WEB_PUBLIC_URL is %d characters: SMS texts (70 characters with their "
                "link) will shorten the employer's name or drop details",
                len(web_url),
            )
        self.service = NotifyService(
            self.db,
            links,
            channels_from(settings),
            shortener=Shortener(self.db, web_url, links) if web_url else None,
            public_url=self.public_url,
            evidence_url=settings.evidence_base_url,
            checkin_interval=settings.checkin_interval,
            quiet_hours=settings.quiet_hours,
            default_timezone=settings.default_timezone,
            mail_domain=settings.mail_domain,
            link_ttl=settings.link_ttl,
            journal=SentJournal(settings.data_dir / "notify-journal"),
            max_attempts=settings.touchpoint_max_attempts,
        )
        self.weekly = WeeklyReports(
            self.db,
            self.service.channels,
            console_url=web_url or self.public_url,
            recipients=parse_recipients(settings.report_recipients),
        )
        self.app = create_app(self.db, self.service, self.ready, self.settings)
        # Browsers opening an e-mail's reply or unsubscribe link land in the portal there.
        self.app.config["OFFERSEAL_PORTAL_URL"] = web_url
        planning = self.service.planning
        self.consumer = MessageConsumer(
            "notify",
            self.db,
            settings.broker_url,
            {
                "agreement.offered": planning.on_offered,
                **{
                    message_type.name: planning.on_agreement_state
                    for message_type in messages.AGREEMENT_STATES.values()
                },
                messages.AGREEMENT_AMENDMENT_PROPOSED.name: planning.on_amendment_proposed,
                messages.AGREEMENT_AMENDED.name: planning.on_amended,
                messages.CANDIDATE_CODE_REQUESTED.name: planning.on_code_requested,
                "milestone.confirmed": planning.on_milestone_confirmed,
            },
        )

    def _dispatch(self, stop: threading.Event) -> None:
        last_release = last_report = 0.0
        # Rows claimed by a worker that died go back to the queue. SQLite has one worker by
        # design, so at start every claimed row is ours from before a restart; PostgreSQL may
        # have several, so only claims older than the lease are taken back.
        lease = 0.0 if is_sqlite(self.db.engine) else LEASE_SECONDS
        settled = False

        def step() -> bool:
            """One dispatch pass; True when something was sent (look again at once)."""
            nonlocal last_release, last_report, lease, settled
            if not settled:
                self.service.settle_journal()
                settled = True
            if time.monotonic() - last_release > 30:
                self.service.release_stale(older_than=lease)
                last_release = time.monotonic()
                lease = LEASE_SECONDS
                self.ready.set()
            if time.monotonic() - last_report > REPORT_CHECK_SECONDS:
                last_report = time.monotonic()
                self.weekly.send_due()  # last week's report, once, from Monday 08:00 UTC
            return self.service.dispatch_once() != 0

        run_every(
            stop,
            self.settings.dispatch_interval,
            step,
            name="dispatcher",
            log=log,
            backoff=reconnect_backoff(),
        )

    def start_workers(self) -> None:
        self.workers.start(dispatcher=self._dispatch, consumer=self.consumer.run)

    def stop(self, timeout: float = 15.0) -> None:
        self.workers.stop(timeout)
        if self.service.journal is not None:
            self.service.journal.close()
        for channel in self.service.channels.values():
            close = getattr(channel, "close", None)
            if close is not None:
                close()

"""Wiring of the notify service: `create_app()` for HTTP, `NotifyNode` for the whole service in
one process (HTTP app, dispatcher, message consumer). No work at import time."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask

from ..shared import messages, revocations, secrets
from ..shared.broker import MessageConsumer
from ..shared.config import Settings, parse_sms_templates
from ..shared.db import Database, is_sqlite
from ..shared.links import LinkSigner
from ..shared.shortlinks import Shortener
from ..shared.web import create_base_app, health_route, standard_checks
from ..shared.workers import IDLE, Workers, reconnect_backoff, run_every
from . import api, confirmations_api
from .adapters.channels import FolderChannel, SmtpChannel, WebhookChannel
from .adapters.journal import SentJournal
from .adapters.signing import signer_from
from .adapters.sms import Provider, make_provider
from .alerts import HookSealer
from .service import NotifyService
from .sms import SmsAccounts, SmsChannel
from .weekly import ComposeReport, WeeklyReports, parse_recipients

log = logging.getLogger(__name__)
LEASE_SECONDS = 120.0
REPORT_CHECK_SECONDS = 60.0


def sms_provider_from(settings: Settings) -> Provider | None:
    """The deployment's SMS account's SDK client (used for every tenant without its own);
    `http://host:port` as the endpoint reaches a local stand-in (tests, demos)."""
    if not settings.sms_provider:
        return None
    return make_provider(
        settings.sms_provider,
        settings.sms_access_key_id,
        settings.sms_access_key_secret,
        sdk_app_id=settings.sms_sdk_app_id,
        region=settings.sms_region,
        endpoint=settings.sms_endpoint,
    )


def channels_from(settings: Settings, db: Database | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if db is not None:
        # SMS through the deployment's account, or through a tenant's own (`PUT /v1/sms`)
        out["sms"] = SmsChannel(
            db,
            sms_provider_from(settings),
            sign_name=settings.sms_sign_name,
            templates=parse_sms_templates(settings.sms_templates),
            accounts=SmsAccounts(
                HookSealer(
                    secrets.master_key(settings),
                    secrets.previous_master_keys(settings),
                    info=SmsAccounts.INFO,
                ),
                endpoints=settings.sms_endpoint_hosts,
            ),
        )
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
    flask_api.register_blueprint(confirmations_api.blp)
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
    # The weekly report's e-mail, composed by the console (`web/console/report_mail.py`; the
    # stack hands it in): (console URL) -> composer. None: no weekly report from this node.
    weekly_report: Callable[[str], ComposeReport] | None = None

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
            channels_from(settings, self.db),
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
            alert_sealer=HookSealer(
                secrets.master_key(settings), secrets.previous_master_keys(settings)
            ),
            console_url=web_url or self.public_url,
            robot_hosts=settings.chat_robot_hosts,
        )
        self.weekly = (
            WeeklyReports(
                self.db,
                self.service.channels,
                compose=self.weekly_report(web_url or self.public_url),
                recipients=parse_recipients(settings.report_recipients),
            )
            if self.weekly_report is not None
            else None
        )
        if self.weekly is None:
            log.warning("no weekly report composer given: HR's Monday report is not e-mailed")
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
                messages.AGREEMENT_BREACH_DUE.name: planning.on_breach_due,
                messages.AGREEMENT_ARRIVAL_DISPUTED.name: planning.on_arrival_disputed,
                messages.CANDIDATE_CODE_REQUESTED.name: planning.on_code_requested,
                messages.CANDIDATE_SIGNER_BOUND.name: planning.on_signer_bound,
                messages.RISK_CHANGED.name: planning.on_risk_changed,
                messages.MILESTONE_OVERDUE.name: planning.on_milestone_overdue,
                "milestone.confirmed": planning.on_milestone_confirmed,
            },
        )

    def _dispatch(self, stop: threading.Event) -> None:
        last_release = last_report = last_sms_reports = 0.0
        # Rows claimed by a worker that died go back to the queue. SQLite has one worker by
        # design, so at start every claimed row is ours from before a restart; PostgreSQL may
        # have several, so only claims older than the lease are taken back.
        lease = 0.0 if is_sqlite(self.db.engine) else LEASE_SECONDS
        settled = False

        def step() -> object:
            """One dispatch pass; True when something was sent (look again at once), IDLE
            when nothing was due."""
            nonlocal last_release, last_report, last_sms_reports, lease, settled
            if not settled:
                self.service.settle_journal()
                settled = True
            if time.monotonic() - last_release > 30:
                if last_release:  # after the first pass: a dispatcher here that died since
                    self.service.settle_journal(first=False)
                self.service.release_stale(older_than=lease)
                last_release = time.monotonic()
                lease = LEASE_SECONDS
                self.ready.set()
            if self.weekly and time.monotonic() - last_report > REPORT_CHECK_SECONDS:
                last_report = time.monotonic()
                self.weekly.send_due()  # last week's report, once, from Monday 08:00 UTC
            self.service.alerts.send_due()  # HR alerts waiting for the tenants' chat robots
            sms = self.service.channels.get("sms")
            if sms is not None and time.monotonic() - last_sms_reports > (
                self.settings.sms_report_interval
            ):
                last_sms_reports = time.monotonic()
                try:
                    sms.pull_reports()
                except Exception as exc:  # the provider is unreachable: next round
                    log.warning("pulling SMS delivery reports failed: %s", type(exc).__name__)
            return self.service.dispatch_once() != 0 or IDLE

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
        # A dispatcher still in a send keeps its slot (and so its claims) until the process
        # ends: let go now and a dispatcher starting meanwhile would send its rows again.
        alive = any(thread.is_alive() for thread in self.workers.threads)
        if self.service.journal is not None and not alive:
            self.service.journal.close()
        for channel in self.service.channels.values():
            close = getattr(channel, "close", None)
            if close is not None:
                close()

"""The notify service layer, composed of its parts; it decides nothing itself. Independent of
HTTP.

- `planning.py`: touchpoints planned, moved and stopped from the agreements' messages;
- `dispatch.py`: which due touchpoints go out, on which channel, and how outcomes are recorded
  (`outgoing.py` writes what they say, with their signed links);
- `replies.py`: the candidate's check-in answers and opt-out, through signed links;
- `candidates.py`: HR's view of a candidate's preferences and touchpoints;
- `tenant_templates.py`: a tenant's own touchpoint texts and branding;
- `confirmations.py`: the former employer confirms a certificate, with the candidate's consent.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from ..shared.config import Settings
from ..shared.db import Database
from ..shared.links import LinkSigner
from ..shared.shortlinks import Shortener
from .adapters.evidence import EvidenceDocuments
from .adapters.journal import SentJournal
from .alerts import AlertService, HookSealer
from .calendars import TenantCalendars
from .candidates import Candidates
from .confirmations import Documents, EmployerConfirmations
from .dispatch import Dispatcher, Outcome
from .inbox import Inbox
from .outgoing import Composer
from .planning import Planner
from .replies import Replies
from .sms import SmsAccounts
from .tenant_templates import TenantBrandings, TenantSmsSettings, TenantTemplates


class NotifyService:
    def __init__(
        self,
        db: Database,
        links: LinkSigner,
        channels: dict[str, Any],
        *,
        public_url: str,
        evidence_url: str,
        checkin_interval: float,
        quiet_hours: str,
        default_timezone: str,
        mail_domain: str,
        link_ttl: float = Settings.link_ttl,
        journal: SentJournal | None = None,
        max_attempts: int = Settings.touchpoint_max_attempts,
        shortener: Shortener | None = None,
        alert_sealer: HookSealer | None = None,
        console_url: str = "",
        robot_hosts: tuple[str, ...] = (),
        documents: Documents | None = None,
    ) -> None:
        self.planning = Planner(
            checkin_interval=checkin_interval,
            quiet_hours=quiet_hours,
            default_timezone=default_timezone,
        )
        composer = Composer(
            links,
            public_url=public_url,
            evidence_url=evidence_url,
            mail_domain=mail_domain,
            link_ttl=link_ttl,
            shortener=shortener,
            checkin_interval=checkin_interval,
        )
        self.dispatcher = Dispatcher(
            db, channels, composer, self.planning, journal=journal, max_attempts=max_attempts
        )
        self.replies = Replies(db, links)
        self.inbox = Inbox(db, links, composer)
        self.candidates = Candidates(db)
        self.templates = TenantTemplates(db)
        self.branding = TenantBrandings(db)
        self.sms = TenantSmsSettings(db, self._sms_defaults, self._sms_accounts)
        # HR alerts in the team's chat; without the master key's sealer (service-layer tests)
        # a key of this process's own seals the robots
        self.alerts = AlertService(
            db,
            alert_sealer or HookSealer(os.urandom(32)),
            console_url=console_url,
            extra_hosts=robot_hosts,
        )
        self.planning.alerts = self.alerts.raise_alert
        self.calendars = TenantCalendars(db)
        self.confirmations = EmployerConfirmations(
            db,
            links,
            channels,
            documents if documents is not None else EvidenceDocuments(evidence_url),
            public_url=console_url or public_url,
            mail_domain=mail_domain,
            shortener=shortener,
        )

    def _sms_defaults(self) -> tuple[str, str, dict[str, str]]:
        channel = self.channels.get("sms")
        if channel is None:
            return "", "", {}
        provider = channel.provider.name if channel.provider is not None else ""
        return provider, channel.defaults.sign_name, dict(channel.defaults.templates)

    def _sms_accounts(self) -> SmsAccounts | None:
        channel = self.channels.get("sms")
        return getattr(channel, "accounts", None)

    # ---- what the dispatcher's worker loop and the health check use ------------------------

    @property
    def channels(self) -> dict[str, Any]:
        return self.dispatcher.channels

    @property
    def journal(self) -> SentJournal | None:
        return self.dispatcher.journal

    def settle_journal(self, first: bool = True) -> int:
        return self.dispatcher.settle_journal(first)

    def release_stale(self, older_than: float = 300.0) -> int:
        return self.dispatcher.release_stale(older_than)

    def dispatch_once(self, limit: int = 100) -> int:
        return self.dispatcher.dispatch_once(limit)

    # The dispatcher's commit of a batch of outcomes; tests replace it to have it refused once.
    @property
    def _commit_outcomes(self) -> Callable[[list[Outcome]], None]:
        return self.dispatcher._commit_outcomes

    @_commit_outcomes.setter
    def _commit_outcomes(self, commit: Callable[[list[Outcome]], None]) -> None:
        self.dispatcher._commit_outcomes = commit  # type: ignore[method-assign,assignment]

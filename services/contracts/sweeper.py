"""The sweeper: declares due breaches and expiries (the chain's clock decides), fulfils
agreements whose candidate's arrival stood undisputed for the dispute window, flags overdue
milestones and announces a breach coming due (`agreement.breach_due`, once per breach date, so
HR is told in its chat before it falls due), so nobody has to remember. A candidate whose
arrival is recorded and not disputed is never declared in breach; a refusal makes the database
follow the chain (see transactions.py), so an agreement someone else moved is not tried again."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import and_, or_, select

from ..shared import messages
from ..shared.broker import enqueue
from ..shared.db import Database
from ..shared.models import aware
from .domain.agreements import DISPUTE_WINDOW
from .errors import ChainRefusal
from .models import Agreement, AgreementMilestone
from .policy import Policies
from .ports import AgreementsChain
from .records import announce
from .risk_tracking import refresh_risk

log = logging.getLogger(__name__)

# transition(None, agreement_id, action, tenant=...): the worker acts for the tenant.
Transition = Callable[..., dict[str, Any]]

# The sweeper asks the database only for rows whose dates may have come due (each date compared
# with the sweep's moment plus this margin, so that a time stored without its zone, as SQLite
# keeps it, is never left out); the exact test stays in Python. Loading every committed
# agreement and milestone each sweep made its work, and the memory it took and handed back,
# grow with every agreement ever signed (issue 27: the process's RSS climbed without end).
SLACK = dt.timedelta(days=1)


class Sweeper:
    def __init__(
        self,
        db: Database,
        chain: AgreementsChain,
        transition: Transition,
        policies: Policies | None = None,
        breach_alert_lead: float = 2 * 86400.0,
    ) -> None:
        self.db = db
        self.chain = chain
        self.transition = transition
        self.policies = policies
        self.breach_alert_lead = dt.timedelta(seconds=breach_alert_lead)

    def sweep(self) -> dict[str, int]:
        """Declare due breaches and expiries and flag overdue milestones; counts of each."""
        now = self.chain.chain_time()
        moment = dt.datetime.fromtimestamp(now, dt.UTC)
        done = {"breached": 0, "expired": 0, "fulfilled": 0, "overdue": 0, "breach_due": 0}
        window = dt.timedelta(seconds=DISPUTE_WINDOW)
        with self.db.sessions() as session:
            committed = list(
                session.execute(
                    select(Agreement).where(
                        Agreement.state == "committed",
                        or_(
                            # a breach is declarable after start + grace (grace_days >= 0)
                            Agreement.start_at < moment + SLACK,
                            and_(  # fulfilled once an undisputed arrival outlived the window
                                Agreement.arrived_at.is_not(None),
                                Agreement.arrival_disputed_at.is_(None),
                                Agreement.arrived_at < moment - window + SLACK,
                            ),
                        ),
                    )
                ).scalars()
            )
            due_fulfil, due_breach = [], []
            for a in committed:
                if a.arrived_at is not None and a.arrival_disputed_at is None:
                    # An undisputed arrival: fulfilled once the window has passed, never breach.
                    if aware(a.arrived_at) + window < moment:
                        due_fulfil.append((a.id, a.tenant))
                elif aware(a.start_at) + dt.timedelta(days=a.grace_days) < moment and (
                    self.policies is None or self.policies.of(session, a.tenant).auto_breach
                ):  # a tenant without automatic breach declares it itself, or not
                    due_breach.append((a.id, a.tenant))
            due_expiry = [
                (a.id, a.tenant)
                for a in session.execute(
                    select(Agreement).where(
                        Agreement.state == "offered", Agreement.offer_expires_at < moment + SLACK
                    )
                ).scalars()
                if aware(a.offer_expires_at) < moment
            ]
        done["breach_due"] = self._announce_breach_due(moment)
        for agreement_id, tenant in due_breach:
            self._sweep_one(agreement_id, tenant, "breach", done, "breached")
        for agreement_id, tenant in due_expiry:
            self._sweep_one(agreement_id, tenant, "expire", done, "expired")
        for agreement_id, tenant in due_fulfil:
            self._sweep_one(agreement_id, tenant, "fulfil_by_arrival", done, "fulfilled")
        with self.db.transaction() as session:
            rows = session.execute(
                select(AgreementMilestone, Agreement)
                .join(Agreement, Agreement.id == AgreementMilestone.agreement_id)
                .where(
                    Agreement.state == "committed",
                    AgreementMilestone.confirmed_at.is_(None),
                    AgreementMilestone.overdue_notified.is_(False),
                    AgreementMilestone.due_at < moment + SLACK,
                )
            ).all()
            for milestone, agreement in rows:
                if aware(milestone.due_at) >= moment:
                    continue
                milestone.overdue_notified = True
                announce(session, messages.MILESTONE_OVERDUE, agreement, milestone)
                session.flush()
                refresh_risk(session, agreement)
                done["overdue"] += 1
        return done

    def _announce_breach_due(self, moment: dt.datetime) -> int:
        """`agreement.breach_due` for each committed agreement without a standing arrival whose
        breach becomes declarable within the lead (or already is), once per breach date."""
        announced = 0
        with self.db.transaction() as session:
            for a in session.execute(
                select(Agreement).where(
                    Agreement.state == "committed",
                    # declarable (start + grace, grace >= 0) within the lead: start before this
                    Agreement.start_at < moment + self.breach_alert_lead + SLACK,
                )
            ).scalars():
                if a.arrived_at is not None and a.arrival_disputed_at is None:
                    continue  # an undisputed arrival: no breach can be declared
                declarable = aware(a.start_at) + dt.timedelta(days=a.grace_days)
                if declarable - self.breach_alert_lead > moment:
                    continue
                if a.breach_due_at is not None and aware(a.breach_due_at) == declarable:
                    continue
                a.breach_due_at = declarable
                automatic = self.policies is None or self.policies.of(session, a.tenant).auto_breach
                enqueue(
                    session,
                    [
                        messages.build(
                            messages.AGREEMENT_BREACH_DUE,
                            a.tenant,
                            {
                                "agreement_id": a.id,
                                "candidate_ref": a.candidate_ref,
                                "declarable_at": declarable,
                                "automatic": automatic,
                                "liquidated_damages": a.liquidated_damages,
                                "currency": a.currency,
                            },
                        )
                    ],
                )
                announced += 1
        return announced

    def _sweep_one(
        self, agreement_id: str, tenant: str, action: str, done: dict[str, int], key: str
    ) -> None:
        try:
            self.transition(None, agreement_id, action, tenant=tenant)
            done[key] += 1
        except ChainRefusal as exc:  # not yet by the chain's clock, or already moved
            log.info("sweeper: %s of %s refused: %s", action, agreement_id, exc.detail)

"""Every change of an agreement's traffic light is kept with its reasons (the console's
timeline shows them after the outbox has forgotten the `risk.changed` message)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from offerseal.contracts.models import Agreement, RiskChange
from offerseal.contracts.risk_tracking import refresh_risk
from offerseal.shared.db import Database
from tests.integration.test_console import seed_agreement


def test_a_change_is_kept_and_no_change_adds_nothing(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'risk.db'}")
    db.migrate()
    agreement_id = seed_agreement(db, "acme", "cand-1", non_compete=True)
    for _ in range(2):
        with db.transaction() as session:
            refresh_risk(session, session.get(Agreement, agreement_id))
    with db.sessions() as session:
        changes = session.execute(select(RiskChange)).scalars().all()
    assert [(c.previous, c.level) for c in changes] == [("blue", "red")]
    assert "a non-compete agreement applies" in changes[0].reasons
    db.dispose()

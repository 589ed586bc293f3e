"""A tenant's choices: defaults from settings, overrides per tenant, null back to the default."""

from __future__ import annotations

from pathlib import Path

import pytest

from offerseal.contracts.errors import ValidationFailed
from offerseal.contracts.policy import Policies, Policy
from offerseal.shared.auth import Principal
from offerseal.shared.db import Database
from offerseal.shared.errors import Forbidden

ADMIN = Principal(key_id="k-admin", role="admin", tenant="acme")
HR = Principal(key_id="k-hr", role="hr", tenant="acme")
OTHER = Principal(key_id="k-other", role="admin", tenant="globex")


@pytest.fixture
def policies(tmp_path: Path) -> Policies:
    db = Database(f"sqlite:///{tmp_path / 'p.db'}")
    db.migrate()
    return Policies(db, Policy(auto_breach=True, candidate_uploads="review"))


def test_defaults_until_a_tenant_chooses(policies: Policies) -> None:
    assert policies.describe(HR).candidate_uploads == "review"
    changed = policies.update(ADMIN, {"candidate_uploads": "auto", "auto_breach": False})
    assert changed.candidate_uploads == "auto" and changed.auto_breach is False
    assert changed.defaults == Policy(True, "review") and changed.updated_at is not None
    assert policies.describe(OTHER).candidate_uploads == "review"  # another tenant
    with policies.db.sessions() as session:
        assert policies.of(session, "acme") == Policy(False, "auto")
        assert policies.of(session, "globex") == Policy(True, "review")
    back = policies.update(ADMIN, {"auto_breach": None})
    assert back.auto_breach is True and back.candidate_uploads == "auto"


def test_only_an_admin_changes_and_only_known_modes(policies: Policies) -> None:
    with pytest.raises(Forbidden):
        policies.update(HR, {"auto_breach": False})
    with pytest.raises(ValidationFailed):
        policies.update(ADMIN, {"candidate_uploads": "sometimes"})

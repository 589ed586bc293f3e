"""API keys: revoked and expired keys stop working; listing never shows a secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from offerseal.shared import auth
from offerseal.shared.db import Database
from offerseal.shared.errors import Unauthorized


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'keys.db'}")
    database.migrate()
    return database


def test_a_revoked_key_is_refused_at_once_in_this_process(db: Database) -> None:
    key_id, token = auth.create_key(db, "hr", "acme")
    assert auth.authenticate(db, f"Bearer {token}").tenant == "acme"  # now cached
    assert auth.revoke_key(db, key_id)
    with pytest.raises(Unauthorized):
        auth.authenticate(db, f"Bearer {token}")
    assert not auth.revoke_key(db, key_id)  # already revoked


def test_another_tenant_cannot_revoke_a_key(db: Database) -> None:
    key_id, token = auth.create_key(db, "hr", "acme")
    assert not auth.revoke_key(db, key_id, tenant="globex")
    assert auth.authenticate(db, f"Bearer {token}").role == "hr"


def test_an_expired_key_is_refused(db: Database) -> None:
    import time

    _, token = auth.create_key(db, "legal", "acme", expires_in=1.0)  # room for a busy machine
    assert auth.authenticate(db, f"Bearer {token}").role == "legal"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            auth.authenticate(db, f"Bearer {token}")
        except Unauthorized as exc:
            assert "expired" in str(exc)
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the key never expired")


def test_listing_shows_state_and_never_a_secret(db: Database) -> None:
    kept, token = auth.create_key(db, "admin", "acme", label="ops")
    gone, _ = auth.create_key(db, "hr", "acme")
    auth.revoke_key(db, gone)
    auth.create_key(db, "hr", "globex")
    listed = {k["key_id"]: k for k in auth.list_keys(db, "acme")}
    assert set(listed) == {kept, gone}
    assert listed[kept]["active"] and not listed[gone]["active"]
    assert listed[gone]["revoked_at"]
    secret = token.rsplit("_", 1)[1]
    assert secret not in repr(listed)
    assert all("secret" not in field for k in listed.values() for field in k)

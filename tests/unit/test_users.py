"""Console accounts on a real SQLite database: set-up links work once, passwords are argon2id
hashes, sessions end on expiry, idleness, sign-out, a new password and a disabled account."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from offerseal.shared import users
from offerseal.shared.db import Database
from offerseal.shared.errors import Conflict, NotFound, ValidationFailed

PASSWORD = "correct horse battery staple"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'users.db'}")
    database.migrate()
    yield database
    database.dispose()


def active(db: Database, email: str = "HR@Acme.Example") -> users.ConsoleUser:
    _, token = users.add_user(db, email, "hr", "acme", by="test")
    users.set_password(db, token, PASSWORD)
    user = users.verify_password(db, email, PASSWORD)
    assert user is not None
    return user


def test_a_setup_link_sets_the_password_once_and_only_a_hash_is_stored(db: Database) -> None:
    _, token = users.add_user(db, "hr@acme.example", "hr", "acme", by="test")
    assert users.setup_account(db, token) == {"email": "hr@acme.example", "tenant": "acme"}
    assert users.set_password(db, token, PASSWORD) == "hr@acme.example"
    assert users.setup_account(db, token) is None
    with pytest.raises(NotFound):
        users.set_password(db, token, PASSWORD)
    with db.sessions() as session:
        row = session.execute(select(users.ConsoleUser)).scalar_one()
    assert row.password_hash is not None and row.password_hash.startswith("$argon2id$")
    assert PASSWORD not in row.password_hash and row.setup_sha256 is None


def test_bad_input_names_the_field(db: Database) -> None:
    with pytest.raises(ValidationFailed, match="email"):
        users.add_user(db, "not-an-address", "hr", "acme", by="test")
    with pytest.raises(ValidationFailed, match="role"):
        users.add_user(db, "a@b.example", "root", "acme", by="test")
    with pytest.raises(ValidationFailed, match="tenant"):
        users.add_user(db, "a@b.example", "hr", "no spaces", by="test")
    _, token = users.add_user(db, "a@b.example", "hr", "acme", by="test")
    with pytest.raises(ValidationFailed, match="password"):
        users.set_password(db, token, "short")
    with pytest.raises(Conflict):
        users.add_user(db, "a@B.EXAMPLE", "legal", "other", by="test")


def test_an_expired_setup_link_does_not_work(db: Database) -> None:
    _, token = users.add_user(db, "late@acme.example", "hr", "acme", by="test")
    with db.transaction() as session:
        row = session.execute(select(users.ConsoleUser)).scalar_one()
        row.setup_expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    assert users.setup_account(db, token) is None


def test_passwords_are_checked_and_the_email_domain_is_case_blind(db: Database) -> None:
    active(db)
    assert users.verify_password(db, "HR@acme.example", PASSWORD) is not None
    assert users.verify_password(db, "HR@acme.example", PASSWORD + "!") is None
    assert users.verify_password(db, "nobody@acme.example", PASSWORD) is None


def test_a_session_names_tenant_and_role_until_it_ends(db: Database) -> None:
    user = active(db)
    token, csrf = users.start_session(db, user, ttl=3600)
    held = users.resolve_session(db, token, idle=600)
    assert held is not None
    assert (held.principal.tenant, held.principal.role) == ("acme", "hr")
    assert held.principal.key_id.startswith("user:") and held.csrf_token == csrf
    assert users.csrf_matches(csrf, csrf) and not users.csrf_matches(csrf, None)
    assert users.resolve_session(db, token + "x", idle=600) is None
    users.end_session(db, token)
    assert users.resolve_session(db, token, idle=600) is None


def test_sessions_expire_absolutely_and_when_idle(db: Database) -> None:
    user = active(db)
    token, _ = users.start_session(db, user, ttl=3600)
    with db.transaction() as session:
        row = session.execute(select(users.ConsoleSession)).scalar_one()
        row.last_seen_at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=31)
    assert users.resolve_session(db, token, idle=30 * 60) is None
    token, _ = users.start_session(db, user, ttl=3600)
    with db.transaction() as session:
        for row in session.execute(select(users.ConsoleSession)).scalars():
            row.expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    assert users.resolve_session(db, token, idle=30 * 60) is None


def test_disabling_an_account_ends_its_sessions_and_its_password(db: Database) -> None:
    user = active(db)
    token, _ = users.start_session(db, user, ttl=3600)
    assert users.disable_user(db, "hr@acme.example")
    assert users.resolve_session(db, token, idle=600) is None
    assert users.verify_password(db, "hr@acme.example", PASSWORD) is None
    assert not users.disable_user(db, "hr@acme.example")
    assert [u["state"] for u in users.list_users(db, "acme")] == ["disabled"]


def test_a_new_password_ends_every_session(db: Database) -> None:
    user = active(db)
    token, _ = users.start_session(db, user, ttl=3600)
    reset = users.reissue_setup(db, "hr@acme.example")
    users.set_password(db, reset, "another long passphrase")
    assert users.resolve_session(db, token, idle=600) is None
    listed = users.list_users(db)
    assert listed[0]["state"] == "active" and "password_hash" not in listed[0]

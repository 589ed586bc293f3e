"""People who sign in to the console: accounts per tenant with a role (hr, legal, admin),
passwords hashed with argon2id, one-time set-up links, and server-side sessions.

A session is the other credential the shared guards accept beside an API key: its cookie names
a row here, which gives the tenant and role (a `Principal` like a key's), and a CSRF token that
every unsafe request made with the cookie must repeat. Only hashes of set-up tokens and session
tokens are stored; a disabled account's sessions die with it.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import re
import secrets
import threading
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import DateTime, ForeignKey, Index, String, select
from sqlalchemy.orm import Mapped, mapped_column

from .auth import ROLES, Principal
from .db import Base, Database
from .errors import Conflict, NotFound, ValidationFailed
from .models import aware, iso, utcnow

SETUP_TTL = dt.timedelta(days=3)  # how long a set-up link works
MIN_PASSWORD = 12
MAX_PASSWORD = 256
# Last-seen times are written at most this often, so that reading pages costs no write each.
TOUCH_EVERY = dt.timedelta(seconds=60)
PRINCIPAL_PREFIX = "user:"
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")
_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

# argon2id with the library's defaults (RFC 9106's second recommendation: 64 MiB, 3 passes).
_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified against when an e-mail is unknown, so that the answer takes as long as for a
    real one. Made at the first sign-in, not at import: an argon2 hash costs every process
    start (and a restart after a crash) about half a second of CPU."""
    return _hasher.hash(secrets.token_urlsafe(16))


def prepare_sign_in() -> None:
    """Make the dummy hash in the background, so that the first sign-in with an unknown
    e-mail takes no longer than the others (called by the app that serves the console)."""
    threading.Thread(target=_dummy_hash, name="dummy-hash", daemon=True).start()


class ConsoleUser(Base):
    __tablename__ = "console_users"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128), index=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str | None] = mapped_column(String(200))
    setup_sha256: Mapped[str | None] = mapped_column(String(64), unique=True)
    setup_expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    disabled_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_login_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class ConsoleSession(Base):
    __tablename__ = "console_sessions"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("console_users.id"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_console_sessions_user", "user_id"),)


@dataclass(frozen=True)
class SessionPrincipal:
    """Who a session cookie names, and the CSRF token its unsafe requests must carry."""

    principal: Principal
    email: str
    csrf_token: str


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def normalise_email(email: str) -> str:
    """One spelling per address: people type their e-mail in whatever case (mailbox names
    that differ only by case are not worth telling apart here)."""
    return email.strip().lower()


def check_password(password: str) -> None:
    """422 naming `password` unless it is long enough (length is what matters, NIST 800-63B)."""
    if len(password) < MIN_PASSWORD:
        raise ValidationFailed("password", f"at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise ValidationFailed("password", f"at most {MAX_PASSWORD} characters")


def add_user(db: Database, email: str, role: str, tenant: str, by: str) -> tuple[str, str]:
    """Create an account without a password; returns (user id, one-time set-up token)."""
    email = normalise_email(email)
    if not _EMAIL.match(email):
        raise ValidationFailed("email", "not an e-mail address")
    if role not in ROLES:
        raise ValidationFailed("role", f"must be one of {', '.join(ROLES)}")
    if not _TENANT.match(tenant):
        raise ValidationFailed("tenant", "1-128 letters, digits, '.', '_' or '-'")
    token = secrets.token_urlsafe(32)
    user_id = secrets.token_hex(8)
    with db.transaction() as session:
        taken = session.execute(
            select(ConsoleUser.id).where(ConsoleUser.email == email)
        ).scalar_one_or_none()
        if taken is not None:
            raise Conflict(f"an account for {email} exists already")
        session.add(
            ConsoleUser(
                id=user_id,
                tenant=tenant,
                email=email,
                role=role,
                setup_sha256=_digest(token),
                setup_expires_at=utcnow() + SETUP_TTL,
                created_by=by,
            )
        )
    return user_id, token


def reissue_setup(db: Database, email: str, tenant: str | None = None) -> str:
    """A new set-up link for an account (a forgotten password, an expired link)."""
    token = secrets.token_urlsafe(32)
    with db.transaction() as session:
        user = _by_email(session, normalise_email(email), tenant)
        user.setup_sha256 = _digest(token)
        user.setup_expires_at = utcnow() + SETUP_TTL
    return token


def _by_email(session: Any, email: str, tenant: str | None) -> ConsoleUser:
    user = session.execute(
        select(ConsoleUser).where(ConsoleUser.email == email)
    ).scalar_one_or_none()
    if user is None or (tenant is not None and user.tenant != tenant):
        raise NotFound(f"no account {email}")
    return user


def setup_account(db: Database, token: str) -> dict[str, str] | None:
    """The account a set-up link opens (its e-mail and tenant), or None when the link is
    unknown, used or expired."""
    with db.sessions() as session:
        user = _setup_user(session, token)
        return None if user is None else {"email": user.email, "tenant": user.tenant}


def _setup_user(session: Any, token: str) -> ConsoleUser | None:
    if not token or len(token) > 100:
        return None
    user: ConsoleUser | None = session.execute(
        select(ConsoleUser).where(ConsoleUser.setup_sha256 == _digest(token))
    ).scalar_one_or_none()
    if user is None or user.disabled_at is not None or user.setup_expires_at is None:
        return None
    if aware(user.setup_expires_at) <= utcnow():
        return None
    return user


def set_password(db: Database, token: str, password: str) -> str:
    """Set the password through a set-up link (which then stops working); ends every session
    the account had. Returns the e-mail."""
    check_password(password)
    hashed = _hasher.hash(password)
    with db.transaction() as session:
        user = _setup_user(session, token)
        if user is None:
            raise NotFound("this set-up link is not valid any more (used, expired or unknown)")
        user.password_hash = hashed
        user.setup_sha256 = None
        user.setup_expires_at = None
        _end_sessions(session, user.id)
        return user.email


def verify_password(db: Database, email: str, password: str) -> ConsoleUser | None:
    """The active account with this e-mail and password, or None (same work either way)."""
    with db.sessions() as session:
        user = session.execute(
            select(ConsoleUser).where(ConsoleUser.email == normalise_email(email))
        ).scalar_one_or_none()
    stored = user.password_hash if user is not None and user.password_hash else _dummy_hash()
    try:
        ok: bool = _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok or user is None or not user.password_hash or user.disabled_at is not None:
        return None
    if _hasher.check_needs_rehash(stored):
        with db.transaction() as session:
            row = session.get(ConsoleUser, user.id)
            if row is not None:
                row.password_hash = _hasher.hash(password)
    return user


def start_session(db: Database, user: ConsoleUser, ttl: float) -> tuple[str, str]:
    """A new session for `user`: (cookie token, CSRF token)."""
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    now = utcnow()
    with db.transaction() as session:
        session.add(
            ConsoleSession(
                token_sha256=_digest(token),
                user_id=user.id,
                csrf_token=csrf,
                created_at=now,
                last_seen_at=now,
                expires_at=now + dt.timedelta(seconds=ttl),
            )
        )
        row = session.get(ConsoleUser, user.id)
        if row is not None:
            row.last_login_at = now
    return token, csrf


def resolve_session(db: Database, token: str, idle: float) -> SessionPrincipal | None:
    """Who the session cookie `token` names; None when unknown, expired (absolute or idle
    for longer than `idle` seconds) or its account disabled."""
    if not token or len(token) > 100:
        return None
    digest = _digest(token)
    now = utcnow()
    with db.sessions() as session:
        row = session.execute(
            select(ConsoleSession, ConsoleUser)
            .join(ConsoleUser, ConsoleUser.id == ConsoleSession.user_id)
            .where(ConsoleSession.token_sha256 == digest)
        ).first()
    if row is None:
        return None
    held, user = row
    if user.disabled_at is not None or aware(held.expires_at) <= now:
        return None
    if aware(held.last_seen_at) + dt.timedelta(seconds=idle) <= now:
        return None
    if aware(held.last_seen_at) + TOUCH_EVERY <= now:
        with db.transaction() as session:
            fresh = session.get(ConsoleSession, digest)
            if fresh is not None:
                fresh.last_seen_at = now
    return SessionPrincipal(
        principal=Principal(key_id=PRINCIPAL_PREFIX + user.id, role=user.role, tenant=user.tenant),
        email=user.email,
        csrf_token=held.csrf_token,
    )


def csrf_matches(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), str(given).encode())


def end_session(db: Database, token: str) -> None:
    with db.transaction() as session:
        row = session.get(ConsoleSession, _digest(token))
        if row is not None:
            session.delete(row)


def _end_sessions(session: Any, user_id: str) -> None:
    for row in session.execute(
        select(ConsoleSession).where(ConsoleSession.user_id == user_id)
    ).scalars():
        session.delete(row)


def disable_user(db: Database, email: str, tenant: str | None = None) -> bool:
    """Disable an account and end its sessions. False if unknown or already disabled."""
    with db.transaction() as session:
        try:
            user = _by_email(session, normalise_email(email), tenant)
        except NotFound:
            return False
        if user.disabled_at is not None:
            return False
        user.disabled_at = utcnow()
        user.setup_sha256 = None
        _end_sessions(session, user.id)
    return True


def disable_user_by_id(db: Database, user_id: str, tenant: str) -> str:
    """Disable a tenant's account by its id (the console's admin); 404 for another tenant's or
    an unknown id, like every other resource. Returns the e-mail."""
    with db.transaction() as session:
        user = session.get(ConsoleUser, user_id) if len(user_id) <= 16 else None
        if user is None or user.tenant != tenant:
            raise NotFound(f"no account {user_id}")
        if user.disabled_at is None:
            user.disabled_at = utcnow()
            user.setup_sha256 = None
            _end_sessions(session, user.id)
        return user.email


def list_users(db: Database, tenant: str | None = None) -> list[dict[str, Any]]:
    """Every account's e-mail, tenant, role, state and dates (never a hash)."""
    query = select(ConsoleUser).order_by(ConsoleUser.tenant, ConsoleUser.email)
    if tenant:
        query = query.where(ConsoleUser.tenant == tenant)
    with db.sessions() as session:
        users = session.execute(query).scalars().all()
    return [
        {
            "id": u.id,
            "email": u.email,
            "tenant": u.tenant,
            "role": u.role,
            "state": "disabled"
            if u.disabled_at is not None
            else ("active" if u.password_hash else "invited"),
            "created_at": iso(u.created_at),
            "last_login_at": iso(u.last_login_at),
            "disabled_at": iso(u.disabled_at),
        }
        for u in users
    ]

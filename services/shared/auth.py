"""API keys: bearer tokens stored hashed, each bound to one role and one tenant (employer).

A token reads `osk_<key id>_<secret>`; only sha256(secret) is stored. The same key works
against every OfferSeal service because they share the key table.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass

from sqlalchemy import select

from .db import Database
from .errors import Forbidden, Unauthorized, ValidationFailed
from .models import ApiKey, aware, iso, utcnow

ROLES = ("hr", "legal", "admin")
READ_ROLES = ROLES  # every role may read its tenant's records
WRITE_ROLES = ("hr", "admin")  # legal reads, never changes
_TOKEN = re.compile(r"^osk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True)
class Principal:
    key_id: str
    role: str
    tenant: str

    def require(self, *roles: str) -> None:
        if self.role not in roles:
            raise Forbidden(f"role {self.role!r} may not do this (needs {' or '.join(roles)})")


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(
    db: Database,
    role: str,
    tenant: str,
    label: str = "",
    expires_in: float | None = None,
) -> tuple[str, str]:
    """Store a new key and return (key id, token). The token is shown once and never stored.
    `expires_in` (seconds) makes the key stop working after that long."""
    if expires_in is not None and expires_in <= 0:
        raise ValidationFailed("expires_in", "must be positive")
    if role not in ROLES:
        raise ValidationFailed("role", f"must be one of {', '.join(ROLES)}")
    if not _TENANT.match(tenant):
        raise ValidationFailed("tenant", "1-128 letters, digits, '.', '_' or '-'")
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    with db.transaction() as session:
        session.add(
            ApiKey(
                key_id=key_id,
                secret_sha256=_digest(secret),
                role=role,
                tenant=tenant,
                label=label,
                expires_at=None
                if expires_in is None
                else utcnow() + dt.timedelta(seconds=expires_in),
            )
        )
    return key_id, f"osk_{key_id}_{secret}"


# Valid keys are remembered briefly so that a busy HR system does not cost a database round
# trip per request; revoking a key takes effect within CACHE_SECONDS.
CACHE_SECONDS = 10.0
_cache: dict[tuple[str, str, str], tuple[float, Principal]] = {}
_cache_lock = threading.Lock()


def authenticate(db: Database, authorization: str | None) -> Principal:
    if not authorization:
        raise Unauthorized("missing bearer token (Authorization: Bearer osk_...)")
    scheme, _, token = authorization.partition(" ")
    match = _TOKEN.match(token.strip()) if scheme.lower() == "bearer" else None
    if match is None:
        raise Unauthorized("malformed bearer token")
    key_id, secret = match.groups()
    digest = _digest(secret)
    cache_key = (db.url, key_id, digest)
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(cache_key)
    if hit is not None and hit[0] > now:
        return hit[1]
    with db.sessions() as session:
        key = session.execute(select(ApiKey).where(ApiKey.key_id == key_id)).scalar_one_or_none()
    if key is None or key.revoked_at is not None:
        raise Unauthorized("unknown or revoked API key")
    if key.expires_at is not None and aware(key.expires_at) <= utcnow():
        raise Unauthorized("this API key has expired")
    if not hmac.compare_digest(key.secret_sha256, digest):
        raise Unauthorized("unknown or revoked API key")
    principal = Principal(key_id=key.key_id, role=key.role, tenant=key.tenant)
    cached_for = CACHE_SECONDS
    if key.expires_at is not None:
        cached_for = min(cached_for, (aware(key.expires_at) - utcnow()).total_seconds())
    with _cache_lock:
        if len(_cache) > 10_000:
            _cache.clear()
        _cache[cache_key] = (now + cached_for, principal)
    return principal


def revoke_key(db: Database, key_id: str, tenant: str | None = None) -> bool:
    """Revoke a key (every service refuses it within CACHE_SECONDS). False if unknown, already
    revoked, or (with `tenant`) another tenant's."""
    with db.transaction() as session:
        key = session.get(ApiKey, key_id)
        if key is None or key.revoked_at is not None or (tenant and key.tenant != tenant):
            return False
        key.revoked_at = utcnow()
    with _cache_lock:
        for cached in [k for k in _cache if k[1] == key_id]:
            del _cache[cached]
    return True


def list_keys(db: Database, tenant: str | None = None) -> list[dict[str, object]]:
    """Every key's id, role, tenant, label and dates (never a secret or its hash)."""
    query = select(ApiKey).order_by(ApiKey.tenant, ApiKey.created_at)
    if tenant:
        query = query.where(ApiKey.tenant == tenant)
    with db.sessions() as session:
        keys = session.execute(query).scalars().all()
    now = utcnow()
    return [
        {
            "key_id": k.key_id,
            "role": k.role,
            "tenant": k.tenant,
            "label": k.label,
            "created_at": iso(k.created_at),
            "expires_at": iso(k.expires_at),
            "revoked_at": iso(k.revoked_at),
            "active": k.revoked_at is None and (k.expires_at is None or aware(k.expires_at) > now),
        }
        for k in keys
    ]

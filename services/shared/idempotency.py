"""Idempotency-Key, for every service: a request repeated with the same key and the same body
gets the first answer again and has no second effect; the same key with another body is a 409.
Keys are per tenant and kept for the retention period (`retention.py`)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .db import Database
from .errors import Conflict, ValidationFailed
from .group_commit import GroupCommit
from .models import IdempotencyRecord

MAX_KEY_LENGTH = 200
T = TypeVar("T")


class IdempotencyConflict(Conflict):
    title = "Idempotency-Key reused with a different request"


def fingerprint(*parts: Any) -> str:
    """What identifies a request's body: equal parts, equal fingerprint."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def key_from_header(value: str | None) -> str | None:
    """The Idempotency-Key header's value, checked (1-200 characters), or None."""
    if value is not None and not (1 <= len(value) <= MAX_KEY_LENGTH):
        raise ValidationFailed("Idempotency-Key", f"must be 1-{MAX_KEY_LENGTH} characters")
    return value


def lookup(
    session: Session,
    tenant: str,
    key: str,
    request_fp: str,
    conflict: type[Exception] = IdempotencyConflict,
) -> IdempotencyRecord | None:
    """The record of an earlier request with this key, or None; `conflict` when that request
    had another body."""
    existing = session.get(IdempotencyRecord, (tenant, key))
    if existing is not None and existing.request_sha256 != request_fp:
        raise conflict("this Idempotency-Key was used with a different request body")
    return existing


def remember(
    session: Session, tenant: str, key: str, request_fp: str, status: int, body: dict[str, Any]
) -> None:
    """Record the answer in the caller's transaction (a concurrent twin fails on commit)."""
    session.add(
        IdempotencyRecord(
            tenant=tenant, key=key, request_sha256=request_fp, status_code=status, response=body
        )
    )
    session.flush()


def answer(db: Database, tenant: str, key: str, request_fp: str, response: dict[str, Any]) -> None:
    """Replace the recorded answer (once the work a record claimed has finished)."""
    with db.transaction() as session:
        record = session.get(IdempotencyRecord, (tenant, key))
        if record is not None and record.request_sha256 == request_fp:
            record.response = response


def once(
    db: Database,
    tenant: str,
    key: str | None,
    request_fp: str,
    work: Callable[[Session], dict[str, Any]],
    conflict: type[Exception] = IdempotencyConflict,
    group: GroupCommit | None = None,
) -> tuple[int, dict[str, Any], bool]:
    """Run `work(session)` once per key, in one transaction with the record of its answer
    (with `group`, a transaction shared with other requests: `group_commit.py`). Returns
    (status, body, replayed)."""

    def alone(piece: Callable[[Session], T]) -> T:
        with db.transaction() as session:
            return piece(session)

    run = group.run if group is not None else alone
    if key is None:
        return 201, run(work), False

    def keyed(session: Session) -> tuple[int, dict[str, Any], bool]:
        existing = lookup(session, tenant, key, request_fp, conflict)
        if existing is not None:
            return existing.status_code, existing.response, True
        body = work(session)
        remember(session, tenant, key, request_fp, 201, body)
        return 201, body, False

    try:
        return run(keyed)
    except IntegrityError:
        # A concurrent request with the same key committed first; answer as it did.
        with db.sessions() as session:
            existing = lookup(session, tenant, key, request_fp, conflict)
        assert existing is not None
    return existing.status_code, existing.response, True

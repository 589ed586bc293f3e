"""A process-wide exclusive lock that dies with its holder: a PostgreSQL advisory lock held on
a dedicated connection, or on SQLite (one host by nature) an flock on a file beside the database.
Used so that exactly one anchoring worker per chain signer runs, and nonces never collide."""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from .db import Database, is_sqlite


class ExclusiveLock:
    def __init__(self, db: Database, name: str) -> None:
        self.db = db
        self.name = name
        self._conn: Connection | None = None
        self._fd: int | None = None
        digest = hashlib.sha256(name.encode()).digest()
        self._key = int.from_bytes(digest[:8], "big", signed=True)

    def try_acquire(self) -> bool:
        if is_sqlite(self.db.engine):
            database = self.db.engine.url.database
            folder = (
                Path(database).resolve().parent
                if database and database != ":memory:"
                else Path("/tmp")
            )
            safe = hashlib.sha256(self.name.encode()).hexdigest()[:16]
            fd = os.open(folder / f".offerseal-lock-{safe}", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            self._fd = fd
            return True
        conn = self.db.engine.connect()
        got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self._key}).scalar()
        conn.commit()
        if got:
            self._conn = conn
            return True
        conn.close()
        return False

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self._key})
                self._conn.commit()
            finally:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> ExclusiveLock:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

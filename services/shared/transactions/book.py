"""The signer's nonces and lock in the database (`shared/nonces.py`), as the path's `NonceBook`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from sqlalchemy.orm import Session

from .. import nonces
from ..db import Database


class DbNonceBook:
    def __init__(self, db: Database, signer: str) -> None:
        self.db = db
        self.signer = signer

    def sending(self) -> AbstractContextManager[None]:
        return nonces.sending(self.db, self.signer)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with self.db.transaction() as session:
            yield session

    def take(self, session: Session, chain_id: int, floor: int, count: int = 1) -> int:
        return nonces.take(session, chain_id, self.signer, floor, count)

    def rewind(self, session: Session, chain_id: int, to: int) -> None:
        nonces.rewind(session, chain_id, self.signer, to)

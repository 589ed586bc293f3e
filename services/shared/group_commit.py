"""Group commit: the writes of requests that arrive together share one database transaction.

Each request hands its work (a function of a session) to `GroupCommit.run` and waits; one
committer thread per process takes every piece of work that is waiting, runs them in order in
one transaction and commits once. Only after that commit does any of them return, so an answer
still means committed (a 201 stays a promise kept after a crash). What the pieces share is the
cost that does not depend on how many there are: the connection check, the commit and its
WAL flush, and the time a row lock is held (the tenant's gap-free receipt counter: held once
per group instead of once per request, while the other requests of that tenant queue behind it).

When any piece raises, or the commit fails, nothing of the group is kept: the group is rolled
back and every piece is run again alone, in its own transaction, so one request's error (a
conflict, a twin Idempotency-Key) is its own and the others are answered as if they had come
alone. Work must therefore be safe to run twice when the first run was rolled back: it may
only change the database through the session it is given.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from .db import Database

log = logging.getLogger(__name__)
T = TypeVar("T")
I = TypeVar("I")  # noqa: E741


@dataclass
class _Piece:
    """One request's work: a function of the session, or an item that `write_all` writes
    together with the other items of its `kind` in the group (in one statement per table)."""

    done: Future[Any]
    work: Callable[[Session], Any] | None = None
    kind: Hashable = None
    item: Any = None
    write_all: Callable[[Session, list[Any]], list[Any]] | None = None

    def alone(self, session: Session) -> Any:
        if self.work is not None:
            return self.work(session)
        assert self.write_all is not None
        return self.write_all(session, [self.item])[0]


MAX_GROUP = 64  # pieces of work in one transaction at most


class GroupCommit:
    def __init__(self, db: Database, *, max_group: int = MAX_GROUP, name: str = "commits") -> None:
        self.db = db
        self.max_group = max_group
        self.name = name
        self._queue: queue.SimpleQueue[_Piece] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._pid = 0  # the process whose committer thread runs (pre-fork: one per worker)
        self.groups = 0  # transactions committed, and the pieces in them (for tests and benches)
        self.pieces = 0
        self.fallbacks = 0  # groups that failed and were run again piece by piece

    def run(self, work: Callable[[Session], T]) -> T:
        """`work(session)` inside a transaction shared with other waiting work; returns its
        result once that transaction committed, or raises what it raised (run alone)."""
        return self._wait(_Piece(Future(), work=work))

    def run_combined(
        self, kind: Hashable, item: I, write_all: Callable[[Session, list[I]], list[T]]
    ) -> T:
        """Like `run`, for work that is cheaper written together: `write_all(session, items)`
        gets every waiting item of this `kind` at once and returns each one's result, in
        order (alone: a list of one)."""
        return self._wait(_Piece(Future(), kind=kind, item=item, write_all=write_all))

    def _wait(self, piece: _Piece) -> Any:
        self._ensure_thread()
        self._queue.put(piece)
        return piece.done.result()

    def _ensure_thread(self) -> None:
        pid = os.getpid()
        if self._pid == pid:
            return
        with self._lock:
            if self._pid != pid:  # first use in this process (threads do not survive fork)
                self._queue = queue.SimpleQueue()
                threading.Thread(target=self._loop, name=self.name, daemon=True).start()
                self._pid = pid

    def _loop(self) -> None:
        while True:
            group = [self._queue.get()]
            while len(group) < self.max_group:
                try:
                    group.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self._commit(group)
            except BaseException as exc:  # never leave a caller waiting
                log.exception("group commit failed")
                for piece in group:
                    if not piece.done.done():
                        piece.done.set_exception(exc)

    def _commit(self, group: list[_Piece]) -> None:
        if len(group) > 1:
            try:
                results: dict[int, Any] = {}
                with self.db.transaction() as session:
                    combined: dict[Hashable, list[int]] = {}
                    for i, piece in enumerate(group):
                        if piece.work is not None:
                            results[i] = piece.work(session)
                        else:
                            combined.setdefault(piece.kind, []).append(i)
                    for members in combined.values():
                        write_all = group[members[0]].write_all
                        assert write_all is not None
                        written = write_all(session, [group[i].item for i in members])
                        results.update(zip(members, written, strict=True))
            except BaseException:  # each piece is run again alone and answers for itself
                self.fallbacks += 1
                log.debug("a group of %s failed; running each alone", len(group))
            else:
                self.groups += 1
                self.pieces += len(group)
                for i, piece in enumerate(group):
                    piece.done.set_result(results[i])
                return
        for piece in group:
            try:
                with self.db.transaction() as session:
                    result = piece.alone(session)
            except BaseException as exc:  # handed to the waiting request
                piece.done.set_exception(exc)
            else:
                self.groups += 1
                self.pieces += 1
                piece.done.set_result(result)

"""Group commit (services/shared/group_commit.py) on a real SQLite database: work that waits
together shares one transaction, each caller returns only after the commit, and one piece's
error is its own."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from offerseal.shared.db import Database
from offerseal.shared.group_commit import GroupCommit


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'g.db'}")
    with database.transaction() as session:
        session.execute(text("CREATE TABLE t (n INTEGER PRIMARY KEY)"))
    yield database
    database.dispose()


def insert(n: int, fail: bool = False) -> Callable[[Session], int]:
    def work(session: Session) -> int:
        session.execute(text("INSERT INTO t (n) VALUES (:n)"), {"n": n})
        if fail:
            raise ValueError(f"piece {n} refused")
        return n

    return work


def committed(db: Database) -> set[int]:
    with db.sessions() as session:
        return set(session.execute(text("SELECT n FROM t")).scalars())


def until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


def blocked_group(
    db: Database, group: GroupCommit, pool: ThreadPoolExecutor, works: list[Callable[..., Any]]
) -> list[Future[Any]]:
    """Hold the committer in a first piece until every one of `works` is queued behind it, so
    that they form one group."""
    started, gate = threading.Event(), threading.Event()

    def first(session: Session) -> int:
        started.set()
        gate.wait(30)
        return insert(0)(session)

    futures = [pool.submit(group.run, first)]
    assert started.wait(30)  # the committer is inside the first piece
    futures += [pool.submit(w) for w in works]
    until(lambda: group._queue.qsize() == len(works))
    gate.set()
    return futures


def test_waiting_work_shares_one_transaction_and_returns_after_its_commit(db: Database) -> None:
    group = GroupCommit(db)
    seen_committed: dict[int, bool] = {}

    def call(n: int) -> int:
        result = group.run(insert(n))
        seen_committed[n] = n in committed(db)  # visible to another session on return
        return result

    with ThreadPoolExecutor(12) as pool:
        futures = blocked_group(db, group, pool, [lambda n=n: call(n) for n in range(1, 11)])
        results = [f.result(30) for f in futures]
    assert results == list(range(11))
    assert committed(db) == set(range(11))
    assert all(seen_committed.values()) and len(seen_committed) == 10
    assert (group.groups, group.pieces, group.fallbacks) == (2, 11, 0)  # the first alone, then ten


def test_one_failing_piece_fails_alone_and_the_others_commit(db: Database) -> None:
    group = GroupCommit(db)
    with ThreadPoolExecutor(8) as pool:
        futures = blocked_group(
            db,
            group,
            pool,
            [lambda n=n: group.run(insert(n, fail=(n == 3))) for n in range(1, 6)],
        )
        outcomes = []
        for f in futures:
            try:
                outcomes.append(f.result(30))
            except ValueError as exc:
                outcomes.append(str(exc))
    assert outcomes == [0, 1, 2, "piece 3 refused", 4, 5]
    assert committed(db) == {0, 1, 2, 4, 5}  # the refused piece's own insert rolled back


def test_combined_items_are_written_together(db: Database) -> None:
    group = GroupCommit(db)
    calls: list[list[int]] = []

    def write_all(session: Session, items: list[int]) -> list[str]:
        calls.append(list(items))
        session.execute(text("INSERT INTO t (n) VALUES (:n)"), [{"n": n} for n in items])
        return [f"row {n}" for n in items]

    with ThreadPoolExecutor(8) as pool:
        futures = blocked_group(
            db,
            group,
            pool,
            [lambda n=n: group.run_combined("rows", n, write_all) for n in range(1, 7)],
        )
        results = [f.result(30) for f in futures]
    assert results == [0] + [f"row {n}" for n in range(1, 7)]
    assert sorted(calls[0]) == [1, 2, 3, 4, 5, 6] and len(calls) == 1  # one write for the group
    assert committed(db) == set(range(7))


def test_a_failed_commit_answers_each_piece_alone(db: Database) -> None:
    """Two pieces inserting the same key: the group's commit fails, then each runs alone, and
    exactly one of them gets the integrity error."""
    from sqlalchemy.exc import IntegrityError

    group = GroupCommit(db)
    with ThreadPoolExecutor(8) as pool:
        futures = blocked_group(db, group, pool, [lambda: group.run(insert(7)) for _ in range(2)])
        outcomes = []
        for f in futures:
            try:
                outcomes.append(f.result(30))
            except IntegrityError:
                outcomes.append("duplicate")
    assert outcomes[0] == 0 and sorted(map(str, outcomes[1:])) == ["7", "duplicate"]
    assert committed(db) == {0, 7}


def test_a_piece_that_raises_a_base_exception_fails_alone(db: Database) -> None:
    """Not only Exception: a piece raising SystemExit in a group still leaves the others to
    commit and is the only one answered with it."""

    def exits(session: Session) -> int:
        insert(99)(session)
        raise SystemExit("piece 99 stops")

    group = GroupCommit(db)
    with ThreadPoolExecutor(8) as pool:
        futures = blocked_group(
            db,
            group,
            pool,
            [lambda: group.run(insert(1)), lambda: group.run(exits), lambda: group.run(insert(2))],
        )
        outcomes: list[Any] = []
        for f in futures:
            try:
                outcomes.append(f.result(30))
            except SystemExit as exc:
                outcomes.append(str(exc))
    assert outcomes == [0, 1, "piece 99 stops", 2]
    assert committed(db) == {0, 1, 2}

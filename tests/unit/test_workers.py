"""The one worker loop: failures back off (doubling, capped), progress resets the backoff, a busy
step runs again at once, an idle one looks less often until this process writes, and setting
`stop` ends the loop promptly."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from offerseal.shared import workers
from offerseal.shared.workers import IDLE, Backoff, run_every

log = logging.getLogger("tests.workers")


class RecordedStop(threading.Event):
    """A stop event whose waits return at once and are recorded instead of slept."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(float(timeout or 0.0))
        return self.is_set()


def scripted(stop: threading.Event, outcomes: list[object]) -> Callable[[], object]:
    """A step that plays `outcomes` (an exception is raised, anything else returned) and sets
    `stop` after the last one."""
    queue = list(outcomes)

    def step() -> object:
        outcome = queue.pop(0)
        if not queue:
            stop.set()
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    return step


def test_backoff_doubles_up_to_its_cap_and_resets() -> None:
    backoff = Backoff(0.5, 3.0)
    assert [backoff.next() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    backoff.reset()
    assert backoff.next() == 0.5


def test_failures_back_off_and_a_successful_step_resets_the_backoff() -> None:
    stop = RecordedStop()
    boom = RuntimeError("node down")
    step = scripted(stop, [boom, boom, boom, None, boom, None])
    run_every(stop, 0.2, step, name="worker", log=log, backoff=Backoff(0.5, 1.5))
    # three failures (0.5, 1.0, capped 1.5), an idle step (interval), a failure from the start
    assert stop.waits == [0.5, 1.0, 1.5, 0.2, 0.5, 0.2]


def test_a_busy_step_runs_again_without_waiting() -> None:
    stop = RecordedStop()
    run_every(stop, 0.2, scripted(stop, [True, True, False]), name="worker", log=log)
    assert stop.waits == [0.2]


class RecordedActivity(workers.Activity):
    """ACTIVITY whose waits return at once, recorded; `rings` says which of them were rung."""

    def __init__(self, rings: frozenset[int] = frozenset()) -> None:
        super().__init__()
        self.rings = set(rings)
        self.waits: list[float] = []

    def wait(self, seen: int, timeout: float) -> bool:
        self.waits.append(round(timeout, 3))
        return len(self.waits) - 1 in self.rings


def test_an_idle_loop_looks_less_often_until_the_process_writes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    activity = RecordedActivity(rings=frozenset({4}))
    monkeypatch.setattr(workers, "ACTIVITY", activity)
    stop = RecordedStop()
    run_every(stop, 0.1, scripted(stop, [IDLE] * 7), name="relay", log=log, idle_cap=1.0)
    # Waits of 0.1, 0.2, 0.4, 0.8, then a ring: 0.1 again, 0.2; each ends with the interval.
    assert activity.waits == [0.0, 0.1, 0.3, 0.7, 0.9, 0.0, 0.1]
    assert stop.waits == [0.1] * 7


def test_idle_loops_reach_their_cap_and_work_found_brings_the_interval_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    activity = RecordedActivity()
    monkeypatch.setattr(workers, "ACTIVITY", activity)
    stop = RecordedStop()
    outcomes: list[object] = [IDLE] * 6 + [True, None, IDLE]
    run_every(stop, 0.25, scripted(stop, outcomes), name="anchoring", log=log, idle_cap=1.0)
    assert activity.waits == [0.0, 0.25, 0.75, 0.75, 0.75, 0.75, 0.0]
    # A step that returns None (not IDLE) waits its interval, as loops always did.
    assert stop.waits == [0.25] * 8


def test_a_commit_that_wrote_rings_and_a_read_or_a_rollback_does_not(tmp_path: Path) -> None:
    from sqlalchemy import text

    from offerseal.shared.db import Database

    db = Database(f"sqlite:///{tmp_path / 'rings.db'}")
    try:
        with db.transaction() as session:
            session.execute(text("CREATE TABLE t (x INTEGER)"))
        before = workers.ACTIVITY.generation
        with db.transaction() as session:
            session.execute(text("SELECT count(*) FROM t"))
        assert workers.ACTIVITY.generation == before
        with pytest.raises(RuntimeError), db.transaction() as session:
            session.execute(text("INSERT INTO t VALUES (1)"))
            raise RuntimeError("rolled back")
        assert workers.ACTIVITY.generation == before
        with db.transaction() as session:
            session.execute(text("INSERT INTO t VALUES (2)"))
        assert workers.ACTIVITY.generation > before
    finally:
        db.dispose()


def test_a_ring_wakes_an_idle_wait_at_once() -> None:
    activity = workers.Activity()
    seen = activity.generation
    threading.Timer(0.05, activity.ring).start()
    assert activity.wait(seen, 30.0)  # woken by the ring, long before the timeout
    assert not activity.wait(activity.generation, 0.0)


def test_without_reset_after_step_only_the_step_resets_the_backoff() -> None:
    stop = RecordedStop()
    backoff = Backoff(0.5, 10.0)
    boom = RuntimeError("node down")

    def progress() -> bool:
        backoff.reset()
        return True

    outcomes: list[object] = [boom, False, boom, "progress", boom, False]
    plays = scripted(stop, outcomes)

    def step() -> object:
        outcome = plays()
        return progress() if outcome == "progress" else outcome

    run_every(stop, 0.1, step, name="worker", log=log, backoff=backoff, reset_after_step=False)
    # an idle step keeps the backoff growing; the step's own reset starts it again
    assert stop.waits == [0.5, 0.1, 1.0, 0.5, 0.1]


def test_on_error_runs_and_expected_failures_log_one_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop = RecordedStop()
    seen: list[BaseException] = []
    step = scripted(stop, [ConnectionError("refused"), ValueError("bug"), None])
    with caplog.at_level(logging.WARNING, logger=log.name):
        run_every(
            stop,
            0.2,
            step,
            name="relay",
            log=log,
            expected=(ConnectionError,),
            on_error=seen.append,
        )
    assert [type(e) for e in seen] == [ConnectionError, ValueError]
    first, second = caplog.records
    assert first.getMessage() == "relay paused (ConnectionError: refused); retry in 0.5s"
    assert first.exc_info is None
    assert second.getMessage() == "relay failed; retry in 1.0s"
    assert second.exc_info is not None


def test_a_failure_outside_retry_ends_the_loop() -> None:
    stop = RecordedStop()
    step = scripted(stop, [ConnectionError("refused"), KeyError("bug"), None])
    with pytest.raises(KeyError):
        run_every(stop, 0.2, step, name="consumer", log=log, retry=(ConnectionError,))
    assert stop.waits == [0.5]


@pytest.mark.parametrize("failing", [False, True])
def test_setting_stop_ends_a_long_wait_promptly(failing: bool) -> None:
    stop = threading.Event()
    stepped = threading.Event()

    def step() -> None:
        stepped.set()
        if failing:
            raise RuntimeError("down")

    worker = threading.Thread(
        target=run_every,
        args=(stop, 3600.0, step),
        kwargs={"name": "worker", "log": log, "backoff": Backoff(3600.0, 3600.0)},
        daemon=True,
    )
    worker.start()
    assert stepped.wait(10)
    stop.set()
    worker.join(10)
    assert not worker.is_alive()


class _Clock:
    """A stop event whose waits advance a fake clock (no real sleeping)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.stopped = False

    def is_set(self) -> bool:
        return self.stopped

    def set(self) -> None:
        self.stopped = True

    def wait(self, timeout: float | None = None) -> bool:
        self.now += timeout or 0.0
        return self.stopped


OUTAGE = 9.0  # seconds the dependency is away (a RabbitMQ restart here takes 7-10 s)


def _back_after_outage(clock: _Clock) -> Callable[..., object]:
    """A step that fails while the dependency is away; its first success stops the loop."""

    def step(*_args: object) -> bool:
        if clock.now < OUTAGE:
            raise ConnectionError("the dependency is away")
        clock.set()
        return False

    return step


def test_the_outbox_relay_publishes_again_within_seconds_of_the_brokers_return() -> None:
    from offerseal.shared.broker import OutboxRelay

    clock = _Clock()
    relay = OutboxRelay(None, "memory://", interval=0.2)  # type: ignore[arg-type]
    relay._step = _back_after_outage(clock)  # type: ignore[method-assign]
    relay.run(clock)  # type: ignore[arg-type]
    # Backing off to 10 s, the relay tried at 7.5 s and next at 15.5 s: 6.5 s late.
    assert clock.now - OUTAGE <= 2.0


def test_a_consumer_reconnects_within_seconds_of_the_brokers_return() -> None:
    from offerseal.shared.broker import MessageConsumer

    clock = _Clock()
    consumer = MessageConsumer("notify", None, "memory://", {})  # type: ignore[arg-type]
    consumer._consume = _back_after_outage(clock)  # type: ignore[method-assign]
    consumer.run(clock)  # type: ignore[arg-type]
    assert clock.now - OUTAGE <= 2.0

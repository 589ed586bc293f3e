"""Background work of a service node: the one retry loop every worker runs (`run_every`: a step,
then a wait; failures back off, doubling up to a cap) and the threads that run the workers,
started and stopped together.

A loop that polls for work (the outbox, the anchoring queue, transactions in flight, due
touchpoints) need not poll at its full rate while there is none: its step answers `IDLE`, and
the loop waits longer after each idle look (doubling up to `idle_cap`), until this process
writes something to the database (`ACTIVITY`, rung by `shared/db.py` after every commit that
wrote) or the step finds work again. Work written in this process is then seen within the
loop's interval as before; work only another process wrote, within `idle_cap`."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Final

# The longest wait between tries while a dependency (database, broker, chain) is away: a worker
# notices its return within this, so each path is back within seconds of the end of an outage
# (make chaos). A try costs one failed connection, cheap enough to repeat every 2 s.
RECONNECT_CAP = 2.0


# The longest wait of an idle loop (its step answered IDLE) with no activity in this process.
IDLE_CAP = 1.0


class _Idle:
    """What a step returns when it found nothing to do: false, like None (so callers that test
    the result as a boolean are unchanged), and a sign for `run_every` to slow down."""

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "IDLE"


IDLE: Final = _Idle()


class Activity:
    """A doorbell for this process's idle loops: `ring()` after a commit that wrote; a loop
    waits with `wait(seen, timeout)` for a ring after the `generation` it saw (or the timeout)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self.generation = 0

    def ring(self) -> None:
        with self._changed:
            self.generation += 1
            self._changed.notify_all()

    def wait(self, seen: int, timeout: float) -> bool:
        """True when rung after `seen` (at once if it already was), False after `timeout`."""
        with self._changed:
            return self._changed.wait_for(lambda: self.generation != seen, timeout)


ACTIVITY = Activity()


class Backoff:
    """Waits after failures: `first`, then twice the last one up to `cap`; `reset()` after
    progress starts again from `first`."""

    def __init__(self, first: float = 0.5, cap: float = 10.0) -> None:
        self.first = first
        self.cap = cap
        self._next = first

    def next(self) -> float:
        """The wait after this failure (the one after the next failure doubles)."""
        delay = self._next
        self._next = min(delay * 2, self.cap)
        return delay

    def reset(self) -> None:
        self._next = self.first


def reconnect_backoff(first: float = 0.5) -> Backoff:
    """The backoff of a worker loop whose failures are a dependency away: from `first` (at
    most RECONNECT_CAP), doubling up to RECONNECT_CAP."""
    return Backoff(min(first, RECONNECT_CAP), RECONNECT_CAP)


def run_every(
    stop: threading.Event,
    interval: float,
    step: Callable[[], object],
    *,
    name: str,
    log: logging.Logger,
    backoff: Backoff | None = None,
    retry: tuple[type[BaseException], ...] = (Exception,),
    expected: tuple[type[BaseException], ...] = (Exception,),
    on_error: Callable[[BaseException], None] | None = None,
    reset_after_step: bool = True,
    idle_cap: float = IDLE_CAP,
) -> None:
    """Run `step` until `stop` is set; returns as soon as it is (waits end early).

    A step that returns something true has more work waiting and runs again at once; otherwise
    the loop waits `interval`. A step that returns `IDLE` found nothing to do: the loop waits
    twice as long after each such step (up to `idle_cap`, never less than `interval`) or until
    `ACTIVITY` rings, and then waits `interval` again before the next step (so the commit that
    rang is visible to it). A step that raises one of `retry` is retried after the backoff:
    `on_error(exc)` runs first, then the failure is logged (a one-line warning for `expected`
    failures, with the traceback for others). A step that returns resets the backoff, unless
    `reset_after_step` is off: then the step calls `backoff.reset()` itself when it makes
    progress. Anything not in `retry` ends the loop by propagating."""
    backoff = backoff if backoff is not None else Backoff()
    idle_wait = interval
    while not stop.is_set():
        seen = ACTIVITY.generation
        try:
            busy = step()
        except retry as exc:
            if on_error is not None:
                on_error(exc)
            delay = backoff.next()
            if isinstance(exc, expected):
                log.warning(
                    "%s paused (%s: %s); retry in %.1fs", name, type(exc).__name__, exc, delay
                )
            else:
                log.exception("%s failed; retry in %.1fs", name, delay)
            stop.wait(delay)
            continue
        if reset_after_step:
            backoff.reset()
        if busy is IDLE and idle_cap > interval:
            if ACTIVITY.wait(seen, idle_wait - interval) or stop.is_set():
                idle_wait = interval
            else:
                idle_wait = min(max(idle_wait, interval) * 2, idle_cap)
            stop.wait(interval)
        elif not busy:
            idle_wait = interval
            stop.wait(interval)
        else:
            idle_wait = interval


class Workers:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self, **targets: Callable[[threading.Event], None]) -> None:
        """Each target runs in its own daemon thread until `stop_event` is set."""
        for name, target in targets.items():
            thread = threading.Thread(
                target=target, args=(self.stop_event,), name=f"{self.prefix}-{name}", daemon=True
            )
            thread.start()
            self.threads.append(thread)

    def alive(self) -> dict[str, bool]:
        """Each worker thread's name and whether it still runs (a thread that ended while the
        service runs is a worker that died)."""
        return {thread.name: thread.is_alive() for thread in self.threads}

    def stop(self, timeout: float = 15.0) -> None:
        self.stop_event.set()
        ACTIVITY.ring()  # idle loops wake and see the stop
        for thread in self.threads:
            thread.join(timeout)

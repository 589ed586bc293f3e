"""Background work of a service node: the one retry loop every worker runs (`run_every`: a step,
then a wait; failures back off, doubling up to a cap) and the threads that run the workers,
started and stopped together."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

# The longest wait between tries while a dependency (database, broker, chain) is away: a worker
# notices its return within this, so each path is back within seconds of the end of an outage
# (make chaos). A try costs one failed connection, cheap enough to repeat every 2 s.
RECONNECT_CAP = 2.0


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
) -> None:
    """Run `step` until `stop` is set; returns as soon as it is (waits end early).

    A step that returns something true has more work waiting and runs again at once; otherwise
    the loop waits `interval`. A step that raises one of `retry` is retried after the backoff:
    `on_error(exc)` runs first, then the failure is logged (a one-line warning for `expected`
    failures, with the traceback for others). A step that returns resets the backoff, unless
    `reset_after_step` is off: then the step calls `backoff.reset()` itself when it makes
    progress. Anything not in `retry` ends the loop by propagating."""
    backoff = backoff if backoff is not None else Backoff()
    while not stop.is_set():
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
        if not busy:
            stop.wait(interval)


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
        for thread in self.threads:
            thread.join(timeout)

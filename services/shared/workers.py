"""Background threads of a service node, started and stopped together."""

from __future__ import annotations

import threading
from collections.abc import Callable


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

    def stop(self, timeout: float = 15.0) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout)

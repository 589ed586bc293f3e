"""Named crash points for recovery tests: the process kills itself (SIGKILL) at the point named
by OFFERSEAL_FAILPOINT, so tests can prove that nothing accepted is lost with real processes.
`name#N` kills at the Nth time the point is reached (e.g. with earlier batches in flight)."""

from __future__ import annotations

import logging
import os
import signal

log = logging.getLogger(__name__)
_armed: str = ""
_left = 0  # times the armed point is still passed before it kills


def arm(name: str) -> None:
    global _armed, _left
    name, _, nth = name.partition("#")
    _armed, _left = name, max(1, int(nth or 1)) - 1
    if name:
        log.warning("failpoint armed: %s (this process will SIGKILL itself there)", name)


def hit(name: str) -> None:
    global _left
    if _armed and _armed == name:
        if _left > 0:
            _left -= 1
            return
        log.warning("failpoint %s reached: SIGKILL", name)
        os.kill(os.getpid(), signal.SIGKILL)

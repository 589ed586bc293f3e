"""Named crash points for recovery tests: the process kills itself (SIGKILL) at the point named
by OFFERSEAL_FAILPOINT, so tests can prove that nothing accepted is lost with real processes."""

from __future__ import annotations

import logging
import os
import signal

log = logging.getLogger(__name__)
_armed: str = ""


def arm(name: str) -> None:
    global _armed
    _armed = name
    if name:
        log.warning("failpoint armed: %s (this process will SIGKILL itself there)", name)


def hit(name: str) -> None:
    if _armed and _armed == name:
        log.warning("failpoint %s reached: SIGKILL", name)
        os.kill(os.getpid(), signal.SIGKILL)

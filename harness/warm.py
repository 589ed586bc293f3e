"""Imported once by the fork server of warm starts (`harness.procs.use_warm_starts`): every
module `offerseal serve` needs, as the pre-fork arbiter preloads them (`stack.preload`), and the
command line itself. Importing them makes nothing (no connection, thread or socket)."""

from __future__ import annotations

import offerseal.cli  # noqa: F401  (the entry point the forked process runs)
from offerseal.stack import SERVICES, preload

preload(SERVICES)

"""HR's console on the people's origin (`/console`): sign-in, the nine-checkpoint board, one
timeline per candidate with its actions, and the weekly report."""

from __future__ import annotations

from flask import Blueprint


def blueprint() -> Blueprint:
    """The console's blueprint with every view registered on it."""
    from . import alerts, amend, offer, people, signin, views  # noqa: F401  (register views)
    from .common import blp

    return blp

"""Moved to `offerseal_verify.timestamps` (the verifier's package: one copy of the source);
this name stays for code that still imports it from here. New code imports offerseal_verify."""

from offerseal_verify.timestamps import *  # noqa: F403

"""Moved to `offerseal_verify.merkle` (the verifier's package: one copy of the source);
this name stays for code that still imports it from here. New code imports offerseal_verify."""

from offerseal_verify.merkle import *  # noqa: F403

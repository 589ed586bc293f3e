"""Moved to `offerseal_verify.hexbytes` (the verifier's package: one copy of the source);
this name stays for code that still imports it from here. New code imports offerseal_verify."""

from offerseal_verify.hexbytes import *  # noqa: F403

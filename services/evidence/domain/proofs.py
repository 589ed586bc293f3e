"""Moved to `offerseal_verify.proofs` (the verifier's package: one copy of the source);
this name stays for code that still imports it from here. New code imports offerseal_verify."""

from offerseal_verify.proofs import *  # noqa: F403

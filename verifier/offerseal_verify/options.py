"""The command-line options `offerseal-verify` and `offerseal verify` share, in a module that
imports nothing heavy: `offerseal` builds its parser at every start, `offerseal serve` included."""

from __future__ import annotations

import argparse

# Every byte a dossier's verification decompresses, whatever its manifest declares (the verify
# page has the same bound): a real dossier is a few megabytes, its uploads at most 25 MB each.
MAX_TOTAL_BYTES = 1024 * 1024 * 1024


def add_budget_option(parser: argparse.ArgumentParser) -> None:
    """The dossier commands' bound on the bytes a verification decompresses."""
    parser.add_argument(
        "--max-bytes",
        type=int,
        metavar="N",
        help=f"decompress at most N bytes of the dossier in all (default {MAX_TOTAL_BYTES}, "
        "1 GiB); a larger ZIP is refused unread",
    )


def add_trust_options(parser: argparse.ArgumentParser, rpc_help: str) -> None:
    """The options both commands (and `offerseal verify`) take."""
    parser.add_argument("--rpc", help=rpc_help)
    parser.add_argument("--key", help="pin the receipt signer's Ed25519 public key (hex or base64)")
    parser.add_argument(
        "--keys",
        help="a saved GET /v1/keys answer: trust each key for the period it signed in",
    )
    parser.add_argument(
        "--tsa-ca",
        action="append",
        metavar="PEM",
        help="trusted TSA root certificate(s) for the RFC 3161 stamps (repeatable); without "
        "it the root the bundle names is used, and the check says so",
    )
    parser.add_argument(
        "--offline", action="store_true", help="skip the chain checks (not a full verification)"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable result")

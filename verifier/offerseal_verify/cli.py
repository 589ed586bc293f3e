"""`offerseal-verify`: check a document against its proof bundle, or a whole agreement dossier,
with nothing but the files, a JSON-RPC endpoint and the keys and roots one chooses to trust."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__, trust
from .dossier import MAX_TOTAL_BYTES, pyhanko_cover_check, verify_dossier
from .options import add_budget_option, add_trust_options
from .proofs import ChainView, Check, Verdict, sha256_hex, verify_bundle
from .receipts import TrustedKey
from .report import hide_secrets, print_verdict, witness_summary
from .rpc import JsonRpcChainView
from .sm3 import sm3_hex

if TYPE_CHECKING:
    from cryptography.x509 import Certificate

    Trust = tuple[Mapping[str, bytes | TrustedKey] | None, list[Certificate] | None]

DEFAULT_RPC = "http://127.0.0.1:8545"


def connect(
    rpc: str | None, offline: bool, redact: Callable[[str], str] = hide_secrets
) -> tuple[ChainView | None, list[Check]]:
    """The chain view to ask (None offline) and, when the endpoint does not answer, the failing
    check that says so (the chain checks then cannot pass)."""
    if offline:
        return None, []
    url = rpc or DEFAULT_RPC
    try:
        view = JsonRpcChainView(url)
        view.chain_id()
    except (ValueError, ConnectionError, OSError) as exc:
        return None, [Check("chain", False, f"cannot reach {redact(url)}: {exc}")]
    return view, []


def _trust(args: argparse.Namespace) -> Trust | None:
    try:
        return trust.trusted_keys(args.key, args.keys), trust.tsa_roots(args.tsa_ca)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return None


def cmd_proof(args: argparse.Namespace) -> int:
    try:
        bundle = json.loads(Path(args.proof).read_text())
    except (OSError, ValueError) as exc:
        print(f"cannot read proof {args.proof}: {exc}", file=sys.stderr)
        return 2
    try:
        document = Path(args.document).read_bytes()
    except OSError as exc:
        print(f"cannot read document {args.document}: {exc}", file=sys.stderr)
        return 2
    trusted = _trust(args)
    if trusted is None:
        return 2
    keys, roots = trusted
    chain, extra = connect(args.rpc, args.offline)
    verdict = verify_bundle(
        bundle,
        document_sha256=sha256_hex(document),
        trusted_keys=keys,
        chain=chain,
        tsa_roots=roots,
        document_sm3=sm3_hex(document),
    )
    verdict = Verdict((*verdict.checks, *extra))
    return print_verdict(
        verdict,
        offline=args.offline,
        as_json=args.json,
        witnesses=witness_summary(bundle, verdict, hide_secrets),
    )


def cmd_dossier(args: argparse.Namespace) -> int:
    if not Path(args.dossier).is_file():
        print(f"cannot read dossier {args.dossier}: no such file", file=sys.stderr)
        return 2
    trusted = _trust(args)
    if trusted is None:
        return 2
    keys, roots = trusted
    chain, extra = connect(args.rpc, args.offline)
    verdict = verify_dossier(
        args.dossier,
        trusted_keys=keys,
        chain=chain,
        tsa_roots=roots,
        cover_check=pyhanko_cover_check,
        max_bytes=getattr(args, "max_bytes", None) or MAX_TOTAL_BYTES,
    )
    verdict = Verdict((*verdict.checks, *extra))
    return print_verdict(verdict, offline=args.offline, as_json=args.json)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="offerseal-verify",
        description="Verify OfferSeal proofs and agreement dossiers without the OfferSeal "
        "services: the files, an Ethereum JSON-RPC endpoint and the keys you trust suffice.",
    )
    top.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = top.add_subparsers(dest="command", required=True)
    rpc_help = f"Ethereum JSON-RPC endpoint (default {DEFAULT_RPC})"
    proof = sub.add_parser("proof", help="verify a document against its proof bundle")
    proof.add_argument("document", help="the document file")
    proof.add_argument("proof", help="the proof bundle (JSON)")
    add_trust_options(proof, rpc_help)
    proof.set_defaults(func=cmd_proof)
    dossier = sub.add_parser("dossier", help="verify an agreement dossier (ZIP)")
    dossier.add_argument("dossier", help="the dossier (.zip)")
    add_trust_options(dossier, rpc_help)
    add_budget_option(dossier)
    dossier.set_defaults(func=cmd_dossier)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    status: int = args.func(args)
    return status


if __name__ == "__main__":
    sys.exit(main())

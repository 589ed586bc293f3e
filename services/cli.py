"""The `offerseal` command: parses arguments and hands each subcommand to the stack, the key
store, the verifier or the demo. Run the stack or one service, manage API keys, verify proofs."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import zipfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from .cli_documents import cmd_certificate, cmd_dossier
from .shared.config import ConfigError, Settings, load_settings
from .shared.errors import OfferSealError
from .shared.redact import redact_text, redact_url
from .stack import SERVICES, Stack, open_database, serve_prefork

log = logging.getLogger("offerseal")


def _setup_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("urllib3", "web3", "waitress.queue", "amqp", "kombu", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from .shared.redact import RedactingFilter

    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactingFilter())


BOOTSTRAP_LABEL = "bootstrap (offerseal up)"


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    from .shared.auth import create_key, list_keys
    from .shared.server import wait_for_signal

    if not (settings.smtp_url or settings.webhook_url or settings.notify_outbox_dir):
        # Embedded defaults: candidates' messages land as .eml files to look at.
        settings = replace(settings, notify_outbox_dir=settings.data_dir / "mail")
    stack = Stack(settings).start()
    # One bootstrap key per tenant, minted at the first start and shown that once: minting one
    # at every start would leave a trail of never-expiring admin keys in the database.
    existing = [
        k
        for k in list_keys(stack.db, args.tenant)
        if k["label"] == BOOTSTRAP_LABEL and k["role"] == "admin" and k["active"]
    ]
    token = None if existing else create_key(stack.db, "admin", args.tenant, BOOTSTRAP_LABEL)[1]
    # The URLs' passwords never reach the terminal (or the log that keeps it).
    print(
        f"OfferSeal is up ({'embedded Anvil' if stack.anvil else 'external chain'}, "
        f"broker {redact_url(settings.broker_url)}, "
        f"database {redact_url(settings.effective_database_url)})"
    )
    for name in SERVICES:
        if name == "web":
            print(
                f"  {name:<10}{stack.urls[name]}   (HR console: {stack.urls[name]}/console; "
                f"verify a proof: {stack.urls[name]}/verify)"
            )
        else:
            print(f"  {name:<10}{stack.urls[name]}   (docs: {stack.urls[name]}/docs)")
    print(f"  chain     {redact_url(stack.urls['rpc'])}")
    if "tsa" in stack.urls:
        print(
            f"  tsa       {stack.urls['tsa']}   (development RFC 3161 TSA; set OFFERSEAL_TSA_URLS)"
        )
    elif stack.settings.tsa_urls:
        print(f"  tsa       {', '.join(redact_url(u) for u in stack.settings.tsa_urls)}")
    if settings.notify_outbox_dir is not None and not settings.smtp_url:
        print(f"  mail      {settings.notify_outbox_dir} (.eml files; set OFFERSEAL_SMTP_URL)")
    print(
        "  first person for the console: offerseal users add you@example.com --role admin "
        f"--tenant {args.tenant}  (prints a one-time link to choose a password)"
    )
    if token is None:
        key = existing[0]
        print(
            f"Ctrl-C stops everything. The bootstrap admin key of tenant {args.tenant!r} exists "
            f"(key id {key['key_id']}, made {key['created_at']}) and was shown at the first start "
            f"only. Another: offerseal keys create --role admin --tenant {args.tenant}; "
            f"retire this one: offerseal keys revoke {key['key_id']}",
            flush=True,
        )
    else:
        print(
            f"Ctrl-C stops everything. Bootstrap admin key for tenant {args.tenant!r} (shown "
            "this once; later starts do not make another):"
        )
        print(token, flush=True)
    wait_for_signal(stack.stop)
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from .shared.server import wait_for_signal

    if not settings.rpc_url:
        raise ConfigError(
            "`offerseal serve` needs OFFERSEAL_RPC_URL (and OFFERSEAL_SIGNER_KEY); "
            "`offerseal up` starts a local Anvil instead"
        )
    workers = args.workers if args.workers is not None else settings.workers
    if workers < 1:
        raise ConfigError("--workers must be at least 1")
    if workers > 1:
        for name in args.service:
            if not getattr(settings, f"{name}_port"):
                raise ConfigError(f"--workers needs a fixed port for {name} (not 0)")
        print(
            f"{', '.join(args.service)}: {workers} worker processes (one runs the background)",
            flush=True,
        )
        return serve_prefork(settings, args.service, workers)
    stack = Stack(settings, tuple(args.service)).start()
    for name in args.service:
        print(f"{name} listening on {stack.urls[name]}", flush=True)
    wait_for_signal(stack.stop)
    return 0


def cmd_keys_create(args: argparse.Namespace, settings: Settings) -> int:
    from .shared.auth import create_key
    from .shared.config import parse_duration

    expires_in = parse_duration(args.expires) if args.expires else None
    db = open_database(settings)
    key_id, token = create_key(db, args.role, args.tenant, args.label or "", expires_in)
    until = f", valid for {args.expires}" if args.expires else ""
    print(f"created {args.role} key {key_id} for tenant {args.tenant}{until}; it is shown once:")
    print(token)
    return 0


def cmd_keys_list(args: argparse.Namespace, settings: Settings) -> int:
    from .shared.auth import list_keys

    keys = list_keys(open_database(settings), args.tenant)
    if args.json:
        print(json.dumps(keys, indent=2))
        return 0
    print(f"{'key id':<17} {'tenant':<16} {'role':<6} {'state':<8} {'expires':<21} label")
    for k in keys:
        state = "active" if k["active"] else ("revoked" if k["revoked_at"] else "expired")
        expires = str(k["expires_at"] or "never")[:20]
        print(
            f"{k['key_id']:<17} {k['tenant']!s:<16} {k['role']!s:<6} {state:<8} {expires:<21} "
            f"{k['label']}"
        )
    return 0


def cmd_keys_revoke(args: argparse.Namespace, settings: Settings) -> int:
    from .shared.auth import CACHE_SECONDS, revoke_key

    if not revoke_key(open_database(settings), args.key_id):
        print(f"no active key {args.key_id}", file=sys.stderr)
        return 1
    print(f"revoked key {args.key_id}; every service refuses it within {CACHE_SECONDS:.0f} s")
    return 0


def cmd_keys_rotate(args: argparse.Namespace, settings: Settings) -> int:
    from .evidence.app import build_cipher
    from .evidence.rotation import key_versions, rewrap_all

    db = open_database(settings)
    cipher = build_cipher(settings)
    if not args.check:
        report = rewrap_all(
            db,
            cipher,
            args.batch_size,
            lambda done: print(f"re-wrapped {done} data keys", flush=True),
        )
        print(f"re-wrapped {report.rewrapped} data keys under master key {cipher.key_version}")
        for version, count in sorted(report.missing_keys.items()):
            print(
                f"{count} documents are under master key {version}, which is not configured: "
                "add it to OFFERSEAL_MASTER_KEYS_PREVIOUS and run this again",
                file=sys.stderr,
            )
        if report.damaged:
            print(f"{len(report.damaged)} data keys do not unwrap: {', '.join(report.damaged)}")
    versions = key_versions(db)
    for version, count in sorted(versions.items(), key=lambda item: item[0] != cipher.key_version):
        state = (
            "current"
            if version == cipher.key_version
            else ("previous" if version in cipher.versions else "NOT CONFIGURED")
        )
        print(f"  master key {version}: {count} documents ({state})")
    if set(versions) - {cipher.key_version}:
        return 1
    print("every stored document is under the current master key; earlier keys may be removed")
    return 0


def setup_link(settings: Settings, token: str, base_url: str | None = None) -> str:
    """Where a person opens their one-time set-up link: `--base-url`, else the people's origin
    (OFFERSEAL_WEB_PUBLIC_URL, else this host's web port)."""
    base = (
        base_url or settings.web_public_url or f"http://{settings.host}:{settings.web_port or 8100}"
    ).rstrip("/")
    return f"{base}/console/setup/{token}"


def cmd_users_add(args: argparse.Namespace, settings: Settings) -> int:
    from .shared.users import SETUP_TTL, add_user

    db = open_database(settings)
    _, token = add_user(db, args.email, args.role, args.tenant, by="cli")
    days = SETUP_TTL.days
    print(
        f"created {args.role} account {args.email} for tenant {args.tenant}; it chooses its "
        f"password through this one-time link (valid {days} days, shown once):"
    )
    print(setup_link(settings, token, args.base_url))
    return 0


def cmd_users_list(args: argparse.Namespace, settings: Settings) -> int:
    from .shared.users import list_users

    people = list_users(open_database(settings), args.tenant)
    if args.json:
        print(json.dumps(people, indent=2))
        return 0
    print(f"{'e-mail':<32} {'tenant':<16} {'role':<6} {'state':<9} last sign-in")
    for p in people:
        print(
            f"{p['email']!s:<32} {p['tenant']!s:<16} {p['role']!s:<6} {p['state']!s:<9} "
            f"{p['last_login_at'] or 'never'}"
        )
    return 0


def cmd_users_disable(args: argparse.Namespace, settings: Settings) -> int:
    from .shared.users import disable_user

    if not disable_user(open_database(settings), args.email):
        print(f"no active account {args.email}", file=sys.stderr)
        return 1
    print(f"disabled {args.email}; its sessions have ended")
    return 0


def cmd_users_reset(args: argparse.Namespace, settings: Settings) -> int:
    from .shared.users import reissue_setup

    token = reissue_setup(open_database(settings), args.email)
    print(f"new one-time set-up link for {args.email} (the old password works until it is used):")
    print(setup_link(settings, token, args.base_url))
    return 0


def cmd_console_rebuild_board(_args: argparse.Namespace, settings: Settings) -> int:
    import datetime as dt

    from .web.console.board import rebuild_all

    count = rebuild_all(open_database(settings), dt.datetime.now(dt.UTC))
    print(f"rebuilt the board's summaries: {count} agreements between offer and first day")
    return 0


def cmd_config_docs(args: argparse.Namespace, _settings: Settings) -> int:

    from .shared.config_docs import configuration_page

    page, target = configuration_page(), Path(args.path)
    if args.check:
        if target.exists() and target.read_text(encoding="utf-8") == page:
            print(f"{target} is up to date")
            return 0
        print(f"{target} is stale: run `offerseal config docs` (make docs)", file=sys.stderr)
        return 1
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(page, encoding="utf-8")
    print(f"wrote {target}")
    return 0


def cmd_migrate(_args: argparse.Namespace, settings: Settings) -> int:
    open_database(settings)
    print("database schema is up to date")
    return 0


def _rpc_from_settings(args: argparse.Namespace, settings: Settings) -> argparse.Namespace:
    """The verifier's arguments with the chain to ask: --rpc, else OFFERSEAL_RPC_URL."""
    return argparse.Namespace(**{**vars(args), "rpc": args.rpc or settings.rpc_url or None})


def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    """`offerseal-verify proof` (or `dossier` for a .zip), with the chain of the settings."""
    from offerseal_verify import cli as verifier

    if args.proof is None:
        if zipfile.is_zipfile(args.document):
            return cmd_verify_dossier(
                argparse.Namespace(**vars(args), dossier=args.document), settings
            )
        print(
            "verify needs the document and its proof bundle, or an agreement dossier (.zip)",
            file=sys.stderr,
        )
        return 2
    return verifier.cmd_proof(_rpc_from_settings(args, settings))


def cmd_verify_dossier(args: argparse.Namespace, settings: Settings) -> int:
    """An agreement dossier: its ZIP, manifest, every file, the manifest's and each file's proof,
    the cover PDF's signature (pyHanko): `offerseal-verify dossier`."""
    from offerseal_verify import cli as verifier

    return verifier.cmd_dossier(_rpc_from_settings(args, settings))


def _verify_options(parser: argparse.ArgumentParser) -> None:
    from offerseal_verify import options  # not the verifier itself: every start builds this

    options.add_trust_options(
        parser, "Ethereum JSON-RPC URL (default: OFFERSEAL_RPC_URL or http://127.0.0.1:8545)"
    )
    options.add_budget_option(parser)


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from .demo import run_demo

    return run_demo(settings, keep=args.keep)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="offerseal", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="run the whole stack on embedded defaults (Anvil included)")
    up.add_argument("--tenant", default="default", help="tenant of the bootstrap admin key")
    up.set_defaults(func=cmd_up)

    serve = sub.add_parser("serve", help="run one service with its workers (production)")
    serve.add_argument(
        "service",
        nargs="+",
        choices=list(SERVICES),
        help="one service, or several to run them in one process",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes (default OFFERSEAL_WORKERS, 1): more than 1 runs the services "
        "under gunicorn's pre-fork server, one process also running the background workers",
    )
    serve.set_defaults(func=cmd_serve)

    keys = sub.add_parser("keys", help="manage API keys; rotate the master key")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key; the last line printed is the key")
    create.add_argument("--role", required=True, choices=["hr", "legal", "admin"])
    create.add_argument("--tenant", required=True)
    create.add_argument("--label", default="")
    create.add_argument("--expires", help="lifetime, e.g. 90d or 12h (default: never)")
    create.set_defaults(func=cmd_keys_create)
    listing = keys_sub.add_parser("list", help="every key's id, tenant, role and state")
    listing.add_argument("--tenant", help="only this tenant's keys")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(func=cmd_keys_list)
    revoke = keys_sub.add_parser("revoke", help="revoke a key (by the id `keys list` shows)")
    revoke.add_argument("key_id")
    revoke.set_defaults(func=cmd_keys_revoke)

    rotate = keys_sub.add_parser(
        "rotate",
        help="re-wrap every document's data key under OFFERSEAL_MASTER_KEY (batches; safe to "
        "interrupt and run again)",
    )
    rotate.add_argument(
        "--check", action="store_true", help="only count documents per master key version"
    )
    rotate.add_argument(
        "--batch-size", type=int, default=500, help="data keys per transaction (default 500)"
    )
    rotate.set_defaults(func=cmd_keys_rotate)

    people = sub.add_parser("users", help="manage the people who sign in to the console")
    people_sub = people.add_subparsers(dest="users_command", required=True)
    add = people_sub.add_parser(
        "add", help="create an account; prints its one-time set-up link (the last line)"
    )
    add.add_argument("email")
    add.add_argument("--role", required=True, choices=["hr", "legal", "admin"])
    add.add_argument("--tenant", required=True)
    add.add_argument("--base-url", help="the web origin people reach (default: host and port)")
    add.set_defaults(func=cmd_users_add)
    listing_users = people_sub.add_parser("list", help="every account's tenant, role and state")
    listing_users.add_argument("--tenant")
    listing_users.add_argument("--json", action="store_true")
    listing_users.set_defaults(func=cmd_users_list)
    disable = people_sub.add_parser("disable", help="disable an account and end its sessions")
    disable.add_argument("email")
    disable.set_defaults(func=cmd_users_disable)
    reset = people_sub.add_parser("reset", help="a new one-time set-up link (forgotten password)")
    reset.add_argument("email")
    reset.add_argument("--base-url")
    reset.set_defaults(func=cmd_users_reset)

    console = sub.add_parser("console", help="the HR console's stored data")
    console_sub = console.add_subparsers(dest="console_command", required=True)
    rebuild = console_sub.add_parser(
        "rebuild-board", help="derive every board summary again from the facts"
    )
    rebuild.set_defaults(func=cmd_console_rebuild_board)

    config = sub.add_parser("config", help="the settings (OFFERSEAL_* variables)")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    config_docs = config_sub.add_parser(
        "docs", help="write docs/configuration.md from the settings table"
    )
    config_docs.add_argument("path", nargs="?", default="docs/configuration.md")
    config_docs.add_argument(
        "--check", action="store_true", help="only check that the page is up to date (exit 1)"
    )
    config_docs.set_defaults(func=cmd_config_docs)

    migrate = sub.add_parser("migrate", help="bring the database schema up to date")
    migrate.set_defaults(func=cmd_migrate)

    verify = sub.add_parser(
        "verify",
        help="verify a document against its proof bundle (or an agreement dossier .zip); "
        "needs only the file, the proof and an RPC endpoint",
    )
    verify.add_argument("document", help="the document file, or an agreement dossier (.zip)")
    verify.add_argument("proof", nargs="?", help="the proof bundle (JSON); none for a dossier")
    _verify_options(verify)
    verify.set_defaults(func=cmd_verify)

    dossier = sub.add_parser(
        "verify-dossier",
        help="verify an agreement dossier (.zip): every file against the anchored manifest, "
        "the manifest's and each file's proof, the cover PDF",
    )
    dossier.add_argument("dossier", help="the dossier (.zip)")
    _verify_options(dossier)
    dossier.set_defaults(func=cmd_verify_dossier)

    cert = sub.add_parser(
        "certificate",
        help="write the signed evidence certificate (PDF) of an anchored document",
    )
    cert.add_argument("document_id")
    cert.add_argument("--lang", choices=["zh-CN", "en"], default="zh-CN")
    cert.add_argument("--out", help="the PDF file (default: certificate-ID-LANG.pdf)")
    cert.set_defaults(func=cmd_certificate)

    dossier = sub.add_parser(
        "dossier",
        help="make and download an agreement's dossier (ZIP) through the API (POST); key in "
        "OFFERSEAL_API_KEY",
    )
    dossier.add_argument("agreement_id")
    dossier.add_argument("--api", help="the API's base URL (default: the people's origin)")
    dossier.add_argument("--lang", choices=("zh-CN", "en"), default="zh-CN")
    dossier.add_argument("--out", help="file to write (default offerseal-dossier-ID.zip)")
    dossier.add_argument(
        "--timeout", type=float, default=120.0, help="seconds to wait for the anchoring"
    )
    dossier.add_argument(
        "--for",
        dest="for_",
        choices=("notary",),
        help="notary: also write a one-page Chinese cover for a notary office "
        "(DOSSIER.notary-cover.pdf: parties, documents with SM3 and SHA-256, witnesses, "
        "chain of custody)",
    )
    dossier.set_defaults(func=cmd_dossier)

    demo = sub.add_parser("demo", help="run the end-to-end scenario on embedded defaults")
    demo.add_argument("--keep", action="store_true", help="keep the demo's data directory")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    _setup_logging(settings)
    try:
        code: int = args.func(args, settings)
        return code
    except (ConfigError, OfferSealError) as exc:
        print(f"error: {redact_text(str(exc))}", file=sys.stderr)  # e.g. an RPC URL's key
        return 2


if __name__ == "__main__":
    raise SystemExit(main())

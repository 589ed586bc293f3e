"""The `offerseal` commands that hand over documents: a document's signed certificate, issued
from the database as the evidence service would, and an agreement's dossier fetched through the
API (with the notary's cover beside it)."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from .shared.config import Settings
from .shared.redact import redact_text, redact_url
from .stack import open_database


def cmd_certificate(args: argparse.Namespace, settings: Settings) -> int:
    """The signed certificate PDF of an anchored document, issued from the database as the
    service would (the operator's command, beside `keys`: it needs the service's settings)."""
    from sqlalchemy import select

    from .evidence.app import build_issuer, build_service
    from .evidence.models import Document
    from .shared.auth import Principal

    db = open_database(settings)
    with db.sessions() as session:
        tenant = session.execute(
            select(Document.tenant).where(Document.id == args.document_id)
        ).scalar_one_or_none()
    if tenant is None:
        print(f"no document {args.document_id}", file=sys.stderr)
        return 1
    issuer = build_issuer(settings, build_service(settings, db))
    pdf = issuer.issue(Principal("cli", "admin", tenant), args.document_id, args.lang)
    out = Path(args.out or f"certificate-{args.document_id}-{args.lang}.pdf")
    out.write_bytes(pdf)
    print(f"wrote the {args.lang} evidence certificate of {args.document_id} to {out}")
    return 0


def cmd_dossier(args: argparse.Namespace, settings: Settings) -> int:
    """Make and download an agreement's dossier through the API (a legal or admin key in
    OFFERSEAL_API_KEY), waiting while its manifest is anchored."""
    import time

    import requests

    if not settings.api_key:
        print("set OFFERSEAL_API_KEY to a legal or admin API key", file=sys.stderr)
        return 2
    base = (args.api or settings.web_public_url or f"http://localhost:{settings.web_port}").rstrip(
        "/"
    )
    url = f"{base}/v1/agreements/{args.agreement_id}/dossier"
    headers = {"Authorization": f"Bearer {settings.api_key}"}
    deadline = time.monotonic() + args.timeout
    while True:
        try:
            # POST makes the dossier (or finds the one made for the same facts); a GET would
            # only fetch one made before.
            answer = requests.post(url, headers=headers, params={"lang": args.lang}, timeout=120)
        except requests.RequestException as exc:
            print(f"cannot reach {redact_url(base)}: {redact_text(str(exc))}", file=sys.stderr)
            return 1
        if answer.status_code != 202 or time.monotonic() > deadline:
            break
        time.sleep(float(answer.headers.get("Retry-After", "2")))
    if answer.status_code != 200:
        detail = answer.text[:500]
        with contextlib.suppress(ValueError):
            detail = answer.json().get("detail", detail)
        print(f"the API answered {answer.status_code}: {detail}", file=sys.stderr)
        return 1
    out = Path(args.out or f"offerseal-dossier-{args.agreement_id}.zip")
    out.write_bytes(answer.content)
    print(
        f"wrote the dossier of {args.agreement_id} to {out} "
        f"(manifest sha256 {answer.headers.get('X-Manifest-SHA256', '?')})"
    )
    if args.for_ == "notary":
        cover = write_notary_cover(answer.content, out, f"{base}/verify")
        print(f"wrote the notary's cover (zh-CN) to {cover}")
    return 0


def write_notary_cover(dossier: bytes, out: Path, verify_url: str) -> Path:
    """The one-page Chinese cover a notary office reads for a 离职进程公证, made from the
    dossier itself, beside it (DOSSIER.notary-cover.pdf); not inside the ZIP, which stays as
    anchored."""
    import datetime as dt

    from . import __version__
    from .contracts.notary import notary_facts, render_notary_cover

    pdf = render_notary_cover(
        notary_facts(dossier),
        verify_url=verify_url,
        software=f"OfferSeal {__version__}",
        issued_at=dt.datetime.now(dt.UTC),
    )
    path = out.with_name(out.stem + ".notary-cover.pdf")
    path.write_bytes(pdf)
    return path

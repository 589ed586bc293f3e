"""`offerseal demo`: the evidence story end to end, on embedded defaults and real parts.

Starts Anvil and the three services; an HR system posts resignation documents over HTTP; the
demo waits for the anchor, fetches the proof, verifies it with the CLI (and with OpenZeppelin's
npm package when Node is there), shows that a one-byte change fails (`evidence.py`). Then the
agreement story (`agreements.py`). This module starts and stops the stack around both.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path

import requests

from ..shared.config import Settings
from ..shared.net import free_port
from ..stack import Stack
from .agreements import agreement_story
from .common import say
from .console import console_story
from .evidence import (
    await_anchor,
    await_stamp,
    post_documents,
    save_certificates,
    save_dossier,
    show_anchored_at,
    tampered_copy_fails,
    verify_with_cli,
    verify_with_openzeppelin,
)
from .sms import KEY_ID, SECRET, reminders_by_sms_too, show_sms, sms_settings
from .sms_standin import Stub
from .sms_standin import serve as sms_standin


def run_demo(settings: Settings, keep: bool = False) -> int:
    logging.getLogger("offerseal").setLevel(logging.WARNING)  # the story, not the logs
    workdir = Path(tempfile.mkdtemp(prefix="offerseal-demo-"))
    say(
        "starting Anvil and the evidence, contracts and notify services (SQLite, in-process "
        "broker, e-mail written to a folder, SMS to a local stand-in of Aliyun's API)"
    )
    with sms_standin("aliyun", key_id=KEY_ID, secret=SECRET) as sms:
        return _run(
            settings, sms_settings(demo_settings(settings, workdir), sms), workdir, keep, sms
        )


def _run(settings: Settings, configured: Settings, workdir: Path, keep: bool, sms: Stub) -> int:
    from ..shared.auth import create_key

    stack = Stack(configured).start()
    try:
        stack.wait_ready()
        base = stack.urls["evidence"]
        _, hr_key = create_key(stack.db, "hr", "acme", "demo HR system")
        _, legal_key = create_key(stack.db, "legal", "acme", "demo legal team")
        hr = {"Authorization": f"Bearer {hr_key}"}
        legal = {"Authorization": f"Bearer {legal_key}"}
        print(f"evidence service at {base}, chain at {stack.urls['rpc']}")

        ids = post_documents(base, hr, workdir)
        kind = "resignation_acceptance"
        bundle = await_anchor(base, legal, ids[kind])
        if stack.settings.tsa_urls:
            bundle = await_stamp(base, legal, ids[kind])
        proof_path = workdir / "proof.json"
        proof_path.write_text(json.dumps(bundle, indent=2))
        document = workdir / f"{kind}.txt"
        show_anchored_at(stack.urls["rpc"], bundle)
        key_hex = requests.get(f"{base}/v1/keys", timeout=10).json()["keys"][0]["public_key_hex"]
        good = verify_with_cli(
            stack.urls["rpc"], key_hex, document, proof_path, stack.settings.tsa_ca_file
        )
        verify_with_openzeppelin(bundle)
        if "web" in stack.urls:
            print(
                f"  the same checks in a browser: {stack.urls['web']}/verify "
                f"(file {document}, proof {proof_path}, RPC {stack.urls['rpc']})"
            )
        bad, api_answer = tampered_copy_fails(
            base, stack.urls["rpc"], key_hex, document, proof_path, bundle
        )

        certified = save_certificates(
            base, legal, ids[kind], settings.data_dir / "demo-certificates"
        )
        evidence_ok = (
            good.returncode == 0 and bad.returncode == 1 and not api_answer["valid"] and certified
        )
        agreements_ok, breached_id = agreement_story(
            stack, hr, lambda ref: reminders_by_sms_too(stack.urls["notify"], hr, ref)
        )
        dossier_ok = save_dossier(
            stack.urls.get("web", stack.urls["contracts"]),
            legal,
            breached_id,
            settings.data_dir / "demo-dossier",
            stack.urls["rpc"],
        )
        show_mail(stack, settings.data_dir / "demo-mail")
        sms_ok = show_sms(sms, settings.data_dir / "demo-sms")
        console_ok = console_story(stack, hr) if "web" in stack.urls else True
        ok = evidence_ok and agreements_ok and dossier_ok and console_ok and sms_ok
        say("demo " + ("succeeded" if ok else "FAILED"))
        return 0 if ok else 1
    finally:
        say("shutting down")
        stack.stop()
        if keep:
            print(f"data kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def show_mail(stack: Stack, out: Path) -> None:
    """Leave the candidate's e-mails where they can be opened: .eml and a phone-width .png."""
    from .mail_preview import keep_mail

    say("the candidate's e-mails, as .eml files with a picture of each at phone width (390 px)")
    folder = Path(stack.settings.notify_outbox_dir or ".")
    try:
        count, shots, why = keep_mail(folder, out)
    except OSError as exc:  # the story itself succeeded; say what went wrong here
        print(f"  could not keep the e-mails in {out}: {exc}")
        return
    print(f"  {count} e-mails and {shots} screenshots in {out.resolve()}")
    if why:
        print(f"  no screenshots for {count - shots} of them: {why}")


def demo_settings(settings: Settings, workdir: Path) -> Settings:
    """Embedded defaults in a fresh folder: SQLite, in-process broker, free ports, mail to a
    folder, and rhythms fast enough to watch."""
    return settings.with_(
        data_dir=workdir / "data",
        database_url="",
        broker_url="memory://",
        rpc_url="",
        signer_key="",
        registry_address="",
        evidence_port=free_port(),
        contracts_port=free_port(),
        notify_port=free_port(),
        web_port=free_port(),
        anvil_port=free_port(),
        batch_interval=1.0,
        sweep_interval=1.0,
        contracts_signer_key="",
        notify_outbox_dir=workdir / "mail",
        smtp_url="",
        webhook_url="",
        checkin_interval=2.0,
        quiet_hours="00:00-00:00",
    )

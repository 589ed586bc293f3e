"""`offerseal demo`: the evidence story end to end, on embedded defaults and real parts.

Starts Anvil, the evidence service and its workers; an HR system posts resignation documents
over HTTP; the demo waits for the anchor, fetches the proof, verifies it with the CLI (and with
OpenZeppelin's npm package when Node is there), shows that a one-byte change fails, and stops.
Then the agreement story: offer, signature, a reported delay, an amendment, a milestone proved by
an upload, a start, and a breach declared by the sweeper. Each step is one function below.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from .shared.config import Settings
from .shared.net import free_port
from .stack import Stack

ROOT = Path(__file__).resolve().parents[1]

# A key the demo holds for its candidate (Anvil's fourth development account; never use it on a
# real chain). A real candidate signs in MetaMask or any EIP-712 wallet.
DEMO_CANDIDATE_KEY = "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6"
DEMO_OTHER_KEY = "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a"


def say(text: str) -> None:
    print(f"\n== {text}", flush=True)


def wait_for_proof(
    base: str, headers: dict[str, str], doc_id: str, timeout: float = 30.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = requests.get(f"{base}/v1/documents/{doc_id}/proof", headers=headers, timeout=10)
        if response.status_code == 200:
            body: dict[str, Any] = response.json()
            return body
        if response.status_code != 409:
            raise RuntimeError(f"unexpected answer {response.status_code}: {response.text}")
        time.sleep(0.25)
    raise RuntimeError(f"no proof for {doc_id} after {timeout}s")


def wait_for_mail(folder: Path, subject: str, timeout: float = 30.0) -> Any:
    """The newest .eml in `folder` whose subject contains `subject`."""
    import email
    import email.policy

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = []
        for path in sorted(folder.glob("*.eml"), key=lambda p: p.stat().st_mtime):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if subject in str(message["Subject"]):
                found.append(message)
        if found:
            return found[-1]
        time.sleep(0.2)
    raise RuntimeError(f"no mail about {subject!r} in {folder}")


# ---- the evidence story -----------------------------------------------------------------------


def run_demo(settings: Settings, keep: bool = False) -> int:
    from .shared.auth import create_key

    logging.getLogger("offerseal").setLevel(logging.WARNING)  # the story, not the logs
    workdir = Path(tempfile.mkdtemp(prefix="offerseal-demo-"))
    say(
        "starting Anvil and the evidence, contracts and notify services (SQLite, in-process "
        "broker, e-mail written to a folder)"
    )
    stack = Stack(demo_settings(settings, workdir)).start()
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
        proof_path = workdir / "proof.json"
        proof_path.write_text(json.dumps(bundle, indent=2))
        document = workdir / f"{kind}.txt"
        show_anchored_at(stack.urls["rpc"], bundle)
        key_hex = requests.get(f"{base}/v1/keys", timeout=10).json()["keys"][0]["public_key_hex"]
        good = verify_with_cli(stack.urls["rpc"], key_hex, document, proof_path)
        verify_with_openzeppelin(bundle)
        bad, api_answer = tampered_copy_fails(
            base, stack.urls["rpc"], key_hex, document, proof_path, bundle
        )

        evidence_ok = good.returncode == 0 and bad.returncode == 1 and not api_answer["valid"]
        agreements_ok = agreement_story(stack, hr)
        ok = evidence_ok and agreements_ok
        say("demo " + ("succeeded" if ok else "FAILED"))
        return 0 if ok else 1
    finally:
        say("shutting down")
        stack.stop()
        if keep:
            print(f"data kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


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


def post_documents(base: str, hr: dict[str, str], workdir: Path) -> dict[str, str]:
    """Three documents as files and two as hashes only; returns the files' ids by kind."""
    say("the HR system posts three documents for candidate cand-042")
    files = {
        "resignation_application": "Resignation application of cand-042, submitted 2026-11-20.",
        "resignation_acceptance": "Stamped copy: resignation accepted by the current employer.",
        "handover_progress": "Supervisor confirms the handover is half-way (2026-12-01).",
    }
    ids: dict[str, str] = {}
    for kind, text in files.items():
        path = workdir / f"{kind}.txt"
        path.write_text(text + "\n", encoding="utf-8")
        with path.open("rb") as fh:
            response = requests.post(
                f"{base}/v1/documents",
                headers={**hr, "Idempotency-Key": f"demo-{kind}"},
                data={"kind": kind, "candidate_ref": "cand-042"},
                files={"file": (path.name, fh, "text/plain")},
                timeout=10,
            )
        response.raise_for_status()
        body = response.json()
        ids[kind] = body["id"]
        print(
            f"  201 {kind:<26} id={body['id']} sha256={body['sha256'][:18]}... "
            f"receipt #{body['intake_receipt']['payload']['sequence']}"
        )
    response = requests.post(
        f"{base}/v1/documents/hashes",
        headers=hr,
        timeout=10,
        json={
            "items": [
                {
                    "sha256": "0x" + f"{i:064x}",
                    "kind": "salary_statement",
                    "candidate_ref": "cand-042",
                }
                for i in (1, 2)
            ]
        },
    )
    response.raise_for_status()
    print(f"  201 hash-only intake of {response.json()['count']} salary statements")
    return ids


def await_anchor(base: str, legal: dict[str, str], doc_id: str) -> dict[str, Any]:
    """The document's proof bundle, once its batch is anchored."""
    say("waiting for the batch to be anchored (OFFERSEAL_BATCH_INTERVAL = 1s)")
    started = time.monotonic()
    bundle = wait_for_proof(base, legal, doc_id)
    print(
        f"  proof available after {time.monotonic() - started:.1f}s: root "
        f"{bundle['merkle']['root']} in block {bundle['anchor']['block_number']}, "
        f"tx {bundle['anchor']['tx_hash']}"
    )
    return bundle


def show_anchored_at(rpc_url: str, bundle: dict[str, Any]) -> None:
    from .evidence.adapters.registry import RegistryClient
    from .shared import chain

    say("anchoredAt(root) straight from the chain")
    registry = RegistryClient(chain.connect(rpc_url), bundle["anchor"]["registry"])
    print(f"  anchoredAt = {registry.anchored_at(bytes.fromhex(bundle['merkle']['root'][2:]))}")


def run_verify(rpc_url: str, key_hex: str, document: Path, proof: Path) -> Any:
    """`offerseal verify` in a process of its own: file + proof + RPC, no service involved."""
    cli = [sys.executable, "-m", "offerseal.cli", "verify"]
    return subprocess.run(
        [*cli, str(document), str(proof), "--rpc", rpc_url, "--key", key_hex],
        capture_output=True,
        text=True,
    )


def verify_with_cli(rpc_url: str, key_hex: str, document: Path, proof: Path) -> Any:
    say("the legal team verifies with the CLI (file + proof + RPC; no service involved)")
    good = run_verify(rpc_url, key_hex, document, proof)
    print(good.stdout.rstrip())
    return good


def verify_with_openzeppelin(bundle: dict[str, Any]) -> None:
    say("@openzeppelin/merkle-tree's StandardMerkleTree.verify on the same bundle")
    if shutil.which("node") and (ROOT / "node_modules" / "@openzeppelin").exists():
        oz = subprocess.run(
            ["node", str(ROOT / "scripts" / "oz-merkle-verify.mjs")],
            input=json.dumps(bundle),
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        print(f"  {oz.stdout.strip()}")
    else:
        print("  (skipped: Node.js or node_modules not found)")


def tampered_copy_fails(
    base: str, rpc_url: str, key_hex: str, document: Path, proof: Path, bundle: dict[str, Any]
) -> tuple[Any, dict[str, Any]]:
    """A copy with one byte changed, checked by the CLI and by POST /v1/verify."""
    say("a copy with one byte changed must fail")
    tampered = document.parent / "tampered.txt"
    data = bytearray(document.read_bytes())
    data[0] ^= 0x01
    tampered.write_bytes(bytes(data))
    bad = run_verify(rpc_url, key_hex, tampered, proof)
    print(bad.stdout.rstrip())
    with tampered.open("rb") as fh:
        api_answer: dict[str, Any] = requests.post(
            f"{base}/v1/verify",
            files={"file": fh},
            data={"proof": json.dumps(bundle)},
            timeout=10,
        ).json()
    print(
        f"  POST /v1/verify with the tampered copy: valid={api_answer['valid']}, "
        f"failed={api_answer['failed']}"
    )
    return bad, api_answer


# ---- the agreement story ----------------------------------------------------------------------


@dataclass(frozen=True)
class Story:
    """What every step of the agreement story talks to."""

    base: str  # the contracts service
    rpc_url: str
    hr: dict[str, str]
    mail: Path  # where notify writes candidates' e-mail
    now: dt.datetime

    def agreement(self, agreement_id: str) -> dict[str, Any]:
        body: dict[str, Any] = requests.get(
            f"{self.base}/v1/agreements/{agreement_id}", headers=self.hr, timeout=30
        ).json()
        return body

    def risk(self, agreement_id: str) -> dict[str, Any]:
        body: dict[str, Any] = requests.get(
            f"{self.base}/v1/agreements/{agreement_id}/risk", headers=self.hr, timeout=30
        ).json()
        return body


def agreement_story(stack: Stack, hr: dict[str, str]) -> bool:
    """HR offers an intent agreement; the candidate reads and signs it; anchored evidence
    confirms a milestone on chain; the chain clock passes start + grace: the breach is declared
    with the damages capped at 30% of a month's salary."""
    story = Story(
        base=stack.urls["contracts"],
        rpc_url=stack.urls["rpc"],
        hr=hr,
        mail=Path(stack.settings.notify_outbox_dir or "."),
        now=dt.datetime.now(dt.UTC),
    )
    offer = offer_terms(story)
    agreement = offer_agreement(story, offer)
    show_invitation(story)
    candidate_signs(story, agreement)
    new_start = (story.now + dt.timedelta(days=37)).date().isoformat()
    risk = candidate_reports_delay(story, agreement, new_start)
    amended, settled = amend_start_date(story, agreement, new_start)
    milestone = upload_confirms_milestone(story, agreement)
    started = candidate_starts(story, agreement)
    breached = other_candidate_breaches(story, offer)
    return bool(
        breached["state"] == "breached"
        and milestone["confirmed_at"]
        and started["state"] == "fulfilled"
        and risk.get("level") == "red"
        and amended["state"] == "applied"
        and settled["level"] == "yellow"
    )


def offer_terms(story: Story) -> dict[str, Any]:
    """Damages at exactly the cap (30% of one month's salary), one milestone due tomorrow."""
    from eth_account import Account

    now = story.now
    return {
        "candidate_ref": "cand-042",
        "candidate_address": Account.from_key(DEMO_CANDIDATE_KEY).address,
        "candidate_contact": {"email": "cand042@example.com", "timezone": "Asia/Shanghai"},
        "employer_name": "Acme Robotics",
        "position": "Senior Firmware Engineer",
        "currency": "CNY",
        "monthly_salary": 3_000_000,
        "liquidated_damages": 900_000,
        "start_date": (now + dt.timedelta(days=30)).date().isoformat(),
        "grace_days": 3,
        "offer_expires_at": (now + dt.timedelta(days=5)).isoformat(),
        "language": "en",
        "milestones": [
            {
                "kind": "resignation_submitted",
                "due": (now + dt.timedelta(days=1)).date().isoformat(),
            }
        ],
        "replacement_days": 20,
    }


def offer_agreement(story: Story, offer: dict[str, Any]) -> dict[str, Any]:
    """One cent above the cap is refused; the offer at the cap goes on chain."""
    say("HR offers an intent agreement (damages 30% of one month's salary, the legal maximum)")
    base, hr = story.base, story.hr
    refused = requests.post(
        f"{base}/v1/agreements",
        headers=hr,
        timeout=60,
        json={**offer, "liquidated_damages": 900_001},
    )
    problem = refused.json()["errors"][0]
    print(
        f"  one cent above the cap: {refused.status_code} {problem['field']}: {problem['message']}"
    )
    response = requests.post(f"{base}/v1/agreements", headers=hr, timeout=60, json=offer)
    response.raise_for_status()
    agreement: dict[str, Any] = response.json()
    print(
        f"  201 agreement {agreement['id']} offered on chain (tx {agreement['transaction']}),"
        f" risk {agreement['risk']['level']}: {', '.join(agreement['risk']['reasons'])}"
    )
    return agreement


def show_invitation(story: Story) -> None:
    say("notify e-mails the signing invitation (written to the demo's mail folder)")
    invitation = wait_for_mail(story.mail, "sign")
    print(f"  {invitation['Subject']!r} to {invitation['To']}, {invitation['Message-ID']}")


def sign_through_link(base: str, agreement: dict[str, Any], key: str) -> requests.Response:
    """The candidate's wallet signs the typed data behind the signing link; OfferSeal relays."""
    from .shared import chain

    link = agreement["signing_link"]
    token = urllib.parse.parse_qs(urllib.parse.urlparse(link).query)["token"][0]
    typed = requests.get(link, timeout=30).json()
    return requests.post(
        f"{base}/v1/agreements/{agreement['id']}/signature",
        params={"token": token},
        json={"signature": "0x" + chain.sign_typed_data(key, typed).hex()},
        timeout=60,
    )


def candidate_signs(story: Story, agreement: dict[str, Any]) -> None:
    say("the candidate opens the signing link, reads the terms and signs the typed data")
    link = agreement["signing_link"]
    token = urllib.parse.parse_qs(urllib.parse.urlparse(link).query)["token"][0]
    terms = requests.get(
        f"{story.base}/v1/agreements/{agreement['id']}/terms", params={"token": token}, timeout=30
    )
    summary = next(line for line in terms.text.splitlines() if line.startswith("3. In plain"))
    print(f"  {summary}")
    print(f"  sha256 of the text = {terms.headers['X-Terms-SHA256']} (the hash on chain)")
    signed = sign_through_link(story.base, agreement, DEMO_CANDIDATE_KEY)
    signed.raise_for_status()
    print(f"  signature relayed (the candidate needs no ether): state {signed.json()['state']}")


def candidate_reports_delay(
    story: Story, agreement: dict[str, Any], new_start: str
) -> dict[str, Any]:
    """The check-in's "delayed" answer with a new date turns the risk red. Returns the risk."""
    say(
        "a check-in arrives (every 2 s in the demo, 48 h by default); the candidate reports a delay"
    )
    checkin = wait_for_mail(story.mail, "resignation going")
    body = checkin.get_body(preferencelist=("plain",)).get_content()
    delayed = next(w for w in body.split() if w.endswith("answer=delayed"))
    answered = requests.post(
        delayed.split("?")[0], timeout=30, json={"answer": "delayed", "new_date": new_start}
    )
    answered.raise_for_status()
    deadline = time.monotonic() + 20
    risk: dict[str, Any] = {}
    while time.monotonic() < deadline:
        risk = story.risk(agreement["id"])
        if risk["level"] == "red":
            break
        time.sleep(0.25)
    print(
        f"  answer recorded; risk is now {risk['level']}: {'; '.join(risk['reasons'])} "
        f"-> {risk['response']} (stability {risk['stability_score']})"
    )
    return risk


def amend_start_date(
    story: Story, agreement: dict[str, Any], new_start: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """HR proposes the later start, the candidate signs it from the e-mail. Returns the applied
    amendment and the risk after it."""
    from .shared import chain

    say(
        "HR agrees a start one week later; the candidate signs the amendment from the e-mail "
        "and the chain holds the new date"
    )
    proposed = requests.post(
        f"{story.base}/v1/agreements/{agreement['id']}/amendments",
        headers=story.hr,
        timeout=60,
        json={"start_date": new_start, "reason": "the resignation takes a week longer"},
    )
    proposed.raise_for_status()
    print(f"  amendment {proposed.json()['number']}: {proposed.json()['state']}")
    amendment_mail = wait_for_mail(story.mail, "New dates")
    amendment_text = amendment_mail.get_body(preferencelist=("plain",)).get_content()
    amendment_link = next(w for w in amendment_text.split() if "/amendments/" in w)
    typed = requests.get(amendment_link, timeout=30).json()
    applied = requests.post(
        amendment_link.replace("/typed-data", "/signature"),
        timeout=60,
        json={"signature": "0x" + chain.sign_typed_data(DEMO_CANDIDATE_KEY, typed).hex()},
    )
    applied.raise_for_status()
    amended: dict[str, Any] = applied.json()
    print(
        f"  {amendment_mail['Subject']!r} -> signed: {amended['state']} (tx {amended['tx_hash']}),"
        f" start {amended['start_at']}"
    )
    settled = story.risk(agreement["id"])
    print(f"  risk is now {settled['level']}: {'; '.join(settled['reasons'])}")
    return amended, settled


def upload_confirms_milestone(story: Story, agreement: dict[str, Any]) -> dict[str, Any]:
    """The stamped copy uploaded through notify's link is anchored and confirms the milestone
    on chain. Returns the milestone."""
    say(
        "notify asks for the stamped resignation copy; the candidate uploads it through the "
        "link; it is anchored and the milestone is confirmed on chain"
    )
    request = wait_for_mail(story.mail, "evidence")
    text = request.get_body(preferencelist=("plain",)).get_content()
    upload_link = next(w for w in text.split() if "/v1/uploads/" in w)
    upload = requests.post(
        upload_link,
        timeout=30,
        files={"file": ("stamped.txt", b"Resignation application, stamped by the employer\n")},
    )
    upload.raise_for_status()
    current: dict[str, Any] = {}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        current = story.agreement(agreement["id"])
        if current["milestones"][0]["confirmed_at"]:
            break
        time.sleep(0.25)
    milestone: dict[str, Any] = current["milestones"][0]
    print(
        f"  milestone {milestone['kind']} confirmed by document {milestone['document_id']} "
        f"(tx {milestone['tx_hash']})"
    )
    return milestone


def candidate_starts(story: Story, agreement: dict[str, Any]) -> dict[str, Any]:
    """HR confirms the first day; notify sends the closing e-mail. Returns the agreement."""
    say("the candidate starts: HR confirms the first day on chain")
    started: dict[str, Any] = requests.post(
        f"{story.base}/v1/agreements/{agreement['id']}/start", headers=story.hr, timeout=60
    ).json()
    closing = wait_for_mail(story.mail, "About your intent agreement")
    print(
        f"  state {started['state']}; closing e-mail: "
        f"{closing.get_body(preferencelist=('plain',)).get_content().strip()}"
    )
    return started


def other_candidate_breaches(story: Story, offer: dict[str, Any]) -> dict[str, Any]:
    """A second candidate signs and never starts; the chain clock jumps past start + grace and
    the sweeper declares the breach. Returns that agreement."""
    from eth_account import Account

    from .shared import chain

    say(
        "another candidate signs, never starts; the chain clock passes start date + grace and "
        "the sweeper declares the breach"
    )
    other = Account.from_key(DEMO_OTHER_KEY)
    second = requests.post(
        f"{story.base}/v1/agreements",
        headers=story.hr,
        timeout=60,
        json={
            **offer,
            "candidate_ref": "cand-077",
            "candidate_address": other.address,
            "milestones": [],
        },
    ).json()
    sign_through_link(story.base, second, DEMO_OTHER_KEY).raise_for_status()
    current = story.agreement(second["id"])

    w3 = chain.connect(story.rpc_url)
    w3.provider.make_request("evm_increaseTime", [34 * 86400])  # type: ignore[arg-type]
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and current["state"] != "breached":
        time.sleep(0.25)
        current = story.agreement(second["id"])
    exposure = story.risk(second["id"])["exposure"]
    print(
        f"  state {current['state']}: damages {exposure['liquidated_damages']} "
        f"= {exposure['percent_of_salary']}% of salary (cap {exposure['cap']})"
    )
    return current

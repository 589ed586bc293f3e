"""The evidence story of the demo, step by step: HR posts documents, the batch is anchored, the
proof is checked on chain, by the CLI and by OpenZeppelin's package, and a tampered copy fails."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import requests

from .common import say, wait_for_proof

ROOT = Path(__file__).resolve().parents[2]


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


def await_stamp(
    base: str, legal: dict[str, str], doc_id: str, timeout: float = 30.0
) -> dict[str, Any]:
    """The bundle once the root's RFC 3161 stamp has arrived (the second witness); the bundle
    without it if the TSA has not answered in time (anchoring never waits for it)."""
    say("waiting for the Time-Stamp Authority's RFC 3161 stamp of the root (the second witness)")
    deadline = time.monotonic() + timeout
    bundle = wait_for_proof(base, legal, doc_id)
    while not bundle.get("timestamps") and time.monotonic() < deadline:
        time.sleep(0.25)
        bundle = wait_for_proof(base, legal, doc_id)
    for entry in bundle.get("timestamps", []):
        print(f"  {entry['tsa']} stamped the root at {entry['gen_time']}")
    if not bundle.get("timestamps"):
        print("  no stamp yet: the bundle carries the chain witness only (witnesses: ethereum)")
    return bundle


def show_anchored_at(rpc_url: str, bundle: dict[str, Any]) -> None:
    from ..evidence.adapters.registry import RegistryClient
    from ..shared import chain

    say("anchoredAt(root) straight from the chain")
    registry = RegistryClient(chain.connect(rpc_url), bundle["anchor"]["registry"])
    print(f"  anchoredAt = {registry.anchored_at(bytes.fromhex(bundle['merkle']['root'][2:]))}")


def run_verify(
    rpc_url: str, key_hex: str, document: Path, proof: Path, tsa_ca: Path | None = None
) -> Any:
    """`offerseal verify` in a process of its own: file + proof + RPC (and the TSA root the
    legal team trusts), no service involved."""
    cli = [sys.executable, "-m", "offerseal.cli", "verify"]
    trust = ["--tsa-ca", str(tsa_ca)] if tsa_ca is not None else []
    return subprocess.run(
        [*cli, str(document), str(proof), "--rpc", rpc_url, "--key", key_hex, *trust],
        capture_output=True,
        text=True,
    )


def verify_with_cli(
    rpc_url: str, key_hex: str, document: Path, proof: Path, tsa_ca: Path | None = None
) -> Any:
    say("the legal team verifies with the CLI (file + proof + RPC; no service involved)")
    good = run_verify(rpc_url, key_hex, document, proof, tsa_ca)
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


def save_certificates(base: str, legal: dict[str, str], doc_id: str, out: Path) -> bool:
    """The signed evidence certificate of the anchored document, in both languages, kept where
    a person can open it."""
    say("the evidence certificate a judge can read: a signed PDF, zh-CN and en")
    out.mkdir(parents=True, exist_ok=True)
    for lang in ("zh-CN", "en"):
        response = requests.get(
            f"{base}/v1/documents/{doc_id}/certificate",
            params={"lang": lang},
            headers=legal,
            timeout=60,
        )
        if response.status_code != 200:
            print(f"  FAILED: the {lang} certificate: {response.status_code} {response.text}")
            return False
        path = out / f"certificate-{doc_id}-{lang}.pdf"
        path.write_bytes(response.content)
        print(f"  {lang}: {path.resolve()} ({len(response.content):,} bytes, signed)")
    return True


def save_dossier(base: str, legal: dict[str, str], agreement_id: str, out: Path, rpc: str) -> bool:
    """The breached agreement's dossier, as the legal team downloads it (waiting while its
    manifest is anchored), kept where a person can open it."""
    say("the breached agreement's dossier for the legal team: one ZIP, every file anchored")
    out.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + 120
    while True:
        response = requests.post(  # makes it, or finds the one made for the same facts
            f"{base}/v1/agreements/{agreement_id}/dossier", headers=legal, timeout=120
        )
        if response.status_code != 202 or time.monotonic() > deadline:
            break
        time.sleep(1)
    if response.status_code != 200:
        print(f"  FAILED: the dossier: {response.status_code} {response.text[:300]}")
        return False
    path = out / f"offerseal-dossier-{agreement_id}.zip"
    path.write_bytes(response.content)
    with zipfile.ZipFile(path) as archive:
        count = len(archive.namelist())
    print(
        f"  {path.resolve()} ({len(response.content):,} bytes, {count} files, manifest sha256 "
        f"{response.headers.get('X-Manifest-SHA256')}); open verify.html inside it"
    )
    say("the legal team verifies the dossier offline: only the ZIP and an RPC endpoint")
    checked = subprocess.run(
        [sys.executable, "-m", "offerseal.cli", "verify-dossier", str(path), "--rpc", rpc],
        capture_output=True,
        text=True,
        timeout=120,
    )
    verdict = checked.stdout.strip().splitlines()
    print("\n".join(f"  {line}" for line in verdict[-12:]))
    if checked.returncode != 0:
        print(f"  FAILED: offerseal verify-dossier {path} --rpc {rpc}: {checked.stderr[-500:]}")
        return False
    return True

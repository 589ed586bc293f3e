"""The command line as a user runs it: `offerseal verify` (file + proof + RPC, nothing else),
`offerseal keys create`, and `offerseal demo`."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import RunningStack, upload, wait_for_proof

pytestmark = pytest.mark.chain


def offerseal(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "offerseal.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def proof_files(evidence_sqlite: RunningStack, tmp_path: Path) -> tuple[Path, Path, str]:
    content = b"stamped resignation copy " + os.urandom(32)
    doc_id = upload(evidence_sqlite, content).json()["id"]
    bundle = wait_for_proof(evidence_sqlite, doc_id)
    (tmp_path / "doc.bin").write_bytes(content)
    (tmp_path / "proof.json").write_text(json.dumps(bundle))
    key = requests.get(evidence_sqlite.url("/v1/keys"), timeout=10).json()["keys"][0]
    return tmp_path / "doc.bin", tmp_path / "proof.json", key["public_key_hex"]


def test_verify_passes_for_the_document_and_fails_for_a_changed_byte(
    evidence_sqlite: RunningStack, proof_files: tuple[Path, Path, str], tmp_path: Path
) -> None:
    document, proof, key = proof_files
    evidence_sqlite.stack.stop()  # the service and its database are not needed to verify
    ok = offerseal(
        "verify", str(document), str(proof), "--rpc", evidence_sqlite.rpc_url, "--key", key
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "VALID" in ok.stdout and "FAIL" not in ok.stdout
    tampered = tmp_path / "tampered.bin"
    data = bytearray(document.read_bytes())
    data[5] ^= 0x20
    tampered.write_bytes(bytes(data))
    bad = offerseal("verify", str(tampered), str(proof), "--rpc", evidence_sqlite.rpc_url, "--json")
    assert bad.returncode == 1
    result: dict[str, Any] = json.loads(bad.stdout)
    # The file's sha256 and its SM3 (stated by the bundle, signed by the receipt) both differ.
    assert result["valid"] is False and result["failed"] == ["document_hash", "document_sm3"]


def test_verify_offline_and_unreachable_chain(proof_files: tuple[Path, Path, str]) -> None:
    document, proof, key = proof_files
    offline = offerseal("verify", str(document), str(proof), "--offline", "--key", key)
    assert offline.returncode == 0
    assert "offline" in offline.stdout and "SKIP" in offline.stdout
    unreachable = offerseal(
        "verify", str(document), str(proof), "--rpc", "http://127.0.0.1:9", "--json"
    )
    assert unreachable.returncode == 1
    assert "chain" in json.loads(unreachable.stdout)["failed"]


def test_verify_with_a_foreign_pinned_key_fails(proof_files: tuple[Path, Path, str]) -> None:
    document, proof, _ = proof_files
    result = offerseal(
        "verify", str(document), str(proof), "--offline", "--key", "ab" * 32, "--json"
    )
    assert result.returncode == 1
    assert json.loads(result.stdout)["failed"] == ["receipt_signature"]


def test_keys_create_prints_the_key_last(tmp_path: Path) -> None:
    env = {"OFFERSEAL_DATA_DIR": str(tmp_path)}
    result = offerseal("keys", "create", "--role", "legal", "--tenant", "acme", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].startswith("osk_")
    bad = offerseal("keys", "create", "--role", "legal", "--tenant", "bad tenant!", env=env)
    assert bad.returncode == 2 and "tenant" in bad.stderr


def test_bad_configuration_is_reported_not_a_traceback(tmp_path: Path) -> None:
    result = offerseal(
        "migrate", env={"OFFERSEAL_DATA_DIR": str(tmp_path), "OFFERSEAL_BATCH_MAX": "lots"}
    )
    assert result.returncode == 2
    assert "OFFERSEAL_BATCH_MAX" in result.stderr and "Traceback" not in result.stderr


def test_demo_tells_the_story_and_succeeds() -> None:
    result = offerseal("demo", timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "demo succeeded" in result.stdout
    assert '{"valid":true}' in result.stdout  # @openzeppelin/merkle-tree agreed
    assert "NOT VALID" in result.stdout  # the tampered copy failed
    # The second witness: the development TSA stamped the root and the CLI checked the token
    # against its CA.
    assert "stamped the root at" in result.stdout
    assert "PASS  rfc3161_timestamp" in result.stdout
    # the evidence certificate of the demo document, in both languages, where it says
    certificates = re.findall(r"(?:zh-CN|en): (\S+\.pdf) \(", result.stdout)
    assert len(certificates) == 2
    assert all(Path(p).read_bytes().startswith(b"%PDF") for p in certificates)
    # the breached agreement's dossier, where it says, its manifest listing every other entry
    [dossier] = re.findall(r"(\S+offerseal-dossier-\S+\.zip) \(", result.stdout)
    with zipfile.ZipFile(dossier) as archive:
        listed = {f["path"] for f in json.loads(archive.read("manifest.json"))["files"]}
        assert set(archive.namelist()) - listed == {
            "manifest.json",
            "manifest.proof.json",
            "cover.pdf",
        }
        assert json.loads(archive.read("damages.json"))["within_cap"] is True
    # the candidate's e-mails are left as .eml (with a .png each where Chromium is installed)
    kept = re.search(r"(\d+) e-mails and (\d+) screenshots in (\S+)", result.stdout)
    assert kept is not None and int(kept.group(1)) >= 6
    emls = sorted(Path(kept.group(3)).glob("*.eml"))
    assert len(emls) == int(kept.group(1))
    assert any(p.name.endswith("-invitation.eml") for p in emls)
    if shutil.which("chromium"):
        assert all(p.with_suffix(".png").exists() for p in emls)
    # SMS through the Aliyun SDK to the local stand-in, every request's signature checked
    sms = re.search(r"(\d+) SMS accepted by the stand-in, (\d+) with a bad sig", result.stdout)
    assert sms is not None and int(sms.group(1)) >= 1 and sms.group(2) == "0"
    assert "LOCAL STAND-IN of Aliyun's SMS API" in result.stdout
    assert "candidate(s) on the board" in result.stdout  # HR's console, signed in
    assert "/console/agreements/" in result.stdout

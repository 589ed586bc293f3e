"""The dossier the contracts service produces, verified as a legal team verifies it: as a whole
by `offerseal_verify` (every file against the anchored manifest, each proof, the signed cover)
and by `offerseal verify-dossier`; its manifest has the published schema's shape; one changed
byte in any file fails."""

from __future__ import annotations

import io
import json
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests

from offerseal.evidence.adapters.registry import Web3ChainView
from offerseal.evidence.published import load_schema
from offerseal.shared import chain
from offerseal_verify.dossier import pyhanko_cover_check, verify_dossier
from tests.conftest import RunningStack, wait_for_proof
from tests.dossiers import zip_of
from tests.integration.test_cli import offerseal
from tests.integration.test_contracts_service import create, sign_through_link
from tests.integration.test_dossier import breached, dossier, stack
from tests.integration.test_standalone_verifier import verifier_venv

pytestmark = pytest.mark.chain
__all__ = ["breached", "stack", "verifier_venv"]  # fixtures of other modules, used here


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """The producer's own tests cover both databases; verifying its output needs one."""
    return sqlite_url


def test_the_produced_dossier_verifies_whole_and_a_changed_byte_fails(
    stack: RunningStack, breached: dict[str, Any]
) -> None:
    answer = dossier(stack, breached["agreement"]["id"], stack.legal, lang="en")
    assert answer.status_code == 200, answer.text
    view = Web3ChainView(chain.connect(stack.rpc_url))
    verdict = verify_dossier(
        answer.content, trusted_keys=None, chain=view, cover_check=pyhanko_cover_check
    )
    assert verdict.valid, verdict.as_dict()
    names = [c.name for c in verdict.checks]
    assert names[:4] == ["zip", "manifest", "files", "manifest_anchored"]
    assert names.count("file_proof") >= 1 and names[-1] == "cover"

    archive = zipfile.ZipFile(io.BytesIO(answer.content))
    manifest = json.loads(archive.read("manifest.json"))
    jsonschema.Draft202012Validator(load_schema("dossier-manifest-1")).validate(manifest)

    saved = stack.settings.data_dir / "dossier.zip"
    saved.write_bytes(answer.content)
    command = offerseal("verify-dossier", str(saved), "--rpc", stack.rpc_url, "--json")
    assert command.returncode == 0, command.stdout + command.stderr
    assert json.loads(command.stdout)["valid"] is True

    entries = {info.filename: archive.read(info) for info in archive.infolist()}
    for entry in manifest["files"]:
        changed = dict(entries)
        data = bytearray(changed[entry["path"]])
        data[len(data) // 2] ^= 0x01
        changed[entry["path"]] = bytes(data)
        # Offline: the file check needs no chain.
        failed = verify_dossier(zip_of(list(changed.items())), trusted_keys=None, chain=None).failed
        assert "files" in failed, entry["path"]


def test_an_upload_named_like_the_proof_bundle_leaves_the_dossier_valid(
    stack: RunningStack, verifier_venv: Path
) -> None:
    """A candidate's or HR's file called PROOF.json lands in its folder beside the dossier's own
    proof.json: one file once extracted on Windows or macOS, so both verifiers refused the
    dossier for ever ("appears twice"). The upload now steps aside (document-PROOF.json)."""
    agreement = create(stack)
    assert sign_through_link(stack, agreement["id"]).status_code == 200
    stored = requests.post(
        stack.url("/v1/documents"),
        headers=stack.hr,
        data={
            "kind": "resignation_application",
            "candidate_ref": "cand-042",
            "agreement_id": agreement["id"],
            "milestone": "resignation_submitted",
        },
        files={"file": ("PROOF.json", b'{"stamped": "resignation application"}', "text/plain")},
        timeout=30,
    )
    assert stored.status_code == 201, stored.text
    document_id = stored.json()["id"]
    wait_for_proof(stack, document_id)
    answer = dossier(stack, agreement["id"], stack.legal)
    assert answer.status_code == 200, answer.text
    names = zipfile.ZipFile(io.BytesIO(answer.content)).namelist()
    folder = f"evidence/resignation_submitted/{document_id}/"
    assert {folder + "proof.json", folder + "document-PROOF.json"} <= set(names), names

    view = Web3ChainView(chain.connect(stack.rpc_url))
    verdict = verify_dossier(answer.content, trusted_keys=None, chain=view)
    assert verdict.valid, verdict.as_dict()
    saved = stack.settings.data_dir / "dossier.zip"
    saved.write_bytes(answer.content)
    command = offerseal("verify-dossier", str(saved), "--rpc", stack.rpc_url, "--json")
    assert command.returncode == 0, command.stdout + command.stderr
    standalone_verifier = verifier_venv / "bin" / "offerseal-verify"
    standalone = subprocess.run(
        [standalone_verifier, "dossier", saved, "--rpc", stack.rpc_url, "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert standalone.returncode == 0, standalone.stdout + standalone.stderr
    assert json.loads(standalone.stdout)["valid"] is True

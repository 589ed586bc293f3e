"""Agreement dossiers (`offerseal-dossier-1` ZIPs) made by tests: the manifest of a set of files,
a ZIP of entries, and a dossier whose manifest and evidence are anchored by a running stack."""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
import zipfile
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.conftest import RunningStack

EVIDENCE = "evidence/resignation_accepted/d-2/acceptance.pdf"
EVIDENCE_PROOF = "evidence/resignation_accepted/d-2/proof.json"
AGREEMENTS = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"

# path -> (content, the path of the file's own proof bundle or None)
Files = dict[str, tuple[bytes, str | None]]


def manifest_of(files: Files, chain_id: int = 31337) -> dict[str, Any]:
    entries = []
    for path in sorted(files):
        content, proof = files[path]
        entry: dict[str, Any] = {
            "path": path,
            "sha256": hashlib.sha256(content).hexdigest(),
            "bytes": len(content),
            "title": f"the file {path}",
        }
        if proof:
            entry["proof"] = proof
        entries.append(entry)
    return {
        "format": "offerseal-dossier-1",
        "agreement": {
            "id": "a-1",
            "onchain_id": "0x" + "ab" * 32,
            "chain_id": chain_id,
            "registry": AGREEMENTS,
            "state": "breached",
        },
        "as_of": "2026-11-25T16:30:00Z",
        "files": entries,
    }


def zip_of(entries: list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of duplicate names, which some tests want
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in entries:
                archive.writestr(zipfile.ZipInfo(name, (2026, 11, 25, 16, 30, 0)), data)
    return out.getvalue()


def anchored_dossier(
    stack: RunningStack,
    proof_of: Callable[[RunningStack, str], dict[str, Any]] | None = None,
    cover: bytes = b"%PDF-1.7 cover report",
) -> dict[str, bytes]:
    """Every entry of a dossier whose evidence file and manifest this stack anchored (the proof
    bundles as GET /v1/documents/{id}/proof gives them, or as `proof_of` waits for them)."""
    from tests.conftest import upload, wait_for_proof

    proof_of = proof_of or wait_for_proof

    evidence = b"%PDF-1.7 the old employer's resignation acceptance " + os.urandom(16)
    evidence_id = upload(stack, evidence, kind="resignation_acceptance").json()["id"]
    evidence_proof = json.dumps(proof_of(stack, evidence_id), indent=2).encode()
    files: Files = {
        "README.txt": (b"What this dossier holds and how to verify it.\n", None),
        "agreement/text.zh-CN.txt": ("意向协议全文".encode(), None),
        EVIDENCE: (evidence, EVIDENCE_PROOF),
        EVIDENCE_PROOF: (evidence_proof, None),
    }
    manifest = json.dumps(manifest_of(files), indent=2, ensure_ascii=False).encode()
    manifest_id = upload(stack, manifest, kind="other").json()["id"]
    entries = {
        "manifest.json": manifest,
        "manifest.proof.json": json.dumps(proof_of(stack, manifest_id)).encode(),
        "cover.pdf": cover,
    }
    entries.update({path: content for path, (content, _) in files.items()})
    return entries

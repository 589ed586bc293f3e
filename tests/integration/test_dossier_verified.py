"""The dossier the contracts service produces, verified as a legal team verifies it: as a whole
by `offerseal_verify` (every file against the anchored manifest, each proof, the signed cover)
and by `offerseal verify-dossier`; its manifest has the published schema's shape; one changed
byte in any file fails."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import jsonschema
import pytest

from offerseal.evidence.adapters.registry import Web3ChainView
from offerseal.evidence.published import load_schema
from offerseal.shared import chain
from offerseal_verify.dossier import pyhanko_cover_check, verify_dossier
from tests.conftest import RunningStack
from tests.dossiers import zip_of
from tests.integration.test_cli import offerseal
from tests.integration.test_dossier import breached, dossier, stack

pytestmark = pytest.mark.chain
__all__ = ["breached", "stack"]  # the producer's fixtures, used here


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

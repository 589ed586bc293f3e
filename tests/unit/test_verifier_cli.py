"""`offerseal-verify` run in-process on dossiers and proofs made in memory (offline: the chain
is the integration test's); what it prints and the exit status a script relies on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from offerseal_verify import cli
from offerseal_verify.cli import main
from tests.unit.test_dossier import SIGNER, FakeChain, bundle_for, make_dossier


@pytest.fixture(autouse=True)
def cover_present(monkeypatch: pytest.MonkeyPatch) -> None:
    """The dossiers here carry a stand-in cover, not a signed PDF (pyHanko's check of a real one
    runs in tests/integration/test_standalone_verifier.py)."""
    monkeypatch.setattr(cli, "pyhanko_cover_check", lambda pdf: (True, "present"))


def test_a_dossier_offline_prints_each_check_and_is_not_fully_verified(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "dossier.zip"
    path.write_bytes(make_dossier().zip())
    assert main(["dossier", str(path), "--offline", "--key", SIGNER.public_raw.hex()]) == 0
    out = capsys.readouterr().out
    for line in ("PASS  zip", "PASS  manifest ", "PASS  files", "SKIP  manifest_anchored"):
        assert line in out, out
    assert "offline: the chain was not consulted" in out and out.rstrip().endswith("NOT VALID")


def test_a_changed_dossier_fails_with_exit_status_1_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dossier = make_dossier()
    path = tmp_path / "dossier.zip"
    path.write_bytes(dossier.with_entries(**{"README.txt": b"changed"}))
    assert main(["dossier", str(path), "--offline", "--json"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["failed"] == ["files"] and result["offline"] is True


def test_a_proof_offline_and_a_bad_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document = tmp_path / "doc.pdf"
    document.write_bytes(b"%PDF-1.7 a document")
    proof = tmp_path / "proof.json"
    proof.write_text(json.dumps(bundle_for(document.read_bytes(), "d-1", FakeChain())))
    assert main(["proof", str(document), str(proof), "--offline"]) == 0
    out = capsys.readouterr().out
    assert "PASS  document_hash" in out and "witnesses: ethereum SKIP" in out
    assert main(["proof", str(document), str(proof), "--offline", "--key", "12"]) == 2
    assert "--key must be" in capsys.readouterr().err


def test_an_unreachable_endpoint_is_a_failing_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "dossier.zip"
    path.write_bytes(make_dossier().zip())
    assert (
        main(
            [
                "dossier",
                str(path),
                "--rpc",
                "http://user:secret@127.0.0.1:9/abcdefghijklmnopqrstu",
                "--json",
            ]
        )
        == 1
    )
    result = json.loads(capsys.readouterr().out)
    assert "chain" in result["failed"]
    chain = next(c for c in result["checks"] if c["name"] == "chain")
    assert "secret" not in chain["detail"] and "abcdefghijklmnopqrstu" not in chain["detail"]


def test_max_bytes_bounds_what_a_dossier_may_cost(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--max-bytes` (both `offerseal-verify dossier` and `offerseal verify-dossier`): a dossier
    whose directory declares more is refused unread, exit status 1."""
    path = tmp_path / "dossier.zip"
    path.write_bytes(make_dossier().zip())
    assert main(["dossier", str(path), "--offline", "--max-bytes", "100", "--json"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["failed"] == ["zip"] and "at most 100" in result["checks"][0]["detail"]

    from offerseal.cli import main as offerseal

    assert offerseal(["verify-dossier", str(path), "--offline", "--max-bytes", "100"]) == 1
    assert "at most 100" in capsys.readouterr().out

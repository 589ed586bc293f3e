"""The verifier without the services: `offerseal-verify` installed from verifier/ into a fresh
virtualenv (no web3, Flask or SQLAlchemy there) checks a real proof and a real dossier against a
real Anvil with RFC 3161 stamps from a local OpenSSL TSA, after the stack that made them stopped;
one changed byte fails. Also `offerseal verify-dossier`, and the plain JSON-RPC chain view
agreeing with the web3 one."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from offerseal.shared.dev_tsa import DevTSA
from tests.conftest import RunningStack, make_settings, start_stack, upload
from tests.dossiers import EVIDENCE, anchored_dossier, zip_of
from tests.integration.test_timestamps import stamped_proof

pytestmark = pytest.mark.chain
ROOT = Path(__file__).resolve().parents[2]
VERIFIER = ROOT / "verifier"


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "offerseal-tests"


def _run(
    *args: str | Path, timeout: float = 600, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=timeout, **kwargs
    )


@pytest.fixture(scope="module")
def verifier_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv with `offerseal-verify` installed from verifier/, as a user would have it.
    Its dependencies come from the package index once per pyproject and Python version (the
    virtualenv is cached under ~/.cache); the package itself is reinstalled from the working
    tree on every run, so the test checks today's source."""
    key = hashlib.sha256(
        (VERIFIER / "pyproject.toml").read_bytes() + sys.version.encode()
    ).hexdigest()[:16]
    venv = _cache_root() / f"verifier-venv-{key}"
    python = venv / "bin" / "python"
    done = venv / ".offerseal-complete"
    venv.parent.mkdir(parents=True, exist_ok=True)
    # The source as it is now (a copy: building in the tree would leave build/ behind).
    source = tmp_path_factory.mktemp("verifier-src") / "verifier"
    shutil.copytree(VERIFIER, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    # A virtualenv cannot move (its scripts name its path), so it is made in place, under a lock
    # against a parallel run, and marked complete at the end.
    with open(str(venv) + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(venv, ignore_errors=True)
            made = _run(sys.executable, "-m", "venv", venv)
            assert made.returncode == 0, made.stderr
            pip = [python, "-m", "pip", "install", "--quiet"]
            # A full install first: the dependencies the distribution declares, nothing else.
            first = _run(*pip, source)
            assert first.returncode == 0, first.stdout + first.stderr
            tools = _run(*pip, "setuptools>=69")  # to reinstall the package without isolation
            assert tools.returncode == 0, tools.stdout + tools.stderr
            done.write_text(key)
    again = _run(
        python,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-deps",
        "--no-build-isolation",
        "--force-reinstall",
        source,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    return venv


@dataclass
class Made:
    """What the stopped stack left behind for a verifier: files only, and Anvil."""

    folder: Path
    rpc_url: str
    tsa_ca: Path
    entries: dict[str, bytes]
    document: Path
    proof: Path
    keys: Path

    def dossier(self, **changes: bytes | None) -> Path:
        entries = dict(self.entries)
        for name, data in changes.items():
            if data is None:
                entries.pop(name)
            else:
                entries[name] = data
        path = self.folder / f"dossier-{len(list(self.folder.glob('dossier-*')))}.zip"
        path.write_bytes(zip_of(list(entries.items())))
        return path


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory, anvil: Any) -> Iterator[Made]:
    folder = tmp_path_factory.mktemp("standalone")
    tsa = DevTSA(folder / "tsa").start()
    stack: RunningStack | None = None
    try:
        stack = start_stack(
            make_settings(
                folder,
                f"sqlite:///{folder / 'e.db'}",
                anvil.url,
                tsa_urls=(tsa.url,),
                tsa_ca_file=tsa.authority.ca_cert,
            )
        )
        content = b"%PDF-1.4 resignation accepted " + os.urandom(16)
        doc_id = upload(stack, content, kind="resignation_acceptance").json()["id"]
        bundle = stamped_proof(stack, doc_id)
        cover = requests.get(
            stack.url(f"/v1/documents/{doc_id}/certificate"),
            params={"lang": "en"},
            headers=stack.legal,
            timeout=60,
        )
        assert cover.status_code == 200, cover.text
        entries = anchored_dossier(
            stack,
            proof_of=stamped_proof,
            cover=cover.content,  # a real PAdES-signed PDF
        )
        (folder / "document.pdf").write_bytes(content)
        (folder / "proof.json").write_text(json.dumps(bundle))
        keys = requests.get(stack.url("/v1/keys"), timeout=10)
        (folder / "keys.json").write_text(keys.text)
    finally:
        if stack is not None:
            stack.stack.stop()  # verifying needs neither the services nor their database
    try:
        yield Made(
            folder,
            anvil.url,
            Path(tsa.authority.ca_cert),
            entries,
            folder / "document.pdf",
            folder / "proof.json",
            folder / "keys.json",
        )
    finally:
        tsa.stop()


def test_the_installed_verifier_passes_a_real_dossier_and_fails_one_changed_byte(
    verifier_venv: Path, made: Made, tmp_path: Path
) -> None:
    python = verifier_venv / "bin" / "python"
    absent = _run(
        python,
        "-c",
        "import importlib.util as u; "
        "print([m for m in ('web3', 'flask', 'sqlalchemy', 'offerseal') if u.find_spec(m)])",
        cwd=tmp_path,
    )
    assert absent.stdout.strip() == "[]", absent.stdout + absent.stderr
    tool = verifier_venv / "bin" / "offerseal-verify"
    trust = ["--rpc", made.rpc_url, "--keys", str(made.keys), "--tsa-ca", str(made.tsa_ca)]

    proof = _run(tool, "proof", made.document, made.proof, *trust, cwd=tmp_path, timeout=120)
    assert proof.returncode == 0, proof.stdout + proof.stderr
    assert "FAIL" not in proof.stdout and "SKIP" not in proof.stdout
    assert "PASS  rfc3161_timestamp" in proof.stdout and "VALID" in proof.stdout

    dossier = _run(tool, "dossier", made.dossier(), *trust, cwd=tmp_path, timeout=120)
    assert dossier.returncode == 0, dossier.stdout + dossier.stderr
    for name in ("zip", "manifest", "files", "manifest_anchored", "file_proof", "cover"):
        assert f"PASS  {name} " in dossier.stdout, dossier.stdout
    assert "FAIL" not in dossier.stdout and dossier.stdout.rstrip().endswith("VALID")

    changed = bytearray(made.entries[EVIDENCE])
    changed[len(changed) // 2] ^= 0x01
    bad = _run(
        tool,
        "dossier",
        made.dossier(**{EVIDENCE: bytes(changed)}),
        *trust,
        "--json",
        cwd=tmp_path,
        timeout=120,
    )
    assert bad.returncode == 1, bad.stdout + bad.stderr
    result = json.loads(bad.stdout)
    assert result["valid"] is False and set(result["failed"]) == {"files", "file_proof"}

    offline = _run(tool, "dossier", made.dossier(), "--offline", cwd=tmp_path, timeout=120)
    assert offline.returncode == 0, offline.stdout + offline.stderr
    assert "SKIP  manifest_anchored" in offline.stdout and "NOT VALID" in offline.stdout

    unreachable = _run(
        tool,
        "dossier",
        made.dossier(),
        "--rpc",
        "http://127.0.0.1:9",
        "--json",
        cwd=tmp_path,
        timeout=120,
    )
    assert unreachable.returncode == 1
    assert "chain" in json.loads(unreachable.stdout)["failed"]


def offerseal(*args: str) -> subprocess.CompletedProcess[str]:
    return _run(sys.executable, "-m", "offerseal.cli", *args, timeout=120)


def test_offerseal_verify_dossier_checks_the_cover_signature_too(made: Made) -> None:
    trust = ["--rpc", made.rpc_url, "--keys", str(made.keys), "--tsa-ca", str(made.tsa_ca)]
    ok = offerseal("verify-dossier", str(made.dossier()), *trust)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "(pyHanko), by " in ok.stdout and "FAIL" not in ok.stdout

    as_verify = offerseal("verify", str(made.dossier()), *trust, "--json")
    assert as_verify.returncode == 0, as_verify.stdout + as_verify.stderr
    assert json.loads(as_verify.stdout)["valid"] is True

    cover = bytearray(made.entries["cover.pdf"])
    cover[len(cover) // 3] ^= 0x01
    for changes, failing in (
        ({"README.txt": None}, ["files"]),
        ({"cover.pdf": bytes(cover)}, ["cover"]),
    ):
        bad = offerseal("verify-dossier", str(made.dossier(**changes)), *trust, "--json")
        assert bad.returncode == 1, bad.stdout + bad.stderr
        assert json.loads(bad.stdout)["failed"] == failing


def test_the_json_rpc_chain_view_agrees_with_the_web3_one(made: Made) -> None:
    from offerseal.evidence.adapters.registry import Web3ChainView
    from offerseal.shared import chain
    from offerseal_verify.proofs import verify_bundle
    from offerseal_verify.rpc import JsonRpcChainView, RpcUnreachable

    bundle = json.loads(made.proof.read_text())
    sha = "0x" + hashlib.sha256(made.document.read_bytes()).hexdigest()
    forged = json.loads(made.proof.read_text())
    forged["anchor"]["tx_hash"] = "0x" + "66" * 32
    views = [JsonRpcChainView(made.rpc_url), Web3ChainView(chain.connect(made.rpc_url))]
    for candidate in (bundle, forged):
        verdicts = [
            verify_bundle(
                candidate, document_sha256=sha, trusted_keys=None, chain=view, tsa_roots=None
            ).as_dict()
            for view in views
        ]
        assert [c["status"] for c in verdicts[0]["checks"]] == [
            c["status"] for c in verdicts[1]["checks"]
        ]
    assert verdicts[0]["failed"] == ["anchor_transaction"]
    plain = views[0]
    assert isinstance(plain, JsonRpcChainView)
    assert plain.anchored_at("0x" + "00" * 20, b"\x01" * 32) == 0  # no contract there
    assert plain.block(10**9) is None
    with pytest.raises(RpcUnreachable):
        JsonRpcChainView("http://127.0.0.1:9").chain_id()

"""The second witness with real parts: a local OpenSSL TSA (its own CA) over HTTP, real Anvil,
the running evidence stack on SQLite and PostgreSQL. Bundles carry a token that `offerseal
verify`, `/v1/verify` and `openssl ts -verify` accept; a tampered token or another CA fails; a
TSA that is down holds up nothing and the stamp arrives once it is back."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from offerseal.shared.dev_tsa import DevTSA, ensure_authority
from tests.conftest import (
    RunningStack,
    free_port,
    make_settings,
    start_stack,
    upload,
    wait_for_proof,
)

pytestmark = pytest.mark.chain


def wait_for(condition: Callable[[], Any], timeout: float = 60.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout}s: {what}")


@pytest.fixture
def tsa(tmp_path: Path) -> Iterator[DevTSA]:
    # a port below the kernel's ephemeral range: it is started again on it after a stop, and
    # another worker binding port 0 meanwhile could be given an ephemeral one
    server = DevTSA(tmp_path / "tsa", port=free_port()).start()
    yield server
    server.stop()


@pytest.fixture
def stamped(tmp_path: Path, database_url: str, anvil: Any, tsa: DevTSA) -> Iterator[RunningStack]:
    settings = make_settings(
        tmp_path,
        database_url,
        anvil.url,
        tsa_urls=(tsa.url,),
        tsa_ca_file=tsa.authority.ca_cert,
    )
    running = start_stack(settings)
    yield running
    running.stack.stop()


def stamped_proof(stack: RunningStack, doc_id: str, timeout: float = 60.0) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        bundle = wait_for_proof(stack, doc_id)
        return bundle if bundle["timestamps"] else None

    result: dict[str, Any] = wait_for(ready, timeout, f"an RFC 3161 stamp for {doc_id}")
    return result


def verify_api(stack: RunningStack, content: bytes, bundle: dict[str, Any]) -> dict[str, Any]:
    response = requests.post(
        stack.url("/v1/verify"),
        files={"file": ("doc", content), "proof": ("proof.json", json.dumps(bundle))},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def cli_verify(
    stack: RunningStack, tmp_path: Path, content: bytes, bundle: Any, *extra: str
) -> Any:
    (tmp_path / "doc.bin").write_bytes(content)
    (tmp_path / "proof.json").write_text(json.dumps(bundle))
    return subprocess.run(
        [sys.executable, "-m", "offerseal.cli", "verify", str(tmp_path / "doc.bin"),
         str(tmp_path / "proof.json"), "--rpc", stack.rpc_url, *extra],
        capture_output=True, text=True, timeout=120, env={**os.environ},
    )  # fmt: skip


def test_a_bundle_carries_a_token_every_verifier_accepts(
    stamped: RunningStack, tsa: DevTSA, tmp_path: Path
) -> None:
    content = b"resignation acceptance " + os.urandom(16)
    doc_id = upload(stamped, content).json()["id"]
    bundle = stamped_proof(stamped, doc_id)
    assert bundle["format"] == "offerseal-proof/3"
    assert bundle["witnesses"] == ["ethereum", "rfc3161"]
    [entry] = bundle["timestamps"]
    assert entry["tsa"] == tsa.url and entry["hash_algorithm"] == "sha256"

    verdict = verify_api(stamped, content, bundle)
    assert verdict["valid"], verdict
    [check] = [c for c in verdict["checks"] if c["name"] == "rfc3161_timestamp"]
    assert check["status"] == "pass" and "trusted root" in check["detail"]

    done = cli_verify(stamped, tmp_path, content, bundle, "--tsa-ca", str(tsa.authority.ca_cert))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS  rfc3161_timestamp" in done.stdout
    assert f"rfc3161 {tsa.url} PASS" in done.stdout

    # OpenSSL's own verifier accepts the same token for the root's 32 bytes.
    (tmp_path / "reply.tsr").write_bytes(base64.b64decode(entry["response"]))
    (tmp_path / "root.bin").write_bytes(bytes.fromhex(bundle["merkle"]["root"][2:]))
    checked = subprocess.run(
        ["openssl", "ts", "-verify", "-in", str(tmp_path / "reply.tsr"),
         "-data", str(tmp_path / "root.bin"), "-CAfile", str(tsa.authority.ca_cert)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert "Verification: OK" in checked.stdout, checked.stdout + checked.stderr


def test_a_tampered_token_or_another_ca_fails(
    stamped: RunningStack, tsa: DevTSA, tmp_path: Path
) -> None:
    content = b"handover progress " + os.urandom(16)
    doc_id = upload(stamped, content).json()["id"]
    bundle = stamped_proof(stamped, doc_id)

    tampered = json.loads(json.dumps(bundle))
    raw = bytearray(base64.b64decode(tampered["timestamps"][0]["response"]))
    raw[-12] ^= 0x01
    tampered["timestamps"][0]["response"] = base64.b64encode(bytes(raw)).decode()
    verdict = verify_api(stamped, content, tampered)
    assert verdict["failed"] == ["rfc3161_timestamp"], verdict

    # Someone else's CA as the trusted root: the genuine token does not chain to it.
    other = ensure_authority(tmp_path / "other-ca", name="Another TSA")
    done = cli_verify(stamped, tmp_path, content, bundle, "--tsa-ca", str(other.ca_cert))
    assert done.returncode == 1
    assert "FAIL  rfc3161_timestamp" in done.stdout
    assert f"rfc3161 {tsa.url} FAIL" in done.stdout
    # Without a trusted root the bundle's own root is used, and the verifier says so.
    done = cli_verify(stamped, tmp_path, content, bundle)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "pin it with --tsa-ca" in done.stdout


def test_a_tsa_that_is_down_holds_up_nothing_and_the_stamp_follows(
    stamped: RunningStack, tsa: DevTSA
) -> None:
    tsa.stop()
    content = b"social insurance stop " + os.urandom(16)
    doc_id = upload(stamped, content).json()["id"]
    bundle = wait_for_proof(stamped, doc_id)  # anchored while the TSA is down
    assert bundle["witnesses"] == ["ethereum"] and bundle["timestamps"] == []
    assert verify_api(stamped, content, bundle)["valid"]

    tsa.start()  # the same authority on the same port
    later = stamped_proof(stamped, doc_id, timeout=90)
    assert later["witnesses"] == ["ethereum", "rfc3161"]
    assert later["anchor"] == bundle["anchor"]
    assert verify_api(stamped, content, later)["valid"]

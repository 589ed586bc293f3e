"""The evidence certificate with real parts: a running stack (real Anvil, a local OpenSSL TSA),
the PDF fetched over HTTP, its signature checked with pyHanko's validator against the configured
certificate, its text extracted with pypdf, its first page rendered with pdftoppm (when the
machine has it) into test-artifacts/certificate/ for a person to look at."""

from __future__ import annotations

import copy
import hashlib
import io
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from offerseal.shared.dev_tsa import DevTSA
from tests.conftest import (
    IN_CI,
    ROOT,
    RunningStack,
    make_settings,
    start_stack,
    upload,
    wait_for_proof,
)
from tests.integration.test_timestamps import stamped_proof

pytestmark = pytest.mark.chain

ARTIFACTS = ROOT / "test-artifacts" / "certificate"


@pytest.fixture(scope="module")
def signer_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from offerseal.shared.secrets import _dev_certificate

    folder = tmp_path_factory.mktemp("signer")
    key, cert = folder / "key.pem", folder / "cert.pem"
    _dev_certificate(key, cert)
    return key, cert


@pytest.fixture(scope="module")
def tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevTSA]:
    server = DevTSA(tmp_path_factory.mktemp("tsa")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    anvil: Any,
    tsa: DevTSA,
    signer_files: tuple[Path, Path],
) -> Iterator[RunningStack]:
    tmp = tmp_path_factory.mktemp("cert")
    settings = make_settings(
        tmp,
        f"sqlite:///{tmp / 'c.db'}",
        anvil.url,
        tsa_urls=(tsa.url,),
        tsa_ca_file=tsa.authority.ca_cert,
        certificate_key=str(signer_files[0]),
        certificate_cert=str(signer_files[1]),
    )
    running = start_stack(settings)
    yield running
    running.stack.stop()


@pytest.fixture(scope="module")
def anchored(stack: RunningStack) -> dict[str, Any]:
    posted = upload(stack, b"%PDF-1.4 resignation accepted", kind="resignation_acceptance")
    assert posted.status_code == 201, posted.text
    doc_id = posted.json()["id"]
    bundle = stamped_proof(stack, doc_id)
    return {"id": doc_id, "bundle": bundle}


def certificate(stack: RunningStack, doc_id: str, lang: str, headers: Any = None) -> Any:
    return requests.get(
        stack.url(f"/v1/documents/{doc_id}/certificate"),
        params={"lang": lang},
        headers=stack.legal if headers is None else headers,
        timeout=60,
    )


def signature_status(pdf: bytes, cert_file: Path, tsa_ca: Path | None = None) -> Any:
    """pyHanko's verdict, trusting the configured signer (and the TSA's root for the
    signature's time-stamp)."""
    from pyhanko.keys import load_cert_from_pemder
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    reader = PdfFileReader(io.BytesIO(pdf))
    (signature,) = reader.embedded_signatures
    trusted = [load_cert_from_pemder(str(cert_file))]
    if tsa_ca is not None:
        trusted.append(load_cert_from_pemder(str(tsa_ca)))
    return validate_pdf_signature(signature, ValidationContext(trust_roots=trusted))


def text_of(pdf: bytes) -> str:
    from pypdf import PdfReader

    return "".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(pdf)).pages)


def test_the_certificate_is_a_signed_pdf_that_states_the_proof(
    stack: RunningStack, anchored: dict[str, Any], signer_files: tuple[Path, Path]
) -> None:
    bundle = anchored["bundle"]
    response = certificate(stack, anchored["id"], "zh-CN")
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/pdf"
    pdf = response.content
    assert pdf.startswith(b"%PDF")

    status = signature_status(pdf, signer_files[1], stack.settings.tsa_ca_file)
    assert status.intact and status.valid and status.trusted, status.pretty_print_details()
    assert status.bottom_line
    from pyhanko.keys import load_cert_from_pemder

    assert status.signing_cert.sha256 == load_cert_from_pemder(str(signer_files[1])).sha256
    stamp = status.timestamp_validity
    assert stamp is not None and stamp.intact and stamp.valid and stamp.trusted

    text = "".join(text_of(pdf).split())  # long hashes wrap across lines
    for value in (
        bundle["document"]["sha256"],
        bundle["anchor"]["tx_hash"],
        bundle["merkle"]["root"],
    ):
        assert value in text
    for chinese in ("电子证据存证证书", "交易哈希", "区块时间", "时间戳机构", "如何独立验证"):
        assert chinese in text
    assert bundle["timestamps"][0]["serial_number"] in text

    english = certificate(stack, anchored["id"], "en")
    assert english.status_code == 200
    english_text = text_of(english.content)
    assert "Evidence certificate" in english_text and "Transaction" in english_text
    assert signature_status(
        english.content, signer_files[1], stack.settings.tsa_ca_file
    ).bottom_line

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "certificate-zh-CN.pdf").write_bytes(pdf)
    (ARTIFACTS / "certificate-en.pdf").write_bytes(english.content)


def test_the_first_page_renders_for_a_person_to_look_at(
    stack: RunningStack, anchored: dict[str, Any]
) -> None:
    if shutil.which("pdftoppm") is None:
        message = "pdftoppm is not installed (apt-get install poppler-utils)"
        if IN_CI:
            pytest.fail(f"{message} (CI=true: this test must run, not skip)")
        pytest.skip(message)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for lang in ("zh-CN", "en"):
        pdf = ARTIFACTS / f"certificate-{lang}.pdf"
        pdf.write_bytes(certificate(stack, anchored["id"], lang).content)
        subprocess.run(
            ["pdftoppm", "-png", "-r", "110", "-f", "1", "-l", "1", "-singlefile",
             str(pdf), str(ARTIFACTS / f"certificate-{lang}")],
            check=True, timeout=60,
        )  # fmt: skip
        assert (ARTIFACTS / f"certificate-{lang}.png").stat().st_size > 10_000


def test_the_cli_writes_the_same_certificate(
    stack: RunningStack, anchored: dict[str, Any], signer_files: tuple[Path, Path], tmp_path: Path
) -> None:
    settings = stack.settings
    env = {
        **os.environ,
        "OFFERSEAL_DATA_DIR": str(settings.data_dir),
        "OFFERSEAL_DATABASE_URL": settings.database_url,
        "OFFERSEAL_CERTIFICATE_KEY": str(signer_files[0]),
        "OFFERSEAL_CERTIFICATE_CERT": str(signer_files[1]),
        "OFFERSEAL_LOG_LEVEL": "WARNING",
    }
    out = tmp_path / "cert.pdf"
    done = subprocess.run(
        [sys.executable, "-m", "offerseal.cli", "certificate", anchored["id"], "--lang", "en",
         "--out", str(out)],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert str(out) in done.stdout
    assert signature_status(out.read_bytes(), signer_files[1]).bottom_line
    assert anchored["bundle"]["anchor"]["tx_hash"] in "".join(text_of(out.read_bytes()).split())
    missing = subprocess.run(
        [sys.executable, "-m", "offerseal.cli", "certificate", "no-such-document"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert missing.returncode == 1 and "no document" in missing.stderr


def test_one_changed_byte_breaks_the_signature(
    stack: RunningStack, anchored: dict[str, Any], signer_files: tuple[Path, Path]
) -> None:
    pdf = certificate(stack, anchored["id"], "en").content
    tsa_ca = stack.settings.tsa_ca_file
    assert signature_status(pdf, signer_files[1], tsa_ca).bottom_line
    changed = bytearray(pdf)
    changed[len(pdf) // 3] ^= 0x01  # inside the signed range, before the signature
    try:
        status = signature_status(bytes(changed), signer_files[1], tsa_ca)
    except Exception:  # the change broke the file's structure: not valid either
        return
    assert not status.intact and not status.bottom_line


def test_who_may_fetch_a_certificate(stack: RunningStack, anchored: dict[str, Any]) -> None:
    doc_id = anchored["id"]
    for headers in (stack.hr, stack.legal, stack.admin):
        assert certificate(stack, doc_id, "en", headers).status_code == 200
    other = certificate(stack, doc_id, "en", stack.other_tenant)
    assert other.status_code == 404
    assert other.headers["Content-Type"].startswith("application/problem+json")
    assert certificate(stack, doc_id, "en", {}).status_code == 401
    bad_lang = certificate(stack, doc_id, "fr")
    assert bad_lang.status_code == 422, bad_lang.text
    assert "lang" in bad_lang.text
    missing = certificate(stack, "00000000-0000-4000-8000-000000000009", "en")
    assert missing.status_code == 404


def test_a_proof_from_this_stack_validates_against_the_published_schema(
    stack: RunningStack, anchored: dict[str, Any]
) -> None:
    """Also here: GET /v1/schemas serves the schema, with no key."""
    import jsonschema

    listing = requests.get(stack.url("/v1/schemas"), timeout=30)
    assert listing.status_code == 200
    assert {item["name"] for item in listing.json()["items"]} >= {
        "proof-bundle-1",
        "proof-bundle-2",
        "proof-bundle-3",
        "dossier-manifest-1",
    }
    manifest_schema = requests.get(stack.url("/v1/schemas/dossier-manifest-1.json"), timeout=30)
    assert manifest_schema.status_code == 200
    jsonschema.Draft202012Validator.check_schema(manifest_schema.json())
    assert manifest_schema.json()["properties"]["format"] == {"const": "offerseal-dossier-1"}
    served = requests.get(stack.url("/v1/schemas/proof-bundle-3.json"), timeout=30)
    assert served.status_code == 200
    assert served.headers["Content-Type"].startswith("application/schema+json")
    schema = served.json()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    validator.validate(anchored["bundle"])
    assert anchored["bundle"]["timestamps"], "a bundle with its RFC 3161 witness"
    assert anchored["bundle"]["document"]["sm3"], "uploaded with its bytes: its SM3 is stated"

    # A hash-only document's bundle carries a batch receipt (item and its path): valid too.
    sha = "0x" + hashlib.sha256(b"registered by hash").hexdigest()
    posted = requests.post(
        stack.url("/v1/documents/hashes"),
        json={"items": [{"kind": "other", "candidate_ref": "cand-h", "sha256": sha}]},
        headers=stack.hr,
        timeout=30,
    )
    assert posted.status_code == 201, posted.text
    hash_only = wait_for_proof(stack, posted.json()["items"][0]["id"])
    validator.validate(hash_only)
    assert "sm3" not in hash_only["document"]  # no bytes, no SM3 (the schema allows that)

    broken = copy.deepcopy(anchored["bundle"])
    broken["merkle"]["root"] = "0x1234"
    errors = list(validator.iter_errors(broken))
    assert errors and list(errors[0].absolute_path) == ["merkle", "root"]
    del broken["anchor"]
    assert not validator.is_valid(broken)

    old = requests.get(stack.url("/v1/schemas/proof-bundle-1"), timeout=30).json()
    v1 = {
        k: v
        for k, v in anchored["bundle"].items()
        if k not in ("witnesses", "timestamps", "deposits")
    }
    v1["document"] = {k: v for k, v in v1["document"].items() if k != "sm3"}
    jsonschema.Draft202012Validator(old).validate(dict(v1, format="offerseal-proof/1"))
    assert not jsonschema.Draft202012Validator(old).is_valid(anchored["bundle"])
    assert requests.get(stack.url("/v1/schemas/nope"), timeout=30).status_code == 404


def test_a_document_not_yet_anchored_has_no_certificate_yet(stack: RunningStack) -> None:
    """Last in this module: it stops the stack's anchoring worker."""
    stack.stack.evidence.workers.stop(15)
    posted = upload(stack, b"%PDF-1.4 still pending")
    assert posted.status_code == 201, posted.text
    response = certificate(stack, posted.json()["id"], "zh-CN")
    assert response.status_code == 409, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["title"] == "Certificate not available yet"
    assert "not anchored yet" in problem["detail"]

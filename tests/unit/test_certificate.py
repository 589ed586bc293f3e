"""The evidence certificate's pure parts: the facts it states, taken from a real bundle built by
the domain core; its layout in zh-CN and en (text extracted with pypdf); its PAdES signature with
pyHanko (a one-byte change breaks it); the signing key's settings; the published schemas."""

from __future__ import annotations

import copy
import datetime as dt
import io
import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from offerseal.evidence import certificate
from offerseal.evidence.certificate import (
    NotAnchored,
    certificate_facts,
    render_certificate,
    rows_of,
)
from offerseal.evidence.published import SCHEMAS, load_schema, schema_for_bundle, schema_name
from offerseal.shared import pdf as pdf_module
from offerseal.shared import secrets
from offerseal.shared.config import ConfigError, load_settings
from offerseal.shared.pdf import PdfSigningKey, sign_pdf
from offerseal_verify.proofs import AnchorFacts, build_bundle
from offerseal_verify.receipts import ReceiptSigner

SHA = "0x" + "ab" * 32
TX = "0x" + "11" * 32
REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
PROVENANCE = {
    "uploader": {"via": "api_key", "key_id": "0123456789abcdef", "key_name": "hr-portal"},
    "client_address": "203.0.113.7",
    "user_agent": "curl/8.5",
    "source": {"system": "ats", "ref": "A-17"},
    "email": {
        "from": "HR <hr@old-employer.example>",
        "dkim": {"result": "pass", "domain": "old-employer.example", "detail": "verified"},
    },
}


def bundle(tx_hash: str = TX, stamps: bool = True) -> dict[str, Any]:
    signer = ReceiptSigner.from_seed(b"\x01" * 32)
    receipt = signer.sign({"document_id": "doc-1", "sha256": SHA, "provenance": PROVENANCE})
    return build_bundle(
        document={"id": "doc-1", "sha256": SHA, "kind": "resignation_acceptance",
                  "received_at": "2026-11-26T02:00:00Z"},
        salt=os.urandom(32),
        proof=[b"\x02" * 32, b"\x03" * 32],
        root=b"\x04" * 32,
        anchor=AnchorFacts(31337, REGISTRY, tx_hash, 12, "0x" + "22" * 32, 1_764_122_400),
        receipt=receipt,
        timestamps=[{"type": "rfc3161", "tsa": "http://tsa.test/", "hash_algorithm": "sha256",
                     "gen_time": "2026-11-26T02:00:01Z", "serial_number": "4242",
                     "policy": "1.2.3.4", "response": "AAAA", "certificates": []}]
        if stamps else [],
    )  # fmt: skip


DESCRIPTION = {
    "id": "doc-1",
    "sha256": SHA,
    "kind": "resignation_acceptance",
    "filename": "离职证明.pdf",
    "size": 20480,
    "received_at": "2026-11-26T02:00:00Z",
    "status": "anchored",
    "provenance": PROVENANCE,
}


def test_the_facts_come_from_the_description_and_the_bundle() -> None:
    facts = certificate_facts(DESCRIPTION, bundle())
    assert facts.sha256 == SHA and facts.tx_hash == TX and facts.registry == REGISTRY
    assert facts.filename == "离职证明.pdf" and facts.size == 20480
    assert facts.block_number == 12 and facts.block_time == "2025-11-26 02:00:00 UTC"
    assert len(facts.path) == 2 and facts.proof_format == "offerseal-proof/3"
    assert facts.stamps == ({"tsa": "http://tsa.test/", "gen_time": "2026-11-26T02:00:01Z",
                             "serial_number": "4242"},)  # fmt: skip
    assert facts.uploader["key_name"] == "hr-portal" and facts.client_address == "203.0.113.7"


def test_a_bundle_without_its_transaction_has_no_certificate() -> None:
    with pytest.raises(NotAnchored):
        certificate_facts(DESCRIPTION, bundle(tx_hash=""))


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        ("zh-CN", ["原始文件名", "接收时间", "API 密钥 hr-portal", "交易哈希", "时间戳机构"]),
        ("en", ["Original file name", "Received at", "API key hr-portal", "Transaction", "Time"]),
    ],
)
def test_every_section_is_labelled_in_both_languages(lang: str, expected: list[str]) -> None:
    sections = rows_of(certificate_facts(DESCRIPTION, bundle()), lang)
    text = " ".join(f"{k} {v}" for _head, rows in sections for k, v in rows)
    for item in expected:
        assert item in text
    assert "ats" in text and "old-employer.example" in text and "203.0.113.7" in text
    assert len(sections) == 5


def test_without_a_stamp_the_section_says_so() -> None:
    sections = rows_of(certificate_facts(DESCRIPTION, bundle(stamps=False)), "en")
    assert sections[3][1] == []
    pdf = render(certificate_facts(DESCRIPTION, bundle(stamps=False)), "en")
    assert "carries no RFC 3161 time-stamp" in text_of(pdf)


def test_the_sm3_and_each_judicial_deposit_are_stated() -> None:
    sm3 = "0x" + "cd" * 32
    good = bundle()
    good["document"]["sm3"] = sm3
    good["deposits"] = [
        {"type": "tencent-btoe", "hash_algorithm": "sm3", "hash": "ef" * 32,
         "evidence_id": "ev-42", "tx_hash": "0x" + "99" * 32,
         "evidence_time": "2026-11-26 10:00:02", "block_height": 800}
    ]  # fmt: skip
    facts = certificate_facts(DESCRIPTION, good)
    assert facts.sm3 == sm3
    zh = dict(rows_of(facts, "zh-CN")[0][1])
    assert zh["SM3 哈希值 (GB/T 32905)"] == sm3
    deposit = dict(rows_of(facts, "zh-CN")[4][1])
    assert deposit["存证平台"] == "腾讯云 BTOE" and deposit["存证编码"] == "ev-42"
    assert deposit["存证哈希值"] == "SM3 " + "ef" * 32
    text = "".join(text_of(render(facts, "zh-CN")).split())
    assert "ev-42" in text and "司法区块链存证" in text and sm3 in text
    bare = rows_of(certificate_facts(DESCRIPTION, bundle()), "en")
    assert "registered by hash only" in dict(bare[0][1])["SM3 (GB/T 32905)"]
    assert "no judicial-chain deposit" in dict(bare[4][1])["Note"]


def render(facts: certificate.Facts, lang: str) -> bytes:
    return render_certificate(
        facts,
        lang=lang,
        verify_url="https://people.example/verify",
        software="OfferSeal 0.1.0",
        issued_at=dt.datetime(2026, 11, 26, 3, 0, tzinfo=dt.UTC),
    )


def text_of(pdf: bytes) -> str:
    from pypdf import PdfReader

    return "".join((p.extract_text() or "") for p in PdfReader(io.BytesIO(pdf)).pages)


def test_the_pdf_states_the_proof_in_chinese() -> None:
    pdf = render(certificate_facts(DESCRIPTION, bundle()), "zh-CN")
    assert pdf.startswith(b"%PDF")
    text = "".join(text_of(pdf).split())
    for item in (SHA, TX, "电子证据存证证书", "如何独立验证", "https://people.example/verify"):
        assert item in text


def test_without_the_wqy_font_chinese_falls_back_to_the_cid_font(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pdf_module, "WQY_PATHS", (Path("/nonexistent.ttc"),))
    monkeypatch.setattr(pdf_module, "_FONT", None)
    assert pdf_module.cjk_font() == pdf_module.CID_FALLBACK
    pdf = render(certificate_facts(DESCRIPTION, bundle()), "zh-CN")
    assert b"STSong-Light" in pdf
    assert "电子证据存证证书" in text_of(pdf)
    monkeypatch.setattr(pdf_module, "_FONT", None)


def test_an_unknown_language_is_refused() -> None:
    with pytest.raises(ValueError, match="lang"):
        render(certificate_facts(DESCRIPTION, bundle()), "fr")


@pytest.fixture
def signing_key(tmp_path: Path) -> PdfSigningKey:
    key, cert = secrets.certificate_signing_pem(load_settings({}, data_dir=tmp_path))
    return PdfSigningKey(key, cert)


def validate(pdf: bytes, cert_pem: bytes) -> Any:
    from pyhanko.keys import load_certs_from_pemder_data
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    (signature,) = PdfFileReader(io.BytesIO(pdf)).embedded_signatures
    context = ValidationContext(trust_roots=list(load_certs_from_pemder_data(cert_pem)))
    return validate_pdf_signature(signature, context)


def test_the_signed_pdf_validates_and_one_byte_breaks_it(signing_key: PdfSigningKey) -> None:
    pdf = render(certificate_facts(DESCRIPTION, bundle()), "en")
    signed = sign_pdf(pdf, signing_key, reason="test")
    status = validate(signed, signing_key.cert_pem)
    assert status.intact and status.valid and status.trusted and status.bottom_line
    assert "Evidence certificate" in text_of(signed)
    changed = bytearray(signed)
    changed[len(signed) // 3] ^= 0x01
    try:
        broken = validate(bytes(changed), signing_key.cert_pem)
    except Exception:
        return
    assert not broken.intact and not broken.bottom_line


def test_a_tsa_that_does_not_answer_leaves_the_pdf_signed(signing_key: PdfSigningKey) -> None:
    pdf = render(certificate_facts(DESCRIPTION, bundle()), "en")
    signed = sign_pdf(pdf, signing_key, timestamp_url="http://127.0.0.1:9/")
    status = validate(signed, signing_key.cert_pem)
    assert status.bottom_line and status.timestamp_validity is None


def test_the_development_certificate_is_made_once(tmp_path: Path) -> None:
    settings = load_settings({}, data_dir=tmp_path)
    first = secrets.certificate_signing_pem(settings)
    assert first == secrets.certificate_signing_pem(settings)
    assert (tmp_path / "secrets" / "certificate-key.pem").stat().st_mode & 0o777 == 0o600


def test_the_configured_key_is_pem_text_or_a_file(tmp_path: Path) -> None:
    key, cert = secrets.certificate_signing_pem(load_settings({}, data_dir=tmp_path / "a"))
    (tmp_path / "cert.pem").write_bytes(cert)
    env = {
        "OFFERSEAL_CERTIFICATE_KEY": key.decode(),
        "OFFERSEAL_CERTIFICATE_CERT": str(tmp_path / "cert.pem"),
    }
    settings = load_settings(env, data_dir=tmp_path / "b")
    assert secrets.certificate_signing_pem(settings) == (key.strip() + b"\n", cert)
    assert "BEGIN" not in str(settings.redacted())
    with pytest.raises(ConfigError, match="OFFERSEAL_CERTIFICATE_CERT"):
        secrets.certificate_signing_pem(
            load_settings({"OFFERSEAL_CERTIFICATE_KEY": key.decode()}, data_dir=tmp_path)
        )
    with pytest.raises(ConfigError, match="OFFERSEAL_CERTIFICATE_CERT must be PEM"):
        secrets.certificate_signing_pem(
            load_settings(dict(env, OFFERSEAL_CERTIFICATE_CERT="/no/such.pem"), data_dir=tmp_path)
        )


def test_the_published_schemas_are_valid_and_accept_a_built_bundle() -> None:
    for name in SCHEMAS:
        jsonschema.Draft202012Validator.check_schema(load_schema(name))
    good = bundle()
    assert schema_for_bundle(good) == "proof-bundle-3"
    validator = jsonschema.Draft202012Validator(load_schema("proof-bundle-3"))
    validator.validate(good)
    validator.validate(bundle(stamps=False))
    for path, value in ((("document", "sha256"), "0xnothex"), (("anchor", "chain_id"), "1")):
        broken = copy.deepcopy(good)
        broken[path[0]][path[1]] = value
        assert [list(e.absolute_path) for e in validator.iter_errors(broken)] == [list(path)]
    extra = dict(copy.deepcopy(good), witnesses=["ethereum", "carrier-pigeon"])
    assert not validator.is_valid(extra)
    assert schema_name("proof-bundle-1.json") == "proof-bundle-1" and schema_name("x") is None

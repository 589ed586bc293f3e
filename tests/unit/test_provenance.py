"""Provenance recorded at intake: source metadata is bounded, and an e-mail's DKIM signature is
checked with dkimpy against records a test DNS function serves (no network): a signed message
passes, a modified one fails, an unsigned one says none, a DNS that does not answer is a
temporary error. Receipts of format 1 (before provenance) still verify."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from offerseal.evidence.provenance import SourceInvalid, check_email, check_source, is_email
from offerseal_verify.receipts import ReceiptSigner, key_id_of, verify_receipt

DOMAIN = "old-employer.example"
SELECTOR = "hr2026"

MESSAGE = (
    b"From: HR <hr@old-employer.example>\r\n"
    b"To: Li Wei <li.wei@mail.example>\r\n"
    b"Subject: Resignation accepted\r\n"
    b"Date: Tue, 24 Nov 2026 10:00:00 +0800\r\n"
    b"Message-ID: <accept-42@old-employer.example>\r\n"
    b"\r\n"
    b"Your resignation is accepted; your last working day is 2026-12-31.\r\n"
)


def dkim_key() -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


PRIVATE, RECORD = dkim_key()


def dns(records: dict[bytes, bytes]) -> Callable[..., bytes | None]:
    def lookup(name: bytes, timeout: float = 5) -> bytes | None:
        return records.get(name)

    return lookup


PUBLISHED = dns({f"{SELECTOR}._domainkey.{DOMAIN}.".encode(): RECORD})


def signed(message: bytes = MESSAGE) -> bytes:
    signature = dkim.sign(message, SELECTOR.encode(), DOMAIN.encode(), PRIVATE)
    return signature + message


def test_a_dkim_signed_message_passes_and_names_its_domain() -> None:
    facts = check_email(signed(), PUBLISHED)
    assert facts["dkim"]["result"] == "pass", facts
    assert facts["dkim"]["domain"] == DOMAIN and facts["dkim"]["selector"] == SELECTOR
    assert facts["dkim"]["aligned_with_from"] is True
    assert facts["message_id"] == "<accept-42@old-employer.example>"
    assert "hr@old-employer.example" in facts["from"]


def test_a_modified_message_fails() -> None:
    modified = signed().replace(b"2026-12-31", b"2027-03-31")
    assert check_email(modified, PUBLISHED)["dkim"]["result"] == "fail"


def test_a_key_nobody_publishes_fails() -> None:
    assert check_email(signed(), dns({}))["dkim"]["result"] == "fail"


def test_an_unsigned_message_says_none() -> None:
    assert check_email(MESSAGE, PUBLISHED)["dkim"] == {
        "result": "none",
        "detail": "the message carries no DKIM-Signature",
    }


def test_dns_that_does_not_answer_is_a_temporary_error() -> None:
    def down(name: bytes, timeout: float = 5) -> bytes | None:
        raise dkim.DnsTimeoutError("no answer")

    assert check_email(signed(), down)["dkim"]["result"] == "temperror"


def test_a_signature_of_another_domain_is_not_aligned() -> None:
    other = dkim.sign(MESSAGE, b"s1", b"mailer.example", PRIVATE) + MESSAGE
    facts = check_email(other, dns({b"s1._domainkey.mailer.example.": RECORD}))
    assert facts["dkim"]["result"] == "pass"
    assert facts["dkim"]["aligned_with_from"] is False


@pytest.mark.parametrize(
    ("name", "ctype", "expected"),
    [("fwd.eml", None, True), ("x.EML", None, True), (None, "message/rfc822", True),
     ("a.pdf", "application/pdf", False), (None, None, False)],
)  # fmt: skip
def test_what_counts_as_an_email(name: str | None, ctype: str | None, expected: bool) -> None:
    assert is_email(name, ctype) is expected


@pytest.mark.parametrize(
    "bad",
    [[], "x", {"": "a"}, {"k" * 65: "a"}, {"k": 1}, {"k": "v" * 501},
     {f"k{i}": "v" for i in range(21)}],
)  # fmt: skip
def test_source_metadata_is_bounded(bad: object) -> None:
    with pytest.raises(SourceInvalid):
        check_source(bad)


def test_source_metadata_is_kept_as_given() -> None:
    assert check_source({"system": "Moka HR", "record": "R-2291"}) == {
        "system": "Moka HR",
        "record": "R-2291",
    }


def test_receipts_of_format_1_still_verify() -> None:
    signer = ReceiptSigner.from_seed(os.urandom(32))
    payload = {
        "format": "offerseal-intake-receipt/1",
        "key_id": signer.key_id,
        "document_id": "d-1",
        "received_at": "2026-11-25T16:20:00.000000Z",
    }
    old = signer._envelope(payload)
    ok, detail, _ = verify_receipt(old, {signer.key_id: signer.public_raw})
    assert ok, detail
    new = signer.sign({"document_id": "d-2", "received_at": "2026-11-25T16:20:00.000000Z",
                       "provenance": {"client_address": "192.0.2.7"}})  # fmt: skip
    assert new["payload"]["format"] == "offerseal-intake-receipt/2"
    assert verify_receipt(new, None)[0]
    forged = {**new, "payload": {**new["payload"], "provenance": {"client_address": "10.0.0.1"}}}
    assert verify_receipt(forged, {key_id_of(signer.public_raw): signer.public_raw})[0] is False

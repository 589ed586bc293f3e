"""Provenance in the signed intake receipt, with the real stack (HTTP, SQLite, Anvil): the API
key's name or the candidate's link, the client's address and user agent, the original file name,
the declared kind and the source metadata are signed into the receipt; an e-mail's DKIM result
is recorded (the DNS answers come from a function the test gives, so no network is needed)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from offerseal.shared import secrets
from offerseal.shared.auth import create_key
from offerseal.shared.links import PURPOSE_UPLOAD, Link, LinkSigner
from offerseal_verify.receipts import TrustedKey, parse_time, verify_receipt
from tests.conftest import RunningStack, make_settings, start_stack, upload, wait_for_proof
from tests.unit.test_provenance import MESSAGE, PUBLISHED, signed

pytestmark = pytest.mark.chain


@pytest.fixture
def stack(tmp_path: Path, sqlite_url: str, anvil: Any) -> Iterator[RunningStack]:
    settings = make_settings(tmp_path, sqlite_url, anvil.url, extra={"dkim_dns": PUBLISHED})
    running = start_stack(settings)
    yield running
    running.stack.stop()


def trusted(stack: RunningStack) -> dict[str, TrustedKey]:
    keys = requests.get(stack.url("/v1/keys"), timeout=10).json()["keys"]
    return {
        k["key_id"]: TrustedKey(
            bytes.fromhex(k["public_key_hex"]),
            parse_time(k["valid_from"]) if k["valid_from"] else None,
            parse_time(k["valid_until"]) if k["valid_until"] else None,
        )
        for k in keys
    }


def signed_provenance(stack: RunningStack, receipt: dict[str, Any]) -> dict[str, Any]:
    ok, detail, statement = verify_receipt(receipt, trusted(stack))
    assert ok, detail
    assert receipt["payload"]["format"] == "offerseal-intake-receipt/2"
    provenance: dict[str, Any] = statement["provenance"]
    return provenance


def post_file(
    stack: RunningStack, name: str, content: bytes, ctype: str, **fields: str
) -> requests.Response:
    return requests.post(
        stack.url("/v1/documents"),
        headers={**stack.hr, "User-Agent": "MokaHR-sync/4.2"},
        data={"kind": "resignation_acceptance", "candidate_ref": "cand-9", **fields},
        files={"file": (name, content, ctype)},
        timeout=30,
    )


def test_the_receipt_signs_who_sent_what_from_where(stack: RunningStack) -> None:
    _, token = create_key(stack.db, "hr", "acme", "Moka HR sync")
    headers = {"Authorization": f"Bearer {token}", "User-Agent": "MokaHR-sync/4.2"}
    source = {"system": "Moka HR", "record": "R-2291", "received_via": "scanner"}
    response = requests.post(
        stack.url("/v1/documents"),
        headers=headers,
        data={"kind": "offer_letter", "candidate_ref": "cand-9", "source": json.dumps(source)},
        files={"file": ("录用通知书.pdf", b"%PDF-1.7 offer " + os.urandom(8), "application/pdf")},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    provenance = signed_provenance(stack, response.json()["intake_receipt"])
    assert provenance["uploader"]["via"] == "api_key"
    assert provenance["uploader"]["key_name"] == "Moka HR sync"
    assert provenance["client_address"] == "127.0.0.1"
    assert provenance["user_agent"] == "MokaHR-sync/4.2"
    assert provenance["file_name"] == "录用通知书.pdf"
    assert provenance["content_type"] == "application/pdf"
    assert provenance["declared_kind"] == "offer_letter"
    assert provenance["source"] == source
    assert "email" not in provenance

    doc_id = response.json()["id"]
    described = requests.get(stack.url(f"/v1/documents/{doc_id}"), headers=stack.hr, timeout=10)
    assert described.json()["provenance"] == provenance
    # The anchored bundle carries the receipt, and its signature covers the provenance.
    bundle = wait_for_proof(stack, doc_id)
    bundle["intake_receipt"]["payload"]["provenance"]["client_address"] = "203.0.113.9"
    verdict = requests.post(stack.url("/v1/verify"), json={"proof": bundle}, timeout=30).json()
    assert "receipt_signature" in verdict["failed"]


def test_a_dkim_signed_email_records_pass_and_a_modified_one_fail(stack: RunningStack) -> None:
    genuine = post_file(stack, "acceptance.eml", signed(), "message/rfc822")
    assert genuine.status_code == 201, genuine.text
    email = signed_provenance(stack, genuine.json()["intake_receipt"])["email"]
    assert email["dkim"]["result"] == "pass", email
    assert email["dkim"]["domain"] == "old-employer.example"
    assert email["dkim"]["aligned_with_from"] is True
    assert email["message_id"] == "<accept-42@old-employer.example>"

    modified = signed().replace(b"2026-12-31", b"2027-03-31")
    forged = post_file(stack, "acceptance.eml", modified, "application/octet-stream")
    email = signed_provenance(stack, forged.json()["intake_receipt"])["email"]
    assert email["dkim"]["result"] == "fail"
    assert "body hash" in email["dkim"]["detail"]

    unsigned = post_file(stack, "note.eml", MESSAGE, "message/rfc822")
    assert signed_provenance(stack, unsigned.json()["intake_receipt"])["email"]["dkim"] == {
        "result": "none",
        "detail": "the message carries no DKIM-Signature",
    }


@pytest.mark.parametrize(
    "source", ["not json", "[1, 2]", json.dumps({"k": 1}), json.dumps({"k" * 65: "v"})]
)
def test_bad_source_metadata_is_422_naming_the_field(stack: RunningStack, source: str) -> None:
    response = post_file(stack, "a.pdf", b"%PDF " + os.urandom(4), "application/pdf", source=source)
    assert response.status_code == 422, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["errors"][0]["field"] == "source"


def test_hash_only_intake_signs_the_requests_provenance(stack: RunningStack) -> None:
    items = [
        {"sha256": "0x" + os.urandom(32).hex(), "kind": "salary_statement", "candidate_ref": "c"}
    ]
    response = requests.post(
        stack.url("/v1/documents/hashes"),
        headers={**stack.hr, "User-Agent": "payroll-export/1"},
        json={"items": items, "source": {"system": "payroll"}},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    batch = response.json()["intake_receipt"]
    assert batch["payload"]["format"] == "offerseal-intake-batch/2"
    provenance = batch["payload"]["provenance"]
    assert provenance["user_agent"] == "payroll-export/1"
    assert provenance["source"] == {"system": "payroll"}
    assert provenance["uploader"]["via"] == "api_key"


def test_a_candidates_upload_names_the_link(stack: RunningStack) -> None:
    signer = LinkSigner(secrets.link_secret(stack.settings))
    token = signer.issue(
        Link("acme", "ag-7", "cand-9", PURPOSE_UPLOAD, int(time.time()) + 3600,
             subject="resignation_accepted")
    )  # fmt: skip
    response = requests.post(
        stack.url(f"/v1/uploads/{token}"),
        headers={"User-Agent": "Mozilla/5.0 (iPhone)"},
        files={"file": ("stamped.eml", signed(), "message/rfc822")},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    provenance = signed_provenance(stack, response.json()["intake_receipt"])
    assert provenance["uploader"] == {
        "via": "candidate_link",
        "agreement_id": "ag-7",
        "milestone": "resignation_accepted",
        "candidate_ref": "cand-9",
    }
    assert provenance["user_agent"] == "Mozilla/5.0 (iPhone)"
    assert provenance["declared_kind"] == "resignation_acceptance"
    assert provenance["email"]["dkim"]["result"] == "pass"


def test_existing_uploads_still_work_and_verify(stack: RunningStack) -> None:
    content = b"plain " + os.urandom(8)
    doc_id = upload(stack, content).json()["id"]
    bundle = wait_for_proof(stack, doc_id)
    verdict = requests.post(
        stack.url("/v1/verify"),
        files={"file": ("d", content), "proof": ("p.json", json.dumps(bundle))},
        timeout=30,
    ).json()
    assert verdict["valid"], verdict

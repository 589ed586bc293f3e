"""The evidence HTTP API end to end over real HTTP, on SQLite and PostgreSQL, with Anvil."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from typing import Any

import pytest
import requests
from sqlalchemy import select, text, update

from offerseal.evidence.models import BatchMember, Document
from offerseal_verify.merkle import MerkleTree
from offerseal_verify.receipts import item_leaf, verify_receipt
from tests.conftest import RunningStack, upload, wait_for_proof

pytestmark = pytest.mark.chain

PROBLEM = "application/problem+json"


def test_upload_anchor_proof_and_verify(evidence: RunningStack) -> None:
    content = b"%PDF-1.7 resignation application " + os.urandom(64)
    response = upload(evidence, content, agreement_id="ag-7", milestone="resignation_submitted")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "pending"
    assert body["sha256"] == "0x" + hashlib.sha256(content).hexdigest()
    assert response.headers["Location"] == f"/v1/documents/{body['id']}"
    receipt = body["intake_receipt"]["payload"]
    assert receipt["document_id"] == body["id"] and receipt["size"] == len(content)
    assert receipt["tenant"] == "acme" and receipt["sequence"] >= 1
    # SM3 (GB/T 32905) of the plaintext, taken at intake (the bytes are stored encrypted).
    sm3 = "0x" + hashlib.new("sm3", content).hexdigest()
    assert receipt["sm3"] == sm3 and body["sm3"] == sm3

    pending = requests.get(
        evidence.url(f"/v1/documents/{body['id']}/proof"), headers=evidence.hr, timeout=10
    )
    if pending.status_code == 409:
        assert pending.headers["Content-Type"] == PROBLEM

    bundle = wait_for_proof(evidence, body["id"])
    assert bundle["format"] == "offerseal-proof/3"
    assert bundle["document"]["sm3"] == sm3
    assert bundle["anchor"]["chain_id"] == 31337
    meta = requests.get(
        evidence.url(f"/v1/documents/{body['id']}"), headers=evidence.legal, timeout=10
    ).json()
    assert meta["status"] == "anchored" and meta["anchor"]["tx_hash"] == bundle["anchor"]["tx_hash"]
    assert meta["agreement_id"] == "ag-7" and meta["sm3"] == sm3

    # /v1/verify needs no key: the genuine file passes, a one-byte change fails by name.
    ok = requests.post(
        evidence.url("/v1/verify"),
        files={"file": content},
        data={"proof": json.dumps(bundle)},
        timeout=10,
    ).json()
    assert ok["valid"], ok
    assert {c["name"]: c["status"] for c in ok["checks"]}["document_sm3"] == "pass"
    tampered = bytearray(content)
    tampered[-1] ^= 1
    bad = requests.post(
        evidence.url("/v1/verify"),
        files={"file": bytes(tampered)},
        data={"proof": json.dumps(bundle)},
        timeout=10,
    ).json()
    assert bad["valid"] is False and bad["failed"] == ["document_hash", "document_sm3"]
    as_json = requests.post(
        evidence.url("/v1/verify"), timeout=10, json={"proof": bundle, "sha256": body["sha256"]}
    ).json()
    assert as_json["valid"]


def test_content_is_decrypted_for_readers_and_encrypted_at_rest(evidence: RunningStack) -> None:
    marker = b"PLAINTEXT-MARKER-" + os.urandom(8).hex().encode()
    doc_id = upload(evidence, marker * 50).json()["id"]
    got = requests.get(
        evidence.url(f"/v1/documents/{doc_id}/content"), headers=evidence.legal, timeout=10
    )
    assert got.status_code == 200 and got.content == marker * 50
    assert got.headers["Cache-Control"] == "no-store"
    with evidence.db.engine.connect() as conn:
        stored = conn.execute(text("SELECT ciphertext FROM document_blobs")).scalars().all()
    assert stored and all(marker not in bytes(blob) for blob in stored)
    if evidence.db.url.startswith("sqlite"):
        path = evidence.db.url.removeprefix("sqlite:///")
        for suffix in ("", "-wal"):
            if os.path.exists(path + suffix):
                with open(path + suffix, "rb") as fh:
                    assert marker not in fh.read()


def test_idempotency_key_replays_or_conflicts(evidence: RunningStack) -> None:
    headers = {**evidence.hr, "Idempotency-Key": "upload-42"}
    first = upload(evidence, b"same body", headers=headers)
    again = upload(evidence, b"same body", headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    different = upload(evidence, b"another body", headers=headers)
    assert different.status_code == 409
    assert different.headers["Content-Type"] == PROBLEM
    listed = requests.get(evidence.url("/v1/documents"), headers=evidence.hr, timeout=10).json()
    assert len(listed["items"]) == 1


def test_hash_only_batch_intake(evidence: RunningStack) -> None:
    items = [
        {
            "sha256": "0x" + hashlib.sha256(str(i).encode()).hexdigest(),
            "kind": "salary_statement",
            "candidate_ref": f"cand-{i % 3}",
        }
        for i in range(500)
    ]
    response = requests.post(
        evidence.url("/v1/documents/hashes"), headers=evidence.hr, json={"items": items}, timeout=60
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["count"] == 500
    sequences = [i["sequence"] for i in body["items"]]
    assert sequences == sorted(sequences) and len(set(sequences)) == 500
    # One signature for the request; each document's receipt proves its own statement in it.
    assert body["intake_receipt"]["payload"]["count"] == 500
    last = body["items"][-1]
    bundle = wait_for_proof(evidence, last["id"])
    receipt = bundle["intake_receipt"]
    assert receipt["signature"] == body["intake_receipt"]["signature"]
    assert receipt["item"]["sha256"] == last["sha256"] and receipt["item"]["size"] is None
    # Registered by hash only: OfferSeal never had the bytes, so there is no SM3 to state.
    assert "sm3" not in receipt["item"] and "sm3" not in bundle["document"]
    verdict = requests.post(
        evidence.url("/v1/verify"), timeout=10, json={"proof": bundle, "sha256": last["sha256"]}
    ).json()
    assert verdict["valid"], verdict

    # The batch receipt and its statements' leaves are stored once; a row keeps no path
    # (JSON null). What is served is the receipt as signed: the batch receipt, the statement,
    # the path, in that order; the path is the one a tree of every statement in the request
    # gives, built here from the answers alone.
    with evidence.db.sessions() as session:
        stored = session.execute(
            text("SELECT receipt, intake_batch_id FROM documents WHERE id = :id"),
            {"id": last["id"]},
        ).one()
        batches = session.execute(text("SELECT count(*) FROM intake_batches")).scalar()
        leaves = session.execute(
            text("SELECT leaves FROM intake_batches WHERE id = :id"), {"id": stored[1]}
        ).scalar_one()
        member_proof = session.execute(
            text(
                "SELECT m.proof FROM batch_members m JOIN documents d ON d.seq = m.document_seq"
                " WHERE d.id = :id"
            ),
            {"id": last["id"]},
        ).scalar_one()
    assert stored[0] in (None, "null") and member_proof in (None, "null")
    assert stored[1] is not None and batches == 1 and len(leaves) == 500 * 32

    def statement(answer: dict[str, Any]) -> dict[str, Any]:
        return {
            "document_id": answer["id"],
            "sha256": answer["sha256"],
            "size": None,
            "kind": "salary_statement",
            "sequence": answer["sequence"],
            "content_stored": False,
        }

    tree = MerkleTree.build([item_leaf(statement(a)) for a in body["items"]])
    path = ["0x" + p.hex() for p in tree.proof(item_leaf(statement(last)))]
    expected = dict(body["intake_receipt"], item=statement(last), item_proof=path)
    served = requests.get(
        evidence.url(f"/v1/documents/{last['id']}"), headers=evidence.hr, timeout=10
    ).json()["intake_receipt"]
    assert served == expected == receipt
    assert json.dumps(served, sort_keys=True) == json.dumps(expected, sort_keys=True)
    ok, _detail, checked = verify_receipt(served, None)
    assert ok and checked["document_id"] == last["id"]
    # A row stored before the trees were (its own path, its member's proof) is served from it.
    with evidence.db.sessions() as session:
        seq = session.execute(select(Document.seq).where(Document.id == last["id"])).scalar_one()

    def store_paths(receipt: dict[str, Any] | None, proof: list[str] | None) -> None:
        with evidence.db.transaction() as session:
            session.execute(update(Document).where(Document.seq == seq).values(receipt=receipt))
            session.execute(
                update(BatchMember).where(BatchMember.document_seq == seq).values(proof=proof)
            )

    store_paths({"item_proof": ["0x" + "11" * 32]}, ["0x" + "22" * 32])
    old = requests.get(
        evidence.url(f"/v1/documents/{last['id']}/proof"), headers=evidence.hr, timeout=10
    ).json()
    assert old["intake_receipt"]["item_proof"] == ["0x" + "11" * 32]
    assert old["merkle"]["proof"] == ["0x" + "22" * 32]
    store_paths(None, None)  # as it was, for what follows
    # ... and the command line verifies the bundle with the document's bytes.
    folder = evidence.settings.data_dir / "verify-hash-only"
    folder.mkdir()
    (folder / "doc").write_bytes(b"499")
    (folder / "proof.json").write_text(json.dumps(bundle))
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "offerseal.cli",
            "verify",
            str(folder / "doc"),
            str(folder / "proof.json"),
            "--rpc",
            evidence.rpc_url,
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert json.loads(cli.stdout)["valid"]

    content = requests.get(
        evidence.url(f"/v1/documents/{body['items'][0]['id']}/content"),
        headers=evidence.hr,
        timeout=10,
    )
    assert content.status_code == 404 and content.headers["Content-Type"] == PROBLEM


def test_hash_only_batch_keeps_odd_text_and_every_stored_path_verifies(
    evidence: RunningStack,
) -> None:
    """The rows are written as COPY text: tabs, line breaks, backslashes and `\\N` in the
    client's fields come back as sent, and every document's receipt (the batch receipt, its
    statement and its stored path) verifies."""
    refs = ["tab\there", "line\nbreak", "back\\slash", "crlf\r\n", "é ü 中", "\\N", "plain"]
    items = [
        {
            "sha256": "0x" + hashlib.sha256(f"odd {i}".encode()).hexdigest(),
            "kind": "other",
            "candidate_ref": refs[i % len(refs)],
            **({"agreement_id": "agr\t1", "milestone": "m\\1"} if i % 2 else {}),
        }
        for i in range(60)
    ]
    response = requests.post(
        evidence.url("/v1/documents/hashes"), headers=evidence.hr, json={"items": items}, timeout=60
    )
    assert response.status_code == 201, response.text
    body = response.json()
    for item, answer in zip(items, body["items"], strict=True):
        doc = requests.get(
            evidence.url(f"/v1/documents/{answer['id']}"), headers=evidence.hr, timeout=10
        ).json()
        assert doc["candidate_ref"] == item["candidate_ref"]
        assert doc["agreement_id"] == item.get("agreement_id")
        assert doc["milestone"] == item.get("milestone")
        assert doc["sha256"] == item["sha256"] and doc["has_content"] is False
        receipt = doc["intake_receipt"]
        assert receipt["signature"] == body["intake_receipt"]["signature"]
        ok, detail, statement = verify_receipt(receipt, None)
        assert ok, detail
        assert statement == {
            "document_id": answer["id"],
            "sha256": item["sha256"],
            "size": None,
            "kind": "other",
            "sequence": answer["sequence"],
            "content_stored": False,
        }


def test_a_large_batch_with_one_bad_item_names_that_item(evidence_sqlite: RunningStack) -> None:
    items = [
        {"sha256": "0x" + f"{i:064x}", "kind": "other", "candidate_ref": f"c{i}"}
        for i in range(5000)
    ]
    for index, bad, field in (
        (1717, {"sha256": "0x" + "g" * 64}, "items.1717.sha256"),
        (4999, {"candidate_ref": ""}, "items.4999.candidate_ref"),
        (3, {"kind": "passport"}, "items.3.kind"),
        (42, {"colour": "red"}, "items.42.colour"),
    ):
        batch = [dict(item) for item in items]
        batch[index].update(bad)
        response = requests.post(
            evidence_sqlite.url("/v1/documents/hashes"),
            headers=evidence_sqlite.hr,
            json={"items": batch},
            timeout=60,
        )
        assert response.status_code == 422, response.text
        assert response.headers["Content-Type"] == PROBLEM
        assert [e["field"] for e in response.json()["errors"]] == [field]


def test_list_is_paginated_and_filtered_by_candidate(evidence: RunningStack) -> None:
    for i in range(5):
        upload(evidence, f"doc {i}".encode(), candidate_ref="cand-a" if i % 2 == 0 else "cand-b")
    page = requests.get(
        evidence.url("/v1/documents?candidate_ref=cand-a&limit=2"), headers=evidence.hr, timeout=10
    ).json()
    assert len(page["items"]) == 2 and page["next"]
    rest = requests.get(evidence.url(page["next"]), headers=evidence.hr, timeout=10).json()
    assert len(rest["items"]) == 1 and rest["next"] is None
    assert {d["candidate_ref"] for d in page["items"] + rest["items"]} == {"cand-a"}


def test_roles_and_tenants(evidence: RunningStack) -> None:
    doc_id = upload(evidence, b"acme's document").json()["id"]
    for path in (
        f"/v1/documents/{doc_id}",
        f"/v1/documents/{doc_id}/content",
        f"/v1/documents/{doc_id}/proof",
    ):
        foreign = requests.get(evidence.url(path), headers=evidence.other_tenant, timeout=10)
        assert foreign.status_code == 404, path  # no existence leak
        assert foreign.json()["status"] == 404
        anonymous = requests.get(evidence.url(path), timeout=10)
        assert anonymous.status_code == 401
    assert (
        requests.get(
            evidence.url(f"/v1/documents/{doc_id}"),
            timeout=10,
            headers={"Authorization": "Bearer osk_0000000000000000_" + "x" * 43},
        ).status_code
        == 401
    )
    # Legal reads but may not submit.
    forbidden = upload(evidence, b"from legal", headers=evidence.legal)
    assert forbidden.status_code == 403 and forbidden.headers["Content-Type"] == PROBLEM
    listed = requests.get(
        evidence.url("/v1/documents"), headers=evidence.other_tenant, timeout=10
    ).json()
    assert listed["items"] == []


@pytest.mark.parametrize("case", ["no_file", "empty_file", "bad_kind", "no_candidate"])
def test_bad_uploads_are_422_naming_the_field(
    module_evidence_sqlite: RunningStack, case: str
) -> None:
    data = {"kind": "resignation_application", "candidate_ref": "c"}
    files: dict[str, tuple[str, bytes]] | None = {"file": ("a.pdf", b"x")}
    field = {
        "no_file": "file",
        "empty_file": "file",
        "bad_kind": "kind",
        "no_candidate": "candidate_ref",
    }[case]
    if case == "no_file":
        files = None
        data["filler"] = "1"
    elif case == "empty_file":
        files = {"file": ("a.pdf", b"")}
    elif case == "bad_kind":
        data["kind"] = "love_letter"
    else:
        del data["candidate_ref"]
    if files is None:  # still multipart, just without the file part
        files = {"other": ("x.txt", b"y")}
    response = requests.post(
        module_evidence_sqlite.url("/v1/documents"),
        headers=module_evidence_sqlite.hr,
        data=data,
        files=files,
        timeout=10,
    )
    assert response.status_code == 422, response.text
    problem = response.json()
    assert response.headers["Content-Type"] == PROBLEM
    assert problem["status"] == 422
    assert field in [e["field"] for e in problem["errors"]]


def test_malformed_hash_and_broken_json(module_evidence_sqlite: RunningStack) -> None:
    stack = module_evidence_sqlite
    bad = requests.post(
        stack.url("/v1/documents/hashes"),
        headers=stack.hr,
        timeout=10,
        json={"items": [{"sha256": "0x1234", "kind": "other", "candidate_ref": "c"}]},
    )
    assert bad.status_code == 422
    assert "items.0.sha256" in [e["field"] for e in bad.json()["errors"]]
    too_many = requests.post(
        stack.url("/v1/documents/hashes"),
        headers=stack.hr,
        timeout=30,
        json={
            "items": [{"sha256": "0x" + "a" * 64, "kind": "other", "candidate_ref": "c"}] * 10_001
        },
    )
    assert too_many.status_code == 422
    broken = requests.post(
        stack.url("/v1/documents/hashes"),
        timeout=10,
        data="{not json",
        headers={**stack.hr, "Content-Type": "application/json"},
    )
    assert broken.status_code == 400 and broken.headers["Content-Type"] == PROBLEM
    broken_proof = requests.post(
        stack.url("/v1/verify"), data={"proof": "{nope"}, files={"file": b"x"}, timeout=10
    )
    assert broken_proof.status_code == 422
    assert broken_proof.json()["errors"][0]["field"] == "proof"


def test_wrong_content_type_is_415(module_evidence_sqlite: RunningStack) -> None:
    response = requests.post(
        module_evidence_sqlite.url("/v1/documents"),
        headers=module_evidence_sqlite.hr,
        json={"kind": "other"},
        timeout=10,
    )
    assert response.status_code == 415 and response.headers["Content-Type"] == PROBLEM


def test_unknown_id_is_404(module_evidence_sqlite: RunningStack) -> None:
    response = requests.get(
        module_evidence_sqlite.url("/v1/documents/nope"),
        headers=module_evidence_sqlite.hr,
        timeout=10,
    )
    assert response.status_code == 404 and response.json()["title"] == "Document not found"


def test_oversized_upload_is_413_without_being_read(tmp_path, sqlite_url, anvil) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import make_settings, start_stack

    stack = start_stack(
        make_settings(tmp_path, sqlite_url, anvil.url, max_document_bytes=1024 * 1024)
    )
    try:
        # Exactly at the limit is fine; one byte over is refused.
        assert upload(stack, b"a" * (1024 * 1024)).status_code == 201
        assert upload(stack, b"a" * (1024 * 1024 + 1)).status_code == 413
        # A declared length far above the limit is refused before the body is sent.
        import socket

        host, port = stack.base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(
                b"POST /v1/documents HTTP/1.1\r\nHost: x\r\n"
                b"Authorization: " + stack.hr["Authorization"].encode() + b"\r\n"
                b"Content-Type: multipart/form-data; boundary=b\r\n"
                b"Content-Length: 5000000000\r\n\r\n"
            )
            started = time.monotonic()
            answer = sock.recv(4096)
            assert time.monotonic() - started < 10
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    finally:
        stack.stack.stop()


def test_keys_health_metrics_and_openapi(evidence_sqlite: RunningStack) -> None:
    stack = evidence_sqlite
    keys = requests.get(stack.url("/v1/keys"), timeout=10).json()["keys"]
    assert keys[0]["alg"] == "Ed25519" and len(bytes.fromhex(keys[0]["public_key_hex"])) == 32
    health = requests.get(stack.url("/healthz"), timeout=10)
    assert health.status_code == 200 and health.json()["checks"]["anchoring"] == "ok"
    upload(stack, b"count me")
    metrics = requests.get(stack.url("/metrics"), timeout=10).text
    assert 'offerseal_http_requests_total{endpoint="/v1/documents"' in metrics
    spec = requests.get(stack.url("/openapi.json"), timeout=10).json()
    assert "/v1/documents" in spec["paths"] and "/v1/verify" in spec["paths"]
    items = spec["components"]["schemas"]["HashBatch"]["properties"]["items"]
    assert items["type"] == "array" and items["items"]["$ref"].endswith("/HashItem")
    assert requests.get(stack.url("/docs"), timeout=10).status_code == 200


def test_a_nul_anywhere_is_a_422_naming_where(evidence: RunningStack) -> None:
    """No database keeps a NUL in text (PostgreSQL refuses it): a NUL in a JSON member, a form
    field, a file's name or a query parameter is refused naming it, and nothing is stored."""
    sha = "0x" + hashlib.sha256(b"nul").hexdigest()
    answers = {
        "items.0.candidate_ref": requests.post(
            evidence.url("/v1/documents/hashes"),
            headers=evidence.hr,
            json={"items": [{"sha256": sha, "kind": "other", "candidate_ref": "a\u0000b"}]},
            timeout=30,
        ),
        "candidate_ref": upload(evidence, b"nul form", candidate_ref="a\x00b"),
        "file": requests.post(
            evidence.url("/v1/documents"),
            headers=evidence.hr,
            data={"kind": "other", "candidate_ref": "c-1"},
            files={"file": ("a\x00.pdf", b"nul name", "application/pdf")},
            timeout=30,
        ),
        "candidate_ref ": requests.get(
            evidence.url("/v1/documents?candidate_ref=a%00b"), headers=evidence.hr, timeout=30
        ),
    }
    for field, answer in answers.items():
        assert answer.status_code == 422, (field, answer.status_code, answer.text)
        assert answer.headers["Content-Type"] == PROBLEM
        assert answer.json()["errors"][0]["field"] == field.strip()
        assert "NUL" in answer.json()["errors"][0]["message"]
    listed = requests.get(evidence.url("/v1/documents"), headers=evidence.hr, timeout=30).json()
    assert listed["items"] == []

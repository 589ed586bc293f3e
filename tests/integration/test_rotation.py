"""Key rotation and per-tenant receipt numbers, on SQLite and PostgreSQL: documents stored under
an earlier master key stay readable and `keys rotate` moves them to the current one; receipts
signed by an earlier receipt key still verify; each tenant's receipts count 1, 2, 3..."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest
import requests
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import select, text

from offerseal.evidence.crypto import DocumentCipher
from offerseal.evidence.domain.documents import NewDocument
from offerseal.evidence.errors import MasterKeyMissing
from offerseal.evidence.models import Document, DocumentBlob, ReceiptKey
from offerseal.evidence.receipt_keys import record_current
from offerseal.evidence.rotation import key_versions, rewrap_all
from offerseal.evidence.service import EvidenceService
from offerseal.shared.auth import Principal
from offerseal.shared.db import Database
from offerseal.shared.group_commit import GroupCommit
from offerseal.shared.problems import status_of
from offerseal_verify.receipts import ReceiptSigner, verify_receipt
from tests.conftest import make_settings, start_stack, upload, wait_for_proof
from tests.integration.test_cli import offerseal

ACME = Principal("k-acme", "hr", "acme")
GLOBEX = Principal("k-globex", "hr", "globex")


def b64key(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def new_doc(content: bytes, ref: str = "cand-1") -> NewDocument:
    import hashlib

    return NewDocument(
        kind="other",
        candidate_ref=ref,
        sha256="0x" + hashlib.sha256(content).hexdigest(),
        content=content,
        filename="a.pdf",
        content_type="application/pdf",
    )


def service(db: Database, cipher: DocumentCipher, seed: bytes | None = None) -> EvidenceService:
    signer = ReceiptSigner.from_seed(seed or b"\x01" * 32)
    record_current(db, signer)
    return EvidenceService(db, cipher, signer)


# ---- master key ---------------------------------------------------------------------------


def test_documents_survive_a_master_key_rotation(database: Database) -> None:
    v1, v2 = os.urandom(32), os.urandom(32)
    before = service(database, DocumentCipher(v1))
    ids = [before.ingest(ACME, new_doc(f"doc {i}".encode()))[1]["id"] for i in range(7)]

    # v2 becomes current, v1 stays as a previous key: old documents read, new ones use v2.
    rotated = service(database, DocumentCipher(v2, previous=[v1]))
    assert rotated.content(ACME, ids[0])[0] == b"doc 0"
    late = rotated.ingest(ACME, new_doc(b"after the change"))[1]["id"]
    assert key_versions(database) == {
        DocumentCipher(v1).key_version: 7,
        DocumentCipher(v2).key_version: 1,
    }
    stored = select(DocumentBlob.document_seq, DocumentBlob.ciphertext)
    with database.sessions() as session:
        ciphertexts = {seq: data for seq, data in session.execute(stored)}

    # An interrupted run commits what it did; running again finishes the rest.
    class Interrupted(Exception):
        pass

    def stop_after_first_batch(done: int) -> None:
        raise Interrupted

    with pytest.raises(Interrupted):
        rewrap_all(database, DocumentCipher(v2, previous=[v1]), 3, stop_after_first_batch)
    assert key_versions(database)[DocumentCipher(v1).key_version] == 4
    report = rewrap_all(database, DocumentCipher(v2, previous=[v1]), 3)
    assert report.complete and report.rewrapped == 4
    assert key_versions(database) == {DocumentCipher(v2).key_version: 8}
    with database.sessions() as session:  # only the wrapped keys changed
        assert {seq: data for seq, data in session.execute(stored)} == ciphertexts

    # v1 can go: everything reads with v2 alone.
    alone = service(database, DocumentCipher(v2))
    for i, doc_id in enumerate(ids):
        assert alone.content(ACME, doc_id)[0] == f"doc {i}".encode()
    assert alone.content(ACME, late)[0] == b"after the change"


def test_a_missing_master_key_is_a_clear_error(database: Database) -> None:
    v1 = os.urandom(32)
    doc_id = service(database, DocumentCipher(v1)).ingest(ACME, new_doc(b"x"))[1]["id"]
    without = service(database, DocumentCipher(os.urandom(32)))
    with pytest.raises(MasterKeyMissing, match="OFFERSEAL_MASTER_KEYS_PREVIOUS") as caught:
        without.content(ACME, doc_id)
    assert status_of(caught.value) == 503  # the client is not at fault: try again later
    report = rewrap_all(database, without.cipher)
    assert not report.complete and report.missing_keys == {DocumentCipher(v1).key_version: 1}


def test_keys_rotate_command(tmp_path: Path, sqlite_url: str) -> None:
    v1, v2 = os.urandom(32), os.urandom(32)
    db = Database(sqlite_url)
    db.migrate()
    svc = service(db, DocumentCipher(v1))
    doc_id = svc.ingest(ACME, new_doc(b"rotate me"))[1]["id"]
    env = {"OFFERSEAL_DATABASE_URL": sqlite_url, "OFFERSEAL_DATA_DIR": str(tmp_path / "data")}
    current_only = {**env, "OFFERSEAL_MASTER_KEY": b64key(v2)}
    both = {**current_only, "OFFERSEAL_MASTER_KEYS_PREVIOUS": b64key(v1)}

    missing = offerseal("keys", "rotate", env=current_only)
    assert missing.returncode == 1 and "NOT CONFIGURED" in missing.stdout
    assert "OFFERSEAL_MASTER_KEYS_PREVIOUS" in missing.stderr
    check = offerseal("keys", "rotate", "--check", env=both)
    assert check.returncode == 1 and "(previous)" in check.stdout
    done = offerseal("keys", "rotate", "--batch-size", "1", env=both)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "earlier keys may be removed" in done.stdout
    again = offerseal("keys", "rotate", "--check", env=current_only)
    assert again.returncode == 0, again.stdout
    assert service(db, DocumentCipher(v2)).content(ACME, doc_id)[0] == b"rotate me"
    db.dispose()


# ---- receipt keys -------------------------------------------------------------------------


def test_receipt_keys_keep_their_periods(database: Database) -> None:
    old_seed, new_seed = os.urandom(32), os.urandom(32)
    cipher = DocumentCipher(os.urandom(32))
    old = service(database, cipher, old_seed)
    receipt = old.ingest(ACME, new_doc(b"signed by the old key"))[1]["intake_receipt"]
    new = service(database, cipher, new_seed)  # OFFERSEAL_RECEIPT_KEY changed: recorded at start

    keys = new.public_keys()
    assert [k["current"] for k in keys] == [True, False]
    assert keys[0]["key_id"] == new.signer.key_id and keys[0]["valid_until"] is None
    assert keys[1]["key_id"] == old.signer.key_id and keys[1]["valid_until"] is not None
    assert keys[1]["valid_from"] <= receipt["payload"]["received_at"] <= keys[1]["valid_until"]
    ok, detail, _ = verify_receipt(receipt, new.trusted_keys())
    assert ok, detail

    # A replica still running with the old key during a rolling change extends its period...
    straggler = old.ingest(ACME, new_doc(b"old replica, after the change"))[1]["intake_receipt"]
    assert verify_receipt(straggler, new.trusted_keys())[0]
    # ...but a receipt dated outside the old key's period does not verify.
    forged = old.signer.sign(
        {**receipt["payload"], "received_at": "2999-01-01T00:00:00.000000Z", "key_id": None}
    )
    ok, detail, _ = verify_receipt(forged, new.trusted_keys())
    assert not ok and "outside the period" in detail
    with database.sessions() as session:
        assert len(session.execute(select(ReceiptKey)).all()) == 2


def test_a_proof_signed_by_a_retired_receipt_key_verifies_after_rotation(
    tmp_path: Path, sqlite_url: str, anvil: Any
) -> None:
    v1, v2 = os.urandom(32), os.urandom(32)
    first = start_stack(
        make_settings(
            tmp_path, sqlite_url, anvil.url, master_key=b64key(v1), receipt_key=b64key(v1)
        )
    )
    try:
        doc_id = upload(first, b"stamped before the rotation").json()["id"]
        bundle = wait_for_proof(first, doc_id)
    finally:
        first.stack.stop()

    # The new master key alone cannot open the old document: a clear 503, not a 500.
    second = start_stack(
        make_settings(
            tmp_path, sqlite_url, anvil.url, master_key=b64key(v2), receipt_key=b64key(v2)
        )
    )
    try:
        answer = requests.get(
            second.url(f"/v1/documents/{doc_id}/content"), headers=second.hr, timeout=10
        )
        assert answer.status_code == 503, answer.text
        assert answer.headers["Content-Type"].startswith("application/problem+json")
        assert "OFFERSEAL_MASTER_KEYS_PREVIOUS" in answer.json()["detail"]
        assert "Traceback" not in answer.text

        keys = requests.get(second.url("/v1/keys"), timeout=10).json()["keys"]
        assert len(keys) == 2 and keys[0]["current"] and not keys[1]["current"]
        assert keys[1]["key_id"] == bundle["intake_receipt"]["payload"]["key_id"]
        assert keys[1]["valid_from"] and keys[1]["valid_until"] and not keys[0]["valid_until"]
        sha = bundle["document"]["sha256"]
        verdict = requests.post(
            second.url("/v1/verify"), json={"proof": bundle, "sha256": sha}, timeout=30
        ).json()
        assert verdict["valid"], verdict

        # The CLI verifier trusts the published keys, each for its own period.
        (tmp_path / "keys.json").write_text(json.dumps({"keys": keys}))
        (tmp_path / "proof.json").write_text(json.dumps(bundle))
        (tmp_path / "doc.bin").write_bytes(b"stamped before the rotation")
        cli = offerseal(
            "verify", str(tmp_path / "doc.bin"), str(tmp_path / "proof.json"),
            "--rpc", second.rpc_url, "--keys", str(tmp_path / "keys.json"),
        )  # fmt: skip
        assert cli.returncode == 0, cli.stdout + cli.stderr
        keys[1]["valid_until"] = keys[1]["valid_from"]  # a period the receipt is not in
        keys[1]["valid_from"] = "2000-01-01T00:00:00Z"
        (tmp_path / "keys.json").write_text(json.dumps({"keys": keys}))
        narrow = offerseal(
            "verify", str(tmp_path / "doc.bin"), str(tmp_path / "proof.json"),
            "--offline", "--keys", str(tmp_path / "keys.json"), "--json",
        )  # fmt: skip
        assert narrow.returncode == 1 and json.loads(narrow.stdout)["failed"] == [
            "receipt_signature"
        ]
    finally:
        second.stack.stop()

    third = start_stack(
        make_settings(
            tmp_path,
            sqlite_url,
            anvil.url,
            master_key=b64key(v2),
            master_keys_previous=b64key(v1),
            receipt_key=b64key(v2),
        )
    )
    try:
        answer = requests.get(
            third.url(f"/v1/documents/{doc_id}/content"), headers=third.hr, timeout=10
        )
        assert answer.status_code == 200 and answer.content == b"stamped before the rotation"
    finally:
        third.stack.stop()


# ---- per-tenant sequence numbers ----------------------------------------------------------


def sequences_of(db: Database, tenant: str) -> list[int]:
    with db.sessions() as session:
        return list(
            session.execute(
                select(Document.sequence).where(Document.tenant == tenant).order_by(Document.seq)
            ).scalars()
        )


def test_each_tenant_counts_its_own_receipts(database: Database) -> None:
    svc = service(database, DocumentCipher(os.urandom(32)))
    seen: dict[str, list[int]] = {"acme": [], "globex": []}
    for i in range(3):
        for who in (ACME, GLOBEX):
            receipt = svc.ingest(who, new_doc(f"{who.tenant} {i}".encode()))[1]["intake_receipt"]
            seen[who.tenant].append(receipt["payload"]["sequence"])
    assert seen == {"acme": [1, 2, 3], "globex": [1, 2, 3]}
    _, body, _ = svc.ingest_hashes(GLOBEX, [new_doc(f"h{i}".encode()) for i in range(3)])
    assert [item["sequence"] for item in body["items"]] == [4, 5, 6]
    items, cursor = svc.list_documents(GLOBEX, None, after=0, limit=4)
    assert cursor == 4 and len(items) == 4
    items, cursor = svc.list_documents(GLOBEX, None, after=cursor, limit=4)
    assert cursor is None and [i["intake_receipt"]["item"]["sequence"] for i in items] == [5, 6]


def test_concurrent_intake_keeps_each_tenant_gap_free(database: Database) -> None:
    svc = service(database, DocumentCipher(os.urandom(32)))
    errors: list[BaseException] = []

    def work(who: Principal, worker: int) -> None:
        try:
            for i in range(8):
                svc.ingest(who, new_doc(f"{who.tenant} {worker} {i}".encode()))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=work, args=(who, n)) for who in (ACME, GLOBEX) for n in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    for tenant in ("acme", "globex"):
        assert sorted(sequences_of(database, tenant)) == list(range(1, 25))


def test_group_commit_keeps_each_tenant_gap_free_and_each_upload_its_own(
    database: Database,
) -> None:
    """Uploads that arrive together share transactions (group commit): every one is answered
    with its own receipt after the commit, each tenant's numbers stay gap-free and unique, an
    Idempotency-Key sent twice at once is stored once, and the uploads are really grouped."""
    signer = ReceiptSigner.from_seed(b"\x01" * 32)
    record_current(database, signer)
    group = GroupCommit(database)
    svc = EvidenceService(database, DocumentCipher(os.urandom(32)), signer, group=group)
    answers: list[tuple[str, dict[str, Any], bool]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(who: Principal, worker: int) -> None:
        try:
            for i in range(10):
                key = f"twin-{i}" if worker < 2 else None  # workers 0 and 1 send the same keys
                content = f"{who.tenant} {i}" if key else f"{who.tenant} {worker} {i}"
                _, body, replayed = svc.ingest(who, new_doc(content.encode()), key)
                with lock:
                    answers.append((who.tenant, body, replayed))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=work, args=(who, n)) for who in (ACME, GLOBEX) for n in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    for tenant in ("acme", "globex"):
        # 4 workers x 10 without a key, 10 keys sent twice: 50 documents stored
        assert sorted(sequences_of(database, tenant)) == list(range(1, 51))
        mine = [body for t, body, _ in answers if t == tenant]
        assert len({b["id"] for b in mine}) == 50  # each twin answered with the first's body
        assert sum(1 for t, _, replayed in answers if t == tenant and replayed) == 10
        for body in mine:  # each answer is its own document, committed and readable
            assert svc.get(ACME if tenant == "acme" else GLOBEX, body["id"])["id"] == body["id"]
    assert group.fallbacks == 0  # no group failed (an error would have sent each one alone)
    assert group.groups < group.pieces  # and some uploads shared a transaction


def test_old_receipts_keep_their_numbers_across_the_migration(database_url: str) -> None:
    """A database at the previous revision, with receipts numbered globally: after the upgrade
    their numbers stand and each tenant continues after its own highest one."""
    db = Database(database_url)
    cfg = Config()
    cfg.set_main_option("script_location", "offerseal:migrations")
    ours = next(
        r
        for r in ScriptDirectory.from_config(cfg).walk_revisions()
        if (r.doc or "").startswith("evidence: per-tenant receipt sequence numbers")
    )
    assert isinstance(ours.down_revision, str)
    with db.engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, ours.down_revision)  # the revision just before this change
    signer = ReceiptSigner.from_seed(os.urandom(32))
    received = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    with db.engine.begin() as connection:
        for seq, tenant in [(1, "acme"), (2, "globex"), (3, "acme"), (4, "acme")]:
            stamp = received + dt.timedelta(minutes=seq)
            receipt = signer.sign(
                {
                    "sequence": seq,
                    "received_at": stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                    "tenant": tenant,
                }
            )
            connection.execute(
                text(
                    "INSERT INTO documents (seq, id, tenant, kind, candidate_ref, sha256, salt,"
                    " leaf, has_content, api_key_id, received_at, receipt, status) VALUES"
                    " (:seq, :id, :tenant, 'other', 'c', :h, :h, :leaf, false, 'k', :at,"
                    " :receipt, 'pending')"
                ),
                {
                    "seq": seq,
                    "id": f"doc-{seq}",
                    "tenant": tenant,
                    "h": "0x" + "00" * 32,
                    "leaf": f"0x{seq:064x}",
                    "at": stamp,
                    "receipt": json.dumps(receipt),
                },
            )
    if db.engine.dialect.name == "postgresql":
        with db.engine.begin() as connection:
            connection.execute(text("SELECT setval('documents_seq_seq', 4)"))
    db.migrate()
    assert sequences_of(db, "acme") == [1, 3, 4] and sequences_of(db, "globex") == [2]
    with db.sessions() as session:
        recorded = session.execute(select(ReceiptKey)).scalars().one()
    assert recorded.key_id == signer.key_id and recorded.valid_until is None
    assert recorded.public_key_hex == signer.public_raw.hex()
    svc = EvidenceService(db, DocumentCipher(os.urandom(32)), signer)
    old = svc.get(ACME, "doc-3")["intake_receipt"]
    assert verify_receipt(old, svc.trusted_keys())[0]
    assert svc.ingest(ACME, new_doc(b"next"))[1]["intake_receipt"]["payload"]["sequence"] == 5
    assert svc.ingest(GLOBEX, new_doc(b"next"))[1]["intake_receipt"]["payload"]["sequence"] == 3
    db.dispose()

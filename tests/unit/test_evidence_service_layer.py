"""The evidence service layer (intake, reads, proofs, verification) against an in-memory fake of
its storage port: receipts that verify, gap-free sequences per tenant, idempotency, the
candidate's upload limit, tenants kept apart, proofs once anchored. Milliseconds, no database;
`adapters/storage.py` is proved by the integration tests (test_api, test_rotation)."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import datetime as dt
import hashlib
import os
from collections.abc import Callable, Hashable, Iterator
from typing import Any, TypeVar

import pytest

from offerseal.evidence.crypto import DocumentCipher, Sealed
from offerseal.evidence.domain.documents import (
    ANCHORED,
    CANDIDATE_LINK,
    MAX_CANDIDATE_UPLOADS,
    PENDING,
    NewDocument,
)
from offerseal.evidence.domain.records import StoredBatch, StoredDocument
from offerseal.evidence.errors import (
    DocumentNotFound,
    IdempotencyConflict,
    NoContent,
    ProofPending,
    UploadLimitReached,
)
from offerseal.evidence.intake import Intake
from offerseal.evidence.ports import HASH_ONLY_COLUMNS, Numbers
from offerseal.evidence.proofs import Proofs
from offerseal.evidence.provenance import Provenance
from offerseal.evidence.reads import Reads, ReceiptBook
from offerseal.evidence.trees import TreeCache, leaves_of
from offerseal.evidence.verification import Verification
from offerseal.shared.auth import Principal
from offerseal.shared.errors import Forbidden
from offerseal.shared.links import Link
from offerseal_verify import merkle
from offerseal_verify.hexbytes import from_hex32, to_hex
from offerseal_verify.receipts import ReceiptSigner, TrustedKey, verify_receipt
from offerseal_verify.sm3 import sm3_hex
from offerseal_verify.timestamps import Stamp
from tests.unit.test_proofs import BLOCK_HASH, REGISTRY, TX, FakeChain

T = TypeVar("T")
I = TypeVar("I")  # noqa: E741

HR = Principal(key_id="k-hr", role="hr", tenant="acme")
LEGAL = Principal(key_id="k-legal", role="legal", tenant="acme")
GLOBEX = Principal(key_id="k-globex", role="hr", tenant="globex")
NOW = dt.datetime(2026, 12, 7, 3, 0, tzinfo=dt.UTC)
_DOCUMENT_FIELDS = {f.name for f in dataclasses.fields(StoredDocument)}


@dataclasses.dataclass
class State:
    """What the fake stores: the documents' rows by seq and everything around them."""

    rows: dict[int, dict[str, Any]] = dataclasses.field(default_factory=dict)
    blobs: dict[int, Sealed] = dataclasses.field(default_factory=dict)
    intake_batches: dict[int, tuple[dict[str, Any], bytes | None]] = dataclasses.field(
        default_factory=dict
    )
    tenant_sequences: dict[str, int] = dataclasses.field(default_factory=dict)
    signed_at: dict[str, list[dt.datetime]] = dataclasses.field(default_factory=dict)
    idempotency: dict[tuple[str, str], tuple[str, int, dict[str, Any]]] = dataclasses.field(
        default_factory=dict
    )
    batches: dict[int, StoredBatch] = dataclasses.field(default_factory=dict)
    batch_leaves: dict[int, bytes] = dataclasses.field(default_factory=dict)
    members: dict[tuple[int, int], list[str] | None] = dataclasses.field(default_factory=dict)
    stamps: dict[int, list[tuple[str, Stamp]]] = dataclasses.field(default_factory=dict)
    deposits: dict[int, list[dict[str, Any]]] = dataclasses.field(default_factory=dict)


class FakeWrites:
    def __init__(self, state: State, labels: dict[str, str]) -> None:
        self.state = state
        self.labels = labels

    def allocate(self, counts: dict[str, int], key_id: str, at: dt.datetime) -> dict[str, Numbers]:
        self.state.signed_at.setdefault(key_id, []).append(at)
        out: dict[str, Numbers] = {}
        for tenant, n in sorted(counts.items()):
            first_seq = max(self.state.rows, default=0) + 1 + sum(len(v[0]) for v in out.values())
            last = self.state.tenant_sequences.get(tenant, 0)
            self.state.tenant_sequences[tenant] = last + n
            out[tenant] = (
                list(range(first_seq, first_seq + n)),
                list(range(last + 1, last + n + 1)),
            )
        return out

    def key_label(self, key_id: str) -> str | None:
        return self.labels.get(key_id)

    def add_intake_batch(
        self, tenant: str, receipt: dict[str, Any], at: dt.datetime, leaves: bytes | None = None
    ) -> int:
        batch_id = len(self.state.intake_batches) + 1
        self.state.intake_batches[batch_id] = (receipt, leaves)
        return batch_id

    def add_documents(self, rows: list[dict[str, Any]], blobs: list[dict[str, Any]]) -> None:
        for row in rows:
            assert row["seq"] not in self.state.rows
            self.state.rows[row["seq"]] = dict(row)
        for blob in blobs:
            self.state.blobs[blob["document_seq"]] = Sealed(
                blob["key_version"], blob["wrapped_key"], blob["nonce"], blob["ciphertext"]
            )

    def add_hash_only(self, rows: list[tuple[Any, ...]], same: dict[str, Any]) -> None:
        blank = {"size": None, "content_type": None, "filename": None, "batch_id": None}
        self.add_documents(
            [{**blank, **dict(zip(HASH_ONLY_COLUMNS, row, strict=True)), **same} for row in rows],
            [],
        )

    def candidate_uploads(self, tenant: str, agreement_id: str, milestone: str) -> int:
        return sum(
            1
            for r in self.state.rows.values()
            if (r["tenant"], r["agreement_id"], r["milestone"], r["api_key_id"])
            == (tenant, agreement_id, milestone, CANDIDATE_LINK)
        )


class FakeReads:
    def __init__(self, state: State) -> None:
        self.state = state

    def _stored(self, row: dict[str, Any]) -> StoredDocument:
        return StoredDocument(**{k: v for k, v in row.items() if k in _DOCUMENT_FIELDS})

    def document(self, tenant: str, document_id: str) -> StoredDocument | None:
        found = [
            r for r in self.state.rows.values() if r["id"] == document_id and r["tenant"] == tenant
        ]
        return self._stored(found[0]) if found else None

    def batch(self, batch_id: int) -> StoredBatch | None:
        return self.state.batches.get(batch_id)

    def batches(self, batch_ids: set[int]) -> dict[int, StoredBatch]:
        return {i: self.state.batches[i] for i in batch_ids}

    def page(
        self, tenant: str, candidate_ref: str | None, after: int, limit: int
    ) -> list[StoredDocument]:
        rows = sorted(
            (
                r
                for r in self.state.rows.values()
                if r["tenant"] == tenant
                and r["sequence"] > after
                and candidate_ref in (None, r["candidate_ref"])
            ),
            key=lambda r: r["sequence"],
        )
        return [self._stored(r) for r in rows[:limit]]

    def intake_receipt(self, intake_batch_id: int) -> dict[str, Any]:
        return self.state.intake_batches[intake_batch_id][0]

    def intake_leaves(self, intake_batch_id: int) -> bytes | None:
        return self.state.intake_batches[intake_batch_id][1]

    def batch_leaves(self, batch_id: int) -> bytes | None:
        return self.state.batch_leaves[batch_id]

    def stored_path(self, batch_id: int, document_seq: int) -> list[str] | None:
        return self.state.members[(batch_id, document_seq)]

    def history(self, document_seq: int) -> list[tuple[StoredBatch, list[str] | None]]:
        return [
            (self.state.batches[b], path)
            for (b, seq), path in sorted(self.state.members.items())
            if seq == document_seq and self.state.batches[b].state in (ANCHORED, "superseded")
        ]

    def stamps(self, batch_id: int) -> list[tuple[str, Stamp]]:
        return self.state.stamps.get(batch_id, [])

    def deposits(self, batch_id: int, tenant: str) -> list[dict[str, Any]]:
        return self.state.deposits.get(batch_id, [])

    def sealed(self, document_seq: int) -> Sealed | None:
        return self.state.blobs.get(document_seq)


class FakeStorage:
    """`ports.EvidenceStorage` in memory: a transaction works on a copy that replaces the
    state only when it ends without an error (a refused request leaves nothing)."""

    def __init__(self, labels: dict[str, str] | None = None, grouped: bool = False) -> None:
        self.state = State()
        self.labels = labels or {}
        self._grouped = grouped
        self.transactions = 0

    @property
    def grouped(self) -> bool:
        return self._grouped

    @contextlib.contextmanager
    def transaction(self) -> Iterator[FakeWrites]:
        working = copy.deepcopy(self.state)
        yield FakeWrites(working, self.labels)
        self.state = working
        self.transactions += 1

    @contextlib.contextmanager
    def reads(self) -> Iterator[FakeReads]:
        yield FakeReads(self.state)

    def once(
        self,
        tenant: str,
        key: str | None,
        request_fp: str,
        work: Callable[[FakeWrites], dict[str, Any]],
    ) -> tuple[int, dict[str, Any], bool]:
        if key is not None and (tenant, key) in self.state.idempotency:
            fp, status, body = self.state.idempotency[(tenant, key)]
            if fp != request_fp:
                raise IdempotencyConflict("this Idempotency-Key was used with a different body")
            return status, body, True
        with self.transaction() as writes:
            body = work(writes)
            if key is not None:
                writes.state.idempotency[(tenant, key)] = (request_fp, 201, body)
        return 201, body, False

    def combined(
        self, kind: Hashable, item: I, write_all: Callable[[FakeWrites, list[I]], list[T]]
    ) -> T:
        with self.transaction() as writes:
            return write_all(writes, [item])[0]


class FakeKeys:
    def __init__(self, signer: ReceiptSigner) -> None:
        self.signer = signer

    def trusted(self) -> dict[str, TrustedKey]:
        return {self.signer.key_id: TrustedKey(self.signer.public_raw, None, None)}

    def published(self) -> list[dict[str, Any]]:
        return [{"key_id": self.signer.key_id, "public_key": self.signer.public_raw.hex()}]


@dataclasses.dataclass
class Layer:
    storage: FakeStorage
    signer: ReceiptSigner
    intake: Intake
    reads: Reads
    proofs: Proofs
    verification: Verification


def layer(**storage: Any) -> Layer:
    store = FakeStorage(**storage)
    signer = ReceiptSigner.from_seed(os.urandom(32))
    cipher = DocumentCipher(os.urandom(32))
    trees = TreeCache()
    receipts = ReceiptBook(trees)
    return Layer(
        store,
        signer,
        Intake(store, cipher, signer, clock=lambda: NOW),
        Reads(store, cipher, receipts),
        Proofs(store, receipts, trees),
        Verification(FakeKeys(signer)),
    )


def upload(content: bytes, **extra: Any) -> NewDocument:
    return NewDocument(
        kind=extra.pop("kind", "resignation_acceptance"),
        candidate_ref=extra.pop("candidate_ref", "cand-1"),
        sha256=to_hex(hashlib.sha256(content).digest()),
        content=content,
        **extra,
    )


def by_hash(i: int, **extra: Any) -> NewDocument:
    return NewDocument("salary_statement", f"cand-{i % 3}", "0x" + f"{i:064x}", **extra)


def anchor(storage: FakeStorage, seqs: list[int], batch_id: int = 1) -> bytes:
    """What the anchorer does, in memory: the documents' leaves in one tree, its root mined
    in block 12; the leaves stored once, no path per member. Returns the root."""
    state = storage.state
    leaves = [from_hex32(state.rows[s]["leaf"]) for s in seqs]
    tree = merkle.MerkleTree.build(leaves)
    state.batches[batch_id] = StoredBatch(
        batch_id,
        ANCHORED,
        to_hex(tree.root),
        31337,
        REGISTRY,
        TX,
        12,
        BLOCK_HASH,
        1_764_087_600,
        None,
    )
    state.batch_leaves[batch_id] = leaves_of(leaves)
    for s in seqs:
        state.rows[s]["batch_id"] = batch_id
        state.members[(batch_id, s)] = None
    return tree.root


def seq_of(storage: FakeStorage, document_id: str) -> int:
    return next(s for s, r in storage.state.rows.items() if r["id"] == document_id)


def test_an_upload_is_committed_with_a_receipt_that_signs_its_hashes_and_provenance() -> None:
    ev = layer(labels={"k-hr": "HR desk"})
    content = b"%PDF stamped resignation acceptance"
    seen = Provenance("203.0.113.9", "curl/8", {"system": "Moka HR"})
    status, body, replayed = ev.intake.ingest(HR, upload(content, filename="a.pdf"), seen=seen)
    assert (status, replayed, body["status"]) == (201, False, PENDING)
    ok, _detail, statement = verify_receipt(body["intake_receipt"], ev.verification.trusted_keys())
    assert ok and statement["sha256"] == body["sha256"] and statement["sequence"] == 1
    assert statement["sm3"] == sm3_hex(content) == body["sm3"]
    provenance = body["intake_receipt"]["payload"]["provenance"]
    assert provenance["uploader"] == {"via": "api_key", "key_id": "k-hr", "key_name": "HR desk"}
    assert provenance["client_address"] == "203.0.113.9" and provenance["file_name"] == "a.pdf"
    described = ev.reads.get(LEGAL, body["id"])
    assert described["intake_receipt"] == body["intake_receipt"]
    assert described["received_at"] == "2026-12-07T03:00:00.000000Z"
    assert (described["status"], described["anchor"]) == (PENDING, None)
    assert ev.reads.content(LEGAL, body["id"]) == (content, "application/octet-stream", "a.pdf")


def test_hash_only_intake_signs_one_batch_and_every_rebuilt_receipt_verifies() -> None:
    ev = layer()
    status, body, _ = ev.intake.ingest_hashes(HR, [by_hash(i) for i in range(25)])
    assert status == 201 and body["count"] == 25
    assert [item["sequence"] for item in body["items"]] == list(range(1, 26))
    assert len(ev.storage.state.intake_batches) == 1 and ev.storage.transactions == 1
    for item in body["items"]:
        receipt = ev.reads.get(HR, item["id"])["intake_receipt"]
        ok, detail, statement = verify_receipt(receipt, ev.verification.trusted_keys())
        assert ok, detail
        assert (statement["document_id"], statement["sequence"]) == (item["id"], item["sequence"])
    with pytest.raises(NoContent):
        ev.reads.content(HR, body["items"][0]["id"])


def test_each_tenant_numbers_its_own_receipts_without_gaps() -> None:
    ev = layer()
    ev.intake.ingest_hashes(HR, [by_hash(i) for i in range(3)])
    other = ev.intake.ingest(GLOBEX, upload(b"globex"))[1]
    mine = ev.intake.ingest(HR, upload(b"acme"))[1]
    assert other["intake_receipt"]["payload"]["sequence"] == 1
    assert mine["intake_receipt"]["payload"]["sequence"] == 4


def test_an_idempotency_key_replays_the_first_answer_or_refuses_another_body() -> None:
    ev = layer()
    first = ev.intake.ingest_hashes(HR, [by_hash(1)], idempotency_key="k1")
    again = ev.intake.ingest_hashes(HR, [by_hash(1)], idempotency_key="k1")
    assert again == (201, first[1], True) and len(ev.storage.state.rows) == 1
    with pytest.raises(IdempotencyConflict):
        ev.intake.ingest_hashes(HR, [by_hash(2)], idempotency_key="k1")
    assert len(ev.storage.state.rows) == 1


def test_uploads_share_a_transaction_when_the_storage_groups_them() -> None:
    ev = layer(grouped=True)
    status, body, replayed = ev.intake.ingest(HR, upload(b"grouped"))
    assert (status, replayed) == (201, False) and ev.storage.transactions == 1
    assert ev.reads.get(HR, body["id"])["sha256"] == body["sha256"]


def test_legal_reads_but_never_writes() -> None:
    ev = layer()
    with pytest.raises(Forbidden):
        ev.intake.ingest(LEGAL, upload(b"x"))
    with pytest.raises(Forbidden):
        ev.intake.ingest_hashes(LEGAL, [by_hash(1)])
    assert ev.storage.state.rows == {}


def test_a_candidates_link_takes_a_bounded_number_of_uploads_per_stage() -> None:
    ev = layer()
    link = Link("acme", "agr-1", "cand-1", "upload", 0, subject="resignation_submitted")

    def through(link: Link, content: bytes) -> dict[str, Any]:
        doc = upload(content, agreement_id=link.agreement_id, milestone=link.subject)
        return ev.intake.ingest_from_candidate(link, doc)

    answers = [through(link, f"copy {i}".encode()) for i in range(MAX_CANDIDATE_UPLOADS)]
    provenance = answers[0]["intake_receipt"]["payload"]["provenance"]
    assert provenance["uploader"]["via"] == "candidate_link"
    assert answers[0]["intake_receipt"]["payload"]["api_key_id"] == CANDIDATE_LINK
    with pytest.raises(UploadLimitReached):
        through(link, b"one too many")
    assert len(ev.storage.state.rows) == MAX_CANDIDATE_UPLOADS  # the refused one left nothing
    other_stage = dataclasses.replace(link, subject="handover_half_way")
    assert through(other_stage, b"next stage")["status"] == PENDING


def test_a_record_names_the_record_not_a_person() -> None:
    ev = layer()
    link = Link("acme", "agr-1", "cand-1", "record", 0, subject="dossier_manifest")
    body = ev.intake.ingest_record(link, upload(b"{}", kind="dossier_manifest"))
    uploader = body["intake_receipt"]["payload"]["provenance"]["uploader"]
    assert uploader == {
        "via": "offerseal_record",
        "agreement_id": "agr-1",
        "record": "dossier_manifest",
    }


def test_another_tenants_document_looks_missing() -> None:
    ev = layer()
    doc_id = ev.intake.ingest(HR, upload(b"acme only"))[1]["id"]
    for read in (ev.reads.get, ev.reads.content, ev.proofs.proof, ev.proofs.proofs):
        with pytest.raises(DocumentNotFound):
            read(GLOBEX, doc_id)


def test_pages_follow_intake_order_with_a_cursor() -> None:
    ev = layer()
    ev.intake.ingest_hashes(HR, [by_hash(i) for i in range(7)])
    first, cursor = ev.reads.list_documents(HR, None, 0, 3)
    rest, end = ev.reads.list_documents(HR, None, cursor or 0, 10)
    assert [d["intake_receipt"]["item"]["sequence"] for d in first + rest] == list(range(1, 8))
    assert (cursor, end) == (3, None)
    only, _ = ev.reads.list_documents(HR, "cand-1", 0, 10)
    assert {d["candidate_ref"] for d in only} == {"cand-1"} and len(only) == 2


def test_a_proof_waits_for_the_anchor_then_verifies_against_the_chain() -> None:
    ev = layer()
    content = b"employment certificate"
    doc_id = ev.intake.ingest(HR, upload(content))[1]["id"]
    ev.intake.ingest_hashes(HR, [by_hash(i) for i in range(4)])
    with pytest.raises(ProofPending):
        ev.proofs.proof(HR, doc_id)
    root = anchor(ev.storage, sorted(ev.storage.state.rows))
    described = ev.reads.get(HR, doc_id)
    assert described["status"] == ANCHORED and described["anchor"]["tx_hash"] == TX
    bundle = ev.proofs.proof(HR, doc_id)
    chain = FakeChain({root: 1_764_087_600})
    sha = to_hex(hashlib.sha256(content).digest())
    verdict = ev.verification.verify(bundle, sha, chain, sm3_hex(content))
    assert verdict.valid, verdict.failed
    forged = ev.verification.verify(bundle, to_hex(hashlib.sha256(b"other").digest()), chain)
    assert not forged.valid
    assert [p["state"] for p in ev.proofs.proofs(HR, doc_id)] == [ANCHORED]


def test_a_superseded_proof_stays_in_the_history() -> None:
    ev = layer()
    doc_id = ev.intake.ingest_hashes(HR, [by_hash(1), by_hash(2)])[1]["items"][0]["id"]
    seqs = sorted(ev.storage.state.rows)
    anchor(ev.storage, seqs, batch_id=1)
    old = ev.storage.state.batches[1]
    ev.storage.state.batches[1] = dataclasses.replace(old, state="superseded", superseded_at=NOW)
    anchor(ev.storage, seqs, batch_id=2)
    history = ev.proofs.proofs(HR, doc_id)
    assert [(p["state"], p["superseded_at"]) for p in history] == [
        ("superseded", "2026-12-07T03:00:00.000000Z"),
        (ANCHORED, None),
    ]
    assert history[1]["bundle"] == ev.proofs.proof(HR, doc_id)


def test_verification_publishes_and_trusts_the_receipt_keys() -> None:
    ev = layer()
    assert ev.verification.public_keys()[0]["key_id"] == ev.signer.key_id
    assert set(ev.verification.trusted_keys()) == {ev.signer.key_id}
    assert ev.verification.tsa_roots is None

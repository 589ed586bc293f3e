"""Taking documents in: uploads with their bytes, hashes by the thousand, a candidate's upload
through a signed link, a record OfferSeal's contracts service deposits. Each is one transaction;
when it returns the documents are committed (a 201 means committed) with their signed intake
receipts, which sign the provenance too: who sent them, from where, and for an upload its file
name, declared kind and, for an e-mail, its headers and DKIM result."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from offerseal_verify import merkle
from offerseal_verify.hexbytes import to_hex
from offerseal_verify.receipts import ReceiptSigner
from offerseal_verify.sm3 import sm3_hex

from ..shared import idempotency
from ..shared.auth import WRITE_ROLES, Principal
from ..shared.links import Link
from ..shared.models import utcnow
from .crypto import DocumentCipher, Sealed
from .domain.documents import (
    CANDIDATE_LINK,
    OFFERSEAL_RECORD,
    PENDING,
    NewDocument,
    candidate_may_upload,
)
from .domain.statements import (
    hash_only_statement_leaves,
    receipt_time,
    sha256_bytes,
    statement_of,
    uuid4_strings,
)
from .errors import UploadLimitReached
from .ports import EvidenceStorage, IntakeWrites
from .provenance import (
    DnsTxt,
    Provenance,
    check_email,
    is_email,
    request_record,
    uploader_by_key,
    uploader_by_link,
    uploader_by_record,
)
from .trees import leaves_of

fingerprint = idempotency.fingerprint

# (answers, the signed batch receipt or None) of one request
Written = tuple[list[dict[str, Any]], dict[str, Any] | None]


@dataclass(frozen=True)
class Prepared:
    """One request's documents, prepared outside the transaction (`Intake.prepare`)."""

    principal: Principal
    docs: Sequence[NewDocument]
    batch: bool
    seen: Provenance
    uploader: dict[str, Any] | None
    email: dict[str, Any] | None
    ids: list[str]
    salts: bytes
    sealed: list[Sealed | None]
    leaves: list[str]
    sm3s: list[str | None]  # SM3 of each document's bytes (None: registered by hash only)


class Intake:
    def __init__(
        self,
        storage: EvidenceStorage,
        cipher: DocumentCipher,
        signer: ReceiptSigner,
        dkim_dns: DnsTxt | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.storage = storage
        self.cipher = cipher
        self.signer = signer
        self.dkim_dns = dkim_dns  # None: real DNS (dnspython); tests give their own records
        self.clock = clock
        self._key_labels: dict[str, str | None] = {}  # an API key's label never changes

    # ---- the four ways in -----------------------------------------------------------------

    def ingest(
        self,
        principal: Principal,
        doc: NewDocument,
        idempotency_key: str | None = None,
        seen: Provenance | None = None,
    ) -> tuple[int, dict[str, Any], bool]:
        """One document, usually with its bytes: (status, body, replayed)."""
        principal.require(*WRITE_ROLES)
        seen = seen or Provenance()
        email = self.email_facts(doc)
        request_fp = fingerprint(
            "document",
            doc.kind,
            doc.candidate_ref,
            doc.agreement_id,
            doc.milestone,
            doc.sha256,
            doc.filename,
            *([dict(seen.source)] if seen.source else []),
        )
        intake = self.prepare(principal, [doc], batch=False, seen=seen, email=email)
        if idempotency_key is None and self.storage.grouped:
            # Written together with the uploads that arrive at the same time (group commit).
            return 201, self.storage.combined("upload", intake, self._write_uploads), False
        return self.storage.once(
            principal.tenant,
            idempotency_key,
            request_fp,
            lambda writes: self.write(writes, [intake])[0][0][0],
        )

    def ingest_hashes(
        self,
        principal: Principal,
        docs: Sequence[NewDocument],
        idempotency_key: str | None = None,
        seen: Provenance | None = None,
    ) -> tuple[int, dict[str, Any], bool]:
        """Documents registered by their hashes, under one batch receipt."""
        principal.require(*WRITE_ROLES)
        seen = seen or Provenance()
        request_fp = (  # only a request with a key is remembered (a 10,000-item JSON to hash)
            fingerprint(
                "hashes",
                [(d.kind, d.candidate_ref, d.agreement_id, d.milestone, d.sha256) for d in docs],
                *([dict(seen.source)] if seen.source else []),
            )
            if idempotency_key is not None
            else ""
        )
        intake = self.prepare(principal, docs, batch=True, seen=seen)
        return self.storage.once(
            principal.tenant,
            idempotency_key,
            request_fp,
            lambda writes: self._store_hashes(writes, intake),
        )

    def ingest_from_candidate(
        self, link: Link, doc: NewDocument, seen: Provenance | None = None
    ) -> dict[str, Any]:
        """A document the candidate uploads through a signed link (a staged confirmation): the
        link is the authorization, bound to one tenant, agreement, candidate and milestone. The
        intake receipt names the link as the uploader."""
        uploader = Principal(key_id=CANDIDATE_LINK, role="candidate", tenant=link.tenant)
        origin = uploader_by_link(link.agreement_id, link.subject, link.candidate_ref)
        email = self.email_facts(doc)
        intake = self.prepare(
            uploader, [doc], batch=False, seen=seen or Provenance(), uploader=origin, email=email
        )
        with self.storage.transaction() as writes:
            earlier = writes.candidate_uploads(link.tenant, link.agreement_id, link.subject)
            if not candidate_may_upload(earlier):
                raise UploadLimitReached(
                    f"this stage already has {earlier} uploads through the candidate's link; "
                    "the HR contact can add more documents"
                )
            return self.write(writes, [intake])[0][0][0]

    def ingest_record(
        self, link: Link, doc: NewDocument, seen: Provenance | None = None
    ) -> dict[str, Any]:
        """A record OfferSeal made about an agreement (the dossier's manifest, a former
        employer's confirmation and its e-mail), deposited through a `record` link it signed:
        stored, receipted and anchored like any document; the receipt names the record, not a
        person."""
        uploader = Principal(key_id=OFFERSEAL_RECORD, role="service", tenant=link.tenant)
        origin = uploader_by_record(link.agreement_id, link.subject)
        email = self.email_facts(doc)  # a former employer's reply: its DKIM result, signed
        intake = self.prepare(
            uploader, [doc], batch=False, seen=seen or Provenance(), uploader=origin, email=email
        )
        with self.storage.transaction() as writes:
            return self.write(writes, [intake])[0][0][0]

    def email_facts(self, doc: NewDocument) -> dict[str, Any] | None:
        """For an e-mail with its bytes: its identifying headers and DKIM result (a DNS lookup,
        so outside any transaction)."""
        if doc.content is None or not is_email(doc.filename, doc.content_type):
            return None
        return check_email(doc.content, self.dkim_dns)

    # ---- before the transaction -----------------------------------------------------------

    def prepare(
        self,
        principal: Principal,
        docs: Sequence[NewDocument],
        *,
        batch: bool,
        seen: Provenance,
        uploader: dict[str, Any] | None = None,
        email: dict[str, Any] | None = None,
    ) -> Prepared:
        """What needs no number, done before any transaction: from the numbers on the
        tenant's counter row is locked until the commit, and every other upload of the tenant
        waits. Randomness for every id and salt in two reads instead of two system calls a
        document."""
        ids = uuid4_strings(os.urandom(16 * len(docs)))
        salts = os.urandom(32 * len(docs))
        sealed = [
            self.cipher.seal(doc_id, doc.content) if doc.content is not None else None
            for doc_id, doc in zip(ids, docs, strict=True)
        ]
        leaves = [
            "0x" + leaf.hex()
            for leaf in merkle.leaf_hashes(sha256_bytes([doc.sha256 for doc in docs]), salts)
        ]
        # SM3 from the plaintext, now: the bytes are stored encrypted.
        sm3s = [
            sm3_hex(doc.content) if doc.content is not None and not batch else None for doc in docs
        ]
        return Prepared(
            principal, docs, batch, seen, uploader, email, ids, salts, sealed, leaves, sm3s
        )

    # ---- in the transaction ---------------------------------------------------------------

    def _uploader(self, writes: IntakeWrites, principal: Principal) -> dict[str, Any]:
        if principal.key_id not in self._key_labels:
            if len(self._key_labels) > 10_000:
                self._key_labels.clear()
            self._key_labels[principal.key_id] = writes.key_label(principal.key_id)
        return uploader_by_key(principal.key_id, self._key_labels[principal.key_id])

    def _write_uploads(self, writes: IntakeWrites, intakes: list[Prepared]) -> list[dict[str, Any]]:
        """Single uploads arriving together (group commit): each one's answer."""
        return [answers[0] for answers, _ in self.write(writes, intakes)]

    def _numbers(
        self, writes: IntakeWrites, intakes: Sequence[Prepared], now: dt.datetime
    ) -> list[tuple[list[int], list[int]]]:
        """Each request's (row numbers, receipt sequences): each tenant's taken once for all."""
        by_tenant: dict[str, list[int]] = {}
        for i, intake in enumerate(intakes):
            by_tenant.setdefault(intake.principal.tenant, []).append(i)
        taken = writes.allocate(
            {t: sum(len(intakes[i].docs) for i in members) for t, members in by_tenant.items()},
            self.signer.key_id,
            now,
        )
        numbers: dict[int, tuple[list[int], list[int]]] = {}
        for tenant, members in by_tenant.items():
            seqs, sequences = taken[tenant]
            at = 0
            for i in members:
                n = len(intakes[i].docs)
                numbers[i] = (seqs[at : at + n], sequences[at : at + n])
                at += n
        return [numbers[i] for i in range(len(intakes))]

    def write(self, writes: IntakeWrites, intakes: Sequence[Prepared]) -> list[Written]:
        """Insert the documents of prepared requests with their receipts, in one transaction:
        each tenant's numbers taken once for all of them, the rows in one statement. Returns
        each request's (answers, batch receipt or None)."""
        now = self.clock()
        numbers = self._numbers(writes, intakes, now)
        rows: list[dict[str, Any]] = []
        blobs: list[dict[str, Any]] = []
        out: list[Written] = []
        for intake, (seqs, sequences) in zip(intakes, numbers, strict=True):
            receipts, batch_receipt, intake_batch_id = self._sign(writes, intake, sequences, now)
            mine = _rows(intake, seqs, sequences, receipts, intake_batch_id, now)
            rows.extend(mine)
            blobs.extend(_blobs(intake, seqs))
            if batch_receipt is None:
                answers = [
                    {
                        "id": mine[0]["id"],
                        "sha256": mine[0]["sha256"],
                        "sm3": intake.sm3s[0],
                        "kind": mine[0]["kind"],
                        "status": PENDING,
                        "received_at": receipt_time(now),
                        "intake_receipt": receipts[0],
                    }
                ]
            else:  # each document's own receipt (with its path) is served by GET .../{id}
                answers = [
                    {
                        "id": r["id"],
                        "sha256": r["sha256"],
                        "kind": r["kind"],
                        "sequence": r["sequence"],
                        "status": PENDING,
                    }
                    for r in mine
                ]
            out.append((answers, batch_receipt))
        writes.add_documents(rows, blobs)
        return out

    def _sign(
        self, writes: IntakeWrites, intake: Prepared, sequences: list[int], now: dt.datetime
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None, int | None]:
        """One request's receipts: (each row's receipt, the batch receipt, its id). One
        document: its own signed receipt. Several (hash-only intake): one signed batch receipt
        proving every document's statement, stored once; each row keeps its path into it, and
        its whole receipt is rebuilt when served (`reads.ReceiptBook`). Either way the receipt
        signs the provenance: who sent it (`uploader`, by default the API key and its name),
        from where, and for one document its file name, declared kind and, for an e-mail,
        `email` (headers and DKIM result)."""
        principal, docs = intake.principal, intake.docs
        origin = request_record(intake.uploader or self._uploader(writes, principal), intake.seen)
        statements = [
            statement_of(
                doc_id,
                doc.sha256,
                len(doc.content) if doc.content is not None else None,
                doc.kind,
                sequence,
                doc.content is not None,
                sm3,
            )
            for doc_id, sequence, doc, sm3 in zip(
                intake.ids, sequences, docs, intake.sm3s, strict=True
            )
        ]
        common = {
            "tenant": principal.tenant,
            "api_key_id": principal.key_id,
            "received_at": receipt_time(now),
        }
        if not intake.batch:
            doc = docs[0]
            provenance = {
                **origin,
                "file_name": doc.filename,
                "content_type": doc.content_type,
                "declared_kind": doc.kind,
            }
            if intake.email is not None:
                provenance["email"] = intake.email
            return (
                [self.signer.sign({**statements[0], **common, "provenance": provenance})],
                None,
                None,
            )
        batch_receipt, paths = self.signer.sign_batch_paths(
            {**common, "provenance": origin}, statements
        )
        intake_batch_id = writes.add_intake_batch(principal.tenant, batch_receipt, now)
        return [{"item_proof": path} for path in paths], batch_receipt, intake_batch_id

    def _store_hashes(self, writes: IntakeWrites, intake: Prepared) -> dict[str, Any]:
        """One hash-only request's documents (`write` with one batch receipt), written column
        by column: documents without bytes (the API's) take the storage's hash-only path."""
        kinds, refs, sha256s, agreements, milestones, contents, filenames, types = (
            list(column) for column in zip(*intake.docs, strict=True)
        )
        if set(contents) | set(filenames) | set(types) != {None}:
            answers, batch_receipt = self.write(writes, [intake])[0]
            return {"count": len(intake.docs), "intake_receipt": batch_receipt, "items": answers}
        principal = intake.principal
        now = self.clock()
        count = len(kinds)
        seqs, sequences = writes.allocate({principal.tenant: count}, self.signer.key_id, now)[
            principal.tenant
        ]
        origin = request_record(intake.uploader or self._uploader(writes, principal), intake.seen)
        common = {
            "tenant": principal.tenant,
            "api_key_id": principal.key_id,
            "received_at": receipt_time(now),
        }
        # The batch receipt and its statements' leaves are stored once; a row's receipt is
        # JSON null, rebuilt with its path when served (`reads.ReceiptBook`).
        leaves = hash_only_statement_leaves(intake.ids, sha256s, kinds, sequences)
        batch_receipt, _tree = self.signer.sign_batch_tree({**common, "provenance": origin}, leaves)
        intake_batch_id = writes.add_intake_batch(
            principal.tenant, batch_receipt, now, leaves_of(leaves)
        )
        salts = intake.salts.hex()
        salt_hex = ["0x" + salts[i : i + 64] for i in range(0, len(salts), 64)]
        rows = list(
            zip(
                seqs,
                intake.ids,
                sequences,
                kinds,
                refs,
                agreements,
                milestones,
                sha256s,
                salt_hex,
                intake.leaves,
                strict=True,
            )
        )
        same = {  # every row's, after the columns of `HASH_ONLY_COLUMNS`
            "tenant": principal.tenant,
            "has_content": False,
            "api_key_id": principal.key_id,
            "received_at": now,
            "receipt": None,  # JSON null: rebuilt when served
            "intake_batch_id": intake_batch_id,
        }
        writes.add_hash_only(rows, same)
        # Each document's own receipt (with its path) is served by GET .../{id}.
        answers = [
            {"id": doc_id, "sha256": sha256, "kind": kind, "sequence": sequence, "status": PENDING}
            for doc_id, sha256, kind, sequence in zip(
                intake.ids, sha256s, kinds, sequences, strict=True
            )
        ]
        return {"count": count, "intake_receipt": batch_receipt, "items": answers}


def _rows(
    intake: Prepared,
    seqs: list[int],
    sequences: list[int],
    receipts: list[dict[str, Any]],
    intake_batch_id: int | None,
    now: dt.datetime,
) -> list[dict[str, Any]]:
    """The documents' rows of one request, every column by name."""
    principal = intake.principal
    return [
        {
            "seq": seq,
            "id": doc_id,
            "tenant": principal.tenant,
            "sequence": sequence,
            "kind": doc.kind,
            "candidate_ref": doc.candidate_ref,
            "agreement_id": doc.agreement_id,
            "milestone": doc.milestone,
            "sha256": doc.sha256,
            "salt": to_hex(intake.salts[32 * j : 32 * j + 32]),
            "leaf": leaf,
            "size": len(doc.content) if doc.content is not None else None,
            "content_type": doc.content_type,
            "filename": doc.filename,
            "has_content": doc.content is not None,
            "api_key_id": principal.key_id,
            "received_at": now,
            "receipt": receipt,
            "batch_id": None,
            "intake_batch_id": intake_batch_id,
        }
        for j, (doc_id, seq, sequence, doc, receipt, leaf) in enumerate(
            zip(intake.ids, seqs, sequences, intake.docs, receipts, intake.leaves, strict=True)
        )
    ]


def _blobs(intake: Prepared, seqs: list[int]) -> list[dict[str, Any]]:
    """The encrypted bytes of the request's documents that have them."""
    return [
        {
            "document_seq": seq,
            "key_version": sealed.key_version,
            "wrapped_key": sealed.wrapped_key,
            "nonce": sealed.nonce,
            "ciphertext": sealed.ciphertext,
        }
        for seq, sealed in zip(seqs, intake.sealed, strict=True)
        if sealed is not None
    ]

"""Evidence service layer: intake, reads, proofs and verification, independent of HTTP.

Every write is one database transaction; when it returns, the document is committed
(a 201 means committed) with its signed intake receipt.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import bindparam, func, insert, select, text
from sqlalchemy.orm import Session

from offerseal_verify import merkle, timestamps
from offerseal_verify.hexbytes import from_hex32, to_hex
from offerseal_verify.proofs import AnchorFacts, ChainView, Verdict, build_bundle, verify_bundle
from offerseal_verify.receipts import ReceiptSigner, TrustedKey, item_leaf, member_receipt
from offerseal_verify.sm3 import sm3_hex

from ..shared import idempotency
from ..shared.auth import READ_ROLES, WRITE_ROLES, Principal
from ..shared.db import COPY_FROM, Database, copy_text, insert_rows
from ..shared.group_commit import GroupCommit
from ..shared.links import Link
from ..shared.models import ApiKey, aware, utcnow
from .crypto import DocumentCipher, Sealed, UnknownMasterKey
from .domain.documents import ANCHORED, PENDING, status_of
from .errors import (
    DocumentNotFound,
    IdempotencyConflict,
    MasterKeyMissing,
    NoContent,
    ProofPending,
    UploadLimitReached,
)
from .models import (
    Batch,
    BatchDeposit,
    BatchMember,
    BatchTimestamp,
    Document,
    DocumentBlob,
    IntakeBatch,
)
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
from .receipt_keys import ReceiptKeys
from .sequences import allocate_for
from .trees import JSON_NULL, TreeCache, leaves_of, path_hex
from .witness_accounts import deposit_key

if TYPE_CHECKING:
    from cryptography.x509 import Certificate

log = logging.getLogger(__name__)

CANDIDATE_LINK = "candidate-link"  # the uploader named in receipts of candidates' uploads
OFFERSEAL_RECORD = "offerseal-record"  # ... and of records OfferSeal's services deposit
MAX_CANDIDATE_UPLOADS = 3  # per stage through the candidate's links (a leaked link is bounded)


class NewDocument(NamedTuple):
    """A document to take in (a named tuple: hash-only intake makes 10,000 of them a request,
    and a tuple is made five times faster than a frozen dataclass)."""

    kind: str
    candidate_ref: str
    sha256: str  # 0x hex, lower case
    agreement_id: str | None = None
    milestone: str | None = None
    content: bytes | None = None
    filename: str | None = None
    content_type: str | None = None


@dataclass(frozen=True)
class _Intake:
    """One request's documents, prepared outside the transaction (`EvidenceService._prepare`)."""

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


_VERSION_4 = bytes((b & 0x0F) | 0x40 for b in range(256))
_VARIANT_RFC4122 = bytes((b & 0x3F) | 0x80 for b in range(256))
_HEX32S = re.compile(r"(?:0x[0-9a-fA-F]{64})*")
# COPY's text format: these characters of a value are written escaped (a NULL is \N).
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"})


def uuid4_strings(random: bytes) -> list[str]:
    """`str(uuid.UUID(bytes=chunk, version=4))` of every 16 bytes of `random`, at once."""
    raw = bytearray(random)
    raw[6::16] = raw[6::16].translate(_VERSION_4)
    raw[8::16] = raw[8::16].translate(_VARIANT_RFC4122)
    h = raw.hex()
    return [
        f"{h[i : i + 8]}-{h[i + 8 : i + 12]}-{h[i + 12 : i + 16]}-{h[i + 16 : i + 20]}-"
        f"{h[i + 20 : i + 32]}"
        for i in range(0, len(h), 32)
    ]


def sha256_bytes(values: Sequence[str]) -> bytes:
    """The 32-byte values of `0x` + 64 hex digits each, concatenated (ValueError otherwise,
    as `from_hex32` says)."""
    if not values:
        return b""
    if set(map(type, values)) != {str} or set(map(len, values)) != {66}:
        joined = ""
    else:
        joined = "".join(values)
    if not joined or not _HEX32S.fullmatch(joined):
        for value in values:
            from_hex32(value)  # names the first that is not
        raise ValueError("expected 0x followed by 64 hexadecimal digits")
    return bytes.fromhex(joined.replace("0x", ""))


def copy_value(value: str | None) -> str:
    """A value as COPY's text format writes it."""
    return "\\N" if value is None else value.translate(_COPY_ESCAPES)


_DOCUMENTS: Any = Document.__table__
_BLOBS: Any = DocumentBlob.__table__
# Built once (SQLAlchemy compiles each once and caches it): the rows of documents and of their
# bytes as Core statements for executemany of plain dicts.
_INSERT_DOCUMENTS = insert(_DOCUMENTS)
_INSERT_BLOBS = insert(_BLOBS)


@functools.cache
def _one_upload(row: tuple[str, ...], blob: tuple[str, ...]) -> Any:
    """A document's row and its bytes in one statement, every value a bound parameter (one
    statement per set of columns, built once)."""
    document = insert(_DOCUMENTS).values({k: bindparam(k, type_=_DOCUMENTS.c[k].type) for k in row})
    return (
        insert(_BLOBS)
        .values({k: bindparam(k, type_=_BLOBS.c[k].type) for k in blob})
        .add_cte(document.cte("document"))
    )


def _iso(moment: dt.datetime) -> str:
    """The receipts' spelling of a time (microseconds, Z): a bundle repeats it exactly."""
    return aware(moment).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


fingerprint = idempotency.fingerprint


def statement_of(
    document_id: str,
    sha256: str,
    size: int | None,
    kind: str,
    sequence: int,
    content_stored: bool,
    sm3: str | None = None,
) -> dict[str, Any]:
    """What an intake receipt states about one document (in this order: a batch receipt's
    statement is rebuilt from the document's columns and must hash the same). `sm3`, the SM3
    of the document's bytes, is stated by the receipt of a document uploaded with its bytes on
    its own; a batch's statements carry none (hash-only intake never has the bytes)."""
    out: dict[str, Any] = {
        "document_id": document_id,
        "sha256": sha256,
        "size": size,
        "kind": kind,
        "sequence": sequence,
        "content_stored": content_stored,
    }
    if sm3 is not None:
        out["sm3"] = sm3
    return out


def sm3_of(receipt: dict[str, Any] | None) -> str | None:
    """The document's SM3 as its intake receipt signed it (None: a batch receipt, or a receipt
    issued before SM3 was recorded)."""
    if not isinstance(receipt, dict) or "item" in receipt:
        return None
    payload = receipt.get("payload")
    found = payload.get("sm3") if isinstance(payload, dict) else None
    return found if isinstance(found, str) else None


def hash_only_statement_leaves(
    ids: Sequence[str], sha256s: Sequence[str], kinds: Sequence[str], sequences: Sequence[int]
) -> list[bytes]:
    """`item_leaf(statement_of(id, sha256, None, kind, sequence, False))` of every document
    registered by hash only, without a dict and a JSON encoder run a document: the canonical
    JSON is written from a template (keys sorted). The ids (uuid4 strings) and sha256 values
    (`0x` + hex) are JSON strings as they are; each kind is encoded once by `json.dumps`."""
    quoted = {kind: json.dumps(kind, ensure_ascii=False) for kind in set(kinds)}
    keccak = merkle.keccak
    return [
        keccak(
            (
                f'{{"content_stored":false,"document_id":"{doc_id}","kind":{quoted[kind]},'
                f'"sequence":{int(sequence)},"sha256":"{sha256}","size":null}}'
            ).encode()
        )
        for doc_id, sha256, kind, sequence in zip(ids, sha256s, kinds, sequences, strict=True)
    ]


# The columns of a hash-only row that differ from row to row, in the order they are zipped.
_HASH_ONLY_COLUMNS = (
    "seq",
    "id",
    "sequence",
    "kind",
    "candidate_ref",
    "agreement_id",
    "milestone",
    "sha256",
    "salt",
    "leaf",
)


def _provenance_of(receipt: dict[str, Any]) -> dict[str, Any] | None:
    """The provenance a receipt signed (None for receipts issued before it was recorded)."""
    payload = receipt.get("payload") if isinstance(receipt, dict) else None
    found = payload.get("provenance") if isinstance(payload, dict) else None
    return found if isinstance(found, dict) else None


class EvidenceService:
    def __init__(
        self,
        db: Database,
        cipher: DocumentCipher,
        signer: ReceiptSigner,
        tsa_roots: Sequence[Certificate] | None = None,
        dkim_dns: DnsTxt | None = None,
        group: GroupCommit | None = None,
    ) -> None:
        self.db = db
        # Uploads through the API share transactions with those arriving at the same time
        # (None: each its own transaction).
        self.group = group
        self.dkim_dns = dkim_dns  # None: real DNS (dnspython); tests give their own records
        self.cipher = cipher
        self.signer = signer
        self.keys = ReceiptKeys(db, signer)
        self._key_labels: dict[str, str | None] = {}  # an API key's label never changes
        self._intake_batches: dict[int, dict[str, Any]] = {}  # signed batch receipts, by id
        self.trees = TreeCache()  # intake batches' and anchored batches' trees, rebuilt
        # The TSA roots /v1/verify trusts for RFC 3161 stamps (None: each bundle's own).
        self.tsa_roots = list(tsa_roots) if tsa_roots is not None else None

    # ---- intake -------------------------------------------------------------------------

    def _store_hashes(self, session: Session, intake: _Intake) -> dict[str, Any]:
        """One hash-only request's documents (`_write` with one batch receipt), written column
        by column: documents without bytes (the API's) take `_write_hash_only`."""
        kinds, refs, sha256s, agreements, milestones, contents, filenames, types = (
            list(column) for column in zip(*intake.docs, strict=True)
        )
        if set(contents) | set(filenames) | set(types) != {None}:
            answers, batch_receipt = self._write(session, [intake])[0]
            return {"count": len(intake.docs), "intake_receipt": batch_receipt, "items": answers}
        principal = intake.principal
        now = utcnow()
        received_at = _iso(now)
        count = len(kinds)
        seqs, sequences = allocate_for(session, {principal.tenant: count}, self.signer.key_id, now)[
            principal.tenant
        ]
        origin = request_record(intake.uploader or self._uploader(session, principal), intake.seen)
        common = {
            "tenant": principal.tenant,
            "api_key_id": principal.key_id,
            "received_at": received_at,
        }
        # The batch receipt and its statements' leaves are stored once; a row's receipt is
        # JSON null, rebuilt with its path when served (`_receipt`).
        leaves = hash_only_statement_leaves(intake.ids, sha256s, kinds, sequences)
        batch_receipt, _tree = self.signer.sign_batch_tree({**common, "provenance": origin}, leaves)
        intake_batch_id = session.execute(
            insert(IntakeBatch)
            .values(
                tenant=principal.tenant,
                receipt=batch_receipt,
                leaves=leaves_of(leaves),
                created_at=now,
            )
            .returning(IntakeBatch.id)
        ).scalar_one()
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
        same = {  # every row's, after the columns of `_HASH_ONLY_COLUMNS`
            "tenant": principal.tenant,
            "has_content": False,
            "api_key_id": principal.key_id,
            "received_at": now,
            "receipt": None,  # JSON null: rebuilt when served
            "intake_batch_id": intake_batch_id,
        }
        if session.connection().dialect.name == "postgresql":
            self._copy_hash_only(session, rows, same)
        else:
            insert_rows(
                session,
                Document,
                [{**dict(zip(_HASH_ONLY_COLUMNS, row, strict=True)), **same} for row in rows],
            )
        # Each document's own receipt (with its path) is served by GET .../{id}.
        answers = [
            {"id": doc_id, "sha256": sha256, "kind": kind, "sequence": sequence, "status": PENDING}
            for doc_id, sha256, kind, sequence in zip(
                intake.ids, sha256s, kinds, sequences, strict=True
            )
        ]
        return {"count": count, "intake_receipt": batch_receipt, "items": answers}

    @staticmethod
    def _copy_hash_only(
        session: Session, rows: list[tuple[Any, ...]], same: dict[str, Any]
    ) -> None:
        """The rows of documents registered by hash only (`_HASH_ONLY_COLUMNS`, then `same`'s),
        as one COPY in text format written here (no row objects, no per-value adapters); the
        columns not named are NULL. Ids, hashes and leaves are hex or uuid text as they are."""
        kind_text = {kind: copy_value(kind) for kind in {row[3] for row in rows}}
        tail = (  # `same`'s values in its order
            f"\t{copy_value(same['tenant'])}\tf\t{copy_value(same['api_key_id'])}"
            f"\t{same['received_at'].isoformat()}\t{JSON_NULL}\t{int(same['intake_batch_id'])}\n"
        )
        lines = [
            f"{int(seq)}\t{doc_id}\t{int(sequence)}\t{kind_text[kind]}\t{copy_value(ref)}\t"
            f"{copy_value(agreement)}\t{copy_value(milestone)}\t{sha256}\t{salt}\t{leaf}{tail}"
            for seq, doc_id, sequence, kind, ref, agreement, milestone, sha256, salt, leaf in rows
        ]
        copy_text(session, "documents", (*_HASH_ONLY_COLUMNS, *same), "".join(lines))

    def email_facts(self, doc: NewDocument) -> dict[str, Any] | None:
        """For an e-mail with its bytes: its identifying headers and DKIM result (a DNS lookup,
        so outside any transaction)."""
        if doc.content is None or not is_email(doc.filename, doc.content_type):
            return None
        return check_email(doc.content, self.dkim_dns)

    def _uploader(self, session: Session, principal: Principal) -> dict[str, Any]:
        if principal.key_id not in self._key_labels:
            if len(self._key_labels) > 10_000:
                self._key_labels.clear()
            self._key_labels[principal.key_id] = session.execute(
                select(ApiKey.label).where(ApiKey.key_id == principal.key_id)
            ).scalar_one_or_none()
        return uploader_by_key(principal.key_id, self._key_labels[principal.key_id])

    def _prepare(
        self,
        principal: Principal,
        docs: Sequence[NewDocument],
        *,
        batch: bool,
        seen: Provenance,
        uploader: dict[str, Any] | None = None,
        email: dict[str, Any] | None = None,
    ) -> _Intake:
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
        return _Intake(
            principal, docs, batch, seen, uploader, email, ids, salts, sealed, leaves, sm3s
        )

    def _store(
        self,
        session: Session,
        principal: Principal,
        docs: Sequence[NewDocument],
        *,
        batch: bool,
        seen: Provenance,
        uploader: dict[str, Any] | None = None,
        email: dict[str, Any] | None = None,
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """One request's documents in the caller's transaction (`_prepare`, then `_write`)."""
        intake = self._prepare(
            principal, docs, batch=batch, seen=seen, uploader=uploader, email=email
        )
        return self._write(session, [intake])[0]

    def _write_uploads(self, session: Session, intakes: list[_Intake]) -> list[dict[str, Any]]:
        """Single uploads arriving together (group commit): each one's answer."""
        return [answers[0] for answers, _ in self._write(session, intakes)]

    def _write(
        self, session: Session, intakes: Sequence[_Intake]
    ) -> list[tuple[list[dict[str, Any]], dict[str, Any] | None]]:
        """Insert the documents of prepared requests with their receipts, in one transaction:
        each tenant's numbers taken once for all of them, the rows in one statement. One
        document: its own signed receipt. Several (hash-only intake): one signed batch receipt
        proving every document's statement. Either way the receipt signs the provenance: who
        sent it (`uploader`, by default the API key and its name), from where, and for one
        document its file name, declared kind and, for an e-mail, `email` (headers and DKIM
        result). Returns each request's (answers, batch receipt or None)."""
        now = utcnow()
        received_at = _iso(now)
        numbers: dict[int, tuple[list[int], list[int]]] = {}
        by_tenant: dict[str, list[int]] = {}
        for i, intake in enumerate(intakes):
            by_tenant.setdefault(intake.principal.tenant, []).append(i)
        taken = allocate_for(
            session,
            {t: sum(len(intakes[i].docs) for i in members) for t, members in by_tenant.items()},
            self.signer.key_id,
            now,
        )
        for tenant, members in by_tenant.items():
            seqs, sequences = taken[tenant]
            at = 0
            for i in members:
                n = len(intakes[i].docs)
                numbers[i] = (seqs[at : at + n], sequences[at : at + n])
                at += n
        rows: list[dict[str, Any]] = []
        blobs: list[dict[str, Any]] = []
        out: list[tuple[list[dict[str, Any]], dict[str, Any] | None]] = []
        for i, intake in enumerate(intakes):
            principal, docs = intake.principal, intake.docs
            seqs, sequences = numbers[i]
            origin = request_record(
                intake.uploader or self._uploader(session, principal), intake.seen
            )
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
                "received_at": received_at,
            }
            batch_receipt: dict[str, Any] | None = None
            intake_batch_id: int | None = None
            receipts: list[dict[str, Any]]
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
                receipts = [self.signer.sign({**statements[0], **common, "provenance": provenance})]
            else:
                # The batch receipt is stored once; each row keeps its path into it, and its
                # whole receipt is rebuilt when served (`_receipt`).
                batch_receipt, paths = self.signer.sign_batch_paths(
                    {**common, "provenance": origin}, statements
                )
                intake_batch_id = session.execute(
                    insert(IntakeBatch)
                    .values(tenant=principal.tenant, receipt=batch_receipt, created_at=now)
                    .returning(IntakeBatch.id)
                ).scalar_one()
                receipts = [{"item_proof": path} for path in paths]
            mine: list[dict[str, Any]] = []
            for j, (doc_id, seq, sequence, doc, receipt, sealed, leaf) in enumerate(
                zip(
                    intake.ids,
                    seqs,
                    sequences,
                    docs,
                    receipts,
                    intake.sealed,
                    intake.leaves,
                    strict=True,
                )
            ):
                mine.append(
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
                )
                if sealed is not None:
                    blobs.append(
                        {
                            "document_seq": seq,
                            "key_version": sealed.key_version,
                            "wrapped_key": sealed.wrapped_key,
                            "nonce": sealed.nonce,
                            "ciphertext": sealed.ciphertext,
                        }
                    )
            rows.extend(mine)
            if batch_receipt is None:
                answers = [
                    {
                        "id": mine[0]["id"],
                        "sha256": mine[0]["sha256"],
                        "sm3": intake.sm3s[0],
                        "kind": mine[0]["kind"],
                        "status": PENDING,
                        "received_at": received_at,
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
        postgres = session.connection().dialect.name == "postgresql"
        if len(rows) == 1 and len(blobs) == 1 and postgres:
            # One upload: the row and its bytes in one statement (one round trip).
            statement = _one_upload(tuple(rows[0]), tuple(blobs[0]))
            session.execute(statement, {**rows[0], **blobs[0]})
        elif len(rows) < COPY_FROM:
            # Uploads written together: Core executemany of the dicts, no ORM bulk machinery.
            session.execute(_INSERT_DOCUMENTS, rows)
            if blobs:
                session.execute(_INSERT_BLOBS, blobs)
        else:
            insert_rows(session, Document, rows)
            if blobs:
                session.execute(_INSERT_BLOBS, blobs)
        return out

    def _idempotent(
        self, principal: Principal, key: str | None, request_fp: str, work: Any
    ) -> tuple[int, dict[str, Any], bool]:
        """Run `work(session)` once per Idempotency-Key. Returns (status, body, replayed)."""
        return idempotency.once(
            self.db,
            principal.tenant,
            key,
            request_fp,
            work,
            conflict=IdempotencyConflict,
            group=self.group,
        )

    def ingest(
        self,
        principal: Principal,
        doc: NewDocument,
        idempotency_key: str | None = None,
        seen: Provenance | None = None,
    ) -> tuple[int, dict[str, Any], bool]:
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
        intake = self._prepare(principal, [doc], batch=False, seen=seen, email=email)
        if idempotency_key is None and self.group is not None:
            # Written together with the uploads that arrive at the same time (group commit).
            return 201, self.group.run_combined("upload", intake, self._write_uploads), False
        return self._idempotent(
            principal,
            idempotency_key,
            request_fp,
            lambda s: self._write(s, [intake])[0][0][0],
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
        with self.db.transaction() as session:
            if session.connection().dialect.name == "postgresql":  # one upload of a stage at once
                session.execute(
                    text("SELECT pg_advisory_xact_lock(hashtext(:scope))"),
                    {"scope": f"{link.tenant}/{link.agreement_id}/{link.subject}"},
                )
            earlier = session.execute(
                select(func.count())
                .select_from(Document)
                .where(
                    Document.tenant == link.tenant,
                    Document.agreement_id == link.agreement_id,
                    Document.milestone == link.subject,
                    Document.api_key_id == CANDIDATE_LINK,
                )
            ).scalar_one()
            if earlier >= MAX_CANDIDATE_UPLOADS:
                raise UploadLimitReached(
                    f"this stage already has {earlier} uploads through the candidate's link; "
                    "the HR contact can add more documents"
                )
            stored = self._store(
                session,
                uploader,
                [doc],
                batch=False,
                seen=seen or Provenance(),
                uploader=origin,
                email=email,
            )
            return stored[0][0]

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
        with self.db.transaction() as session:
            stored = self._store(
                session,
                uploader,
                [doc],
                batch=False,
                seen=seen or Provenance(),
                uploader=origin,
                email=email,
            )
            return stored[0][0]

    def ingest_hashes(
        self,
        principal: Principal,
        docs: Sequence[NewDocument],
        idempotency_key: str | None = None,
        seen: Provenance | None = None,
    ) -> tuple[int, dict[str, Any], bool]:
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
        intake = self._prepare(principal, docs, batch=True, seen=seen)
        return self._idempotent(
            principal,
            idempotency_key,
            request_fp,
            lambda s: self._store_hashes(s, intake),
        )

    # ---- reads --------------------------------------------------------------------------

    def _load(self, session: Session, principal: Principal, document_id: str) -> Document:
        doc = session.execute(
            select(Document).where(Document.id == document_id, Document.tenant == principal.tenant)
        ).scalar_one_or_none()
        if doc is None:  # another tenant's document looks exactly like a missing one
            raise DocumentNotFound(f"no document {document_id}")
        return doc

    def _describe(
        self, doc: Document, batch: Batch | None, receipt: dict[str, Any]
    ) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": doc.id,
            "sha256": doc.sha256,
            "sm3": sm3_of(receipt),
            "kind": doc.kind,
            "candidate_ref": doc.candidate_ref,
            "agreement_id": doc.agreement_id,
            "milestone": doc.milestone,
            "size": doc.size,
            "content_type": doc.content_type,
            "filename": doc.filename,
            "has_content": doc.has_content,
            "status": status_of(batch.state if batch else None),
            "received_at": _iso(doc.received_at),
            "intake_receipt": receipt,
            "provenance": _provenance_of(receipt),
            "anchor": None,
        }
        if batch is not None and batch.state == "anchored":
            out["anchor"] = self._anchor_facts(batch).__dict__
        return out

    @staticmethod
    def _anchor_facts(batch: Batch) -> AnchorFacts:
        assert batch.tx_hash and batch.block_hash is not None
        return AnchorFacts(
            chain_id=batch.chain_id,
            registry=batch.registry_address,
            tx_hash=batch.tx_hash,
            block_number=int(batch.block_number or 0),
            block_hash=batch.block_hash,
            block_timestamp=int(batch.block_timestamp or 0),
        )

    def get(self, principal: Principal, document_id: str) -> dict[str, Any]:
        principal.require(*READ_ROLES)
        with self.db.sessions() as session:
            doc = self._load(session, principal, document_id)
            batch = session.get(Batch, doc.batch_id) if doc.batch_id else None
            return self._describe(doc, batch, self._receipt(session, doc))

    def _receipt(self, session: Session, doc: Document) -> dict[str, Any]:
        """The document's intake receipt as it was signed. Hash-only intake stored the batch
        receipt once and the document's path into it: the receipt is rebuilt from the two and
        the document's statement (its columns)."""
        if doc.intake_batch_id is None:
            assert doc.receipt is not None
            return doc.receipt
        intake_batch_id = doc.intake_batch_id
        batch = self._intake_batches.get(intake_batch_id)
        if batch is None:
            batch = session.execute(
                select(IntakeBatch.receipt).where(IntakeBatch.id == intake_batch_id)
            ).scalar_one()
            if len(self._intake_batches) > 1000:
                self._intake_batches.clear()
            self._intake_batches[intake_batch_id] = batch  # signed: never changes
        item = statement_of(
            doc.id, doc.sha256, doc.size, doc.kind, int(doc.sequence), bool(doc.has_content)
        )
        if doc.receipt is not None:  # stored before revision 0022, with its path
            return member_receipt(batch, item, list(doc.receipt["item_proof"]))
        tree = self.trees.get(
            ("intake", intake_batch_id),
            lambda: session.execute(
                select(IntakeBatch.leaves).where(IntakeBatch.id == intake_batch_id)
            ).scalar_one(),
        )
        return member_receipt(batch, item, path_hex(tree, item_leaf(item)))

    def list_documents(
        self, principal: Principal, candidate_ref: str | None, after: int, limit: int
    ) -> tuple[list[dict[str, Any]], int | None]:
        """A page of the tenant's documents in intake order; returns (items, next cursor)."""
        principal.require(*READ_ROLES)
        with self.db.sessions() as session:
            query = select(Document).where(
                Document.tenant == principal.tenant, Document.sequence > after
            )
            if candidate_ref is not None:
                query = query.where(Document.candidate_ref == candidate_ref)
            docs = (
                session.execute(query.order_by(Document.sequence).limit(limit + 1)).scalars().all()
            )
            batch_ids = {d.batch_id for d in docs if d.batch_id}
            batches = (
                {
                    b.id: b
                    for b in session.execute(select(Batch).where(Batch.id.in_(batch_ids))).scalars()
                }
                if batch_ids
                else {}
            )
            page = docs[:limit]
            items = [
                self._describe(d, batches.get(d.batch_id or -1), self._receipt(session, d))
                for d in page
            ]
            cursor = page[-1].sequence if len(docs) > limit else None
            return items, cursor

    def content(self, principal: Principal, document_id: str) -> tuple[bytes, str, str | None]:
        principal.require(*READ_ROLES)
        with self.db.sessions() as session:
            doc = self._load(session, principal, document_id)
            blob = session.get(DocumentBlob, doc.seq)
            if blob is None:
                raise NoContent("this document was registered by hash only; no bytes are stored")
            try:
                plaintext = self.cipher.open(
                    doc.id, Sealed(blob.key_version, blob.wrapped_key, blob.nonce, blob.ciphertext)
                )
            except UnknownMasterKey as exc:
                log.error("cannot open document %s: %s", doc.id, exc)
                raise MasterKeyMissing(
                    f"this document was stored under master key {exc.version}, which the "
                    "service is not configured with; the operator must add that key to "
                    "OFFERSEAL_MASTER_KEYS_PREVIOUS (see the README, key rotation)"
                ) from None
        if hashlib.sha256(plaintext).hexdigest() != doc.sha256[2:]:
            raise RuntimeError(f"stored content of {doc.id} does not match its sha256")
        return plaintext, doc.content_type or "application/octet-stream", doc.filename

    def proofs(self, principal: Principal, document_id: str) -> list[dict[str, Any]]:
        """Every proof the document ever had: the current one and superseded ones."""
        principal.require(*READ_ROLES)
        with self.db.sessions() as session:
            doc = self._load(session, principal, document_id)
            rows = session.execute(
                select(Batch, BatchMember.proof)
                .join(BatchMember, BatchMember.batch_id == Batch.id)
                .where(
                    BatchMember.document_seq == doc.seq, Batch.state.in_(("anchored", "superseded"))
                )
                .order_by(Batch.id)
            ).all()
            out = []
            for batch, proof in rows:
                bundle = self._bundle(
                    doc,
                    batch,
                    self._member_path(session, batch.id, doc, proof),
                    self._stamps(session, batch.id),
                    self._receipt(session, doc),
                    self._deposits(session, batch.id, doc.tenant),
                )
                out.append(
                    {
                        "state": batch.state,
                        "superseded_at": _iso(batch.superseded_at) if batch.superseded_at else None,
                        "bundle": bundle,
                    }
                )
            return out

    def proof(self, principal: Principal, document_id: str) -> dict[str, Any]:
        principal.require(*READ_ROLES)
        with self.db.sessions() as session:
            doc = self._load(session, principal, document_id)
            batch = session.get(Batch, doc.batch_id) if doc.batch_id else None
            if batch is None or status_of(batch.state) != ANCHORED:
                raise ProofPending(
                    "the document is accepted and waiting for its batch to be anchored; "
                    "retry after a few seconds",
                    retry_after=1,
                )
            member = session.get(BatchMember, (batch.id, doc.seq))
            assert member is not None
            return self._bundle(
                doc,
                batch,
                self._member_path(session, batch.id, doc, member.proof),
                self._stamps(session, batch.id),
                self._receipt(session, doc),
                self._deposits(session, batch.id, doc.tenant),
            )

    def _member_path(
        self, session: Session, batch_id: int, doc: Document, stored: list[str] | None
    ) -> list[str]:
        """A document's proof in an anchored batch: as its member row stored it (batches
        prepared before revision 0022), or rebuilt from the batch's stored leaves."""
        if stored is not None:
            return stored
        tree = self.trees.get(
            ("batch", batch_id),
            lambda: session.execute(select(Batch.leaves).where(Batch.id == batch_id)).scalar_one(),
        )
        return path_hex(tree, from_hex32(doc.leaf))

    @staticmethod
    def _stamps(session: Session, batch_id: int) -> list[dict[str, Any]]:
        """The batch root's RFC 3161 stamps as bundle entries, by TSA."""
        rows = session.execute(
            select(BatchTimestamp)
            .where(BatchTimestamp.batch_id == batch_id)
            .order_by(BatchTimestamp.tsa)
        ).scalars()
        return [
            timestamps.bundle_entry(
                row.tsa,
                timestamps.Stamp(
                    response=row.response,
                    gen_time=aware(row.gen_time),
                    serial_number=int(row.serial_number),
                    policy=row.policy,
                    certificates=tuple(row.certificates),
                ),
            )
            for row in rows
        ]

    @staticmethod
    def _deposits(session: Session, batch_id: int, tenant: str) -> list[dict[str, Any]]:
        """The batch root's judicial-chain deposits as bundle entries, by witness: made with the
        tenant's own account where it has one (witness_accounts.py), else the deployment's;
        never another tenant's."""
        rows = session.execute(
            select(BatchDeposit.witness, BatchDeposit.entry)
            .where(BatchDeposit.batch_id == batch_id)
            .order_by(BatchDeposit.witness)
        ).all()
        own: dict[str, Any] = {}
        for witness, entry in rows:
            platform, mine, _ = witness.partition("@")
            if mine and witness == deposit_key(platform, tenant):
                own[platform] = entry
        shared = {w: e for w, e in rows if "@" not in w and w not in own}
        return [dict(entry) for _, entry in sorted({**shared, **own}.items())]

    def _bundle(
        self,
        doc: Document,
        batch: Batch,
        proof: list[str],
        stamps: list[dict[str, Any]],
        receipt: dict[str, Any],
        deposits: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        document = {
            "id": doc.id,
            "sha256": doc.sha256,
            "kind": doc.kind,
            "received_at": _iso(doc.received_at),
        }
        sm3 = sm3_of(receipt)
        if sm3 is not None:
            document["sm3"] = sm3
        return build_bundle(
            document=document,
            salt=from_hex32(doc.salt),
            proof=[from_hex32(p) for p in proof],
            root=from_hex32(batch.root),
            anchor=self._anchor_facts(batch)
            if batch.tx_hash and batch.block_hash
            else AnchorFacts(batch.chain_id, batch.registry_address, batch.tx_hash or "", 0, "", 0),
            receipt=receipt,
            timestamps=stamps,
            deposits=deposits or [],
        )

    # ---- verification (no key needed) ---------------------------------------------------

    def trusted_keys(self) -> dict[str, TrustedKey]:
        """Every receipt key that ever signed, each with the period it signed in."""
        return self.keys.trusted()

    def public_keys(self) -> list[dict[str, Any]]:
        return self.keys.published()

    def verify(
        self,
        bundle: Any,
        document_sha256: str | None,
        chain: ChainView | None,
        document_sm3: str | None = None,
    ) -> Verdict:
        return verify_bundle(
            bundle,
            document_sha256=document_sha256,
            document_sm3=document_sm3,
            trusted_keys=self.trusted_keys(),
            chain=chain,
            tsa_roots=self.tsa_roots,
        )

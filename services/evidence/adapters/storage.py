"""The evidence service's storage over SQLAlchemy (`ports.EvidenceStorage`): intake's rows
written by the cheapest statement for their number and database (one statement for an upload
and its bytes, executemany for a few, COPY in text format written here for thousands on
PostgreSQL), the reads as the service layer's records, and the transactions around them."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
from collections.abc import Callable, Hashable, Iterator
from typing import Any, TypeVar

from sqlalchemy import bindparam, func, insert, select, text
from sqlalchemy.orm import Session

from offerseal_verify.timestamps import Stamp

from ...shared import idempotency
from ...shared.db import COPY_FROM, Database, copy_text, insert_rows
from ...shared.group_commit import GroupCommit
from ...shared.models import ApiKey, aware
from ..crypto import Sealed
from ..domain.documents import CANDIDATE_LINK
from ..domain.records import StoredBatch, StoredDocument, deposits_seen_by
from ..errors import IdempotencyConflict
from ..models import (
    Batch,
    BatchDeposit,
    BatchMember,
    BatchTimestamp,
    Document,
    DocumentBlob,
    IntakeBatch,
)
from ..ports import HASH_ONLY_COLUMNS, Numbers
from ..sequences import allocate_for
from ..trees import JSON_NULL

T = TypeVar("T")
I = TypeVar("I")  # noqa: E741

# COPY's text format: these characters of a value are written escaped (a NULL is \N).
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"})

_DOCUMENTS: Any = Document.__table__
_BLOBS: Any = DocumentBlob.__table__
# Built once (SQLAlchemy compiles each once and caches it): the rows of documents and of their
# bytes as Core statements for executemany of plain dicts.
_INSERT_DOCUMENTS = insert(_DOCUMENTS)
_INSERT_BLOBS = insert(_BLOBS)


def copy_value(value: str | None) -> str:
    """A value as COPY's text format writes it."""
    return "\\N" if value is None else value.translate(_COPY_ESCAPES)


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


def _postgres(session: Session) -> bool:
    return bool(session.connection().dialect.name == "postgresql")


class SqlIntakeWrites:
    """`ports.IntakeWrites` in a session's transaction."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def allocate(self, counts: dict[str, int], key_id: str, at: dt.datetime) -> dict[str, Numbers]:
        return allocate_for(self.session, counts, key_id, at)

    def key_label(self, key_id: str) -> str | None:
        return self.session.execute(
            select(ApiKey.label).where(ApiKey.key_id == key_id)
        ).scalar_one_or_none()

    def add_intake_batch(
        self, tenant: str, receipt: dict[str, Any], at: dt.datetime, leaves: bytes | None = None
    ) -> int:
        values: dict[str, Any] = {"tenant": tenant, "receipt": receipt, "created_at": at}
        if leaves is not None:
            values["leaves"] = leaves
        return int(
            self.session.execute(
                insert(IntakeBatch).values(**values).returning(IntakeBatch.id)
            ).scalar_one()
        )

    def add_documents(self, rows: list[dict[str, Any]], blobs: list[dict[str, Any]]) -> None:
        session = self.session
        if len(rows) == 1 and len(blobs) == 1 and _postgres(session):
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

    def add_hash_only(self, rows: list[tuple[Any, ...]], same: dict[str, Any]) -> None:
        if _postgres(self.session):
            self._copy_hash_only(rows, same)
        else:
            insert_rows(
                self.session,
                Document,
                [{**dict(zip(HASH_ONLY_COLUMNS, row, strict=True)), **same} for row in rows],
            )

    def _copy_hash_only(self, rows: list[tuple[Any, ...]], same: dict[str, Any]) -> None:
        """The rows as one COPY in text format written here (no row objects, no per-value
        adapters); the columns not named are NULL. Ids, hashes and leaves are hex or uuid text
        as they are. `same` holds tenant, has_content (false), api_key_id, received_at, receipt
        (JSON null) and intake_batch_id, in that order."""
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
        copy_text(self.session, "documents", (*HASH_ONLY_COLUMNS, *same), "".join(lines))

    def candidate_uploads(self, tenant: str, agreement_id: str, milestone: str) -> int:
        session = self.session
        if _postgres(session):  # one upload of a stage at once
            session.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:scope))"),
                {"scope": f"{tenant}/{agreement_id}/{milestone}"},
            )
        # SQLite: the transaction holds the database's write lock already.
        return int(
            session.execute(
                select(func.count())
                .select_from(Document)
                .where(
                    Document.tenant == tenant,
                    Document.agreement_id == agreement_id,
                    Document.milestone == milestone,
                    Document.api_key_id == CANDIDATE_LINK,
                )
            ).scalar_one()
        )


def stored_document(row: Document) -> StoredDocument:
    return StoredDocument(
        seq=row.seq,
        id=row.id,
        tenant=row.tenant,
        sequence=int(row.sequence),
        kind=row.kind,
        candidate_ref=row.candidate_ref,
        agreement_id=row.agreement_id,
        milestone=row.milestone,
        sha256=row.sha256,
        salt=row.salt,
        leaf=row.leaf,
        size=row.size,
        content_type=row.content_type,
        filename=row.filename,
        has_content=bool(row.has_content),
        received_at=row.received_at,
        receipt=row.receipt,
        intake_batch_id=row.intake_batch_id,
        batch_id=row.batch_id,
    )


def stored_batch(row: Batch) -> StoredBatch:
    return StoredBatch(
        id=row.id,
        state=row.state,
        root=row.root,
        chain_id=row.chain_id,
        registry_address=row.registry_address,
        tx_hash=row.tx_hash,
        block_number=row.block_number,
        block_hash=row.block_hash,
        block_timestamp=row.block_timestamp,
        superseded_at=row.superseded_at,
    )


class SqlReads:
    """`ports.EvidenceReads` in a session."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def document(self, tenant: str, document_id: str) -> StoredDocument | None:
        row = self.session.execute(
            select(Document).where(Document.id == document_id, Document.tenant == tenant)
        ).scalar_one_or_none()
        return stored_document(row) if row is not None else None

    def batch(self, batch_id: int) -> StoredBatch | None:
        row = self.session.get(Batch, batch_id)
        return stored_batch(row) if row is not None else None

    def batches(self, batch_ids: set[int]) -> dict[int, StoredBatch]:
        if not batch_ids:
            return {}
        rows = self.session.execute(select(Batch).where(Batch.id.in_(batch_ids))).scalars()
        return {row.id: stored_batch(row) for row in rows}

    def page(
        self, tenant: str, candidate_ref: str | None, after: int, limit: int
    ) -> list[StoredDocument]:
        query = select(Document).where(Document.tenant == tenant, Document.sequence > after)
        if candidate_ref is not None:
            query = query.where(Document.candidate_ref == candidate_ref)
        rows = self.session.execute(query.order_by(Document.sequence).limit(limit)).scalars()
        return [stored_document(row) for row in rows]

    def intake_receipt(self, intake_batch_id: int) -> dict[str, Any]:
        receipt: dict[str, Any] = self.session.execute(
            select(IntakeBatch.receipt).where(IntakeBatch.id == intake_batch_id)
        ).scalar_one()
        return receipt

    def intake_leaves(self, intake_batch_id: int) -> bytes | None:
        return self.session.execute(
            select(IntakeBatch.leaves).where(IntakeBatch.id == intake_batch_id)
        ).scalar_one()

    def batch_leaves(self, batch_id: int) -> bytes | None:
        return self.session.execute(select(Batch.leaves).where(Batch.id == batch_id)).scalar_one()

    def stored_path(self, batch_id: int, document_seq: int) -> list[str] | None:
        member = self.session.get(BatchMember, (batch_id, document_seq))
        assert member is not None
        return member.proof

    def history(self, document_seq: int) -> list[tuple[StoredBatch, list[str] | None]]:
        rows = self.session.execute(
            select(Batch, BatchMember.proof)
            .join(BatchMember, BatchMember.batch_id == Batch.id)
            .where(
                BatchMember.document_seq == document_seq,
                Batch.state.in_(("anchored", "superseded")),
            )
            .order_by(Batch.id)
        ).all()
        return [(stored_batch(batch), proof) for batch, proof in rows]

    def stamps(self, batch_id: int) -> list[tuple[str, Stamp]]:
        rows = self.session.execute(
            select(BatchTimestamp)
            .where(BatchTimestamp.batch_id == batch_id)
            .order_by(BatchTimestamp.tsa)
        ).scalars()
        return [
            (
                row.tsa,
                Stamp(
                    response=row.response,
                    gen_time=aware(row.gen_time),
                    serial_number=int(row.serial_number),
                    policy=row.policy,
                    certificates=tuple(row.certificates),
                ),
            )
            for row in rows
        ]

    def deposits(self, batch_id: int, tenant: str) -> list[dict[str, Any]]:
        rows = self.session.execute(
            select(BatchDeposit.witness, BatchDeposit.entry)
            .where(BatchDeposit.batch_id == batch_id)
            .order_by(BatchDeposit.witness)
        ).all()
        return deposits_seen_by([(witness, dict(entry)) for witness, entry in rows], tenant)

    def sealed(self, document_seq: int) -> Sealed | None:
        blob = self.session.get(DocumentBlob, document_seq)
        if blob is None:
            return None
        return Sealed(blob.key_version, blob.wrapped_key, blob.nonce, blob.ciphertext)


class SqlStorage:
    """`ports.EvidenceStorage` over a database; uploads share transactions through `group`
    (None: each its own)."""

    def __init__(self, db: Database, group: GroupCommit | None = None) -> None:
        self.db = db
        self.group = group

    @property
    def grouped(self) -> bool:
        return self.group is not None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[SqlIntakeWrites]:
        with self.db.transaction() as session:
            yield SqlIntakeWrites(session)

    @contextlib.contextmanager
    def reads(self) -> Iterator[SqlReads]:
        with self.db.sessions() as session:
            yield SqlReads(session)

    def once(
        self,
        tenant: str,
        key: str | None,
        request_fp: str,
        work: Callable[[SqlIntakeWrites], dict[str, Any]],
    ) -> tuple[int, dict[str, Any], bool]:
        return idempotency.once(
            self.db,
            tenant,
            key,
            request_fp,
            lambda session: work(SqlIntakeWrites(session)),
            conflict=IdempotencyConflict,
            group=self.group,
        )

    def combined(
        self, kind: Hashable, item: I, write_all: Callable[[SqlIntakeWrites, list[I]], list[T]]
    ) -> T:
        assert self.group is not None
        return self.group.run_combined(
            kind, item, lambda session, items: write_all(SqlIntakeWrites(session), items)
        )

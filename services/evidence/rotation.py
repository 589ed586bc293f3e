"""Master key rotation: every stored data key re-wrapped under the current master key.

Only the small wrapped keys are rewritten, never a document's ciphertext. The work goes in
batches, each its own transaction, so an interrupted run loses nothing and running it again
finishes the rest; once no blob names an older version, the older keys can be dropped.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from cryptography.exceptions import InvalidTag
from sqlalchemy import Table, bindparam, func, select, update

from ..shared.db import Database
from .crypto import DocumentCipher, Sealed, UnknownMasterKey
from .models import Document, DocumentBlob

log = logging.getLogger(__name__)

BATCH_SIZE = 500


@dataclass
class RotationReport:
    current: str
    rewrapped: int = 0
    # Blobs left behind: wrapped by a version that is not configured, or that fails to unwrap.
    missing_keys: Counter[str] = field(default_factory=Counter)
    damaged: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.missing_keys and not self.damaged


def key_versions(db: Database) -> dict[str, int]:
    """How many stored documents each master key version wraps."""
    with db.sessions() as session:
        rows = session.execute(
            select(DocumentBlob.key_version, func.count()).group_by(DocumentBlob.key_version)
        ).all()
    return {version: int(count) for version, count in rows}


_BLOBS: Table = cast(Table, DocumentBlob.__table__)
_REWRAP = (
    update(_BLOBS)
    .where(
        _BLOBS.c.document_seq == bindparam("b_seq"),
        _BLOBS.c.key_version == bindparam("b_old"),
    )
    .values(key_version=bindparam("b_new"), wrapped_key=bindparam("b_wrapped"))
)


def rewrap_all(
    db: Database,
    cipher: DocumentCipher,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
) -> RotationReport:
    """Re-wrap every data key not under the current master key; `progress` hears the count
    after each committed batch. A blob another run re-wrapped meanwhile is left as it is."""
    report = RotationReport(cipher.key_version)
    after = 0
    while True:
        with db.transaction() as session:
            rows = session.execute(
                select(
                    DocumentBlob.document_seq,
                    DocumentBlob.key_version,
                    DocumentBlob.wrapped_key,
                    Document.id,
                )
                .join(Document, Document.seq == DocumentBlob.document_seq)
                .where(
                    DocumentBlob.document_seq > after,
                    DocumentBlob.key_version != cipher.key_version,
                )
                .order_by(DocumentBlob.document_seq)
                .limit(batch_size)
            ).all()
            if not rows:
                return report
            after = rows[-1][0]
            updates = []
            for seq, version, wrapped, document_id in rows:
                try:
                    fresh = cipher.rewrap(document_id, Sealed(version, wrapped, b"", b""))
                except UnknownMasterKey:
                    report.missing_keys[version] += 1
                    continue
                except InvalidTag:
                    log.error("the data key of document %s does not unwrap", document_id)
                    report.damaged.append(document_id)
                    continue
                updates.append(
                    {
                        "b_seq": seq,
                        "b_old": version,
                        "b_new": fresh.key_version,
                        "b_wrapped": fresh.wrapped_key,
                    }
                )
            if updates:
                session.connection().execute(_REWRAP, updates)
        report.rewrapped += len(updates)
        if progress is not None:
            progress(report.rewrapped)

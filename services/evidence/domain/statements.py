"""What an intake receipt states about each document, and the identifiers intake gives: the
statement's fields in their signed order, the time's spelling, the leaves of hash-only batches
written without a JSON encoder, uuid4 ids and sha256 values parsed a request at a time."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from typing import Any

from offerseal_verify import merkle
from offerseal_verify.hexbytes import from_hex32

_VERSION_4 = bytes((b & 0x0F) | 0x40 for b in range(256))
_VARIANT_RFC4122 = bytes((b & 0x3F) | 0x80 for b in range(256))
_HEX32S = re.compile(r"(?:0x[0-9a-fA-F]{64})*")


def receipt_time(moment: dt.datetime) -> str:
    """The receipts' spelling of a time (microseconds, Z): a bundle repeats it exactly. A time
    without an offset is UTC (SQLite hands stored times back without one)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)
    return aware.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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


def provenance_of(receipt: dict[str, Any]) -> dict[str, Any] | None:
    """The provenance a receipt signed (None for receipts issued before it was recorded)."""
    payload = receipt.get("payload") if isinstance(receipt, dict) else None
    found = payload.get("provenance") if isinstance(payload, dict) else None
    return found if isinstance(found, dict) else None


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

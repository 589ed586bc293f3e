"""Agreement dossiers (`offerseal-dossier-1` ZIPs) made by tests: the manifest of a set of files,
a ZIP of entries, and a dossier whose manifest and evidence are anchored by a running stack."""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import warnings
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.conftest import RunningStack

EVIDENCE = "evidence/resignation_accepted/d-2/acceptance.pdf"
EVIDENCE_PROOF = "evidence/resignation_accepted/d-2/proof.json"
AGREEMENTS = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"

# path -> (content, the path of the file's own proof bundle or None)
Files = dict[str, tuple[bytes, str | None]]


def manifest_of(files: Files, chain_id: int = 31337) -> dict[str, Any]:
    entries = []
    for path in sorted(files):
        content, proof = files[path]
        entry: dict[str, Any] = {
            "path": path,
            "sha256": hashlib.sha256(content).hexdigest(),
            "bytes": len(content),
            "title": f"the file {path}",
        }
        if proof:
            entry["proof"] = proof
        entries.append(entry)
    return {
        "format": "offerseal-dossier-1",
        "agreement": {
            "id": "a-1",
            "onchain_id": "0x" + "ab" * 32,
            "chain_id": chain_id,
            "registry": AGREEMENTS,
            "state": "breached",
        },
        "as_of": "2026-11-25T16:30:00Z",
        "files": entries,
    }


def zip_of(entries: list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of duplicate names, which some tests want
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in entries:
                archive.writestr(zipfile.ZipInfo(name, (2026, 11, 25, 16, 30, 0)), data)
    return out.getvalue()


def anchored_dossier(
    stack: RunningStack,
    proof_of: Callable[[RunningStack, str], dict[str, Any]] | None = None,
    cover: bytes = b"%PDF-1.7 cover report",
) -> dict[str, bytes]:
    """Every entry of a dossier whose evidence file and manifest this stack anchored (the proof
    bundles as GET /v1/documents/{id}/proof gives them, or as `proof_of` waits for them)."""
    from tests.conftest import upload, wait_for_proof

    proof_of = proof_of or wait_for_proof

    evidence = b"%PDF-1.7 the old employer's resignation acceptance " + os.urandom(16)
    evidence_id = upload(stack, evidence, kind="resignation_acceptance").json()["id"]
    evidence_proof = json.dumps(proof_of(stack, evidence_id), indent=2).encode()
    files: Files = {
        "README.txt": (b"What this dossier holds and how to verify it.\n", None),
        "agreement/text.zh-CN.txt": ("意向协议全文".encode(), None),
        EVIDENCE: (evidence, EVIDENCE_PROOF),
        EVIDENCE_PROOF: (evidence_proof, None),
    }
    manifest = json.dumps(manifest_of(files), indent=2, ensure_ascii=False).encode()
    manifest_id = upload(stack, manifest, kind="other").json()["id"]
    entries = {
        "manifest.json": manifest,
        "manifest.proof.json": json.dumps(proof_of(stack, manifest_id)).encode(),
        "cover.pdf": cover,
    }
    entries.update({path: content for path, (content, _) in files.items()})
    return entries


# ---- ZIPs written byte by byte (what zipfile will not write: overlapping entries, sizes
# declared apart from the bytes) --------------------------------------------------------------

_LOCAL = struct.Struct("<4s5H3L2H")
_CENTRAL = struct.Struct("<4s6H3L5H2L")
_END = struct.Struct("<4s4H2LH")
STORED, DEFLATED = 0, 8


@dataclass(frozen=True)
class RawEntry:
    name: str
    stored: bytes  # the bytes as they sit in the ZIP (deflated or not)
    size: int  # the uncompressed size the headers declare
    crc: int
    method: int = STORED


def raw_entry(name: str, content: bytes) -> RawEntry:
    return RawEntry(name, content, len(content), zlib.crc32(content))


def deflated_zeros(size: int) -> tuple[bytes, int]:
    """Raw deflate data of `size` zero bytes (about size/1000 bytes) and their CRC-32."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = b"\x00" * (1024 * 1024)
    parts, crc, left = [], 0, size
    while left:
        piece = chunk[: min(left, len(chunk))]
        parts.append(packer.compress(piece))
        crc = zlib.crc32(piece, crc)
        left -= len(piece)
    parts.append(packer.flush())
    return b"".join(parts), crc


def local_record(entry: RawEntry) -> bytes:
    name = entry.name.encode()
    header = _LOCAL.pack(
        b"PK\x03\x04", 20, 0x800, entry.method, 0, 0x21,
        entry.crc, len(entry.stored), entry.size, len(name), 0,
    )  # fmt: skip
    return header + name + entry.stored


def raw_zip(body: bytes, directory: list[tuple[RawEntry, int]]) -> bytes:
    """`body` (local records) and a central directory naming each entry at its offset."""
    central = b""
    for entry, offset in directory:
        name = entry.name.encode()
        central += _CENTRAL.pack(
            b"PK\x01\x02", 20, 20, 0x800, entry.method, 0, 0x21,
            entry.crc, len(entry.stored), entry.size, len(name), 0, 0, 0, 0, 0, offset,
        ) + name  # fmt: skip
    end = _END.pack(b"PK\x05\x06", 0, 0, len(directory), len(directory), len(central), len(body), 0)
    return body + central + end


def plain_zip(entries: list[RawEntry]) -> bytes:
    body, directory = b"", []
    for entry in entries:
        directory.append((entry, len(body)))
        body += local_record(entry)
    return raw_zip(body, directory)


def overlapping_zip(entries: list[RawEntry], wrapper: str) -> bytes:
    """A ZIP of `entries` plus an entry `wrapper` whose stored bytes are the last entry's whole
    local record (header, name, data): the two entries share those bytes."""
    *first, last = entries
    body, directory = b"", []
    for entry in first:
        directory.append((entry, len(body)))
        body += local_record(entry)
    inner = local_record(last)
    outer = raw_entry(wrapper, inner)
    directory.append((outer, len(body)))
    body += local_record(outer)[: -len(inner)]
    directory.append((last, len(body)))
    body += inner
    return raw_zip(body, directory)

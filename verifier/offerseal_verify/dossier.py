"""The agreement dossier (`offerseal-dossier-1`, a ZIP) and the checks that verify it.

`manifest.json` lists every file of the dossier with its sha256 and size, and is itself anchored
by `manifest.proof.json` (a proof bundle): so no file can be changed, added or removed unseen.
Files that are anchored one by one (evidence, the signing record) name their own proof bundle,
which is verified too. `cover.pdf`, the signed report, names the manifest's hash and therefore
stands outside it; its PAdES signature protects it.

Verifying needs the ZIP, the receipt keys and TSA roots one trusts, and a view of the chain.
Entries are read one at a time and hashed as they stream, so a large dossier needs little memory
and an entry no manifest lists is never decompressed. A hostile ZIP costs a bounded amount: the
sizes its directory declares must add up to at most `MAX_TOTAL_BYTES`, every byte read (an
entry read twice counts twice) is taken from that budget, and entries whose stored bytes overlap
(one compressed kernel shared by many entries: a zip bomb) are refused before any is read.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import os
import struct
import zipfile
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any

from .ceremony import check_record
from .hexbytes import from_hex32
from .manifest import (
    COVER,
    DOSSIER_FORMAT,
    MANIFEST,
    MANIFEST_PROOF,
    MAX_ENTRIES,
    OUTSIDE_MANIFEST,
    SIGNING_RECORD,
    _strict_json,
    manifest_problems,
    name_key,
    unsafe_name,
)
from .options import MAX_TOTAL_BYTES
from .proofs import MAX_BUNDLE_BYTES, ChainView, Check, Verdict, verify_bundle
from .receipts import TrustedKey
from .sm3 import Sm3
from .sm3 import sm3 as sm3_digest

if TYPE_CHECKING:
    from cryptography.x509 import Certificate

__all__ = [
    "DOSSIER_FORMAT",
    "MAX_TOTAL_BYTES",
    "manifest_problems",
    "name_key",
    "pyhanko_cover_check",
    "unsafe_name",
    "verify_dossier",
]

MAX_MANIFEST_BYTES = 8 * 1024 * 1024
MAX_COVER_BYTES = 64 * 1024 * 1024
# MAX_TOTAL_BYTES (options.py): every byte a verification decompresses, whatever the manifest
# declares (the verify page has the same bound).
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")  # a ZIP local file header, before its name
_CHUNK = 1024 * 1024
# What reading or parsing a damaged or hostile entry raises (bad CRC or deflate data, unknown
# compression method, JSON nested too deep).
_READ_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    OSError,
    EOFError,
    NotImplementedError,
    ValueError,
    RecursionError,  # JSON nested too deep
)
MAX_LISTED_PROBLEMS = 5

# What a dossier check of the cover PDF says: ok (None: not checked) and why.
CoverCheck = Callable[[bytes], tuple[bool | None, str]]


class BudgetExceeded(ValueError):
    """Reading the dossier would decompress more than its byte budget."""


class _Budget:
    """The bytes a verification may still decompress."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.left = total

    def room(self, wanted: int) -> int:
        """How much of `wanted` may still be read (never negative: read(-1) reads all)."""
        return max(0, min(wanted, self.left))

    def take(self, count: int) -> None:
        self.left -= count
        if self.left < 0:
            raise BudgetExceeded(f"reading the dossier takes more than {self.total} bytes")


def _stream_digests(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, budget: _Budget
) -> tuple[str, str, int]:
    """sha256, SM3 and size of an entry, reading at most `limit` + 1 bytes (enough to see it is
    longer than it should be, never a decompression bomb's whole output)."""
    digest, digest_sm3 = hashlib.sha256(), Sm3()
    size = 0
    with archive.open(info) as stream:
        while size <= limit:
            chunk = stream.read(min(_CHUNK, limit + 1 - size, budget.room(_CHUNK) + 1))
            if not chunk:
                break
            budget.take(len(chunk))
            digest.update(chunk)
            digest_sm3.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), digest_sm3.digest().hex(), size


def _read_small(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, budget: _Budget
) -> bytes:
    with archive.open(info) as stream:
        data = stream.read(budget.room(limit) + 1)
    budget.take(len(data))
    if len(data) > limit:
        raise ValueError(f"{info.filename} is larger than {limit} bytes")
    return data


def _summarise(name: str, what: str, verdict: Verdict) -> Check:
    """One dossier check from a bundle's verdict: FAIL if any check failed, SKIP if none failed
    but some were not performed (offline), PASS if every check passed. The bundle's own checks
    are kept as the check's parts."""
    failed = [c for c in verdict.checks if c.ok is False]
    skipped = [c for c in verdict.checks if c.ok is None]
    if failed:
        first = failed[0]
        detail = (
            f"{what}: {', '.join(c.name for c in failed)} failed ({first.name}: {first.detail})"
        )
        return Check(name, False, detail, parts=verdict.checks)
    if skipped:
        passed = len(verdict.checks) - len(skipped)
        detail = f"{what}: {passed} check(s) pass, {len(skipped)} not performed (offline)"
        return Check(name, None, detail, parts=verdict.checks)
    block = next((c for c in verdict.checks if c.name == "block_timestamp"), None)
    tail = f"; {block.detail}" if block else ""
    detail = f"{what}: all {len(verdict.checks)} checks pass{tail}"
    return Check(name, True, detail, parts=verdict.checks)


def _listed_problems(problems: list[str]) -> str:
    shown = "; ".join(problems[:MAX_LISTED_PROBLEMS])
    more = len(problems) - MAX_LISTED_PROBLEMS
    return shown + (f"; and {more} more" if more > 0 else "")


def pyhanko_cover_check(pdf: bytes) -> tuple[bool | None, str]:
    """Check the cover's PDF signatures with pyHanko when it is installed: each must be intact
    and cryptographically valid (whose certificate it is, a PDF reader shows)."""
    try:
        from pyhanko.pdf_utils.reader import PdfFileReader
        from pyhanko.sign.validation import validate_pdf_signature
        from pyhanko_certvalidator import ValidationContext
    except ImportError:
        return (
            True,
            f"{COVER} present ({len(pdf)} bytes); open it in a PDF reader to check its signature",
        )
    try:
        signatures = PdfFileReader(io.BytesIO(pdf)).embedded_signatures
        if not signatures:
            return False, f"{COVER} carries no signature"
        signers = []
        for signature in signatures:
            # No trust roots: whether the signer is one to trust is for the reader to judge
            # (the detail names it); what is checked is that the signature holds.
            context = ValidationContext(trust_roots=[], allow_fetching=False)
            status = validate_pdf_signature(signature, context)
            if not (status.intact and status.valid):
                return False, f"{COVER}: the signature {signature.field_name} does not hold"
            signers.append(status.signing_cert.subject.human_friendly)
    except Exception as exc:  # a damaged PDF makes pyHanko raise many kinds of error
        return False, f"{COVER} is not a readable signed PDF: {type(exc).__name__}: {exc}"
    return True, f"{COVER}: signature(s) intact and valid (pyHanko), by {'; '.join(signers)}"


def verify_dossier(
    source: bytes | str | os.PathLike[str] | IO[bytes],
    *,
    trusted_keys: Mapping[str, bytes | TrustedKey] | None,
    chain: ChainView | None,
    tsa_roots: Sequence[Certificate] | None = None,
    cover_check: CoverCheck | None = None,
    max_bytes: int = MAX_TOTAL_BYTES,
) -> Verdict:
    """Every check of a dossier, in the order of the format's description; a forged, damaged or
    hostile ZIP gives failing checks, never an exception. `cover_check` looks at the cover PDF
    (None: its presence is the check). At most `max_bytes` are decompressed in all."""
    try:
        opened = source if not isinstance(source, bytes) else io.BytesIO(source)
        archive = zipfile.ZipFile(opened)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        return Verdict((Check("zip", False, f"not a readable ZIP: {exc}"),))
    with archive:
        return _verify_open(archive, trusted_keys, chain, tsa_roots, cover_check, max_bytes)


def _overlapping(archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo]) -> list[str]:
    """Entries whose stored bytes (local header, name, extra field, data) overlap another's or
    the central directory: the way one compressed kernel is made to count many times. Python
    3.11.7's zipfile does not check this (3.12.2 and 3.11.8 do, partly)."""
    fp = archive.fp
    if fp is None:
        return ["the ZIP is closed"]
    spans: list[tuple[int, int, str]] = []
    problems: list[str] = []
    for info in infos:
        fp.seek(info.header_offset)
        header = fp.read(_LOCAL_HEADER.size)
        if len(header) != _LOCAL_HEADER.size or header[:4] != b"PK\x03\x04":
            problems.append(f"{info.filename!r} has no local header where the directory says")
            continue
        *_, name_length, extra_length = _LOCAL_HEADER.unpack(header)
        end = info.header_offset + _LOCAL_HEADER.size + name_length + extra_length
        spans.append((info.header_offset, end + info.compress_size, info.filename))
    spans.sort()
    for (_, end, name), (start, _, following) in itertools.pairwise(spans):
        if start < end:
            problems.append(f"{following!r} overlaps {name!r}")
    if spans and max(end for _, end, _ in spans) > archive.start_dir:
        problems.append("an entry overlaps the central directory")
    return problems


def _zip_check(
    archive: zipfile.ZipFile, max_bytes: int
) -> tuple[Check, dict[str, zipfile.ZipInfo]]:
    infos = archive.infolist()
    if len(infos) > MAX_ENTRIES:
        return Check("zip", False, f"{len(infos)} entries; at most {MAX_ENTRIES}"), {}
    problems: list[str] = []
    entries: dict[str, zipfile.ZipInfo] = {}
    folded: set[str] = set()
    for info in infos:
        name = info.filename
        why = unsafe_name(name)
        if why:
            problems.append(f"{name!r}: {why}")
            continue
        key = name_key(name)
        if name in entries or key in folded:
            problems.append(f"{name!r} appears twice (ignoring case and Unicode form)")
            continue
        folded.add(key)
        if name.endswith("/"):
            continue  # a directory entry carries nothing
        if info.flag_bits & 0x1:
            problems.append(f"{name!r} is encrypted")
            continue
        entries[name] = info
    declared = sum(info.file_size for info in infos)
    if declared > max_bytes:
        problems.append(f"{declared} bytes uncompressed; at most {max_bytes}")
    if not problems:
        problems = _overlapping(archive, infos)
    if problems:
        return Check("zip", False, "unsafe entries: " + _listed_problems(problems)), {}
    return (
        Check("zip", True, f"{len(entries)} file(s), names safe, no duplicates, no overlaps"),
        entries,
    )


def _verify_open(
    archive: zipfile.ZipFile,
    trusted_keys: Mapping[str, bytes | TrustedKey] | None,
    chain: ChainView | None,
    tsa_roots: Sequence[Certificate] | None,
    cover_check: CoverCheck | None,
    max_bytes: int,
) -> Verdict:
    zip_check, entries = _zip_check(archive, max_bytes)
    checks = [zip_check]
    if not zip_check.ok:
        return Verdict(tuple(checks))
    budget = _Budget(max_bytes)

    # 2. The manifest: exactly the anchored bytes, so it is read as bytes and hashed as such.
    if MANIFEST not in entries:
        checks.append(Check("manifest", False, f"no {MANIFEST} in the dossier"))
        return Verdict(tuple(checks))
    try:
        manifest_bytes = _read_small(archive, entries[MANIFEST], MAX_MANIFEST_BYTES, budget)
        manifest = _strict_json(manifest_bytes)
    except _READ_ERRORS as exc:
        checks.append(Check("manifest", False, f"{MANIFEST} is not UTF-8 JSON: {exc}"))
        return Verdict(tuple(checks))
    problems = manifest_problems(manifest)
    if problems:
        checks.append(Check("manifest", False, _listed_problems(problems)))
        return Verdict(tuple(checks))
    agreement = manifest["agreement"]
    files: list[dict[str, Any]] = manifest["files"]
    checks.append(
        Check(
            "manifest",
            True,
            f"{DOSSIER_FORMAT}: agreement {agreement['id']} ({agreement['state']}), "
            f"as of {manifest['as_of']}, {len(files)} file(s) listed",
        )
    )

    # 3. Every listed file present with its sha256 (and SM3, where listed) and size; nothing
    # else in the ZIP.
    actual: dict[str, str] = {}
    actual_sm3: dict[str, str] = {}
    missing: list[str] = []
    declared = sum(entry["bytes"] for entry in files)
    if declared > budget.left:
        detail = f"the manifest lists {declared} bytes; at most {budget.left} are read"
        checks.append(Check("files", False, detail))
        return Verdict(tuple(checks))
    for entry in files:
        path = entry["path"]
        info = entries.get(path)
        if info is None:
            missing.append(f"{path} is listed but missing")
            continue
        try:
            sha, sm3, size = _stream_digests(archive, info, entry["bytes"], budget)
        except BudgetExceeded as exc:
            checks.append(Check("files", False, f"{path}: {exc}"))
            return Verdict(tuple(checks))
        except _READ_ERRORS as exc:
            missing.append(f"{path} cannot be read: {exc}")
            continue
        if size != entry["bytes"]:
            longer = "more than " if size > entry["bytes"] else ""
            missing.append(f"{path} has {longer}{size} bytes, the manifest says {entry['bytes']}")
        elif sha != entry["sha256"]:
            missing.append(f"{path} has sha256 {sha}, the manifest says {entry['sha256']}")
        elif "sm3" in entry and sm3 != entry["sm3"]:
            missing.append(f"{path} has sm3 {sm3}, the manifest says {entry['sm3']}")
        else:
            actual[path] = sha
            actual_sm3[path] = sm3
    listed = {entry["path"] for entry in files}
    unlisted = sorted(set(entries) - listed - OUTSIDE_MANIFEST)
    missing.extend(f"{name} is in the ZIP but not in the manifest" for name in unlisted)
    if missing:
        checks.append(Check("files", False, _listed_problems(missing)))
    else:
        checks.append(
            Check(
                "files",
                True,
                f"{len(files)} listed file(s) present with the manifest's sha256 and size "
                f"({sum('sm3' in e for e in files)} with its sm3 too); no unlisted entry",
            )
        )

    # 4. The manifest's own proof: its hash is anchored.
    manifest_sha = hashlib.sha256(manifest_bytes).hexdigest()
    checks.append(
        _bundle_check(
            archive,
            entries.get(MANIFEST_PROOF),
            "manifest_anchored",
            MANIFEST_PROOF,
            f"{MANIFEST} (sha256 0x{manifest_sha})",
            manifest_sha,
            trusted_keys,
            chain,
            tsa_roots,
            budget,
            sm3_digest(manifest_bytes).hex(),
        )
    )

    # 5. Files anchored one by one: each named bundle proves the file's own sha256.
    for entry in files:
        if "proof" not in entry:
            continue
        path, target = entry["path"], entry["proof"]
        if path not in actual or target not in actual:
            checks.append(
                Check(
                    "file_proof",
                    False,
                    f"{path}: the file or its proof {target} does not match the manifest",
                )
            )
            continue
        checks.append(
            _bundle_check(
                archive,
                entries[target],
                "file_proof",
                target,
                path,
                actual[path],
                trusted_keys,
                chain,
                tsa_roots,
                budget,
                actual_sm3[path],
            )
        )

    # 6. The ceremony: the signing record's ceremony hashes to what the chain says the
    # candidate's commitment covered.
    record_path = SIGNING_RECORD
    if record_path in actual:
        checks.append(_ceremony_check(archive, entries[record_path], agreement, chain, budget))

    # 7. The cover report.
    cover = entries.get(COVER)
    if cover is None:
        checks.append(Check("cover", False, f"no {COVER} in the dossier"))
    else:
        try:
            pdf = _read_small(archive, cover, MAX_COVER_BYTES, budget)
        except _READ_ERRORS as exc:
            checks.append(Check("cover", False, f"{COVER} cannot be read: {exc}"))
        else:
            if cover_check is None:
                ok: bool | None = True
                detail = (
                    f"{COVER} present ({len(pdf)} bytes); "
                    "open it in a PDF reader to check its signature"
                )
            else:
                ok, detail = cover_check(pdf)
            checks.append(Check("cover", ok, detail))
    return Verdict(tuple(checks))


def _ceremony_check(
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    agreement: dict[str, Any],
    chain: ChainView | None,
    budget: _Budget,
) -> Check:
    """The signing record's ceremony against IntentAgreements.ceremonyOf() on chain."""
    try:
        record = _strict_json(_read_small(archive, info, MAX_MANIFEST_BYTES, budget))
    except _READ_ERRORS as exc:
        return Check("ceremony", False, f"{SIGNING_RECORD} is not UTF-8 JSON: {exc}")
    if not isinstance(record, dict) or "ceremony" not in record:
        if isinstance(record, dict) and record.get("state") == "offered":
            return Check("ceremony", True, "not signed yet: no ceremony to check")
        return Check(
            "ceremony",
            None,
            "the signing record holds no ceremony (signed before IntentAgreements 2.3.0)",
        )
    onchain = None
    reader = getattr(chain, "ceremony_of", None)
    if reader is not None:
        onchain = reader(agreement["registry"], from_hex32(agreement["onchain_id"]))
        if onchain is None:
            return Check(
                "ceremony",
                False,
                f"the contract at {agreement['registry']} does not answer ceremonyOf()",
            )
    ok, detail = check_record(record, onchain)
    return Check("ceremony", None if ok and onchain is None else ok, detail)


def _bundle_check(
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo | None,
    name: str,
    bundle_path: str,
    what: str,
    sha256_hex: str,
    trusted_keys: Mapping[str, bytes | TrustedKey] | None,
    chain: ChainView | None,
    tsa_roots: Sequence[Certificate] | None,
    budget: _Budget,
    sm3_hex: str | None = None,
) -> Check:
    if info is None:
        return Check(name, False, f"{what}: no {bundle_path} in the dossier")
    try:
        bundle = _strict_json(_read_small(archive, info, MAX_BUNDLE_BYTES, budget))
    except _READ_ERRORS as exc:
        return Check(name, False, f"{what}: {bundle_path} is not a JSON proof bundle: {exc}")
    try:
        verdict = verify_bundle(
            bundle,
            document_sha256="0x" + sha256_hex,
            document_sm3="0x" + sm3_hex if sm3_hex is not None else None,
            trusted_keys=trusted_keys,
            chain=chain,
            tsa_roots=tsa_roots,
        )
    except Exception as exc:  # the chain endpoint failed mid-way: say so, do not crash
        return Check(name, False, f"{what}: the chain could not be consulted: {exc}")
    return _summarise(name, f"{what} by {bundle_path}", verdict)

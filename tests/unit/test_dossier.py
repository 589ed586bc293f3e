"""The dossier verifier against ZIPs built here with real bundles (signed receipts, Merkle paths)
and an in-memory chain: a genuine dossier passes every check, and any change to its files, its
entries or its manifest fails the check that names it; hostile ZIPs are refused, never raised."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from offerseal_verify import merkle
from offerseal_verify.dossier import (
    DOSSIER_FORMAT,
    manifest_problems,
    unsafe_name,
    verify_dossier,
)
from offerseal_verify.hexbytes import to_hex
from offerseal_verify.proofs import AnchorFacts, AnchorTx, build_bundle
from offerseal_verify.receipts import ReceiptSigner
from tests.dossiers import (
    DEFLATED,
    EVIDENCE,
    EVIDENCE_PROOF,
    Files,
    RawEntry,
    deflated_zeros,
    local_record,
    manifest_of,
    overlapping_zip,
    plain_zip,
    raw_entry,
    zip_of,
)

REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
TX = "0x" + "11" * 32
BLOCK_HASH = "0x" + "22" * 32
BLOCK_TIME = 1_764_087_600
SIGNER = ReceiptSigner.from_seed(b"\x07" * 32)
TRUSTED = {SIGNER.key_id: SIGNER.public_raw}


@dataclass
class FakeChain:
    """One anchoring transaction in block 12 that anchored every root added here."""

    roots: list[bytes] = field(default_factory=list)

    def chain_id(self) -> int:
        return 31337

    def anchored_at(self, registry: str, root: bytes) -> int:
        return BLOCK_TIME if registry == REGISTRY and root in self.roots else 0

    def block(self, number: int) -> tuple[str, int] | None:
        return (BLOCK_HASH, BLOCK_TIME) if number == 12 else None

    def anchor_tx(self, tx_hash: str) -> AnchorTx | None:
        if tx_hash != TX:
            return None
        return AnchorTx(12, BLOCK_HASH, REGISTRY, True, tuple(to_hex(r) for r in self.roots))


def bundle_for(data: bytes, document_id: str, chain: FakeChain) -> dict[str, Any]:
    """A real proof bundle of `data`: signed receipt, leaf in a tree of 4, root on `chain`."""
    sha = hashlib.sha256(data).digest()
    salt = hashlib.sha256(b"salt" + document_id.encode()).digest()
    leaf = merkle.leaf_hash(sha, salt)
    others = [merkle.leaf_hash(bytes([i]) * 32, bytes([i + 1]) * 32) for i in range(3)]
    tree = merkle.MerkleTree.build([leaf, *others])
    chain.roots.append(tree.root)
    receipt = SIGNER.sign(
        {
            "document_id": document_id,
            "sha256": to_hex(sha),
            "size": len(data),
            "kind": "other",
            "tenant": "acme",
            "api_key_id": "k",
            "received_at": "2026-11-25T16:20:00.000000Z",
            "sequence": 1,
            "content_stored": False,
        }
    )
    return build_bundle(
        document={"id": document_id, "sha256": to_hex(sha), "kind": "other"},
        salt=salt,
        proof=tree.proof(leaf),
        root=tree.root,
        anchor=AnchorFacts(31337, REGISTRY, TX, 12, BLOCK_HASH, BLOCK_TIME),
        receipt=receipt,
    )


def listed_files(chain: FakeChain) -> Files:
    """path -> (content, the path of its own proof bundle or None), as a producer would list."""
    evidence = b"%PDF-1.7 the old employer's resignation acceptance"
    return {
        "README.txt": (b"What this dossier holds and how to verify it.\n", None),
        "agreement/agreement.json": (b'{"id":"a-1","state":"breached"}', None),
        "agreement/text.zh-CN.txt": ("意向协议全文".encode(), None),
        EVIDENCE: (evidence, EVIDENCE_PROOF),
        EVIDENCE_PROOF: (json.dumps(bundle_for(evidence, "d-2", chain)).encode(), None),
    }


@dataclass
class Dossier:
    chain: FakeChain
    entries: dict[str, bytes]  # every ZIP entry, manifest and its proof included

    def zip(self) -> bytes:
        return zip_of(list(self.entries.items()))

    def with_entries(self, **changes: bytes | None) -> bytes:
        entries = dict(self.entries)
        for name, data in changes.items():
            if data is None:
                entries.pop(name)
            else:
                entries[name] = data
        return zip_of(list(entries.items()))


def make_dossier(
    edit_manifest: Callable[[dict[str, Any]], None] | None = None,
) -> Dossier:
    chain = FakeChain()
    files = listed_files(chain)
    manifest = manifest_of(files)
    if edit_manifest:
        edit_manifest(manifest)
    manifest_bytes = json.dumps(manifest, indent=2, ensure_ascii=False).encode()
    entries = {"manifest.json": manifest_bytes}
    entries["manifest.proof.json"] = json.dumps(
        bundle_for(manifest_bytes, "d-manifest", chain)
    ).encode()
    entries["cover.pdf"] = b"%PDF-1.7 signed cover report"
    entries.update({path: content for path, (content, _) in files.items()})
    return Dossier(chain, entries)


def check(data: bytes | str, chain: FakeChain | None, **kwargs: Any) -> dict[str, Any]:
    verdict = verify_dossier(data, trusted_keys=TRUSTED, chain=chain, **kwargs)
    return verdict.as_dict()


def status(result: dict[str, Any], name: str) -> list[str]:
    return [c["status"] for c in result["checks"] if c["name"] == name]


def test_a_genuine_dossier_passes_every_check() -> None:
    dossier = make_dossier()
    result = check(dossier.zip(), dossier.chain)
    assert result["valid"], result
    assert [c["name"] for c in result["checks"]] == [
        "zip",
        "manifest",
        "files",
        "manifest_anchored",
        "file_proof",
        "cover",
    ]
    anchored = result["checks"][3]
    assert [c["name"] for c in anchored["checks"]][:3] == [
        "format",
        "document_hash",
        "receipt_signature",
    ]
    assert all(c["status"] == "pass" for c in anchored["checks"])
    assert EVIDENCE in result["checks"][4]["detail"]


def test_a_dossier_on_disk_verifies_from_its_path(tmp_path: Any) -> None:
    dossier = make_dossier()
    path = tmp_path / "dossier.zip"
    path.write_bytes(dossier.zip())
    assert check(str(path), dossier.chain)["valid"]


def test_offline_skips_the_chain_and_is_not_fully_verified() -> None:
    dossier = make_dossier()
    result = check(dossier.zip(), None)
    assert result["failed"] == [] and not result["valid"]
    assert status(result, "manifest_anchored") == ["skipped"]
    assert status(result, "file_proof") == ["skipped"]
    assert status(result, "files") == ["pass"]


@pytest.mark.parametrize(
    "path",
    [
        "README.txt",
        "agreement/agreement.json",
        "agreement/text.zh-CN.txt",
        EVIDENCE,
        EVIDENCE_PROOF,
    ],
)
@pytest.mark.parametrize("position", [0, -1])
def test_a_one_byte_change_in_any_listed_file_fails(path: str, position: int) -> None:
    dossier = make_dossier()
    changed = bytearray(dossier.entries[path])
    changed[position] ^= 0x01
    result = check(dossier.with_entries(**{path: bytes(changed)}), dossier.chain)
    assert not result["valid"]
    assert "files" in result["failed"]
    assert path in next(c["detail"] for c in result["checks"] if c["name"] == "files")
    if path in (EVIDENCE, EVIDENCE_PROOF):
        assert status(result, "file_proof") == ["fail"]


def test_an_added_entry_fails() -> None:
    dossier = make_dossier()
    result = check(dossier.with_entries(**{"notes/extra.txt": b"slipped in"}), dossier.chain)
    assert result["failed"] == ["files"]
    assert "notes/extra.txt is in the ZIP but not in the manifest" in result["checks"][2]["detail"]


@pytest.mark.parametrize(
    "path", ["README.txt", EVIDENCE, EVIDENCE_PROOF, "manifest.proof.json", "cover.pdf"]
)
def test_a_removed_entry_fails(path: str) -> None:
    dossier = make_dossier()
    result = check(dossier.with_entries(**{path: None}), dossier.chain)
    assert not result["valid"] and result["failed"]
    expected = {
        "manifest.proof.json": "manifest_anchored",
        "cover.pdf": "cover",
    }.get(path, "files")
    assert expected in result["failed"]


def test_a_removed_manifest_fails() -> None:
    dossier = make_dossier()
    result = check(dossier.with_entries(**{"manifest.json": None}), dossier.chain)
    assert result["failed"] == ["manifest"]


def test_a_manifest_changed_to_match_a_changed_file_is_not_anchored() -> None:
    """Whoever swaps a file and rewrites the manifest to match cannot anchor the new manifest."""
    dossier = make_dossier()
    forged_file = b"What this dossier holds, rewritten.\n"
    manifest = json.loads(dossier.entries["manifest.json"])
    entry = next(e for e in manifest["files"] if e["path"] == "README.txt")
    entry.update(sha256=hashlib.sha256(forged_file).hexdigest(), bytes=len(forged_file))
    forged = dossier.with_entries(
        **{"README.txt": forged_file, "manifest.json": json.dumps(manifest).encode()}
    )
    result = check(forged, dossier.chain)
    assert result["failed"] == ["manifest_anchored"]
    anchored = next(c for c in result["checks"] if c["name"] == "manifest_anchored")
    assert {c["name"] for c in anchored["checks"] if c["status"] == "fail"} == {"document_hash"}


def test_even_reformatting_the_manifest_breaks_its_proof() -> None:
    dossier = make_dossier()
    manifest = json.loads(dossier.entries["manifest.json"])
    result = check(
        dossier.with_entries(**{"manifest.json": json.dumps(manifest).encode()}), dossier.chain
    )
    assert result["failed"] == ["manifest_anchored"]


def test_a_file_proof_of_another_file_fails() -> None:
    chain = FakeChain()
    other = json.dumps(bundle_for(b"some other file", "d-9", chain)).encode()

    def swap_proof(manifest: dict[str, Any]) -> None:
        entry = next(e for e in manifest["files"] if e["path"] == EVIDENCE_PROOF)
        entry.update(sha256=hashlib.sha256(other).hexdigest(), bytes=len(other))

    dossier = make_dossier(swap_proof)
    dossier.chain.roots.extend(chain.roots)
    result = check(dossier.with_entries(**{EVIDENCE_PROOF: other}), dossier.chain)
    assert result["failed"] == ["file_proof"]


@pytest.mark.parametrize(
    "name",
    ["../evil.txt", "/etc/passwd", "a\\b.txt", "C:/x.txt", "a/../../b", "a/./b", "a//b"],
)
def test_unsafe_names_are_refused(name: str) -> None:
    dossier = make_dossier()
    result = check(dossier.with_entries(**{name: b"x"}), dossier.chain)
    assert [c["name"] for c in result["checks"]] == ["zip"]
    assert result["failed"] == ["zip"]
    assert unsafe_name(name)


@pytest.mark.parametrize("duplicate", ["README.txt", "readme.TXT"])
def test_duplicate_names_are_refused(duplicate: str) -> None:
    dossier = make_dossier()
    data = zip_of([*dossier.entries.items(), (duplicate, b"second copy")])
    result = check(data, dossier.chain)
    assert result["failed"] == ["zip"] and "twice" in result["checks"][0]["detail"]


def test_directory_entries_are_ignored() -> None:
    dossier = make_dossier()
    data = zip_of([("agreement/", b""), ("evidence/", b""), *dossier.entries.items()])
    assert check(data, dossier.chain)["valid"]


@pytest.mark.parametrize("garbage", [b"", b"not a zip", b"PK\x03\x04" + b"\x00" * 40])
def test_what_is_not_a_zip_fails_not_raises(garbage: bytes) -> None:
    result = check(garbage, FakeChain())
    assert result["failed"] == ["zip"]


def test_a_larger_entry_than_listed_fails_without_reading_all_of_it() -> None:
    dossier = make_dossier()
    huge = b"\x00" * (32 * 1024 * 1024)  # deflates to ~32 KB: a small bomb
    result = check(dossier.with_entries(**{"README.txt": huge}), dossier.chain)
    detail = next(c["detail"] for c in result["checks"] if c["name"] == "files")
    assert "README.txt has more than" in detail


@pytest.mark.parametrize(
    "manifest_bytes",
    [b"{", b"\xff\xfe", b"[]", b'{"format": "offerseal-dossier-9"}', b'{"a": 1, "a": 2}', b"NaN"],
)
def test_a_manifest_that_is_not_a_manifest_fails(manifest_bytes: bytes) -> None:
    dossier = make_dossier()
    result = check(dossier.with_entries(**{"manifest.json": manifest_bytes}), dossier.chain)
    assert result["failed"] == ["manifest"]


def _good_manifest() -> dict[str, Any]:
    return manifest_of(listed_files(FakeChain()))


def test_a_well_formed_manifest_has_no_problems() -> None:
    assert manifest_problems(_good_manifest()) == []


@pytest.mark.parametrize(
    "edit,problem",
    [
        (lambda m: m["files"].reverse(), "sorted"),
        (lambda m: m["files"].append(dict(m["files"][0])), "unique"),
        (lambda m: m["files"][0].update(sha256="AB" * 32), "sha256"),
        (lambda m: m["files"][0].update(bytes=-1), "bytes"),
        (lambda m: m["files"][0].update(bytes=True), "bytes"),
        (lambda m: m["files"][0].update(path="../x"), "path"),
        (lambda m: m["files"][0].update(path="cover.pdf"), "cannot be listed"),
        (lambda m: m["files"][0].pop("title"), "title"),
        (lambda m: m["files"][3].update(proof="nowhere.json"), "not another listed file"),
        (lambda m: m["agreement"].update(registry="0x12"), "registry"),
        (lambda m: m["agreement"].update(onchain_id="0x12"), "onchain_id"),
        (lambda m: m["agreement"].update(chain_id="31337"), "chain_id"),
        (lambda m: m.update(as_of="2026-11-25T16:30:00+08:00"), "as_of"),
        (lambda m: m.update(as_of="yesterday"), "as_of"),
        (lambda m: m.pop("agreement"), "agreement"),
    ],
)
def test_manifest_problems_name_the_field(
    edit: Callable[[dict[str, Any]], None], problem: str
) -> None:
    manifest = _good_manifest()
    edit(manifest)
    problems = manifest_problems(manifest)
    assert problems and any(problem in p for p in problems), problems


def test_a_cover_check_is_asked_about_the_cover() -> None:
    dossier = make_dossier()
    seen: list[bytes] = []

    def cover_check(pdf: bytes) -> tuple[bool | None, str]:
        seen.append(pdf)
        return False, "signature broken"

    result = check(dossier.zip(), dossier.chain, cover_check=cover_check)
    assert seen == [dossier.entries["cover.pdf"]]
    assert result["failed"] == ["cover"]


def test_a_chain_that_fails_mid_way_fails_the_check_not_the_verifier() -> None:
    class Broken(FakeChain):
        def anchored_at(self, registry: str, root: bytes) -> int:
            raise ConnectionError("endpoint went away")

    dossier = make_dossier()
    result = check(dossier.zip(), Broken(dossier.chain.roots))
    assert "manifest_anchored" in result["failed"]
    assert "endpoint went away" in result["checks"][3]["detail"]


def test_the_published_manifest_schema_accepts_a_manifest_and_agrees_with_the_verifier() -> None:
    """The schema served at /v1/schemas/dossier-manifest-1.json and the verifier's own shape
    check refuse the same broken manifests (those a schema can express)."""
    import jsonschema

    from offerseal.evidence.published import SCHEMAS, load_schema, schema_for_bundle

    assert SCHEMAS["dossier-manifest-1"] == DOSSIER_FORMAT
    schema = load_schema("dossier-manifest-1")
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    good = _good_manifest()
    validator.validate(good)
    assert schema_for_bundle(good) == "dossier-manifest-1"
    broken_cases: list[tuple[Callable[[dict[str, Any]], None], list[Any]]] = [
        (lambda m: m["files"][0].update(sha256="AB" * 32), ["files", 0, "sha256"]),
        (lambda m: m["files"][0].update(bytes=-1), ["files", 0, "bytes"]),
        (lambda m: m["files"][0].update(path="../x"), ["files", 0, "path"]),
        (lambda m: m["files"][0].update(path="a\\b"), ["files", 0, "path"]),
        (lambda m: m["files"][0].update(path="manifest.json"), ["files", 0, "path"]),
        (lambda m: m["files"][0].pop("title"), ["files", 0]),
        (lambda m: m["agreement"].update(registry="0x12"), ["agreement", "registry"]),
        (lambda m: m["agreement"].update(chain_id="31337"), ["agreement", "chain_id"]),
        (lambda m: m.update(as_of="2026-11-25T16:30:00+08:00"), ["as_of"]),
        (lambda m: m.update(format="offerseal-dossier-2"), ["format"]),
    ]
    for edit, where in broken_cases:
        manifest = _good_manifest()
        edit(manifest)
        errors = list(validator.iter_errors(manifest))
        assert [list(e.absolute_path) for e in errors] == [where], manifest
        assert manifest_problems(manifest), manifest


def test_pyhanko_checks_a_signed_cover_and_refuses_a_changed_or_unsigned_one(
    tmp_path: Any,
) -> None:
    from reportlab.pdfgen import canvas

    from offerseal.shared import secrets
    from offerseal.shared.config import load_settings
    from offerseal.shared.pdf import PdfSigningKey, sign_pdf
    from offerseal_verify.dossier import pyhanko_cover_check

    out = io.BytesIO()
    page = canvas.Canvas(out, pageCompression=0)
    page.drawString(72, 720, "Agreement dossier")
    page.save()
    key, cert = secrets.certificate_signing_pem(load_settings({}, data_dir=tmp_path))
    signed = sign_pdf(out.getvalue(), PdfSigningKey(key, cert), reason="test")
    ok, detail = pyhanko_cover_check(signed)
    assert ok is True, detail
    assert "intact and valid" in detail
    assert pyhanko_cover_check(out.getvalue())[0] is False  # not signed
    changed = bytearray(signed)
    changed[signed.index(b"Agreement dossier")] ^= 0x01  # a byte the signature covers
    assert pyhanko_cover_check(bytes(changed))[0] is False


# ---- names that are one file once extracted, overlapping entries, the byte budget -----------


@pytest.mark.parametrize(
    "duplicate",
    [
        "evidence/resignation_accepted/d-2/PROOF.json",  # case
        "README.TXT",
        "agreement/text.zh-CN.txt",  # exactly the same name
        "agreement/caf\u00e9.txt",  # NFC beside NFD below
    ],
)
def test_names_that_extract_to_one_file_are_refused(duplicate: str) -> None:
    dossier = make_dossier()
    entries = [*dossier.entries.items(), ("agreement/cafe\u0301.txt", b"nfd"), (duplicate, b"2")]
    result = check(zip_of(entries), dossier.chain)
    assert result["failed"] == ["zip"] and "twice" in result["checks"][0]["detail"], result


def test_overlapping_entries_are_refused_before_any_is_read() -> None:
    """Two entries sharing stored bytes (how one kernel is counted many times in a zip bomb):
    each reads as a well-formed entry, so Python 3.11.7's zipfile and the old verifier took
    the dossier as valid."""
    readme = "README.txt"
    chain = FakeChain()
    files = listed_files(chain)
    inner = local_record(raw_entry(readme, files[readme][0]))
    files["agreement/wrapper.bin"] = (inner, None)  # listed with its true hash and size
    manifest = json.dumps(manifest_of(files), indent=2).encode()
    outside = {
        "manifest.json": manifest,
        "manifest.proof.json": json.dumps(bundle_for(manifest, "d-manifest", chain)).encode(),
        "cover.pdf": b"%PDF-1.7 signed cover report",
    }
    listed = [(p, c) for p, (c, _) in files.items() if p not in (readme, "agreement/wrapper.bin")]
    entries = [raw_entry(p, c) for p, c in [*outside.items(), *listed]]
    data = overlapping_zip([*entries, raw_entry(readme, files[readme][0])], "agreement/wrapper.bin")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:  # zipfile itself reads both
        assert archive.read("agreement/wrapper.bin") == inner
        assert archive.read(readme) == files[readme][0]
    result = check(data, chain)
    assert result["failed"] == ["zip"], result
    detail = result["checks"][0]["detail"]
    assert "'README.txt' overlaps 'agreement/wrapper.bin'" in detail, detail


def test_a_zip_bomb_by_declared_sizes_is_refused_before_reading() -> None:
    """17 entries of 64 MiB of zeros each (64 KB deflated), listed with their true hashes: a
    genuine-looking dossier that made the old verifier decompress and hash 1.06 GiB."""
    kernel, crc = deflated_zeros(64 * 1024 * 1024)
    sha = hashlib.sha256(b"\x00" * (64 * 1024 * 1024)).hexdigest()
    bulk = [f"agreement/bulk-{i:02d}.bin" for i in range(17)]

    def add_bulk(manifest: dict[str, Any]) -> None:
        for path in bulk:
            manifest["files"].append(
                {"path": path, "sha256": sha, "bytes": 64 * 1024 * 1024, "title": "bulk"}
            )
        manifest["files"].sort(key=lambda entry: entry["path"])

    dossier = make_dossier(add_bulk)
    entries = [raw_entry(name, content) for name, content in dossier.entries.items()]
    entries += [RawEntry(path, kernel, 64 * 1024 * 1024, crc, DEFLATED) for path in bulk]
    reads: list[str] = []
    original = zipfile.ZipFile.open

    def counting_open(self: zipfile.ZipFile, name: Any, *args: Any, **kwargs: Any) -> Any:
        reads.append(getattr(name, "filename", name))
        return original(self, name, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(zipfile.ZipFile, "open", counting_open)
        result = check(plain_zip(entries), dossier.chain)
    assert result["failed"] == ["zip"], result
    assert "bytes uncompressed; at most 1073741824" in result["checks"][0]["detail"]
    assert reads == []


def test_every_byte_read_counts_against_the_budget() -> None:
    """Within the directory's declared total, reading is still bounded: the manifest, each
    listed file, each proof bundle read again for its check, and the cover."""
    dossier = make_dossier()
    data = dossier.zip()
    everything = sum(len(content) for content in dossier.entries.values())
    assert check(data, dossier.chain, max_bytes=everything + 2 * 64 * 1024)["valid"]
    result = check(data, dossier.chain, max_bytes=everything)  # no room for the re-reads
    assert not result["valid"] and result["failed"], result
    small = check(data, dossier.chain, max_bytes=len(dossier.entries["manifest.json"]) + 10)
    assert small["failed"] == ["zip"]

VECTOR_ABC = "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"  # GB/T 32905


def test_the_manifest_lists_each_files_sm3_and_the_verifier_checks_it() -> None:
    from offerseal.contracts.domain.dossier import DossierFile, manifest_bytes
    from offerseal_verify.sm3 import sm3

    made = json.loads(
        manifest_bytes({"id": "a-1"}, "2026-12-01T00:00:00Z", [DossierFile("a.txt", b"abc", "x")])
    )
    assert made["files"][0]["sm3"] == VECTOR_ABC
    plain = make_dossier().entries  # the same bytes every time (deterministic signatures)

    def with_sm3(manifest: dict[str, Any]) -> None:
        for entry in manifest["files"]:
            entry["sm3"] = sm3(plain[entry["path"]]).hex()

    dossier = make_dossier(with_sm3)
    result = check(dossier.zip(), dossier.chain)
    assert result["valid"], result
    assert "(5 with its sm3 too)" in result["checks"][2]["detail"]

    def wrong_sm3(manifest: dict[str, Any]) -> None:
        with_sm3(manifest)
        manifest["files"][0]["sm3"] = "00" * 32

    bad = make_dossier(wrong_sm3)  # a producer that lied about one SM3 (and anchored the lie)
    result = check(bad.zip(), bad.chain)
    assert result["failed"] == ["files"] and "has sm3" in result["checks"][2]["detail"]
    manifest = manifest_of({"a": (b"", None)})
    manifest["files"][0]["sm3"] = "0X"
    assert manifest_problems(manifest) == ["files[0].sm3: 64 lowercase hex digits are required"]

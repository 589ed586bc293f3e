"""The dossier's manifest (`offerseal-dossier-1`): the names of its entries, the JSON its files
hold, and the rules a well-formed manifest follows (the published JSON Schema
`dossier-manifest-1.json` states the same rules). Used by `dossier.py`, which verifies the ZIP."""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
from typing import Any, TypeGuard

DOSSIER_FORMAT = "offerseal-dossier-1"
FORMATS = (DOSSIER_FORMAT,)
MANIFEST = "manifest.json"
MANIFEST_PROOF = "manifest.proof.json"
COVER = "cover.pdf"
SIGNING_RECORD = "signatures/signing-record.json"
OUTSIDE_MANIFEST = frozenset({MANIFEST, MANIFEST_PROOF, COVER})
MAX_ENTRIES = 10_000
_SHA256 = re.compile(r"[0-9a-f]{64}")
_HEX32 = re.compile(r"0x[0-9a-fA-F]{64}")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_UTC_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|\+00:00)", re.ASCII)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def unsafe_name(name: str) -> str | None:
    """Why an entry name must not be used as a path (extracting it could escape or collide), or
    None. Names use '/', are relative, and have no empty, '.' or '..' segment."""
    if not name:
        return "empty name"
    if _CONTROL.search(name):
        return "control character in the name"
    if "\\" in name:
        return "backslash in the name (paths use '/')"
    if name.startswith("/"):
        return "absolute path"
    if re.match(r"[A-Za-z]:", name):
        return "drive letter"
    segments = name.removesuffix("/").split("/")
    if any(s in ("", ".", "..") for s in segments):
        return "empty, '.' or '..' path segment"
    return None


def name_key(name: str) -> str:
    """The key under which two entry names are the same file once extracted: file systems of
    Windows and macOS ignore case, and macOS the Unicode normalisation form."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())


def _strict_json(data: bytes) -> Any:
    """JSON as the dossier's files hold it: UTF-8, no duplicate keys, no NaN or Infinity."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise ValueError(f"duplicate key {key!r}")
            out[key] = value
        return out

    def constant(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    return json.loads(data.decode("utf-8"), object_pairs_hook=pairs, parse_constant=constant)


def _utc_time(text: Any) -> bool:
    if not isinstance(text, str) or not _UTC_TIME.fullmatch(text):
        return False
    try:
        dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:  # e.g. month 13
        return False
    return True


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def manifest_problems(manifest: Any) -> list[str]:
    """What makes `manifest` not a well-formed `offerseal-dossier-1` manifest (empty if none).
    The published JSON Schema `dossier-manifest-1.json` states the same rules."""
    if not isinstance(manifest, dict):
        return ["the manifest is not a JSON object"]
    if manifest.get("format") not in FORMATS:
        return [f"format is {manifest.get('format')!r}, expected {DOSSIER_FORMAT!r}"]
    problems: list[str] = []
    agreement = manifest.get("agreement")
    if not isinstance(agreement, dict):
        problems.append("agreement: an object is required")
    else:
        for key in ("id", "state"):
            if not isinstance(agreement.get(key), str) or not agreement.get(key):
                problems.append(f"agreement.{key}: a non-empty string is required")
        if not (
            isinstance(agreement.get("onchain_id"), str)
            and _HEX32.fullmatch(agreement["onchain_id"])
        ):
            problems.append("agreement.onchain_id: 0x and 64 hex digits are required")
        chain_id = agreement.get("chain_id")
        if not (_is_int(chain_id) and chain_id > 0):
            problems.append("agreement.chain_id: a positive integer is required")
        if not (
            isinstance(agreement.get("registry"), str) and _ADDRESS.fullmatch(agreement["registry"])
        ):
            problems.append("agreement.registry: 0x and 40 hex digits are required")
    if not _utc_time(manifest.get("as_of")):
        problems.append("as_of: an ISO-8601 UTC time is required")
    files = manifest.get("files")
    if not isinstance(files, list):
        problems.append("files: a list is required")
        return problems
    if len(files) > MAX_ENTRIES:
        problems.append(f"files: at most {MAX_ENTRIES} entries")
        return problems
    paths: list[str] = []
    for i, entry in enumerate(files):
        where = f"files[{i}]"
        if not isinstance(entry, dict):
            problems.append(f"{where}: an object is required")
            continue
        path = entry.get("path")
        if not isinstance(path, str) or unsafe_name(path) or path.endswith("/"):
            problems.append(f"{where}.path: a safe relative file path is required")
        elif path in OUTSIDE_MANIFEST:
            problems.append(f"{where}.path: {path} cannot be listed in the manifest")
        else:
            paths.append(path)
        if not (isinstance(entry.get("sha256"), str) and _SHA256.fullmatch(entry["sha256"])):
            problems.append(f"{where}.sha256: 64 lowercase hex digits are required")
        if "sm3" in entry and not (
            isinstance(entry["sm3"], str) and _SHA256.fullmatch(entry["sm3"])
        ):
            problems.append(f"{where}.sm3: 64 lowercase hex digits are required")
        size = entry.get("bytes")
        if not (_is_int(size) and size >= 0):
            problems.append(f"{where}.bytes: a non-negative integer is required")
        if not isinstance(entry.get("title"), str):
            problems.append(f"{where}.title: a string is required")
        if "proof" in entry and not isinstance(entry["proof"], str):
            problems.append(f"{where}.proof: a path (string) is required")
    if len(set(paths)) != len(paths):
        problems.append("files: paths must be unique")
    elif paths != sorted(paths):
        problems.append("files: entries must be sorted by path")
    if not problems:
        listed = set(paths)
        for entry in files:
            target = entry.get("proof")
            if target is not None and (target not in listed or target == entry["path"]):
                problems.append(f"{entry['path']}: its proof {target} is not another listed file")
    return problems

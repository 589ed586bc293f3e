# ruff: noqa: RUF001  (Chinese text uses full-width punctuation)
"""The agreement dossier's rules, without I/O: which files it holds and what each is, the
manifest that lists every one of them by sha256 and SM3 (its own hash is anchored, so nothing can be
added or removed unseen), the damages against the 30% cap, and the ZIP itself.

Format `offerseal-dossier-1`: `manifest.json` lists every entry of the ZIP except itself,
`manifest.proof.json` (the manifest's anchored proof bundle) and `cover.pdf` (the signed cover
report, which names the manifest's hash and so cannot be inside it)."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import re
import unicodedata
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from offerseal_verify.sm3 import sm3

FORMAT = "offerseal-dossier-1"
MANIFEST = "manifest.json"
MANIFEST_PROOF = "manifest.proof.json"
COVER = "cover.pdf"
OUTSIDE_MANIFEST = (MANIFEST, MANIFEST_PROOF, COVER)
CAP_PERCENT = 30  # damages may not exceed 30% of one month's salary (DOMAIN.md)

_SAFE_PART = re.compile(r"^[\w.\-+@ ()\u4e00-\u9fff]{1,120}$")


class DossierInvalid(ValueError):
    """Files that cannot make a dossier (a bug in the producer, never the caller's input)."""


@dataclass(frozen=True)
class DossierFile:
    path: str
    content: bytes
    title: str  # what the file is, for the reader of the manifest
    proof: str | None = None  # the path of the proof bundle that anchors this file

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    @property
    def sm3(self) -> str:
        """SM3 (GB/T 32905) of the bytes, the digest Chinese evidence platforms compare."""
        return sm3(self.content).hex()


def safe_name(name: str, fallback: str) -> str:
    """A file name from the outside world (an upload's), usable as one ZIP path part."""
    name = unicodedata.normalize("NFC", name)
    cleaned = re.sub(r"[^\w.\-+@ ()\u4e00-\u9fff]", "_", name.strip())[:120].strip(". ")
    return cleaned if cleaned and _SAFE_PART.match(cleaned) else fallback


def path_key(path: str) -> str:
    """Two entry names with the same key are one file once extracted (Windows and macOS ignore
    case, macOS the Unicode form; the verifiers refuse such pairs): compatibility forms and
    case folded away, stricter than any verifier's own comparison."""
    nfkc = unicodedata.normalize("NFKC", path)
    return unicodedata.normalize("NFKC", nfkc.casefold())


def distinct_name(name: str, taken: set[str]) -> str:
    """`name`, or `document-<name>` (then `document-2-<name>`, ...) when its key is taken, so
    an upload called `PROOF.json` does not collide with its folder's `proof.json`."""
    candidate, n = name, 1
    while path_key(candidate) in taken:
        candidate = f"document-{name}" if n == 1 else f"document-{n}-{name}"
        n += 1
    return candidate


def _check_distinct(paths: Sequence[str]) -> None:
    seen: dict[str, str] = {}
    for path in paths:
        key = path_key(path)
        if key in seen:
            raise DossierInvalid(f"two entries of a dossier are one file: {seen[key]!r}, {path!r}")
        seen[key] = path


def check_path(path: str) -> None:
    parts = path.split("/")
    if not path or path.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise DossierInvalid(f"unsafe path in a dossier: {path!r}")
    if not all(_SAFE_PART.match(p) for p in parts):
        raise DossierInvalid(f"unsafe path in a dossier: {path!r}")


def manifest_bytes(agreement: Mapping[str, Any], as_of: str, files: Sequence[DossierFile]) -> bytes:
    """The manifest's exact bytes (the ones anchored): sorted keys, files sorted by path."""
    paths = [f.path for f in files]
    _check_distinct([*OUTSIDE_MANIFEST, *paths])
    for f in files:
        check_path(f.path)
        if f.path in OUTSIDE_MANIFEST:
            raise DossierInvalid(f"{f.path} is not listed in its own manifest")
        if f.proof is not None and f.proof not in paths:
            raise DossierInvalid(f"{f.path} names a proof {f.proof} the dossier does not hold")
    body = {
        "format": FORMAT,
        "agreement": dict(agreement),
        "as_of": as_of,
        "files": [
            {
                "path": f.path,
                "sha256": f.sha256,
                "sm3": f.sm3,
                "bytes": len(f.content),
                "title": f.title,
                **({"proof": f.proof} if f.proof else {}),
            }
            for f in sorted(files, key=lambda f: f.path)
        ],
    }
    return (json.dumps(body, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def latest(times: Sequence[str | None]) -> str:
    """The newest of ISO-8601 times (the dossier's `as_of`)."""
    parsed = [dt.datetime.fromisoformat(t) for t in times if t]
    aware = [p if p.tzinfo else p.replace(tzinfo=dt.UTC) for p in parsed]
    newest = max(aware) if aware else dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return newest.astimezone(dt.UTC).isoformat()


def damages_statement(
    *, currency: str, monthly_salary: int, liquidated_damages: int, state: str
) -> dict[str, Any]:
    """The damages against the cap, as a court would check them (amounts in minor units)."""
    cap = monthly_salary * CAP_PERCENT // 100
    return {
        "state": state,
        "currency": currency,
        "monthly_salary": monthly_salary,
        "cap_percent": CAP_PERCENT,
        "cap": cap,
        "liquidated_damages": liquidated_damages,
        "within_cap": liquidated_damages <= cap,
        "percent_of_monthly_salary": round(100 * liquidated_damages / monthly_salary, 2)
        if monthly_salary
        else None,
    }


def json_file(path: str, title: str, value: Any, proof: str | None = None) -> DossierFile:
    content = (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
    return DossierFile(path, content, title, proof)


def readme(agreement_id: str, verify_url: str) -> str:
    return f"""OfferSeal agreement dossier / OfferSeal 协议证据包
Agreement / 协议: {agreement_id}

EN
manifest.json lists every file of this dossier with its SHA-256; manifest.json's own hash is
anchored on the blockchain (its proof: manifest.proof.json), so no file can be changed, added or
removed unseen. cover.pdf is the signed cover report; any PDF reader shows whether it was altered.
Verify without trusting OfferSeal:
  1. Open verify.html (in this dossier) in a browser, or {verify_url}; drop this ZIP; give any
     Ethereum RPC endpoint of the chain named in manifest.json.
  2. Or the command line: offerseal verify-dossier THIS.zip --rpc <RPC endpoint>
     (the verifier installs without the rest of OfferSeal: pip install ./verifier).
Each evidence file has its own proof bundle beside it (proof.json); it verifies alone as well.

中文
manifest.json 列出本证据包中每个文件及其 SHA-256 哈希值；manifest.json 本身的哈希值已写入区块链
（证明见 manifest.proof.json），因此任何文件被修改、增加或删除都会被发现。cover.pdf 是已数字签名
的封面报告，任何 PDF 阅读器都能显示其是否被修改。
不依赖 OfferSeal 的验证方法：
  1. 在浏览器中打开本包中的 verify.html（或 {verify_url}），放入本 ZIP 文件，填写该链的任意
     以太坊 RPC 节点。
  2. 或使用命令行：offerseal verify-dossier 本文件.zip --rpc <RPC 节点>
每个证据文件旁都有各自的证明包（proof.json），也可单独验证。
"""


def zip_bytes(entries: Sequence[tuple[str, bytes]], when: dt.datetime) -> bytes:
    """A ZIP of `entries` in the given order, every entry dated `when` (UTC), deflated."""
    stamp = when.astimezone(dt.UTC)
    date_time = (max(stamp.year, 1980), stamp.month, stamp.day, stamp.hour, stamp.minute, 0)
    _check_distinct([path for path, _ in entries])
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        seen: set[str] = set()
        for path, content in entries:
            check_path(path)
            if path in seen:
                raise DossierInvalid(f"two entries named {path}")
            seen.add(path)
            info = zipfile.ZipInfo(path, date_time=date_time)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.flag_bits |= 0x800  # UTF-8 names
            archive.writestr(info, content)
    return out.getvalue()

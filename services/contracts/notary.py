"""The notary's cover: one page in Chinese, made from an agreement dossier (the ZIP itself),
listing what a notary office checks for a 离职进程公证 (a notarised letter on the progress of a
resignation): the parties, each document with its SM3 and SHA-256, each witness of each document,
and the chain of custody. HR hands it over with the dossier, without explaining it.

Pure: it reads only the dossier's own files (manifest.json, agreement/agreement.json,
evidence/index.json, the proof bundles), so it states nothing the dossier does not prove, and
needs no service or key. It is a reading aid, not part of the dossier: it is not listed in the
manifest (the dossier still verifies as it was made) and is not signed. Its words are the
catalogue's `pdf.notary.*` (in English too, for a reader of the catalogue; the cover is Chinese).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import zipfile
from dataclasses import dataclass, field
from typing import Any

from offerseal_verify.sm3 import sm3

from ..shared import i18n
from ..shared.pdf import Report, render_report

LANG = "zh-CN"
CHECKS = 5  # the notary's checks: pdf.notary.check.1 ... .5
MAX_DOCUMENTS = 6  # one page; the dossier's manifest lists every file


@dataclass(frozen=True)
class NotaryDocument:
    id: str
    kind: str
    filename: str
    sha256: str
    sm3: str | None
    received_at: str
    uploader: str
    receipt_key: str
    witnesses: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class NotaryFacts:
    agreement: dict[str, Any]
    documents: list[NotaryDocument]
    manifest_sha256: str
    manifest_sm3: str
    manifest_witnesses: list[str]
    as_of: str
    file_count: int


def _t(key: str, /, **params: object) -> str:
    return i18n.text(LANG, f"pdf.notary.{key}", **params)


def _named(key: str, otherwise: str) -> str:
    """The catalogue's text `key` when it has one (a document kind, an uploader), else
    `otherwise`."""
    return i18n.texts(LANG).get(f"pdf.notary.{key}", otherwise)


def kind_name(kind: str) -> str:
    return _named(f"kind.{kind}", kind)


def _json(archive: zipfile.ZipFile, name: str) -> Any:
    try:
        return json.loads(archive.read(name))
    except (KeyError, ValueError):
        return None


def _utc(seconds: Any) -> str:
    try:
        moment = dt.datetime.fromtimestamp(int(seconds), dt.UTC)
    except (TypeError, ValueError):
        return "-"
    beijing = moment.astimezone(dt.timezone(dt.timedelta(hours=8)))
    return _t("beijing_time", time=beijing.strftime("%Y-%m-%d %H:%M"))


def witnesses_of(bundle: Any) -> list[str]:
    """Each witness a proof bundle carries, one line each, in Chinese."""
    if not isinstance(bundle, dict):
        return [_t("witness.none")]
    anchor = bundle.get("anchor") or {}
    out = [
        _t(
            "witness.chain",
            chain_id=anchor.get("chain_id", "?"),
            block=anchor.get("block_number", "?"),
            time=_utc(anchor.get("block_timestamp")),
            tx=anchor.get("tx_hash", "-"),
        )
    ]
    for stamp in bundle.get("timestamps") or []:
        if isinstance(stamp, dict):
            tsa, time = stamp.get("tsa", "?"), stamp.get("gen_time", "?")
            out.append(_t("witness.tsa", tsa=tsa, time=time))
    for deposit in bundle.get("deposits") or []:
        if isinstance(deposit, dict) and deposit.get("type") == "tencent-btoe":
            out.append(
                _t(
                    "witness.btoe",
                    evidence_id=deposit.get("evidence_id"),
                    time=deposit.get("evidence_time"),
                )
            )
    return out


def _uploader(described: dict[str, Any]) -> str:
    provenance = described.get("provenance") or {}
    uploader = provenance.get("uploader") or {}
    via = str(uploader.get("via"))
    if via == "api_key":
        return _t("uploader.api_key", name=uploader.get("key_name") or uploader.get("key_id") or "")
    return _named(f"uploader.{via}", "-")


def notary_facts(dossier: bytes) -> NotaryFacts:
    """What the cover states, read from the dossier's ZIP (ValueError if it is not one)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(dossier))
    except zipfile.BadZipFile as exc:
        raise ValueError(f"not a dossier ZIP: {exc}") from None
    with archive:
        manifest_bytes = archive.read("manifest.json")
        manifest = json.loads(manifest_bytes)
        agreement = _json(archive, "agreement/agreement.json") or dict(manifest["agreement"])
        index = _json(archive, "evidence/index.json") or []
        listed = {entry["path"]: entry for entry in manifest["files"]}
        documents = []
        for described in index:
            if not isinstance(described, dict):
                continue
            folder = f"evidence/{described.get('milestone') or described.get('kind')}/"
            folder += str(described.get("id"))
            entry = next(
                (
                    e
                    for path, e in listed.items()
                    if path.startswith(folder + "/") and not path.endswith("/proof.json")
                ),
                None,
            )
            receipt = described.get("intake_receipt") or {}
            documents.append(
                NotaryDocument(
                    id=str(described.get("id")),
                    kind=str(described.get("kind")),
                    filename=str(described.get("filename") or _t("hash_only")),
                    sha256=str(described.get("sha256", "")).removeprefix("0x"),
                    sm3=(entry or {}).get("sm3")
                    or (str(described["sm3"]).removeprefix("0x") if described.get("sm3") else None),
                    received_at=str(described.get("received_at", "-")),
                    uploader=_uploader(described),
                    receipt_key=str((receipt.get("payload") or {}).get("key_id", "-")),
                    witnesses=witnesses_of(_json(archive, f"{folder}/proof.json")),
                )
            )
        return NotaryFacts(
            agreement=agreement,
            documents=documents,
            manifest_sha256=hashlib.sha256(manifest_bytes).hexdigest(),
            manifest_sm3=sm3(manifest_bytes).hex(),
            manifest_witnesses=witnesses_of(_json(archive, "manifest.proof.json")),
            as_of=str(manifest.get("as_of", "-")),
            file_count=len(listed),
        )


def sections(facts: NotaryFacts) -> list[tuple[str, list[tuple[str, str]]]]:
    a = facts.agreement
    parties = [
        (
            _t("party.employer"),
            _t(
                "party.signer",
                name=a.get("employer_name", "-"),
                address=a.get("employer_address", "-"),
            ),
        ),
        (
            _t("party.candidate"),
            _t(
                "party.signer",
                name=a.get("candidate_ref", "-"),
                address=a.get("candidate_address") or "-",
            ),
        ),
        (_t("party.position"), f"{a.get('position', '-')} / {a.get('start_at', '-')}"),
        (
            _t("party.agreement"),
            _t("party.agreement_state", id=a.get("id", "-"), state=a.get("state", "-")),
        ),
    ]
    documents = []
    for doc in facts.documents[:MAX_DOCUMENTS]:
        documents.append(
            (
                kind_name(doc.kind),
                "\n".join(
                    [
                        _t("document.file", filename=doc.filename, id=doc.id),
                        f"SM3 {doc.sm3 or _t('document.no_sm3')}",
                        f"SHA-256 {doc.sha256}",
                        *doc.witnesses,
                    ]
                ),
            )
        )
    if len(facts.documents) > MAX_DOCUMENTS:
        documents.append(("……", _t("document.more", n=len(facts.documents) - MAX_DOCUMENTS)))
    custody = [
        (
            kind_name(doc.kind),
            _t(
                "custody.submitted",
                received_at=doc.received_at,
                uploader=doc.uploader,
                key=doc.receipt_key,
            ),
        )
        for doc in facts.documents[:MAX_DOCUMENTS]
    ]
    custody.append(
        (
            _t("custody.manifest"),
            "\n".join(
                [
                    _t("custody.count", n=facts.file_count, as_of=facts.as_of),
                    f"SM3 {facts.manifest_sm3}",
                    f"SHA-256 {facts.manifest_sha256}",
                    *facts.manifest_witnesses,
                ]
            ),
        )
    )
    return [
        (_t("section.parties"), parties),
        (_t("section.documents"), documents),
        (_t("section.custody"), custody),
    ]


def render_notary_cover(
    facts: NotaryFacts, *, verify_url: str, software: str, issued_at: dt.datetime
) -> bytes:
    """The cover as an unsigned A4 PDF in Chinese; the QR code opens the verify page."""
    when = issued_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return render_report(
        Report(
            lang=LANG,
            title=_t("title"),
            intro=_t("intro"),
            sections=sections(facts),
            how_heading=_t("how"),
            steps=[_t(f"check.{n}") for n in range(1, CHECKS + 1)],
            qr_url=verify_url,
            footer=_t("footer", software=software, when=when),
            document_title=_t("document_title", id=facts.agreement.get("id", "")),
            empty_section=_t("none"),
        )
    )

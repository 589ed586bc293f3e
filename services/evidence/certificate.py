"""The evidence certificate: a PDF a judge can read, built from a document's description and its
proof bundle. Pure assembly and layout (reportlab); no framework, no database. Signing the PDF
is `shared.pdf`'s job.

`certificate_facts` picks what the certificate states out of the description and the bundle
(testable without a PDF); `render_certificate` lays those facts out in zh-CN or en, in the
catalogue's words (`pdf.certificate.*`).

Chinese text needs a CJK font: `shared.pdf.cjk_font()` embeds WenQuanYi Micro Hei (Debian's
fonts-wqy-microhei) when the machine has it, otherwise it uses reportlab's built-in CID font
STSong-Light, which PDF readers supply themselves (it is not embedded).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from ..shared import i18n
from ..shared.pdf import Report, render_report

LANGS = i18n.LANGUAGES


def label(key: str, lang: str, **params: object) -> str:
    """The certificate's text `key` (catalogue `pdf.certificate.*`); any language but zh-CN
    reads English."""
    return i18n.text("zh-CN" if lang == "zh-CN" else "en", f"pdf.certificate.{key}", **params)


@dataclass(frozen=True)
class Facts:
    """What a certificate states, in the order it states it."""

    document_id: str
    kind: str
    filename: str | None
    size: int | None
    sha256: str
    sm3: str | None
    received_at: str
    uploader: dict[str, Any]
    client_address: str | None
    user_agent: str | None
    source: dict[str, str]
    email: dict[str, Any] | None
    receipt_key: str
    receipt_signature: str
    proof_format: str
    leaf: str
    root: str
    path: tuple[str, ...]
    chain_id: int
    registry: str
    tx_hash: str
    block_number: int
    block_hash: str
    block_time: str
    stamps: tuple[dict[str, str], ...]
    deposits: tuple[dict[str, str], ...] = ()


PROVIDERS = ("tencent-btoe",)  # judicial chains with a name of their own in the catalogue


class NotAnchored(ValueError):
    """The bundle has no anchoring transaction yet."""


def _utc(seconds: int) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def certificate_facts(description: dict[str, Any], bundle: dict[str, Any]) -> Facts:
    """The facts of a certificate from a document's description (`EvidenceService.get`) and its
    current proof bundle."""
    anchor = bundle["anchor"]
    if not anchor.get("tx_hash"):
        raise NotAnchored("the document's batch has no anchoring transaction yet")
    receipt = bundle.get("intake_receipt") or {}
    payload = receipt.get("payload") or {}
    provenance = description.get("provenance") or payload.get("provenance") or {}
    stamps = tuple(
        {
            "tsa": str(s.get("tsa", "")),
            "gen_time": str(s.get("gen_time", "")),
            "serial_number": str(s.get("serial_number", "")),
        }
        for s in bundle.get("timestamps") or ()
    )
    deposits = tuple(
        {
            "type": str(d.get("type", "")),
            "hash_algorithm": str(d.get("hash_algorithm", "")),
            "hash": str(d.get("hash", "")),
            "evidence_id": str(d.get("evidence_id", "")),
            "tx_hash": str(d.get("tx_hash") or "-"),
            "evidence_time": str(d.get("evidence_time") or "-"),
            "block_height": str(
                d.get("block_height") if d.get("block_height") is not None else "-"
            ),
        }
        for d in bundle.get("deposits") or ()
        if isinstance(d, dict)
    )
    document = bundle.get("document") or {}
    return Facts(
        document_id=str(description["id"]),
        kind=str(description.get("kind") or ""),
        filename=description.get("filename") or provenance.get("filename"),
        size=description.get("size"),
        sha256=str(description["sha256"]),
        sm3=description.get("sm3") or document.get("sm3"),
        received_at=str(description.get("received_at") or bundle["document"].get("received_at")),
        uploader=dict(provenance.get("uploader") or {}),
        client_address=provenance.get("client_address"),
        user_agent=provenance.get("user_agent"),
        source={str(k): str(v) for k, v in (provenance.get("source") or {}).items()},
        email=provenance.get("email") if isinstance(provenance.get("email"), dict) else None,
        receipt_key=str(receipt.get("public_key", "")),
        receipt_signature=str(receipt.get("signature", "")),
        proof_format=str(bundle.get("format", "")),
        leaf=str(bundle["leaf"]["hash"]),
        root=str(bundle["merkle"]["root"]),
        path=tuple(str(p) for p in bundle["merkle"]["proof"]),
        chain_id=int(anchor["chain_id"]),
        registry=str(anchor["registry"]),
        tx_hash=str(anchor["tx_hash"]),
        block_number=int(anchor["block_number"]),
        block_hash=str(anchor["block_hash"]),
        block_time=_utc(int(anchor["block_timestamp"])),
        stamps=stamps,
        deposits=deposits,
    )


def uploader_text(uploader: dict[str, Any], lang: str) -> str:
    if uploader.get("via") == "api_key":
        name = uploader.get("key_name") or ""
        return f"{label('via_api_key', lang)} {name} ({uploader.get('key_id', '')})".strip()
    if uploader.get("via") == "candidate_link":
        return (
            f"{label('via_link', lang)}: {uploader.get('candidate_ref', '')}, "
            f"{uploader.get('agreement_id', '')} / {uploader.get('milestone', '')}"
        )
    if uploader.get("via") == "offerseal_record":
        return (
            f"{label('via_record', lang)}: {uploader.get('record', '')}, "
            f"{uploader.get('agreement_id', '')}"
        )
    return "-"


def rows_of(facts: Facts, lang: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """The certificate's sections as (heading, [(label, value)]): what `render_certificate` lays
    out, and what tests can read without a PDF."""
    size = f"{facts.size:,} {label('bytes', lang)}" if facts.size is not None else "-"
    file_rows = [
        (label("document_id", lang), facts.document_id),
        (label("kind", lang), facts.kind),
        (label("filename", lang), facts.filename or label("hash_only", lang)),
        (label("size", lang), size),
        (label("sha256", lang), facts.sha256),
        (label("sm3", lang), facts.sm3 or label("sm3_absent", lang)),
    ]
    receipt_rows = [
        (label("received_at", lang), facts.received_at),
        (label("received_by", lang), uploader_text(facts.uploader, lang)),
        (label("client_address", lang), facts.client_address or "-"),
        (label("user_agent", lang), facts.user_agent or "-"),
    ]
    if facts.source:
        source = "; ".join(f"{k}={v}" for k, v in sorted(facts.source.items()))
        receipt_rows.append((label("source", lang), source))
    if facts.email:
        dkim = facts.email.get("dkim")
        dkim_text = str(facts.email.get("from") or "")
        if isinstance(dkim, dict):
            dkim_text += f" · {dkim.get('result', '')} {dkim.get('domain') or ''}: "
            dkim_text += str(dkim.get("detail") or "")
        receipt_rows.append((label("email_dkim", lang), dkim_text))
    receipt_rows += [
        (label("receipt_key", lang), facts.receipt_key),
        (label("receipt_signature", lang), facts.receipt_signature),
    ]
    path_text = "\n".join((f"{len(facts.path)} {label('siblings', lang)}", *facts.path))
    chain_rows = [
        (label("format", lang), facts.proof_format),
        (label("leaf", lang), facts.leaf),
        (label("path", lang), path_text),
        (label("root", lang), facts.root),
        (label("chain_id", lang), str(facts.chain_id)),
        (label("registry", lang), facts.registry),
        (label("tx", lang), facts.tx_hash),
        (label("block", lang), str(facts.block_number)),
        (label("block_hash", lang), facts.block_hash),
        (label("block_time", lang), facts.block_time),
    ]
    stamp_rows: list[tuple[str, str]] = []
    for stamp in facts.stamps:
        stamp_rows += [
            (label("tsa", lang), stamp["tsa"]),
            (label("tsa_time", lang), stamp["gen_time"]),
            (label("tsa_serial", lang), stamp["serial_number"]),
        ]
    deposit_rows: list[tuple[str, str]] = []
    for deposit in facts.deposits:
        provider = deposit["type"]
        if provider in PROVIDERS:
            provider = label("provider." + provider.replace("-", "_"), lang)
        algorithm = deposit["hash_algorithm"].upper()
        deposit_rows += [
            (label("judicial_provider", lang), provider),
            (label("judicial_hash", lang), f"{algorithm} {deposit['hash']}"),
            (label("judicial_id", lang), deposit["evidence_id"]),
            (label("judicial_tx", lang), deposit["tx_hash"]),
            (label("judicial_time", lang), deposit["evidence_time"]),
            (label("judicial_height", lang), deposit["block_height"]),
            (
                label("judicial_note", lang),
                label("judicial_note_text", lang, algorithm=algorithm),
            ),
        ]
    if not deposit_rows:
        deposit_rows = [(label("judicial_note", lang), label("no_deposits", lang))]
    return [
        (label("file", lang), file_rows),
        (label("receipt", lang), receipt_rows),
        (label("chain", lang), chain_rows),
        (label("witnesses", lang), stamp_rows),
        (label("judicial", lang), deposit_rows),
    ]


def render_certificate(
    facts: Facts,
    *,
    lang: str,
    verify_url: str,
    software: str,
    issued_at: dt.datetime,
) -> bytes:
    """The unsigned certificate PDF."""
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {', '.join(LANGS)}")
    when = issued_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return render_report(
        Report(
            lang=lang,
            title=label("title", lang),
            intro=label("intro", lang),
            sections=rows_of(facts, lang),
            how_heading=label("how", lang),
            steps=[
                label("step_page", lang, verify_url=verify_url),
                label("step_cli", lang),
                label("step_rpc", lang),
                label("step_tsa", lang),
                label("step_sig", lang),
            ],
            qr_url=verify_url,
            footer=f"{label('software', lang)}: {software} · {label('issued', lang)}: {when}",
            document_title=label("title", lang) + " " + facts.document_id,
            empty_section=label("no_stamps", lang),
        )
    )

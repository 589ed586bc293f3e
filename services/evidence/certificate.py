# ruff: noqa: RUF001  (Chinese text uses full-width punctuation)
"""The evidence certificate: a PDF a judge can read, built from a document's description and its
proof bundle. Pure assembly and layout (reportlab); no framework, no database. Signing the PDF
is `shared.pdf`'s job.

`certificate_facts` picks what the certificate states out of the description and the bundle
(testable without a PDF); `render_certificate` lays those facts out in zh-CN or en.

Chinese text needs a CJK font: `shared.pdf.cjk_font()` embeds WenQuanYi Micro Hei (Debian's
fonts-wqy-microhei) when the machine has it, otherwise it uses reportlab's built-in CID font
STSong-Light, which PDF readers supply themselves (it is not embedded).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from ..shared.pdf import Report, render_report

LANGS = ("zh-CN", "en")

LABELS: dict[str, tuple[str, str]] = {  # key: (zh-CN, en)
    "title": ("电子证据存证证书", "Evidence certificate"),
    "intro": (
        "本证书说明下列文件在何时由何人提交给 OfferSeal，其哈希值如何被写入区块链并由时间戳机构"
        "见证，以及任何人如何不依赖 OfferSeal 独立验证。",
        "This certificate states when and by whom the file below was submitted to OfferSeal, how "
        "its hash was written to a blockchain and witnessed by time-stamp authorities, and how "
        "anyone can verify this independently, without trusting OfferSeal.",
    ),
    "file": ("一、文件", "1. The file"),
    "document_id": ("文件编号", "Document id"),
    "kind": ("文件类型", "Kind"),
    "filename": ("原始文件名", "Original file name"),
    "size": ("大小", "Size"),
    "bytes": ("字节", "bytes"),
    "sha256": ("SHA-256 哈希值", "SHA-256"),
    "sm3": ("SM3 哈希值 (GB/T 32905)", "SM3 (GB/T 32905)"),
    "sm3_absent": (
        "无（仅登记哈希值时 OfferSeal 未收到文件内容，无法计算 SM3）",
        "none (registered by hash only: OfferSeal never had the bytes to compute it)",
    ),
    "hash_only": ("仅登记哈希值（未保存文件内容）", "registered by hash only (no bytes stored)"),
    "receipt": ("二、接收回执（已签名）", "2. Intake receipt (signed)"),
    "received_at": ("接收时间", "Received at"),
    "received_by": ("提交方", "Submitted by"),
    "via_api_key": ("API 密钥", "API key"),
    "via_link": ("候选人上传链接", "candidate upload link"),
    "via_record": ("OfferSeal 生成的记录", "record made by OfferSeal"),
    "client_address": ("客户端地址", "Client address"),
    "user_agent": ("客户端程序", "User agent"),
    "source": ("来源信息", "Source metadata"),
    "email_dkim": ("电子邮件 DKIM 验证", "E-mail DKIM check"),
    "receipt_key": ("回执签名公钥", "Receipt signing key"),
    "receipt_signature": ("回执签名 (Ed25519)", "Receipt signature (Ed25519)"),
    "chain": ("三、区块链存证", "3. Anchoring on the blockchain"),
    "leaf": ("默克尔叶子", "Merkle leaf"),
    "root": ("默克尔根", "Merkle root"),
    "path": ("默克尔路径", "Merkle path"),
    "siblings": ("个兄弟节点", "sibling(s)"),
    "chain_id": ("链 ID", "Chain id"),
    "registry": ("存证合约地址", "Registry address"),
    "tx": ("交易哈希", "Transaction"),
    "block": ("区块高度", "Block number"),
    "block_hash": ("区块哈希", "Block hash"),
    "block_time": ("区块时间", "Block time"),
    "witnesses": ("四、RFC 3161 可信时间戳", "4. RFC 3161 time-stamps"),
    "tsa": ("时间戳机构", "Time-Stamp Authority"),
    "tsa_time": ("时间戳时间", "Time"),
    "tsa_serial": ("序列号", "Serial number"),
    "no_stamps": (
        "本证明未包含 RFC 3161 时间戳（仅区块链见证）。",
        "This proof carries no RFC 3161 time-stamp (the chain is its only witness).",
    ),
    "judicial": ("五、司法区块链存证", "5. Judicial blockchain deposits"),
    "judicial_provider": ("存证平台", "Platform"),
    "judicial_hash": ("存证哈希值", "Deposited digest"),
    "judicial_id": ("存证编码", "Evidence id"),
    "judicial_tx": ("区块链交易哈希", "Transaction"),
    "judicial_time": ("上链时间", "Recorded at"),
    "judicial_height": ("区块高度", "Block height"),
    "judicial_note": ("说明", "Note"),
    "judicial_note_text": (
        "存证内容为上述默克尔根的 {algorithm} 哈希值；本证书记录的是平台的应答，"
        "其在线核验须向该平台查询（腾讯云 BTOE：VerifyEvidenceHash / GetDepositInfo）。",
        "The deposit is the {algorithm} digest of the Merkle root above; this certificate records "
        "the platform's answer, and its on-line confirmation needs the platform (Tencent Cloud "
        "BTOE: VerifyEvidenceHash / GetDepositInfo).",
    ),
    "no_deposits": (
        "本证明未包含司法区块链存证（该见证未启用或尚未完成）。",
        "This proof carries no judicial-chain deposit (the witness is off, or not done yet).",
    ),
    "how": ("六、如何独立验证", "6. How to verify independently"),
    "step_page": (
        "在浏览器中打开验证页面 {verify_url}（或扫描二维码），放入原始文件和证明包（JSON）。"
        "所有计算都在浏览器中完成，文件不会离开您的电脑。",
        "Open the verify page {verify_url} (or scan the QR code) and drop the original file and "
        "its proof bundle (JSON). Every check runs in the browser; the file never leaves your "
        "computer.",
    ),
    "step_cli": (
        "或使用命令行：offerseal verify 文件 证明包.json --rpc <任意以太坊 RPC 节点>。",
        "Or the command line: offerseal verify FILE BUNDLE.json --rpc <any Ethereum RPC endpoint>.",
    ),
    "step_rpc": (
        "可选用任何与 OfferSeal 无关的 RPC 节点查询上述交易和区块，核对默克尔根已写入存证合约。",
        "Any RPC endpoint unrelated to OfferSeal can look up the transaction and block above and "
        "confirm the Merkle root is recorded by the registry.",
    ),
    "step_tsa": (
        "RFC 3161 时间戳可用 openssl ts -verify 对照时间戳机构的证书独立验证。",
        "The RFC 3161 tokens also verify with openssl ts -verify against the TSA's certificate.",
    ),
    "step_sig": (
        "本 PDF 已数字签名；任何 PDF 阅读器均可显示其是否被修改。",
        "This PDF is digitally signed; any PDF reader shows whether it was altered.",
    ),
    "software": ("生成软件", "Produced by"),
    "issued": ("证书生成时间", "Certificate issued at"),
    "format": ("证明格式", "Proof format"),
}


def label(key: str, lang: str) -> str:
    zh, en = LABELS[key]
    return zh if lang == "zh-CN" else en


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


PROVIDERS = {"tencent-btoe": ("腾讯云 BTOE", "Tencent Cloud BTOE")}


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
        names = PROVIDERS.get(deposit["type"], (deposit["type"], deposit["type"]))
        algorithm = deposit["hash_algorithm"].upper()
        deposit_rows += [
            (label("judicial_provider", lang), names[0] if lang == "zh-CN" else names[1]),
            (label("judicial_hash", lang), f"{algorithm} {deposit['hash']}"),
            (label("judicial_id", lang), deposit["evidence_id"]),
            (label("judicial_tx", lang), deposit["tx_hash"]),
            (label("judicial_time", lang), deposit["evidence_time"]),
            (label("judicial_height", lang), deposit["block_height"]),
            (
                label("judicial_note", lang),
                label("judicial_note_text", lang).format(algorithm=algorithm),
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
                label("step_page", lang).format(verify_url=verify_url),
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

# ruff: noqa: RUF001  (Chinese text uses full-width punctuation)
"""The notary's cover: one page in Chinese, made from an agreement dossier (the ZIP itself),
listing what a notary office checks for a 离职进程公证 (a notarised letter on the progress of a
resignation): the parties, each document with its SM3 and SHA-256, each witness of each document,
and the chain of custody. HR hands it over with the dossier, without explaining it.

Pure: it reads only the dossier's own files (manifest.json, agreement/agreement.json,
evidence/index.json, the proof bundles), so it states nothing the dossier does not prove, and
needs no service or key. It is a reading aid, not part of the dossier: it is not listed in the
manifest (the dossier still verifies as it was made) and is not signed.
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

from ..shared.pdf import Report, render_report

KIND_NAMES = {
    "offer_letter": "录用通知书",
    "intent_agreement": "入职意向书",
    "resignation_application": "离职申请",
    "resignation_acceptance": "离职申请批准（盖章件）",
    "handover_progress": "工作交接进度确认",
    "social_insurance_stop": "社保公积金停缴证明",
    "employment_certificate": "在职/离职证明",
    "salary_statement": "收入证明",
    "non_compete_agreement": "竞业限制协议",
    "notarized_resignation_letter": "离职公证书",
    "signing_record": "签署记录",
    "other": "其他文件",
}
UPLOADERS = {
    "api_key": "HR 系统（API 密钥 {name}）",
    "candidate_link": "候选人本人（专属上传链接）",
    "offerseal_record": "OfferSeal 生成的记录",
}
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
    return moment.astimezone(dt.timezone(dt.timedelta(hours=8))).strftime("%Y-%m-%d %H:%M 北京时间")


def witnesses_of(bundle: Any) -> list[str]:
    """Each witness a proof bundle carries, one line each, in Chinese."""
    if not isinstance(bundle, dict):
        return ["尚未上链（证据包生成时该文件的批次尚未锚定）"]
    anchor = bundle.get("anchor") or {}
    out = [
        f"以太坊链 {anchor.get('chain_id', '?')}：区块 {anchor.get('block_number', '?')}，"
        f"{_utc(anchor.get('block_timestamp'))}，交易 {anchor.get('tx_hash', '-')}"
    ]
    for stamp in bundle.get("timestamps") or []:
        if isinstance(stamp, dict):
            out.append(f"RFC 3161 时间戳：{stamp.get('tsa', '?')}，{stamp.get('gen_time', '?')}")
    for deposit in bundle.get("deposits") or []:
        if isinstance(deposit, dict) and deposit.get("type") == "tencent-btoe":
            out.append(
                f"腾讯云 BTOE 司法链：存证编码 {deposit.get('evidence_id')}，"
                f"{deposit.get('evidence_time')}（须向平台在线核验）"
            )
    return out


def _uploader(described: dict[str, Any]) -> str:
    provenance = described.get("provenance") or {}
    uploader = provenance.get("uploader") or {}
    template = UPLOADERS.get(str(uploader.get("via")), "-")
    return template.format(name=uploader.get("key_name") or uploader.get("key_id") or "")


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
                    filename=str(described.get("filename") or "（仅登记哈希值）"),
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
            "用人单位（新雇主）",
            f"{a.get('employer_name', '-')}（签名地址 {a.get('employer_address', '-')}）",
        ),
        (
            "候选人",
            f"{a.get('candidate_ref', '-')}（签名地址 {a.get('candidate_address') or '-'}）",
        ),
        ("岗位 / 约定入职日期", f"{a.get('position', '-')} / {a.get('start_at', '-')}"),
        ("入职意向协议", f"{a.get('id', '-')}，状态 {a.get('state', '-')}"),
    ]
    documents = []
    for doc in facts.documents[:MAX_DOCUMENTS]:
        name = KIND_NAMES.get(doc.kind, doc.kind)
        documents.append(
            (
                name,
                "\n".join(
                    [
                        f"{doc.filename}（编号 {doc.id}）",
                        f"SM3 {doc.sm3 or '无（仅登记哈希值，OfferSeal 未收到文件内容）'}",
                        f"SHA-256 {doc.sha256}",
                        *doc.witnesses,
                    ]
                ),
            )
        )
    if len(facts.documents) > MAX_DOCUMENTS:
        documents.append(
            ("……", f"另有 {len(facts.documents) - MAX_DOCUMENTS} 个文件，见 manifest.json")
        )
    custody = [
        (
            KIND_NAMES.get(doc.kind, doc.kind),
            f"{doc.received_at} 由{doc.uploader}提交；接收回执签名公钥 {doc.receipt_key}",
        )
        for doc in facts.documents[:MAX_DOCUMENTS]
    ]
    custody.append(
        (
            "文件清单 manifest.json",
            "\n".join(
                [
                    f"共 {facts.file_count} 个文件，证据截至 {facts.as_of}",
                    f"SM3 {facts.manifest_sm3}",
                    f"SHA-256 {facts.manifest_sha256}",
                    *facts.manifest_witnesses,
                ]
            ),
        )
    )
    return [
        ("一、当事人", parties),
        ("二、证据文件及其哈希值与见证", documents),
        ("三、保管链（谁在何时提交，如何封存）", custody),
    ]


CHECKS = [
    "核对当事人身份（身份证件、营业执照）与上列当事人一致；候选人确认上列文件系其提交。",
    "用 SM3（GB/T 32905）或 SHA-256 工具计算每个文件的哈希值，与本页及 manifest.json 一致。",
    "以太坊存证与 RFC 3161 时间戳可离线核验：offerseal verify-dossier 证据包.zip --rpc 节点，"
    "或用浏览器打开包内 verify.html。",
    "腾讯云 BTOE 司法链存证须向平台在线核验（VerifyEvidenceHash 或 GetDepositInfo）；"
    "本页仅记录平台的应答。",
    "本页由证据包自动生成，不另行签名；以证据包及其上链记录为准。",
]


def render_notary_cover(
    facts: NotaryFacts, *, verify_url: str, software: str, issued_at: dt.datetime
) -> bytes:
    """The cover as an unsigned A4 PDF in Chinese; the QR code opens the verify page."""
    when = issued_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return render_report(
        Report(
            lang="zh-CN",
            title="离职进程公证 · 公证材料说明",
            intro=(
                "本页供公证处办理离职进程公证使用，列明证据包中的当事人、各文件的 SM3 与 SHA-256 "
                "哈希值、每个文件的见证（区块链、时间戳、司法链）及保管链。所列内容均取自随附的"
                "证据包，可独立核验。"
            ),
            sections=sections(facts),
            how_heading="四、公证处核对要点",
            steps=CHECKS,
            qr_url=verify_url,
            footer=f"生成软件：{software} · 生成时间：{when}",
            document_title=f"离职进程公证材料说明 {facts.agreement.get('id', '')}",
            empty_section="无",
        )
    )

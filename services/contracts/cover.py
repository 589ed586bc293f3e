# ruff: noqa: RUF001  (Chinese text uses full-width punctuation)
"""The dossier's cover report: a PDF a judge reads first, in zh-CN or en, signed (PAdES) like
the evidence certificate. Layout only (reportlab); the facts come from `dossier.Dossiers`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from ..shared.pdf import PdfSigningKey, Report, render_report, sign_pdf

LANGS = ("zh-CN", "en")

LABELS: dict[str, tuple[str, str]] = {  # key: (zh-CN, en)
    "title": ("入职意向协议证据包", "Agreement dossier"),
    "intro": (
        "本报告概述证据包内容。包内每个文件都列在 manifest.json 中（含 SHA-256 哈希值），该清单的"
        "哈希值已写入区块链，任何文件被修改、增加或删除都可被发现。本报告本身已数字签名。",
        "This report summarises the dossier. Every file in it is listed in manifest.json with its "
        "SHA-256; the manifest's own hash is anchored on a blockchain, so any file changed, added "
        "or removed is detected. This report itself is digitally signed.",
    ),
    "agreement": ("一、协议", "1. The agreement"),
    "id": ("协议编号", "Agreement id"),
    "onchain_id": ("链上编号", "On-chain id"),
    "employer": ("用人单位", "Employer"),
    "position": ("岗位", "Position"),
    "candidate": ("候选人编号", "Candidate reference"),
    "candidate_address": ("候选人签名地址", "Candidate's signing address"),
    "start": ("约定入职日期", "Agreed start date"),
    "state": ("状态（本系统 / 链上）", "State (OfferSeal / on chain)"),
    "terms_hash": ("协议文本哈希", "Terms hash (sha256 of the text)"),
    "money": ("二、违约金与上限", "2. Damages against the cap"),
    "salary": ("月薪", "Monthly salary"),
    "damages": ("约定违约金", "Liquidated damages"),
    "cap": ("上限（月薪的 30%）", "Cap (30% of the monthly salary)"),
    "within": ("是否在上限之内", "Within the cap"),
    "yes": ("是", "yes"),
    "no": ("否", "no"),
    "chain": ("三、链上记录", "3. On the chain"),
    "contract": ("合约地址 / 版本", "Contract / version"),
    "chain_id": ("链 ID", "Chain id"),
    "milestones": ("四、阶段确认", "4. Staged confirmations"),
    "notices": ("五、通知记录（送达证明）", "5. Notices (proof of notice)"),
    "none": ("无", "none"),
    "manifest": ("六、文件清单及其存证", "6. The file list and its anchoring"),
    "manifest_sha": ("清单 SHA-256", "Manifest SHA-256"),
    "manifest_doc": ("清单存证文件编号", "Manifest evidence document"),
    "tx": ("交易哈希", "Transaction"),
    "block": ("区块 / 时间", "Block / time"),
    "as_of": ("证据截至", "Facts as of"),
    "files": ("文件", "Files"),
    "how": ("七、如何独立验证", "7. How to verify independently"),
    "step_page": (
        "在浏览器中打开包内的 verify.html（或 {verify_url}），放入本证据包 ZIP，填写任意以太坊 RPC"
        " 节点；所有检查在浏览器中完成。",
        "Open verify.html from the dossier (or {verify_url}) in a browser, drop this dossier's "
        "ZIP and give any Ethereum RPC endpoint; every check runs in the browser.",
    ),
    "step_cli": (
        "或使用命令行：offerseal verify-dossier 证据包.zip --rpc <RPC 节点>。",
        "Or the command line: offerseal verify-dossier DOSSIER.zip --rpc <RPC endpoint>.",
    ),
    "step_files": (
        "每个证据文件旁的 proof.json 也可单独用 offerseal verify 验证。",
        "Each evidence file's proof.json beside it also verifies alone with offerseal verify.",
    ),
    "step_sig": (
        "本 PDF 已数字签名；任何 PDF 阅读器均可显示其是否被修改。",
        "This PDF is digitally signed; any PDF reader shows whether it was altered.",
    ),
    "software": ("生成软件", "Produced by"),
    "issued": ("生成时间", "Issued at"),
}

MAX_ROWS = 60  # rows of a table on the cover; the files hold everything


def label(key: str, lang: str) -> str:
    zh, en = LABELS[key]
    return zh if lang == "zh-CN" else en


def _money(minor: int, currency: str) -> str:
    return f"{minor / 100:,.2f} {currency}"


def _utc(seconds: Any) -> str:
    try:
        return dt.datetime.fromtimestamp(int(seconds), dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (TypeError, ValueError):
        return "-"


def sections(facts: dict[str, Any], lang: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """(heading, [(label, value)]) of the report: what `render_cover` lays out, and what tests
    can read without a PDF."""
    a = facts["agreement"]
    money = facts["damages"]
    yes_no = label("yes" if money["within_cap"] else "no", lang)
    agreement_rows = [
        [label("id", lang), a["id"]],
        [label("onchain_id", lang), a["onchain_id"]],
        [label("employer", lang), f"{a['employer_name']} ({a['employer_address']})"],
        [label("position", lang), a["position"]],
        [label("candidate", lang), a["candidate_ref"]],
        [label("candidate_address", lang), a.get("candidate_address") or "-"],
        [label("start", lang), a["start_at"]],
        [label("state", lang), f"{a['state']} / {facts['chain']['state']}"],
        [label("terms_hash", lang), a["terms_hash"]],
    ]
    money_rows = [
        [label("salary", lang), _money(money["monthly_salary"], money["currency"])],
        [label("damages", lang), _money(money["liquidated_damages"], money["currency"])],
        [label("cap", lang), _money(money["cap"], money["currency"])],
        [label("within", lang), f"{yes_no} ({money['percent_of_monthly_salary']}%)"],
    ]
    chain_rows = [
        [
            label("contract", lang),
            f"{facts['chain']['registry']} / {facts['chain']['contract_version']}",
        ],
        [label("chain_id", lang), str(facts["chain"]["chain_id"])],
    ]
    chain_rows += [
        [e["event"], f"{e['block_time']}\n{e['transaction']}"] for e in facts["events"][:MAX_ROWS]
    ]
    milestone_rows = [
        [
            m["kind"],
            f"{m['due_at']} → {m['confirmed_at'] or '-'}"
            + (f"\n{m['tx_hash']}" if m.get("tx_hash") else ""),
        ]
        for m in a["milestones"]
    ]
    notice_rows = [
        [
            f"{tp['kind']} ({tp.get('channel') or '-'})",
            f"{tp['state']} {tp.get('sent_at') or tp.get('due_at') or ''}"
            + (f"\nMessage-ID {tp['message_id']}" if tp.get("message_id") else "")
            + (f"\n→ {tp['answer']}" if tp.get("answer") else ""),
        ]
        for tp in facts["touchpoints"][:MAX_ROWS]
    ]
    anchor = facts.get("manifest_anchor") or {}
    manifest_rows = [
        [label("manifest_sha", lang), facts["manifest_sha256"]],
        [label("manifest_doc", lang), facts["manifest_document_id"]],
        [label("tx", lang), str(anchor.get("tx_hash", "-"))],
        [
            label("block", lang),
            f"{anchor.get('block_number', '-')} / {_utc(anchor.get('block_timestamp'))}",
        ],
        [label("as_of", lang), facts["as_of"]],
        [label("files", lang), "\n".join(path for path, _ in facts["files"])],
    ]
    listed: list[tuple[str, list[list[str]]]] = [
        (label("agreement", lang), agreement_rows),
        (label("money", lang), money_rows),
        (label("chain", lang), chain_rows),
        (label("milestones", lang), milestone_rows),
        (label("notices", lang), notice_rows),
        (label("manifest", lang), manifest_rows),
    ]
    return [(head, [(str(k), str(v)) for k, v in rows]) for head, rows in listed]


def render_cover(
    facts: dict[str, Any], *, lang: str, software: str, issued_at: dt.datetime
) -> bytes:
    """The unsigned cover report."""
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {', '.join(LANGS)}")
    verify_url = str(facts["verify_url"])
    when = issued_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return render_report(
        Report(
            lang=lang,
            title=label("title", lang),
            intro=label("intro", lang),
            sections=sections(facts, lang),
            how_heading=label("how", lang),
            steps=[
                label("step_page", lang).format(verify_url=verify_url),
                label("step_cli", lang),
                label("step_files", lang),
                label("step_sig", lang),
            ],
            qr_url=verify_url,
            footer=f"{label('software', lang)}: {software} · {label('issued', lang)}: {when}",
            document_title=f"{label('title', lang)} {facts['agreement']['id']}",
            empty_section=label("none", lang),
        )
    )


def cover_maker(
    key: PdfSigningKey,
    software: str,
    timestamp_url: str | None,
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> Callable[[dict[str, Any], str], bytes]:
    """`(facts, lang) -> signed PDF` for `Dossiers`."""

    def make(facts: dict[str, Any], lang: str) -> bytes:
        pdf = render_cover(facts, lang=lang, software=software, issued_at=clock())
        return sign_pdf(
            pdf,
            key,
            timestamp_url=timestamp_url,
            reason=f"OfferSeal dossier cover {facts['agreement']['id']}",
        )

    return make

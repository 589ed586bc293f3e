"""The dossier's cover report: a PDF a judge reads first, in zh-CN or en, signed (PAdES) like
the evidence certificate. Layout only (reportlab); the facts come from `dossier.Dossiers`, the
words from the catalogue (`pdf.cover.*`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from ..shared import i18n
from ..shared.pdf import PdfSigningKey, Report, render_report, sign_pdf

LANGS = i18n.LANGUAGES

MAX_ROWS = 60  # rows of a table on the cover; the files hold everything


def label(key: str, lang: str, **params: object) -> str:
    """The cover's text `key` (catalogue `pdf.cover.*`); any language but zh-CN reads English."""
    return i18n.text("zh-CN" if lang == "zh-CN" else "en", f"pdf.cover.{key}", **params)


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
                label("step_page", lang, verify_url=verify_url),
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

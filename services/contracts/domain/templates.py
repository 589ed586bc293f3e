"""Agreement texts in Simplified Chinese and English, rendered from the terms.

The rendered text is what the candidate reads and what `termsHash` (sha256 of its UTF-8 bytes)
commits to, so rendering is deterministic: same terms, same bytes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from .agreements import damages_cap

LANGUAGES = ("zh-CN", "en")

MILESTONE_LABELS = {
    "en": {
        "expected_resignation_date": "written proof of the expected resignation date",
        "resignation_submitted": "copy of the resignation application bearing the employer's stamp",
        "resignation_accepted": "confirmation that the resignation was accepted",
        "handover_started": "confirmation that the handover has started",
        "handover_halfway": "the direct supervisor's confirmation that the handover is half-way",
        "last_working_day_fixed": "written confirmation of the last working day",
        "social_insurance_stop": "the date social insurance and housing fund contributions stop",
    },
    "zh-CN": {
        "expected_resignation_date": "预计离职日期的书面证明",
        "resignation_submitted": "加盖原单位公章的离职申请复印件",
        "resignation_accepted": "原单位同意离职的确认",
        "handover_started": "工作交接已开始的确认",
        "handover_halfway": "直属上级出具的工作交接过半确认",
        "last_working_day_fixed": "最后工作日的书面确认",
        "social_insurance_stop": "社保及公积金停缴日期",
    },
}


@dataclass(frozen=True)
class AgreementText:
    employer_name: str
    position: str
    currency: str
    monthly_salary: int  # minor units
    liquidated_damages: int  # minor units
    cap: int  # minor units
    start: dt.datetime
    grace_days: int
    offer_expires_at: dt.datetime
    breach_declarable_after: dt.datetime
    milestones: tuple[tuple[str, dt.datetime], ...]


def money(amount_minor: int, currency: str) -> str:
    major, minor = divmod(amount_minor, 100)
    return f"{currency} {major:,}.{minor:02d}"


def _date(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M %Z").strip()


def render(language: str, t: AgreementText) -> str:
    if language not in LANGUAGES:
        raise ValueError(f"unsupported language {language!r}; use one of {LANGUAGES}")
    salary, damages, cap = (
        money(x, t.currency) for x in (t.monthly_salary, t.liquidated_damages, t.cap)
    )
    percent = t.liquidated_damages * 100 / t.monthly_salary if t.monthly_salary else 0
    labels = MILESTONE_LABELS[language]
    if language == "zh-CN":
        steps = (
            "\n".join(
                f"  {i}. {_date(due)} 前提交{labels.get(kind, kind)}"
                for i, (kind, due) in enumerate(t.milestones, 1)
            )
            or "  （无）"
        )
        return (
            "入职意向书\n\n"
            f"用人单位：{t.employer_name}\n"
            f"拟任职位：{t.position}\n"
            f"月薪：{salary}\n"
            f"预计入职日期：{_date(t.start)}\n"
            f"本意向书签署有效期至：{_date(t.offer_expires_at)}\n\n"
            "一、候选人承诺于预计入职日期入职，并按以下节点提供离职进展材料：\n"
            f"{steps}\n\n"
            "二、违约条款：任何一方无正当理由不履行本意向书，应向对方支付违约金"
            f"{damages}（月薪的 {percent:.1f}%，法定上限为月薪的 30%，即 {cap}）。\n"
            f"入职日期后宽限 {t.grace_days} 日（即 {_date(t.breach_declarable_after)} 之后）"
            "候选人仍未入职的，视为候选人违约；用人单位在候选人签署后撤回录用的，视为用人单位违约。\n\n"
            "三、违约成本摘要（白话说明）：如果您签署后未入职，您需要支付 "
            f"{damages}；如果公司在您签署后撤回录用，公司需要向您支付同样金额。"
            f"最早可认定违约的时间为 {_date(t.breach_declarable_after)}。\n\n"
            "四、本意向书条款的哈希值记录于区块链，不包含任何个人信息。\n"
        )
    steps = (
        "\n".join(
            f"  {i}. by {_date(due)}: {labels.get(kind, kind)}"
            for i, (kind, due) in enumerate(t.milestones, 1)
        )
        or "  (none)"
    )
    return (
        "INTENT AGREEMENT (Letter of Intent to Join)\n\n"
        f"Employer: {t.employer_name}\n"
        f"Position: {t.position}\n"
        f"Monthly salary: {salary}\n"
        f"Expected first day: {_date(t.start)}\n"
        f"This offer can be signed until: {_date(t.offer_expires_at)}\n\n"
        "1. The candidate commits to start on the expected first day and to provide evidence "
        "of the resignation's progress at these checkpoints:\n"
        f"{steps}\n\n"
        "2. Breach clause: a party that fails to honour this agreement without good cause pays "
        f"the other liquidated damages of {damages} ({percent:.1f}% of one month's salary; the "
        f"legal ceiling is 30%, i.e. {cap}). If the candidate has not started "
        f"{t.grace_days} day(s) after the expected first day (after "
        f"{_date(t.breach_declarable_after)}), the candidate is in breach; if the employer "
        "withdraws the offer after the candidate signed, the employer is in breach.\n\n"
        f"3. In plain words: if you sign and do not start, you owe {damages}. If the company "
        "withdraws the offer after you signed, it owes you the same amount. A breach can be "
        f"declared at the earliest after {_date(t.breach_declarable_after)}.\n\n"
        "4. A hash of these terms is recorded on a blockchain; no personal data is.\n"
    )


def terms_hash(text: str) -> str:
    """sha256 of the exact UTF-8 bytes the candidate reads, as 0x hex."""
    return "0x" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def agreement_text(
    language: str,
    tz: ZoneInfo,
    *,
    employer_name: str,
    position: str,
    currency: str,
    monthly_salary: int,
    liquidated_damages: int,
    grace_days: int,
    offer_expires_at: dt.datetime,
    start_at: dt.datetime,
    milestones: tuple[tuple[str, dt.datetime], ...],
) -> str:
    """The text the candidate reads (its sha256 goes on chain), dates in their time zone."""
    return render(
        language,
        AgreementText(
            employer_name=employer_name,
            position=position,
            currency=currency,
            monthly_salary=monthly_salary,
            liquidated_damages=liquidated_damages,
            cap=damages_cap(monthly_salary),
            start=start_at.astimezone(tz),
            grace_days=grace_days,
            offer_expires_at=offer_expires_at.astimezone(tz),
            breach_declarable_after=(start_at + dt.timedelta(days=grace_days)).astimezone(tz),
            milestones=tuple((kind, due.astimezone(tz)) for kind, due in milestones),
        ),
    )

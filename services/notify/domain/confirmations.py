"""The issuing employer confirms a document: the rules, without I/O. Which documents may be
sent for confirmation, what an employer's domain and address must look like, what the candidate
is told before authorising it (PIPL: what is shared, with whom, why), the e-mail the former
employer receives, and the attestation anchored once it answers."""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from dataclasses import dataclass
from typing import Any

from ...shared import i18n

# Certificates an employer issues about its own employee (a resignation accepted, an employment
# certificate): the only documents its HR can confirm.
CONFIRMABLE_KINDS: tuple[str, ...] = (
    "resignation_application",
    "resignation_acceptance",
    "employment_certificate",
)
ANSWERS: tuple[str, ...] = ("genuine", "not_ours")
VIA_LINK, VIA_EMAIL = "link", "email"
ATTESTATION_RECORD = "employer_confirmation"  # the record link's subject and the document kind
REPLY_RECORD = "employer_reply_email"  # the former employer's e-mail, when it answered so
ATTESTATION_FORMAT = "offerseal-employer-confirmation/1"

# At most this many requests per tenant in a rolling hour: a former employer's HR is a third
# party, and a tenant must not turn OfferSeal into a mailer aimed at it.
RATE_LIMIT = 20
RATE_WINDOW = dt.timedelta(hours=1)

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_LOCAL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}$")


class RuleBroken(ValueError):
    """A rule refused the input: `field` names what to correct."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(detail)
        self.field = field
        self.detail = detail


def employer_domain(text: str) -> str:
    """A registrable-looking DNS name in lower case (IDNs as A-labels): at least two labels,
    a top-level label that is not numeric (no IP addresses), nothing but letters, digits and
    hyphens."""
    value = (text or "").strip().rstrip(".").lower()
    try:
        value = value.encode("idna").decode("ascii")
    except UnicodeError:
        raise RuleBroken("employer_domain", "not a valid domain name") from None
    labels = value.split(".")
    if (
        len(value) > 253
        or len(labels) < 2
        or not all(_LABEL.match(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise RuleBroken("employer_domain", "a domain name such as example.com")
    return value


def address_at(address: str, domain: str) -> str:
    """`address` when it is a plain mailbox at `domain` or one of its subdomains."""
    value = (address or "").strip()
    local, at, host = value.rpartition("@")
    if not at or not _LOCAL.match(local) or ".." in local:
        raise RuleBroken("employer_email", "a plain e-mail address such as hr@example.com")
    try:
        host = employer_domain(host)
    except RuleBroken:
        raise RuleBroken("employer_email", "the address's domain is not valid") from None
    if host != domain and not host.endswith("." + domain):
        raise RuleBroken(
            "employer_email", f"the address must be at {domain}, the domain the candidate named"
        )
    return f"{local}@{host}"


def statement(lang: str, employer: str, domain: str) -> str:
    """What the candidate reads, and authorises, in the portal (kept with the consent)."""
    language = "en" if lang == "en" else "zh-CN"
    return i18n.text(language, "notify.confirm.consent", employer=employer, domain=domain)


@dataclass(frozen=True)
class ConfirmationMail:
    subject: str
    text: str
    html: str


def kind_names(kind: str) -> tuple[str, str]:
    """A document kind as the former employer reads it: (zh-CN, en)."""
    key = f"notify.confirm.kind.{kind}"
    zh, en = i18n.texts("zh-CN").get(key), i18n.texts("en").get(key)
    return (zh, en) if zh and en else (kind, kind)


def mail(employer: str, kind: str, sha256: str, sm3: str, url: str) -> ConfirmationMail:
    """The request to the former employer's HR, in Chinese and English: who asks, which
    document (its fingerprints only), the candidate's authorisation, and the link."""
    zh, en = kind_names(kind)

    def t(lang: str, key: str, **params: str) -> str:
        return i18n.text(lang, f"notify.confirm.mail.{key}", **params)

    subject = f"{t('zh-CN', 'subject', kind=zh)} / {t('en', 'subject', kind=en)} — {employer}"
    text = (
        f"{t('zh-CN', 'ask', employer=employer, kind=zh)}\n"
        f"{t('zh-CN', 'sha256', sha256=sha256)}\n{t('zh-CN', 'sm3', sm3=sm3)}\n"
        f"{t('zh-CN', 'open')}\n{url}\n\n"
        f"{t('en', 'ask', employer=employer, kind=en)}\n"
        f"{t('en', 'sha256', sha256=sha256)}\n{t('en', 'sm3', sm3=sm3)}\n"
        f"{t('en', 'open')}\n{url}\n\n"
        f"{t('zh-CN', 'reply')}/ {t('en', 'reply')}\n"
    )
    e = html.escape
    body = (
        f"<p>{t('zh-CN', 'ask', employer=e(employer), kind=e(zh))}"
        f"<br>{t('en', 'ask', employer=e(employer), kind=e(en))}</p>"
        f"<p>SHA-256: <code>{e(sha256)}</code><br>SM3: <code>{e(sm3)}</code></p>"
        f'<p><a href="{e(url)}">{t("zh-CN", "link")} / {t("en", "link")}</a></p>'
        f"<p>{t('zh-CN', 'reply')}/ {t('en', 'reply')}</p>"
    )
    return ConfirmationMail(subject, text, body)


def attestation(
    *,
    request: dict[str, Any],
    answer: str,
    via: str,
    answered_at: dt.datetime,
    reply: dict[str, Any] | None = None,
) -> bytes:
    """The record anchored once the former employer answered: which document (by id and
    fingerprints), who was asked, under which authorisation, the answer and how it came."""
    body: dict[str, Any] = {
        "format": ATTESTATION_FORMAT,
        "request_id": request["id"],
        "document": {
            "id": request["document_id"],
            "kind": request["document_kind"],
            "sha256": request["sha256"],
            "sm3": request["sm3"],
        },
        "employer_domain": request["employer_domain"],
        "asked": request["employer_email"],
        "requested_at": request["requested_at"],
        "message_id": request["message_id"],
        "consent": request["consent"],
        "answer": answer,
        "via": via,
        "answered_at": answered_at.isoformat().replace("+00:00", "Z"),
    }
    if reply is not None:
        body["reply"] = reply
    return json.dumps(body, sort_keys=True, ensure_ascii=False, indent=2).encode()


def from_domain(sender: str) -> str:
    """The domain of an e-mail's From address, lower case ('' when it has none)."""
    from email.utils import parseaddr

    return parseaddr(sender)[1].rpartition("@")[2].strip().lower()


def aligned(sender_domain: str, domain: str) -> bool:
    return bool(sender_domain) and (sender_domain == domain or sender_domain.endswith("." + domain))

"""Where a document came from, recorded at intake and signed into its receipt (art. 18 of the
Online Litigation Rules: how the data was produced and kept before it went on chain).

`Provenance` is what the HTTP entry point saw (the caller, its address and user agent, the
original file name, the declared kind, optional source metadata). For an e-mail (`.eml`,
`message/rfc822`) the DKIM signature is checked with dkimpy and its result recorded: a forwarded
resignation acceptance whose DKIM holds for the old employer's domain is stronger evidence. The
DNS lookup is a parameter, so tests run offline.
"""

from __future__ import annotations

import email.parser
import email.policy
import email.utils
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

DnsTxt = Callable[..., bytes | None]  # (name: bytes, timeout=...) -> the TXT record, or None
EMAIL_TYPES = frozenset({"message/rfc822"})
MAX_SOURCE_KEYS = 20
MAX_SOURCE_KEY = 64
MAX_SOURCE_VALUE = 500
MAX_USER_AGENT = 300


class SourceInvalid(ValueError):
    """Source metadata that is not a small object of short strings (the message says why)."""


def check_source(value: Any) -> dict[str, str]:
    """Optional source metadata: at most 20 string keys of 64 characters, string values of 500
    (e.g. `{"system": "Moka HR", "record": "R-2291", "received_via": "forwarded e-mail"}`)."""
    if not isinstance(value, dict):
        raise SourceInvalid("must be a JSON object of strings")
    if len(value) > MAX_SOURCE_KEYS:
        raise SourceInvalid(f"at most {MAX_SOURCE_KEYS} keys")
    for key, item in value.items():
        if not isinstance(key, str) or not 1 <= len(key) <= MAX_SOURCE_KEY:
            raise SourceInvalid(f"keys are strings of 1 to {MAX_SOURCE_KEY} characters")
        if not isinstance(item, str) or len(item) > MAX_SOURCE_VALUE:
            raise SourceInvalid(f"{key}: values are strings of at most {MAX_SOURCE_VALUE}")
    return {str(k): str(v) for k, v in value.items()}


@dataclass(frozen=True)
class Provenance:
    """What the entry point knows about an intake request."""

    client_address: str | None = None
    user_agent: str | None = None
    source: Mapping[str, str] = field(default_factory=dict)


def uploader_by_key(key_id: str, name: str | None) -> dict[str, Any]:
    return {"via": "api_key", "key_id": key_id, "key_name": name or ""}


def uploader_by_link(agreement_id: str, milestone: str, candidate_ref: str) -> dict[str, Any]:
    return {
        "via": "candidate_link",
        "agreement_id": agreement_id,
        "milestone": milestone,
        "candidate_ref": candidate_ref,
    }


def uploader_by_record(agreement_id: str, record: str) -> dict[str, Any]:
    """A record OfferSeal's contracts service deposits about an agreement (not a person's
    upload): which record, of which agreement."""
    return {"via": "offerseal_record", "agreement_id": agreement_id, "record": record}


def request_record(uploader: dict[str, Any], seen: Provenance) -> dict[str, Any]:
    """The part of the provenance every document of one request shares."""
    record: dict[str, Any] = {
        "uploader": uploader,
        "client_address": seen.client_address,
        "user_agent": (seen.user_agent or "")[:MAX_USER_AGENT] or None,
    }
    if seen.source:
        record["source"] = dict(seen.source)
    return record


def is_email(filename: str | None, content_type: str | None) -> bool:
    return (filename or "").lower().endswith(".eml") or (content_type or "").lower() in EMAIL_TYPES


def _domain_of(address: str) -> str:
    _, mail = email.utils.parseaddr(address)
    return mail.rpartition("@")[2].lower()


def _aligned(signing: str, sender: str) -> bool:
    """Relaxed alignment (as DMARC): the From domain is the signing domain or below it."""
    return bool(signing) and (sender == signing or sender.endswith("." + signing))


def check_email(content: bytes, dnsfunc: DnsTxt | None = None) -> dict[str, Any]:
    """The e-mail's headers that identify it and its DKIM result: `pass` (the first signature
    verifies against the key its domain publishes), `fail` (it does not, or the key is missing),
    `temperror` (DNS did not answer), `none` (no signature), with the signing domain and whether
    it aligns with the From address."""
    headers = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(
        content, headersonly=True
    )
    sender = str(headers.get("From", "") or "")
    out: dict[str, Any] = {
        "from": sender[:300],
        "message_id": str(headers.get("Message-ID", "") or "")[:300] or None,
        "date": str(headers.get("Date", "") or "")[:100] or None,
    }
    import dkim  # with dnspython: 0.1-0.2 s of a cold start, for e-mails uploaded as evidence

    said = _Said()
    checker = dkim.DKIM(content, logger=said.logger, minkey=1024, timeout=5)
    if not checker.present():
        out["dkim"] = {"result": "none", "detail": "the message carries no DKIM-Signature"}
        return out
    real: Any = dnsfunc if dnsfunc is not None else dkim.get_txt  # dnspython: real DNS
    dns_failed: list[str] = []

    def lookup(name: bytes, timeout: float = 5) -> bytes | None:
        try:
            answer: bytes | None = real(name, timeout=timeout)
        except Exception as exc:  # dkimpy reports any failure as "no key": we keep why
            dns_failed.append(f"{type(exc).__name__}: {exc}")
            raise dkim.DnsTimeoutError(str(exc)) from None
        return answer

    try:
        ok = checker.verify(dnsfunc=lookup)
        result = "pass" if ok else "fail"
        detail = (
            "the signature verifies with the key the domain publishes"
            if ok
            else said.last() or "the signature does not match the message or the published key"
        )
    except dkim.DKIMException as exc:
        result, detail = "fail", str(exc)
    if dns_failed:
        result, detail = "temperror", f"DNS did not answer: {dns_failed[0]}"
    domain = _text(checker.domain).lower()
    selector = _text(checker.selector) if domain else ""
    out["dkim"] = {
        "result": result,
        "domain": domain or None,
        "selector": selector or None,
        "aligned_with_from": _aligned(domain, _domain_of(sender)),
        "detail": detail[:300],
    }
    return out


class _Said(logging.Handler):
    """Collects what dkimpy logs while checking one message (it says why a check failed only
    there); nothing reaches the service's log."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.logger = logging.Logger("offerseal.dkim", logging.DEBUG)
        self.logger.propagate = False
        self.logger.addHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.INFO:
            self.lines.append(record.getMessage())

    def last(self) -> str:
        return self.lines[-1] if self.lines else ""


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return str(value or "")

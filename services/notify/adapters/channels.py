"""Delivery channels: SMTP e-mail, signed webhooks, and a folder of .eml files for development.

Each channel answers with a short detail of what accepted the message, or raises `RetryLater`
(4xx, timeouts, refused connections: the dispatcher backs off and tries again) or `Rejected`
(5xx: the message failed); both are declared in `errors.py`.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import smtplib
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from email.header import Header
from email.utils import formataddr, formatdate, parseaddr
from pathlib import Path
from typing import Any

import requests

from ..domain.templates import Rendered
from ..errors import Rejected, RetryLater
from .signing import DkimSigner


@dataclass(frozen=True)
class Outgoing:
    touchpoint_id: str
    message_id: str
    to_email: str | None
    rendered: Rendered
    essential: bool
    unsubscribe_url: str | None
    payload: dict[str, Any]  # what a webhook receives
    employer: str = ""  # the sender shows it: "<employer> via OfferSeal"
    reply_to: str | None = None  # the tenant's HR address, when it set one
    tenant: str = ""
    phone: str | None = None  # where an SMS goes (a one-time code: the offer's contact)
    # what an approved SMS template receives (`domain/sms.py` TEMPLATE_PARAMS)
    sms_params: dict[str, str] = field(default_factory=dict)


CRLF = "\r\n"


def _header(name: str, value: str) -> bytes:
    """One header line; non-ASCII values as RFC 2047 encoded words. Line breaks in a value
    (a template or a name with a newline) become spaces: no header injection."""
    value = " ".join(value.splitlines())
    if value.isascii():
        return f"{name}: {value}\r\n".encode("ascii")
    encoded = Header(value, "utf-8", header_name=name).encode(linesep=CRLF)
    return f"{name}: {encoded}{CRLF}".encode("ascii")


def _address(value: str) -> str:
    name, addr = parseaddr(value)
    return formataddr((name, addr), charset="utf-8") if name else addr


def sender_for(sender: str, employer: str) -> str:
    """`"Acme Robotics via OfferSeal" <no-reply@...>`: the employer a candidate knows, and who
    sends for it (the configured sender's own name)."""
    name, addr = parseaddr(sender)
    employer = " ".join(employer.split())[:100]
    if not employer:
        return sender
    return formataddr((f"{employer} via {name or 'OfferSeal'}", addr), charset="utf-8")


def _part(content_type: str, text: str) -> bytes:
    return (
        f'Content-Type: {content_type}; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n"
    ).encode("ascii") + base64.encodebytes(text.encode("utf-8")).replace(b"\n", b"\r\n")


def email_bytes(out: Outgoing, sender: str, signer: DkimSigner | None = None) -> bytes:
    """The message as sent: multipart/alternative (text and HTML, UTF-8, base64), our
    Message-ID, the employer in the sender's name, Reply-To the tenant's HR address, RFC
    2369/8058 one-click unsubscribe headers on non-essential mail, and a DKIM signature when
    the sending domain has a key.
    Composed directly: building it with the standard library's EmailMessage cost more than the
    SMTP exchange itself (the bench's naive sender)."""
    boundary = f"=_os_{out.touchpoint_id.replace('-', '')}"
    head = [_header("From", _address(sender_for(sender, out.employer)))]
    if out.reply_to:
        head.append(_header("Reply-To", _address(out.reply_to)))
    head += [
        _header("To", out.to_email or ""),
        _header("Subject", out.rendered.subject),
        _header("Date", formatdate(localtime=False)),
        _header("Message-ID", out.message_id),
        _header("X-OfferSeal-Touchpoint", out.touchpoint_id),
    ]
    if out.payload.get("kind"):
        head.append(_header("X-OfferSeal-Kind", str(out.payload["kind"])))
    if not out.essential and out.unsubscribe_url:
        head.append(_header("List-Unsubscribe", f"<{out.unsubscribe_url}>"))
        head.append(_header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
    head.append(b"MIME-Version: 1.0\r\n")
    head.append(f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n'.encode())
    sep = f"--{boundary}\r\n".encode()
    message = b"".join(
        [
            *head,
            b"\r\n",
            sep,
            _part("text/plain", out.rendered.text),
            sep,
            _part("text/html", out.rendered.html),
            f"--{boundary}--\r\n".encode(),
        ]
    )
    return signer.sign(message) if signer is not None else message


class SmtpChannel:
    name = "email"

    def __init__(
        self, url: str, sender: str, timeout: float = 15.0, signer: DkimSigner | None = None
    ) -> None:
        parsed = urllib.parse.urlparse(url)
        if parsed.scheme not in {"smtp", "smtp+starttls", "smtps"}:
            raise ValueError(
                "OFFERSEAL_SMTP_URL must start with smtp://, smtp+starttls:// or smtps://"
            )
        self.scheme = parsed.scheme
        self.host = parsed.hostname or "127.0.0.1"
        self.port = parsed.port or (465 if parsed.scheme == "smtps" else 25)
        self.user = urllib.parse.unquote(parsed.username) if parsed.username else None
        self.password = urllib.parse.unquote(parsed.password) if parsed.password else None
        self.sender = sender
        self.signer = signer
        self._envelope_from = parseaddr(sender)[1]
        self.timeout = timeout
        self._client: smtplib.SMTP | None = None
        self._lock = threading.Lock()

    def _connect(self) -> smtplib.SMTP:
        if self.scheme == "smtps":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=ssl.create_default_context()
            )
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        if self.scheme == "smtp+starttls":
            client.starttls(context=ssl.create_default_context())
        if self.user:
            client.login(self.user, self.password or "")
        return client

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.quit()

    def send(self, out: Outgoing) -> str:
        """One message on a kept-open connection (reopened once if the server dropped it)."""
        if not out.to_email:
            raise Rejected("no e-mail address")
        message = email_bytes(out, self.sender, self.signer)
        with self._lock:
            for attempt in (1, 2):
                try:
                    if self._client is None:
                        self._client = self._connect()
                    self._client.sendmail(self._envelope_from, [out.to_email], message)
                    break
                except smtplib.SMTPServerDisconnected:
                    self._client = None
                    if attempt == 2:
                        raise RetryLater("SMTP server disconnected") from None
                except smtplib.SMTPResponseException as exc:
                    self._reset_after_error()
                    if 400 <= exc.smtp_code < 500:
                        raise RetryLater(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}") from None
                    raise Rejected(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}") from None
                except smtplib.SMTPRecipientsRefused as exc:
                    self._reset_after_error()
                    codes = [code for code, _ in exc.recipients.values()]
                    if all(400 <= c < 500 for c in codes):
                        raise RetryLater(f"recipient deferred: {exc.recipients}") from None
                    raise Rejected(f"recipient refused: {exc.recipients}") from None
                except (OSError, smtplib.SMTPException) as exc:
                    self.close()
                    raise RetryLater(f"SMTP unavailable: {exc}") from None
        return f"e-mail accepted by {self.host}:{self.port}"

    def _reset_after_error(self) -> None:
        if self._client is not None:
            try:
                self._client.rset()
            except Exception:
                self.close()


def webhook_signature(secret: bytes, timestamp: str, body: bytes) -> str:
    return hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class WebhookChannel:
    """POST JSON; header `X-OfferSeal-Signature: t=<unix>,v1=<hex HMAC-SHA256(t.body)>`. The
    payload carries `sms`, the message in one SMS segment (at most 70 characters, its short
    link included), for SMS gateways and chat bots."""

    name = "webhook"

    def __init__(self, url: str, secret: bytes, timeout: float = 10.0) -> None:
        self.url = url
        self.secret = secret
        self.timeout = timeout
        self._http = requests.Session()
        self._http.trust_env = False  # no proxy look-ups per request; keep-alive connections

    def send(self, out: Outgoing) -> str:
        body = json.dumps(out.payload, ensure_ascii=False, separators=(",", ":")).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-OfferSeal-Signature": f"t={timestamp},v1="
            f"{webhook_signature(self.secret, timestamp, body)}",
            "X-OfferSeal-Touchpoint": out.touchpoint_id,
        }
        try:
            answer = self._http.post(self.url, data=body, headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            raise RetryLater(f"webhook unreachable: {exc}") from None
        if answer.status_code >= 500 or answer.status_code in (408, 429):
            raise RetryLater(f"webhook answered {answer.status_code}")
        if answer.status_code >= 400:
            raise Rejected(f"webhook answered {answer.status_code}")
        return f"webhook answered {answer.status_code}"

    def close(self) -> None:
        self._http.close()


class FolderChannel:
    """Development: writes each message as an .eml file (what `make demo` shows)."""

    name = "folder"

    def __init__(self, folder: Path, sender: str, signer: DkimSigner | None = None) -> None:
        self.folder = folder
        self.sender = sender
        self.signer = signer

    def send(self, out: Outgoing) -> str:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{out.touchpoint_id}.eml"
        path.write_bytes(email_bytes(out, self.sender, self.signer))
        return f"written to {path}"

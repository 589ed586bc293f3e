"""Delivery channels: SMTP e-mail, signed webhooks, and a folder of .eml files for development.

Each channel answers with `Delivered`, or raises `RetryLater` (4xx, timeouts, refused
connections: the dispatcher backs off and tries again) or `Rejected` (5xx: the message failed).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import smtplib
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Any

import requests

from .domain.templates import Rendered


class RetryLater(Exception):
    pass


class Rejected(Exception):
    pass


@dataclass(frozen=True)
class Outgoing:
    touchpoint_id: str
    message_id: str
    to_email: str | None
    rendered: Rendered
    essential: bool
    unsubscribe_url: str | None
    payload: dict[str, Any]  # what a webhook receives


def build_email(out: Outgoing, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = out.to_email or ""
    message["Subject"] = out.rendered.subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = out.message_id
    message["X-OfferSeal-Touchpoint"] = out.touchpoint_id
    if not out.essential and out.unsubscribe_url:
        # RFC 2369 + RFC 8058 one-click unsubscribe, on non-essential mail only.
        message["List-Unsubscribe"] = f"<{out.unsubscribe_url}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(out.rendered.text)
    message.add_alternative(out.rendered.html, subtype="html")
    return message


class SmtpChannel:
    name = "email"

    def __init__(self, url: str, sender: str, timeout: float = 15.0) -> None:
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
        message = build_email(out, self.sender)
        with self._lock:
            for attempt in (1, 2):
                try:
                    if self._client is None:
                        self._client = self._connect()
                    self._client.send_message(message)
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
    """POST JSON; header `X-OfferSeal-Signature: t=<unix>,v1=<hex HMAC-SHA256(t.body)>`."""

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

    def __init__(self, folder: Path, sender: str) -> None:
        self.folder = folder
        self.sender = sender

    def send(self, out: Outgoing) -> str:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{out.touchpoint_id}.eml"
        path.write_bytes(bytes(build_email(out, self.sender)))
        return f"written to {path}"

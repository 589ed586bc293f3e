"""DKIM signatures on outgoing mail (RFC 6376, with dkimpy): the sending domain's key signs the
headers a receiver shows (From, To, Subject, Date, Reply-To...) and the body, so that the mail
is not taken for spam or a forgery. The key comes from the environment (PEM text or a file,
PKCS#1 or PKCS#8, RSA); without one, mail goes unsigned.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ...shared.config import ConfigError, Settings

# Signed whenever present; From twice so that no second From can be added after signing.
SIGNED_HEADERS = (
    b"From",
    b"From",
    b"Reply-To",
    b"To",
    b"Subject",
    b"Date",
    b"Message-ID",
    b"MIME-Version",
    b"Content-Type",
    b"List-Unsubscribe",
    b"List-Unsubscribe-Post",
)


@dataclass(frozen=True)
class DkimSigner:
    domain: str
    selector: str
    private_pem: bytes  # PKCS#1 ("RSA PRIVATE KEY"), as dkimpy reads it

    @classmethod
    def from_pem(cls, domain: str, selector: str, pem: bytes) -> DkimSigner:
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as exc:
            raise ConfigError(
                f"OFFERSEAL_DKIM_PRIVATE_KEY: not a PEM private key ({exc})"
            ) from None
        if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < 1024:
            raise ConfigError("OFFERSEAL_DKIM_PRIVATE_KEY: an RSA key (2048 bits recommended)")
        traditional = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        return cls(domain.lower(), selector, traditional)

    def public_record(self) -> str:
        """The TXT record to publish at `<selector>._domainkey.<domain>`."""
        key = serialization.load_pem_private_key(self.private_pem, password=None)
        der = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"

    @property
    def record_name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"

    def sign(self, message: bytes) -> bytes:
        """The message with its DKIM-Signature header in front."""
        import dkim  # imported when first used: with dnspython, 0.1-0.2 s of a cold start

        header = dkim.sign(
            message,
            self.selector.encode(),
            self.domain.encode(),
            self.private_pem,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=list(SIGNED_HEADERS),
            linesep=b"\r\n",
        )
        return bytes(header) + message


def signer_from(settings: Settings) -> DkimSigner | None:
    """The sending domain's signer (the domain of OFFERSEAL_MAIL_FROM), or None when no key is
    configured."""
    if not settings.dkim_selector or not settings.dkim_private_key:
        return None
    value = settings.dkim_private_key.strip()
    if value.startswith("-----BEGIN"):
        pem = value.replace("\\n", "\n").encode()
    else:
        try:
            pem = Path(value).expanduser().read_bytes()
        except OSError as exc:
            raise ConfigError(f"OFFERSEAL_DKIM_PRIVATE_KEY: cannot read {value}: {exc}") from None
    domain = parseaddr(settings.mail_from)[1].rpartition("@")[2]
    if not domain:
        raise ConfigError("OFFERSEAL_MAIL_FROM has no domain to sign for (DKIM)")
    return DkimSigner.from_pem(domain, settings.dkim_selector, pem)

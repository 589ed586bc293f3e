"""Secrets from settings, or development ones generated once into the data directory.

Values are never logged; only where a generated key was written is."""

from __future__ import annotations

import base64
import binascii
import logging
import os
from pathlib import Path

from .config import ConfigError, Settings

log = logging.getLogger(__name__)


def _decode32(name: str, value: str) -> bytes:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise ConfigError(f"{name} must be base64 of exactly 32 bytes")
    return raw


def _dev_secret(path: Path) -> bytes:
    if path.exists():
        return _decode32(str(path), path.read_text().strip())
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = os.urandom(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(base64.b64encode(raw).decode() + "\n")
    log.warning("generated a development key at %s (set the variable in production)", path)
    return raw


def master_key(settings: Settings) -> bytes:
    if settings.master_key:
        return _decode32("OFFERSEAL_MASTER_KEY", settings.master_key)
    return _dev_secret(settings.data_dir / "secrets" / "master.key")


def previous_master_keys(settings: Settings) -> list[bytes]:
    """The master keys of earlier rotations (they unwrap, never wrap)."""
    items = [item.strip() for item in settings.master_keys_previous.split(",")]
    return [_decode32("OFFERSEAL_MASTER_KEYS_PREVIOUS (each key)", item) for item in items if item]


def receipt_seed(settings: Settings) -> bytes:
    if settings.receipt_key:
        return _decode32("OFFERSEAL_RECEIPT_KEY", settings.receipt_key)
    return _dev_secret(settings.data_dir / "secrets" / "receipt.key")


def link_secret(settings: Settings) -> bytes:
    if settings.link_secret:
        return _decode32("OFFERSEAL_LINK_SECRET", settings.link_secret)
    return _dev_secret(settings.data_dir / "secrets" / "link.key")


def webhook_secret(settings: Settings) -> bytes:
    if settings.webhook_secret:
        return settings.webhook_secret.encode()
    return _dev_secret(settings.data_dir / "secrets" / "webhook.key")


def _pem(name: str, value: str) -> bytes:
    """A PEM variable holds the PEM text itself or the path of a PEM file."""
    text = value.strip()
    if text.startswith("-----BEGIN"):
        return text.encode() + b"\n"
    path = Path(text)
    if not path.is_file():
        raise ConfigError(f"{name} must be PEM text or the path of a PEM file")
    return path.read_bytes()


def certificate_signing_pem(settings: Settings) -> tuple[bytes, bytes]:
    """(private key PEM, certificate PEM) that sign evidence certificate PDFs. Unset: a
    self-signed development certificate generated once in the data directory."""
    if settings.certificate_key or settings.certificate_cert:
        if not (settings.certificate_key and settings.certificate_cert):
            raise ConfigError(
                "set both OFFERSEAL_CERTIFICATE_KEY and OFFERSEAL_CERTIFICATE_CERT, or neither"
            )
        return (
            _pem("OFFERSEAL_CERTIFICATE_KEY", settings.certificate_key),
            _pem("OFFERSEAL_CERTIFICATE_CERT", settings.certificate_cert),
        )
    folder = settings.data_dir / "secrets"
    key_path, cert_path = folder / "certificate-key.pem", folder / "certificate.pem"
    if not (key_path.exists() and cert_path.exists()):
        _dev_certificate(key_path, cert_path)
    return key_path.read_bytes(), cert_path.read_bytes()


def _dev_certificate(key_path: Path, cert_path: Path) -> None:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "OfferSeal (development)"),
            x509.NameAttribute(NameOID.COMMON_NAME, "OfferSeal development certificate signer"),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    key_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    log.warning(
        "generated a development certificate-signing key at %s (set OFFERSEAL_CERTIFICATE_KEY "
        "and OFFERSEAL_CERTIFICATE_CERT in production)",
        key_path,
    )

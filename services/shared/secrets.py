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

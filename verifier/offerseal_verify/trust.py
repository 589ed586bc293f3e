"""What a verifier chooses to trust, read from the command line: a receipt signer's public key,
a saved `GET /v1/keys` answer (each key with the period it signed in), TSA root certificates."""

from __future__ import annotations

import binascii
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .receipts import TrustedKey, key_id_of, parse_time, unb64

if TYPE_CHECKING:
    from cryptography.x509 import Certificate


def public_key(text: str) -> dict[str, bytes]:
    """One Ed25519 public key (64 hex digits, or base64url), by its key id."""
    try:
        raw = (
            bytes.fromhex(text[2:] if text.startswith("0x") else text)
            if len(text.removeprefix("0x")) == 64
            else unb64(text)
        )
    except (ValueError, binascii.Error):
        raw = b""
    if len(raw) != 32:
        raise ValueError("--key must be a 32-byte Ed25519 public key (hex or base64)")
    return {key_id_of(raw): raw}


def published_keys(path: str) -> dict[str, TrustedKey]:
    """The keys of a saved `GET /v1/keys` answer, each trusted for the period it signed in."""
    try:
        data = json.loads(Path(path).read_text())
        entries = data["keys"] if isinstance(data, dict) else data
        keys: dict[str, TrustedKey] = {}
        for entry in entries:
            raw = bytes.fromhex(entry["public_key_hex"])
            if len(raw) != 32 or key_id_of(raw) != entry["key_id"]:
                raise ValueError(f"key {entry['key_id']} does not match its public key")
            start, end = entry.get("valid_from"), entry.get("valid_until")
            keys[entry["key_id"]] = TrustedKey(
                raw, parse_time(start) if start else None, parse_time(end) if end else None
            )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"--keys {path}: not a saved GET /v1/keys answer ({exc})") from None
    return keys


def trusted_keys(key: str | None, keys_file: str | None) -> dict[str, bytes | TrustedKey] | None:
    """The keys `--key` and `--keys` name; None when neither is given (then each receipt's
    embedded key is used, and the receipt check says so)."""
    if not key and not keys_file:
        return None
    trusted: dict[str, bytes | TrustedKey] = {}
    trusted.update(published_keys(keys_file) if keys_file else {})
    trusted.update(public_key(key) if key else {})
    return trusted


def tsa_roots(paths: Sequence[str] | None) -> list[Certificate] | None:
    """The TSA root certificates in the PEM files `--tsa-ca` names; None when none is named."""
    if not paths:
        return None
    from .timestamps import load_certificates

    try:
        roots = [c for path in paths for c in load_certificates(Path(path).read_bytes())]
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read --tsa-ca: {exc}") from None
    if not roots:
        raise ValueError("--tsa-ca: no PEM certificate found")
    return roots

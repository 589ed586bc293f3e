"""Envelope encryption of document bytes at rest: AES-256-GCM with a fresh data key per
document, the data key wrapped (AES-256-GCM) by a master key. The document id is bound in
as associated data, so a ciphertext cannot be swapped onto another document.

Master keys have versions: a key's version is its fingerprint, so a stored blob names the exact
key that wrapped its data key. New documents use the current key; older keys only unwrap, and
`rewrap` moves a data key to the current key without touching the document's ciphertext."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, replace

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


@dataclass(frozen=True)
class Sealed:
    key_version: str
    wrapped_key: bytes
    nonce: bytes
    ciphertext: bytes


class UnknownMasterKey(ValueError):
    """A blob was wrapped by a master key version that is not configured."""

    def __init__(self, version: str, configured: Iterable[str]) -> None:
        self.version = version
        super().__init__(
            f"document sealed under master key {version}, which is not configured "
            f"(configured: {', '.join(configured)}); add that key to "
            "OFFERSEAL_MASTER_KEYS_PREVIOUS"
        )


def key_version_of(master_key: bytes) -> str:
    """The version a master key is recorded under: 16 hex digits of a hash, never the key."""
    return hashlib.sha256(b"offerseal-kv" + master_key).hexdigest()[:16]


class DocumentCipher:
    def __init__(self, master_key: bytes, previous: Iterable[bytes] = ()) -> None:
        keys = [master_key, *previous]
        if any(len(key) != 32 for key in keys):
            raise ValueError("the master key must be 32 bytes (base64 of 32 random bytes)")
        self.key_version = key_version_of(master_key)
        self._current = AESGCM(master_key)
        self._keys: dict[str, AESGCM] = {}
        for key in keys:
            self._keys.setdefault(key_version_of(key), AESGCM(key))

    @property
    def versions(self) -> tuple[str, ...]:
        """Every configured version, the current one first."""
        return tuple(self._keys)

    def _unwrap(self, document_id: str, sealed: Sealed) -> bytes:
        master = self._keys.get(sealed.key_version)
        if master is None:
            raise UnknownMasterKey(sealed.key_version, self._keys)
        wrapped = sealed.wrapped_key
        return master.decrypt(wrapped[:12], wrapped[12:], document_id.encode())

    def _wrap(self, document_id: str, data_key: bytes) -> bytes:
        wrap_nonce = os.urandom(12)
        return wrap_nonce + self._current.encrypt(wrap_nonce, data_key, document_id.encode())

    def seal(self, document_id: str, plaintext: bytes) -> Sealed:
        data_key = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(12)
        ciphertext = AESGCM(data_key).encrypt(nonce, plaintext, document_id.encode())
        return Sealed(self.key_version, self._wrap(document_id, data_key), nonce, ciphertext)

    def open(self, document_id: str, sealed: Sealed) -> bytes:
        data_key = self._unwrap(document_id, sealed)
        return AESGCM(data_key).decrypt(sealed.nonce, sealed.ciphertext, document_id.encode())

    def rewrap(self, document_id: str, sealed: Sealed) -> Sealed:
        """The same blob with its data key wrapped by the current master key (the ciphertext and
        its nonce are unchanged; `ciphertext` may be empty, it is not read)."""
        if sealed.key_version == self.key_version:
            return sealed
        data_key = self._unwrap(document_id, sealed)
        return replace(
            sealed, key_version=self.key_version, wrapped_key=self._wrap(document_id, data_key)
        )

"""Envelope encryption of document bytes at rest: AES-256-GCM with a fresh data key per
document, the data key wrapped (AES-256-GCM) by the master key. The document id is bound in
as associated data, so a ciphertext cannot be swapped onto another document."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


@dataclass(frozen=True)
class Sealed:
    key_version: str
    wrapped_key: bytes
    nonce: bytes
    ciphertext: bytes


class DocumentCipher:
    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != 32:
            raise ValueError("the master key must be 32 bytes (base64 of 32 random bytes)")
        self._master = AESGCM(master_key)
        self.key_version = hashlib.sha256(b"offerseal-kv" + master_key).hexdigest()[:16]

    def seal(self, document_id: str, plaintext: bytes) -> Sealed:
        data_key = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(12)
        ciphertext = AESGCM(data_key).encrypt(nonce, plaintext, document_id.encode())
        wrap_nonce = os.urandom(12)
        wrapped = wrap_nonce + self._master.encrypt(wrap_nonce, data_key, document_id.encode())
        return Sealed(self.key_version, wrapped, nonce, ciphertext)

    def open(self, document_id: str, sealed: Sealed) -> bytes:
        if sealed.key_version != self.key_version:
            raise ValueError(
                f"document sealed under master key {sealed.key_version}, "
                f"but the configured key is {self.key_version}"
            )
        aad = document_id.encode()
        data_key = self._master.decrypt(sealed.wrapped_key[:12], sealed.wrapped_key[12:], aad)
        return AESGCM(data_key).decrypt(sealed.nonce, sealed.ciphertext, aad)

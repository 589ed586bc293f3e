"""Envelope encryption: round trip, integrity, and binding to the document id."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest
from cryptography.exceptions import InvalidTag

from offerseal.evidence.crypto import DocumentCipher


def test_round_trip_and_ciphertext_hides_plaintext() -> None:
    cipher = DocumentCipher(os.urandom(32))
    plaintext = b"Resignation application, stamped" * 10
    sealed = cipher.seal("doc-1", plaintext)
    assert plaintext not in sealed.ciphertext
    assert cipher.open("doc-1", sealed) == plaintext
    # A fresh data key per document: the same bytes never give the same ciphertext.
    assert cipher.seal("doc-1", plaintext).ciphertext != sealed.ciphertext


def test_tampering_or_moving_a_ciphertext_is_detected() -> None:
    cipher = DocumentCipher(os.urandom(32))
    sealed = cipher.seal("doc-1", b"secret")
    flipped = bytearray(sealed.ciphertext)
    flipped[0] ^= 1
    with pytest.raises(InvalidTag):
        cipher.open("doc-1", replace(sealed, ciphertext=bytes(flipped)))
    with pytest.raises(InvalidTag):
        cipher.open("doc-2", sealed)


def test_another_master_key_cannot_open() -> None:
    sealed = DocumentCipher(os.urandom(32)).seal("doc-1", b"secret")
    with pytest.raises(ValueError, match="master key"):
        DocumentCipher(os.urandom(32)).open("doc-1", sealed)
    with pytest.raises(ValueError):
        DocumentCipher(b"short")

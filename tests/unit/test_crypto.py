"""Envelope encryption: round trip, integrity, binding to the document id, and master key
rotation (earlier keys unwrap, the current one wraps, re-wrapping leaves the ciphertext)."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest
from cryptography.exceptions import InvalidTag

from offerseal.evidence.crypto import DocumentCipher, UnknownMasterKey


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


def test_a_document_sealed_under_an_earlier_key_opens_after_rotation() -> None:
    v1, v2 = os.urandom(32), os.urandom(32)
    sealed = DocumentCipher(v1).seal("doc-1", b"stamped copy")
    rotated = DocumentCipher(v2, previous=[v1])
    assert rotated.key_version != sealed.key_version
    assert rotated.versions == (rotated.key_version, sealed.key_version)
    assert rotated.open("doc-1", sealed) == b"stamped copy"
    # New documents use the new key.
    assert rotated.seal("doc-2", b"new").key_version == rotated.key_version


def test_rewrap_moves_only_the_data_key_and_the_old_key_can_go() -> None:
    v1, v2 = os.urandom(32), os.urandom(32)
    sealed = DocumentCipher(v1).seal("doc-1", b"stamped copy")
    rewrapped = DocumentCipher(v2, previous=[v1]).rewrap("doc-1", sealed)
    assert rewrapped.ciphertext == sealed.ciphertext and rewrapped.nonce == sealed.nonce
    assert rewrapped.wrapped_key != sealed.wrapped_key
    assert DocumentCipher(v2).open("doc-1", rewrapped) == b"stamped copy"
    # Re-wrapping what is already under the current key changes nothing.
    assert DocumentCipher(v2).rewrap("doc-1", rewrapped) == rewrapped


def test_a_missing_key_version_is_named_with_the_fix() -> None:
    sealed = DocumentCipher(os.urandom(32)).seal("doc-1", b"secret")
    with pytest.raises(UnknownMasterKey, match="OFFERSEAL_MASTER_KEYS_PREVIOUS") as caught:
        DocumentCipher(os.urandom(32)).open("doc-1", sealed)
    assert caught.value.version == sealed.key_version
    with pytest.raises(ValueError, match="32 bytes"):
        DocumentCipher(os.urandom(32), previous=[b"short"])

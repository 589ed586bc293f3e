"""A software passkey (a P-256 key in memory) that answers WebAuthn ceremonies as a platform
authenticator would: the demo signs through the portal's path with it, and the contract tests use
it to forge every kind of bad assertion. Real candidates use their phone's passkey in the browser.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ..contracts.domain.passkeys import FLAG_UP, FLAG_UV, PublicKey, b64url


@dataclass(frozen=True)
class Assertion:
    authenticator_data: bytes
    client_data_json: bytes
    signature: bytes  # DER

    def as_json(self, credential_id: bytes) -> dict[str, str]:
        """As the portal's page posts it."""
        return {
            "credential_id": b64url(credential_id),
            "authenticator_data": b64url(self.authenticator_data),
            "client_data_json": b64url(self.client_data_json),
            "signature": b64url(self.signature),
        }


@dataclass
class SoftwarePasskey:
    rp_id: str = "localhost"
    origin: str = "http://localhost"
    credential_id: bytes = field(default_factory=lambda: os.urandom(16))
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    counter: int = 0

    @property
    def public_key(self) -> PublicKey:
        numbers = self.key.public_key().public_numbers()
        return PublicKey(numbers.x, numbers.y)

    def spki(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, challenge: bytes, *, user_verified: bool = True) -> Assertion:
        self.counter += 1
        flag = FLAG_UP | (FLAG_UV if user_verified else 0)
        authenticator_data = (
            hashlib.sha256(self.rp_id.encode()).digest()
            + bytes([flag])
            + self.counter.to_bytes(4, "big")
        )
        client_data_json = json.dumps(
            {
                "type": "webauthn.get",
                "challenge": b64url(challenge),
                "origin": self.origin,
                "crossOrigin": False,
            },
            separators=(",", ":"),
        ).encode()
        return Assertion(
            authenticator_data,
            client_data_json,
            self.sign_raw(authenticator_data + hashlib.sha256(client_data_json).digest()),
        )

    def sign_raw(self, message: bytes) -> bytes:
        return self.key.sign(message, ec.ECDSA(hashes.SHA256()))

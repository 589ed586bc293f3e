"""Passkeys (WebAuthn, ES256 / P-256) as candidate signers, pure: the identity of a passkey
(the address IntentAgreements derives from its public key), reading what a browser returns
(SubjectPublicKeyInfo, DER signatures, authenticator data flags, clientDataJSON), and encoding an
assertion as the `bytes signature` every candidate-signed call takes:
`abi.encode(qx, qy, (r, s, challengeIndex, typeIndex, authenticatorData, clientDataJSON))`.

OpenZeppelin's WebAuthn accepts only low-s signatures while authenticators return either, so `s`
is normalised to min(s, n - s) here (the same signature, mathematically)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import load_der_public_key
from eth_abi import encode
from eth_utils import keccak, to_checksum_address

# The order of P-256's group.
P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
WEBAUTHN_AUTH = "(bytes32,bytes32,uint256,uint256,bytes,string)"
FLAG_UP, FLAG_UV, FLAG_BE, FLAG_BS = 0x01, 0x04, 0x08, 0x10


class PasskeyError(ValueError):
    """What a browser sent is not a usable passkey or assertion; `field` names what."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def plausible_signature(signature: bytes) -> bool:
    """65 bytes (ECDSA r, s, v) or long enough to be an encoded passkey assertion."""
    return len(signature) == 65 or len(signature) >= 10 * 32


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str, field: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError):
        raise PasskeyError(field, "not base64url") from None


@dataclass(frozen=True)
class PublicKey:
    x: int
    y: int

    @property
    def address(self) -> str:
        return passkey_address(self.x, self.y)

    def hex(self) -> dict[str, str]:
        return {"x": f"0x{self.x:064x}", "y": f"0x{self.y:064x}"}


def passkey_address(x: int, y: int) -> str:
    """IntentAgreements.passkeyAddress(qx, qy): the last 20 bytes of keccak256(abi.encode(x, y))."""
    return to_checksum_address(
        keccak(encode(["bytes32", "bytes32"], [x.to_bytes(32, "big"), y.to_bytes(32, "big")]))[12:]
    )


def public_key_from_spki(der: bytes) -> PublicKey:
    """The P-256 point of a SubjectPublicKeyInfo (what the browser's `getPublicKey()` gives)."""
    try:
        key = load_der_public_key(der)
    except ValueError:
        raise PasskeyError("public_key", "not a DER SubjectPublicKeyInfo") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise PasskeyError("public_key", "not a P-256 (ES256) key")
    numbers = key.public_numbers()
    return PublicKey(numbers.x, numbers.y)


def flags(authenticator_data: bytes) -> dict[str, bool]:
    """The authenticator data's flags: user present, user verified, backup eligible/state."""
    if len(authenticator_data) < 37:
        raise PasskeyError("authenticator_data", "shorter than 37 bytes")
    byte = authenticator_data[32]
    return {
        "user_present": bool(byte & FLAG_UP),
        "user_verified": bool(byte & FLAG_UV),
        "backup_eligible": bool(byte & FLAG_BE),
        "backed_up": bool(byte & FLAG_BS),
    }


def client_data(client_data_json: bytes) -> dict[str, Any]:
    try:
        data = json.loads(client_data_json)
    except ValueError:
        raise PasskeyError("client_data_json", "not JSON") from None
    if not isinstance(data, dict):
        raise PasskeyError("client_data_json", "not a JSON object")
    return data


def challenge_of(client_data_json: bytes) -> bytes:
    """The challenge the authenticator signed (base64url in clientDataJSON)."""
    data = client_data(client_data_json)
    if data.get("type") != "webauthn.get":
        raise PasskeyError("client_data_json", "not an assertion (type is not webauthn.get)")
    challenge = data.get("challenge")
    if not isinstance(challenge, str):
        raise PasskeyError("client_data_json", "no challenge")
    return unb64url(challenge, "client_data_json")


def encode_signature(
    key: PublicKey, authenticator_data: bytes, client_data_json: bytes, signature_der: bytes
) -> bytes:
    """The assertion as IntentAgreements takes it (low s; byte offsets of `"challenge":"` and
    `"type":"` in clientDataJSON)."""
    try:
        r, s = decode_dss_signature(signature_der)
    except ValueError:
        raise PasskeyError("signature", "not a DER ECDSA signature") from None
    if not (0 < r < P256_N and 0 < s < P256_N):
        raise PasskeyError("signature", "r or s out of range")
    s = min(s, P256_N - s)
    text = client_data_json.decode("utf-8", errors="strict")
    challenge_index = text.find('"challenge":"')
    type_index = text.find('"type":"')
    if challenge_index < 0 or type_index < 0:
        raise PasskeyError("client_data_json", "no challenge or type")
    # Offsets are in bytes; clientDataJSON is ASCII in practice, but count bytes to be exact.
    challenge_index = len(text[:challenge_index].encode())
    type_index = len(text[:type_index].encode())
    return encode(
        ["bytes32", "bytes32", WEBAUTHN_AUTH],
        [
            key.x.to_bytes(32, "big"),
            key.y.to_bytes(32, "big"),
            (
                r.to_bytes(32, "big"),
                s.to_bytes(32, "big"),
                challenge_index,
                type_index,
                authenticator_data,
                text,
            ),
        ],
    )

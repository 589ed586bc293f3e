"""The second witness: RFC 3161 time-stamps of anchored Merkle roots.

A Time-Stamp Authority signs "this sha256 existed at this time" with a certificate for
time-stamping. Requests, responses and their verification against a certificate chain go through
`rfc3161-client` (no ASN.1 here). What is stamped is the root itself: the message imprint is
sha256 of the root's 32 bytes, so `openssl ts -verify -data root.bin` checks a token too.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding
from rfc3161_client import (
    HashAlgorithm,
    PKIStatus,
    TimestampRequestBuilder,
    TimeStampResponse,
    VerificationError,
    VerifierBuilder,
    decode_timestamp_response,
)

RFC3161 = "rfc3161"
HASH_ALGORITHM = "sha256"
QUERY_TYPE = "application/timestamp-query"
REPLY_TYPE = "application/timestamp-reply"


class TimestampRefused(ValueError):
    """A TSA's answer is not a usable time-stamp of what was asked (the reason says why)."""


@dataclass(frozen=True)
class Query:
    der: bytes
    nonce: int


@dataclass(frozen=True)
class Stamp:
    """An accepted time-stamp of one root."""

    response: bytes  # DER TimeStampResp, as the TSA sent it
    gen_time: dt.datetime
    serial_number: int
    policy: str
    certificates: tuple[str, ...]  # PEM: the TSA certificate the token carries, then its CA(s)


def imprint(root: bytes) -> bytes:
    return hashlib.sha256(root).digest()


def request_for(root: bytes) -> Query:
    """A DER time-stamp query for `root`, asking for the TSA's certificate and a nonce."""
    request = (
        TimestampRequestBuilder()
        .data(root)
        .hash_algorithm(HashAlgorithm.SHA256)
        .nonce(nonce=True)
        .cert_request(cert_request=True)
        .build()
    )
    return Query(request.as_bytes(), int(request.nonce or 0))


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(Encoding.PEM).decode()


def load_certificates(pem_text: str | bytes) -> list[x509.Certificate]:
    data = pem_text.encode() if isinstance(pem_text, str) else pem_text
    return list(x509.load_pem_x509_certificates(data))


def _token_certificates(response: TimeStampResponse) -> list[x509.Certificate]:
    return [x509.load_der_x509_certificate(c) for c in response.signed_data.certificates]


def _chain(
    token_certs: Sequence[x509.Certificate], roots: Sequence[x509.Certificate]
) -> tuple[str, ...]:
    """The certificates a bundle names: the token's, then each known root that issued one."""
    issuers = {c.issuer for c in token_certs}
    extra = [r for r in roots if r.subject in issuers and r not in token_certs]
    return tuple(pem(c) for c in [*token_certs, *extra])


def accept(
    reply: bytes, root: bytes, query: Query, roots: Sequence[x509.Certificate] = ()
) -> Stamp:
    """Check a TSA's reply to `query` for `root`: granted, for this imprint and nonce, and (when
    trusted roots are given) signed by a certificate that chains to one of them."""
    try:
        response = decode_timestamp_response(reply)
    except ValueError as exc:
        raise TimestampRefused(f"not a time-stamp response: {exc}") from None
    if PKIStatus(response.status) not in (PKIStatus.GRANTED, PKIStatus.GRANTED_WITH_MODS):
        raise TimestampRefused(f"the TSA refused (status {response.status})")
    info = response.tst_info
    if info.message_imprint.message != imprint(root):
        raise TimestampRefused("the token stamps another message")
    if info.nonce != query.nonce:
        raise TimestampRefused("the token answers another request (nonce)")
    if roots:
        try:
            VerifierBuilder(roots=list(roots)).build().verify(response, imprint(root))
        except VerificationError as exc:
            raise TimestampRefused(f"the token does not verify: {exc}") from None
    return Stamp(
        response=reply,
        gen_time=info.gen_time,
        serial_number=int(info.serial_number),
        policy=info.policy.dotted_string,
        certificates=_chain(_token_certificates(response), roots),
    )


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def bundle_entry(tsa: str, stamp: Stamp) -> dict[str, Any]:
    """What a proof bundle carries for one stamp."""
    return {
        "type": RFC3161,
        "tsa": tsa,
        "hash_algorithm": HASH_ALGORITHM,
        "gen_time": _iso(stamp.gen_time),
        "serial_number": str(stamp.serial_number),
        "policy": stamp.policy,
        "response": base64.b64encode(stamp.response).decode(),
        "certificates": list(stamp.certificates),
    }


def _self_signed(cert: x509.Certificate) -> bool:
    if cert.subject != cert.issuer:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def verify_entry(
    entry: Any, root: bytes, trusted_roots: Sequence[x509.Certificate] | None
) -> tuple[bool, str]:
    """Check one bundle stamp against `root`. With `trusted_roots` the token must chain to one of
    them; without, to a self-signed root the bundle itself names (and the detail says so).
    Certificates from the bundle are never trusted as intermediates."""
    try:
        if not isinstance(entry, dict) or entry.get("type") != RFC3161:
            return False, "not an RFC 3161 time-stamp"
        tsa = str(entry.get("tsa", "?"))
        response = decode_timestamp_response(base64.b64decode(str(entry["response"])))
        named = load_certificates("".join(entry.get("certificates") or []))
    except (KeyError, TypeError, ValueError) as exc:
        return False, f"malformed time-stamp: {exc}"
    pinned = trusted_roots is not None
    roots = (
        list(trusted_roots) if trusted_roots is not None else [c for c in named if _self_signed(c)]
    )
    if not roots:
        return False, f"{tsa}: no trusted TSA root (give one with --tsa-ca)"
    try:
        VerifierBuilder(roots=roots).build().verify(response, imprint(root))
    except (VerificationError, ValueError) as exc:
        return False, f"{tsa}: token does not verify against the root: {exc}"
    info = response.tst_info
    signer = _signer_name(response)
    gen_time = _iso(info.gen_time)
    stated = entry.get("gen_time")
    if stated is not None and stated != gen_time:
        return False, f"{tsa}: the bundle states {stated}, the token {gen_time}"
    where = "a trusted root" if pinned else "the root the bundle names; pin it with --tsa-ca"
    return True, f"{signer} stamped the root at {gen_time} (chain to {where})"


def _signer_name(response: TimeStampResponse) -> str:
    for cert in _token_certificates(response):
        names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        if names:
            return str(names[0].value)
    return "the TSA"

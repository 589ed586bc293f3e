"""RFC 3161 stamps of a root, made by a real OpenSSL TSA with its own CA (no network): a stamp
verifies against the TSA's root, and a tampered token, another root, another CA or a bundle that
claims a witness it lacks fail with the check named. Bundles of format 1 still verify."""

from __future__ import annotations

import base64
import copy
import hashlib
from pathlib import Path
from typing import Any

import pytest

from offerseal.shared.dev_tsa import Authority, ensure_authority, reply
from offerseal_verify import timestamps
from offerseal_verify.proofs import build_bundle, verify_bundle

from .test_proofs import make_bundle, sha_hex


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> Authority:
    return ensure_authority(tmp_path_factory.mktemp("tsa"))


@pytest.fixture(scope="module")
def other_authority(tmp_path_factory: pytest.TempPathFactory) -> Authority:
    return ensure_authority(tmp_path_factory.mktemp("other-tsa"), name="Someone else's TSA")


def ca_of(authority: Authority) -> list[Any]:
    return timestamps.load_certificates(authority.ca_cert.read_bytes())


def stamp_of(authority: Authority, root: bytes) -> dict[str, Any]:
    query = timestamps.request_for(root)
    stamp = timestamps.accept(reply(authority, query.der), root, query, ca_of(authority))
    return timestamps.bundle_entry("http://tsa.test/", stamp)


def stamped_bundle(authority: Authority, stamp_root: bytes | None = None) -> tuple[Any, Any, Any]:
    bundle, chain, signer = make_bundle()
    root = bytes.fromhex(bundle["merkle"]["root"][2:])
    entry = stamp_of(authority, stamp_root or root)
    plain = {k: v for k, v in bundle.items() if k not in ("format", "witnesses", "timestamps")}
    rebuilt = build_bundle(
        document=plain["document"],
        salt=bytes.fromhex(plain["leaf"]["values"][1][2:]),
        proof=[bytes.fromhex(p[2:]) for p in plain["merkle"]["proof"]],
        root=root,
        anchor=_anchor(plain["anchor"]),
        receipt=plain["intake_receipt"],
        timestamps=[entry],
    )
    return rebuilt, chain, signer


def _anchor(section: dict[str, Any]) -> Any:
    from offerseal_verify.proofs import AnchorFacts

    return AnchorFacts(**section)


def verdict_of(bundle: Any, chain: Any, signer: Any, roots: Any) -> Any:
    return verify_bundle(
        bundle,
        document_sha256=sha_hex(b"stamped copy"),
        trusted_keys={signer.key_id: signer.public_raw},
        chain=chain,
        tsa_roots=roots,
    )


def stamp_check(verdict: Any) -> Any:
    return next(c for c in verdict.checks if c.name == "rfc3161_timestamp")


def test_a_stamped_bundle_names_its_witnesses_and_verifies(authority: Authority) -> None:
    bundle, chain, signer = stamped_bundle(authority)
    assert bundle["format"] == "offerseal-proof/3"
    assert bundle["witnesses"] == ["ethereum", "rfc3161"]
    entry = bundle["timestamps"][0]
    assert entry["hash_algorithm"] == "sha256" and entry["certificates"]
    assert "BEGIN CERTIFICATE" in entry["certificates"][-1]  # the chain ends with the CA
    verdict = verdict_of(bundle, chain, signer, ca_of(authority))
    assert verdict.valid, verdict.as_dict()
    assert "trusted root" in stamp_check(verdict).detail
    assert entry["gen_time"] in stamp_check(verdict).detail


def test_without_trusted_roots_the_bundles_own_root_is_used_and_said(
    authority: Authority,
) -> None:
    bundle, chain, signer = stamped_bundle(authority)
    check = stamp_check(verdict_of(bundle, chain, signer, None))
    assert check.ok is True
    assert "pin it with --tsa-ca" in check.detail


def test_a_stamp_of_another_root_fails(authority: Authority) -> None:
    bundle, chain, signer = stamped_bundle(authority, stamp_root=b"\x01" * 32)
    verdict = verdict_of(bundle, chain, signer, ca_of(authority))
    assert verdict.failed == ["rfc3161_timestamp"]
    assert "does not verify" in stamp_check(verdict).detail


def test_a_tampered_token_fails(authority: Authority) -> None:
    bundle, chain, signer = stamped_bundle(authority)
    forged = copy.deepcopy(bundle)
    raw = bytearray(base64.b64decode(forged["timestamps"][0]["response"]))
    raw[-12] ^= 0x01  # inside the signature
    forged["timestamps"][0]["response"] = base64.b64encode(bytes(raw)).decode()
    verdict = verdict_of(forged, chain, signer, ca_of(authority))
    assert verdict.failed == ["rfc3161_timestamp"]


def test_a_restated_time_fails(authority: Authority) -> None:
    bundle, chain, signer = stamped_bundle(authority)
    forged = copy.deepcopy(bundle)
    forged["timestamps"][0]["gen_time"] = "2020-01-01T00:00:00Z"
    verdict = verdict_of(forged, chain, signer, ca_of(authority))
    assert verdict.failed == ["rfc3161_timestamp"]
    assert "2020-01-01T00:00:00Z" in stamp_check(verdict).detail


def test_another_cas_stamp_fails_against_the_trusted_root(
    authority: Authority, other_authority: Authority
) -> None:
    bundle, chain, signer = stamped_bundle(other_authority)
    # The forger names its own CA in the bundle; the verifier trusts only the real TSA's root.
    verdict = verdict_of(bundle, chain, signer, ca_of(authority))
    assert verdict.failed == ["rfc3161_timestamp"]


def test_a_bundle_claiming_a_witness_it_lacks_fails(authority: Authority) -> None:
    bundle, chain, signer = stamped_bundle(authority)
    forged = dict(bundle, timestamps=[])
    assert verdict_of(forged, chain, signer, ca_of(authority)).failed == ["rfc3161_timestamp"]
    forged = dict(bundle, witnesses=["ethereum"])
    assert verdict_of(forged, chain, signer, ca_of(authority)).failed == ["rfc3161_timestamp"]


def test_a_format_1_bundle_still_verifies() -> None:
    bundle, chain, signer = make_bundle()
    old = {k: v for k, v in bundle.items() if k not in ("witnesses", "timestamps")}
    old["format"] = "offerseal-proof/1"
    verdict = verdict_of(old, chain, signer, None)
    assert verdict.valid, verdict.as_dict()
    assert verdict.checks[0].detail == "offerseal-proof/1"
    assert not any(c.name == "rfc3161_timestamp" for c in verdict.checks)


def test_a_reply_for_another_request_is_refused(authority: Authority) -> None:
    root = hashlib.sha256(b"root").digest()
    first, second = timestamps.request_for(root), timestamps.request_for(root)
    answer = reply(authority, first.der)
    with pytest.raises(timestamps.TimestampRefused, match="nonce"):
        timestamps.accept(answer, root, second)
    with pytest.raises(timestamps.TimestampRefused, match="another message"):
        timestamps.accept(answer, b"\x02" * 32, first)
    with pytest.raises(timestamps.TimestampRefused, match="not a time-stamp"):
        timestamps.accept(b"<html>", root, first)


def test_a_reply_not_chaining_to_the_configured_roots_is_refused(
    authority: Authority, other_authority: Authority
) -> None:
    root = hashlib.sha256(b"root").digest()
    query = timestamps.request_for(root)
    with pytest.raises(timestamps.TimestampRefused, match="does not verify"):
        timestamps.accept(reply(other_authority, query.der), root, query, ca_of(authority))


def test_the_tsa_certificate_is_for_time_stamping_only(authority: Authority) -> None:
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(Path(authority.tsa_cert).read_bytes())
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical and list(eku.value) == [x509.ExtendedKeyUsageOID.TIME_STAMPING]

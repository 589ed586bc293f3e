"""Passkeys verified by IntentAgreements itself on a real Anvil (OpenZeppelin's WebAuthn over the
P-256 precompile): an offer made without a candidate, bound to the candidate's passkey once they
have enrolled, and committed with a WebAuthn assertion over the Commitment's digest. The relayer
cannot commit for the candidate: another passkey, a changed clientDataJSON, changed authenticator
data, a missing user-verification flag, a high-s signature and a replay on another agreement are
each refused by the contract."""

from __future__ import annotations

from dataclasses import replace

from eth_abi import encode

from offerseal.contracts.domain.passkeys import (
    P256_N,
    WEBAUTHN_AUTH,
    encode_signature,
    passkey_address,
)
from offerseal.demo.passkey import Assertion, SoftwarePasskey
from offerseal.shared.chain import typed_data_digest
from tests.integration.test_intent_agreements import (
    CEREMONY_B,
    STRANGER_KEY,
    Chain,
    make_terms,
    net,
    offer,
    revert_of,
    state,
    typed,
)

__all__ = ["net"]  # the module-scoped Anvil fixture
ZERO = "0x" + "00" * 20


def bound_offer(net: Chain, passkey: SoftwarePasskey) -> tuple[bytes, dict[str, object]]:
    """An offer made without a candidate, then bound to `passkey`: (id, typed Commitment)."""
    terms = make_terms(net, candidate=ZERO)
    agreement_id = offer(net, terms)
    net.send(net.agreements.functions.bindCandidate(agreement_id, passkey.public_key.address))
    bound = replace(terms, candidate=passkey.public_key.address)
    return agreement_id, typed(net, agreement_id, bound)


def accepted(net: Chain, candidate: str, digest: bytes, signature: bytes) -> bool:
    try:
        return bool(
            net.agreements.functions.isCandidateSignature(candidate, digest, signature).call()
        )
    except Exception:  # an undecodable signature reverts: refused all the same
        return False


def encoded(passkey: SoftwarePasskey, assertion: Assertion) -> bytes:
    return encode_signature(
        passkey.public_key,
        assertion.authenticator_data,
        assertion.client_data_json,
        assertion.signature,
    )


def test_passkey_address_matches_the_contract(net: Chain) -> None:
    key = SoftwarePasskey().public_key
    assert net.agreements.functions.passkeyAddress(
        key.x.to_bytes(32, "big"), key.y.to_bytes(32, "big")
    ).call() == passkey_address(key.x, key.y)


def test_an_unbound_offer_is_bound_once_and_committed_with_a_passkey(net: Chain) -> None:
    passkey = SoftwarePasskey()
    terms = make_terms(net, candidate=ZERO)
    agreement_id = offer(net, terms)
    assert state(net, agreement_id) == "Offered"
    fn = net.agreements.functions
    assert revert_of(fn.commit(agreement_id, CEREMONY_B, b"\x01" * 65))[0] == "CandidateNotBound"
    stranger = net.stranger.address
    assert revert_of(fn.bindCandidate(agreement_id, passkey.public_key.address), sender=stranger)[
        0
    ] == ("NotEmployer")
    receipt = net.send(fn.bindCandidate(agreement_id, passkey.public_key.address))
    (event,) = net.agreements.events.CandidateBound().process_receipt(receipt)
    assert event.args.candidate == passkey.public_key.address
    typed_data = typed(net, agreement_id, replace(terms, candidate=passkey.public_key.address))
    digest = typed_data_digest(typed_data)
    assert digest == fn.commitmentDigest(agreement_id, CEREMONY_B).call()
    signature = encoded(passkey, passkey.sign(digest))
    receipt = net.send(
        fn.commit(agreement_id, CEREMONY_B, signature), STRANGER_KEY
    )  # anyone may relay
    assert state(net, agreement_id) == "Committed"
    assert receipt["gasUsed"] < 150_000
    # Once committed, the candidate is fixed.
    other = SoftwarePasskey().public_key.address
    assert revert_of(fn.bindCandidate(agreement_id, other), sender=net.employer.address)[0] == (
        "InvalidState"
    )


def test_the_contract_refuses_every_assertion_the_candidate_did_not_make(net: Chain) -> None:
    passkey = SoftwarePasskey()
    agreement_id, typed_data = bound_offer(net, passkey)
    digest = typed_data_digest(typed_data)
    candidate = passkey.public_key.address
    good = passkey.sign(digest)
    assert accepted(net, candidate, digest, encoded(passkey, good))

    # Another passkey, with its own public key (not the candidate's identity) ...
    other = SoftwarePasskey()
    assert not accepted(net, candidate, digest, encoded(other, other.sign(digest)))
    # ... or claiming the candidate's public key.
    forged = other.sign(digest)
    assert not accepted(net, candidate, digest, encoded(passkey, forged))

    # clientDataJSON changed after signing (another origin).
    changed = good.client_data_json.replace(b"http://localhost", b"http://evil.test")
    assert not accepted(
        net, candidate, digest, encoded(passkey, replace(good, client_data_json=changed))
    )

    # Authenticator data changed after signing (the counter).
    data = good.authenticator_data[:-1] + bytes([good.authenticator_data[-1] ^ 1])
    assert not accepted(
        net, candidate, digest, encoded(passkey, replace(good, authenticator_data=data))
    )

    # Signed without user verification (no PIN, no biometric).
    assert not accepted(
        net, candidate, digest, encoded(passkey, passkey.sign(digest, user_verified=False))
    )

    # The same signature with s replaced by n - s (high s).
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    r, s = decode_dss_signature(good.signature)
    low = min(s, P256_N - s)
    key = passkey.public_key
    high = encode(
        ["bytes32", "bytes32", WEBAUTHN_AUTH],
        [
            key.x.to_bytes(32, "big"),
            key.y.to_bytes(32, "big"),
            (
                r.to_bytes(32, "big"),
                (P256_N - low).to_bytes(32, "big"),
                good.client_data_json.decode().find('"challenge":"'),
                good.client_data_json.decode().find('"type":"'),
                good.authenticator_data,
                good.client_data_json.decode(),
            ),
        ],
    )
    assert not accepted(net, candidate, digest, high)

    # A replay on another agreement bound to the same passkey.
    second_id, second_typed = bound_offer(net, passkey)
    assert typed_data_digest(second_typed) != digest
    fn = net.agreements.functions
    assert (
        revert_of(fn.commit(second_id, CEREMONY_B, encoded(passkey, good)))[0] == "InvalidSignature"
    )
    assert state(net, second_id) == "Offered"

    # Garbage that is neither ECDSA nor a decodable assertion.
    assert revert_of(fn.commit(agreement_id, CEREMONY_B, b"\x00" * 64))[0] == "InvalidSignature"
    # And the genuine assertion still commits.
    net.send(fn.commit(agreement_id, CEREMONY_B, encoded(passkey, good)))
    assert state(net, agreement_id) == "Committed"


def test_the_passkey_signs_a_cancellation_too(net: Chain) -> None:
    from offerseal.contracts.domain.agreements import cancellation_typed_data

    passkey = SoftwarePasskey()
    agreement_id, typed_data = bound_offer(net, passkey)
    fn = net.agreements.functions
    net.send(
        fn.commit(
            agreement_id, CEREMONY_B, encoded(passkey, passkey.sign(typed_data_digest(typed_data)))
        )
    )
    deadline = net.now + 3600
    release = cancellation_typed_data(
        chain_id=31337,
        registry=net.agreements.address,
        agreement_id="0x" + agreement_id.hex(),
        nonce=fn.nonces(passkey.public_key.address).call(),
        deadline=deadline,
    )
    signature = encoded(passkey, passkey.sign(typed_data_digest(release)))
    net.send(fn.cancel(agreement_id, deadline, signature))
    assert state(net, agreement_id) == "Cancelled"

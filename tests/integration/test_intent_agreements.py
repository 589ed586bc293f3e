"""IntentAgreements on a real Anvil: every transition and revert, the 30% cap in integers,
signatures made by ethers (an independent implementation) over the Python typed data, replay
across agreements, chains and registries, expired deadlines, an ERC-1271 smart wallet, milestone
evidence verified against EvidenceRegistry, and time travel for breach and expiry."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from eth_abi import decode, encode
from web3 import Web3
from web3.exceptions import ContractCustomError
from web3.logs import DISCARD

from offerseal.contracts.domain.agreements import (
    Terms,
    amendment_typed_data,
    arrival_typed_data,
    cancellation_typed_data,
    commitment_typed_data,
    damages_cap,
    within_cap,
)
from offerseal.evidence.adapters.registry import RegistryClient
from offerseal.shared import chain
from offerseal.shared.config import ANVIL_DEV_KEY
from offerseal_verify import merkle
from tests.conftest import free_port
from tests.signing import ethers_sign

pytestmark = pytest.mark.chain
ROOT = Path(__file__).resolve().parents[2]
# Anvil's development accounts 1-3: the candidate, a stranger, a smart wallet's owner.
CANDIDATE_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
STRANGER_KEY = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"
WALLET_OWNER_KEY = "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6"
STATES = [
    "None",
    "Offered",
    "Committed",
    "Fulfilled",
    "Breached",
    "EmployerBreached",
    "Cancelled",
    "Expired",
]


class Chain:
    def __init__(self, url: str) -> None:
        self.w3 = chain.connect(url)
        self.employer = chain.account(ANVIL_DEV_KEY)
        self.candidate = chain.account(CANDIDATE_KEY)
        self.stranger = chain.account(STRANGER_KEY)
        self.registry = RegistryClient(
            self.w3,
            chain.deploy(
                self.w3,
                self.employer,
                "EvidenceRegistry",
                self.employer.address,
                self.employer.address,
            ),
        )
        self.agreements = self.deploy_agreements()

    def deploy_agreements(self) -> Any:
        address = chain.deploy(self.w3, self.employer, "IntentAgreements", self.registry.address)
        return self.w3.eth.contract(address=address, abi=chain.artifact("IntentAgreements")["abi"])

    @property
    def now(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def travel(self, seconds: int) -> None:
        self.w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
        self.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]

    def send(self, fn: Any, key: str = ANVIL_DEV_KEY) -> Any:
        signer = chain.account(key)
        tx = fn.build_transaction(
            {"from": signer.address, "nonce": self.w3.eth.get_transaction_count(signer.address)}
        )
        return chain.send_signed(self.w3, signer, dict(tx))


@pytest.fixture(scope="module")
def net() -> Iterator[Chain]:
    from offerseal.shared.anvil import AnvilProcess

    anvil = AnvilProcess(free_port())
    try:
        yield Chain(anvil.url)
    finally:
        anvil.stop()


def new_id() -> bytes:
    return os.urandom(32)


def make_terms(net: Chain, candidate: str | None = None, **changes: Any) -> Terms:
    now = net.now
    terms = Terms(
        employer=net.employer.address,
        candidate=candidate or net.candidate.address,
        terms_hash="0x" + hashlib.sha256("入职意向书 …".encode()).hexdigest(),
        start_date=now + 30 * 86400,
        grace_seconds=3 * 86400,
        offer_expires_at=now + 7 * 86400,
        monthly_salary=2_500_000,
        liquidated_damages=750_000,
    )
    return replace(terms, **changes)


MILESTONES = [(1, 0, 0), (2, 0, 0), (4, 0, 0)]  # (kind code, due, confirmedAt)


def offer(
    net: Chain,
    terms: Terms,
    salt: bytes | None = None,
    milestones: list[tuple[int, int, int]] | None = None,
    key: str = ANVIL_DEV_KEY,
) -> bytes:
    """Offers from `key`'s address; the id is the contract's agreementIdOf(sender, salt)."""
    salt = salt or new_id()
    due = terms.start_date - 86400
    ms = [(k, due, c) for k, _, c in (MILESTONES if milestones is None else milestones)]
    net.send(net.agreements.functions.offer(salt, terms.as_tuple(), ms), key)
    return agreement_id_of(chain.account(key).address, salt)


def agreement_id_of(sender: str, salt: bytes) -> bytes:
    """The id the contract derives, recomputed off chain: keccak256(abi.encode(sender, salt))."""
    return bytes(Web3.keccak(encode(["address", "bytes32"], [sender, salt])))


# The hash of a signing ceremony's record (the portal's record; any non-zero value on chain).
CEREMONY = "0x" + "c3" * 32
CEREMONY_B = bytes.fromhex(CEREMONY[2:])


def typed(
    net: Chain,
    agreement_id: bytes,
    terms: Terms,
    *,
    nonce: int | None = None,
    chain_id: int = 31337,
    registry: str | None = None,
    ceremony_hash: str = CEREMONY,
) -> dict[str, Any]:
    if nonce is None:
        nonce = net.agreements.functions.nonces(terms.candidate).call()
    milestones = [(m[0], m[1]) for m in net.agreements.functions.milestonesOf(agreement_id).call()]
    return commitment_typed_data(
        chain_id=chain_id,
        registry=registry or net.agreements.address,
        agreement_id="0x" + agreement_id.hex(),
        terms=terms,
        milestones=milestones,
        nonce=nonce,
        ceremony_hash=ceremony_hash,
    )


def sign(private_key: str, typed_data: dict[str, Any]) -> bytes:
    return bytes.fromhex(ethers_sign(private_key, typed_data)[2:])


def revert_of(call: Any, *, sender: str | None = None) -> tuple[str, tuple[Any, ...]]:
    """(error name, decoded arguments) of the custom error a call reverts with."""
    abi = chain.artifact("IntentAgreements")["abi"]
    with pytest.raises(ContractCustomError) as info:
        call.call({"from": sender} if sender else {})
    data = info.value.data if isinstance(info.value.data, str) else info.value.args[0]
    raw = bytes.fromhex(str(data)[2:])
    for item in abi:
        if item["type"] != "error":
            continue
        types = [i["type"] for i in item["inputs"]]
        if Web3.keccak(text=f"{item['name']}({','.join(types)})")[:4] == raw[:4]:
            return item["name"], tuple(decode(types, raw[4:]))
    raise AssertionError(f"unknown error {raw[:4].hex()}")


def state(net: Chain, agreement_id: bytes) -> str:
    return STATES[net.agreements.functions.stateOf(agreement_id).call()]


# ---- offer and the cap ---------------------------------------------------------------------


def test_offer_stores_terms_and_milestones(net: Chain) -> None:
    terms = make_terms(net)
    agreement_id = offer(net, terms)
    assert state(net, agreement_id) == "Offered"
    stored = net.agreements.functions.termsOf(agreement_id).call()
    assert tuple(stored) == terms.as_tuple()
    assert [m[0] for m in net.agreements.functions.milestonesOf(agreement_id).call()] == [1, 2, 4]


@pytest.mark.parametrize("salary", [1, 3, 10_000, 2_500_001, 10**30])
def test_cap_is_exactly_thirty_percent_in_integers(net: Chain, salary: int) -> None:
    cap = damages_cap(salary)
    assert within_cap(cap, salary) and not within_cap(cap + 1, salary)
    at_cap = make_terms(net, monthly_salary=salary, liquidated_damages=cap)
    offer(net, at_cap)
    above = replace(at_cap, liquidated_damages=cap + 1)
    name, args = revert_of(
        net.agreements.functions.offer(new_id(), above.as_tuple(), []), sender=net.employer.address
    )
    assert name == "DamagesAboveCap" and args == (cap + 1, cap)


def test_bad_offers_are_refused(net: Chain) -> None:
    terms = make_terms(net)
    fn = net.agreements.functions.offer
    sender = net.employer.address
    assert (
        revert_of(fn(new_id(), terms.as_tuple(), [(1, 0, 0)] * 9), sender=sender)[0]
        == "TooManyMilestones"
    )
    expired = replace(terms, offer_expires_at=net.now - 1)
    assert revert_of(fn(new_id(), expired.as_tuple(), []), sender=sender)[0] == "InvalidTerms"
    late = replace(terms, offer_expires_at=terms.start_date + 1)
    assert revert_of(fn(new_id(), late.as_tuple(), []), sender=sender)[0] == "InvalidTerms"
    assert (
        revert_of(fn(new_id(), terms.as_tuple(), []), sender=net.stranger.address)[0]
        == "NotEmployer"
    )
    salt = new_id()
    offer(net, terms, salt)
    assert revert_of(fn(salt, terms.as_tuple(), []), sender=sender)[0] == "AgreementExists"


def test_an_operator_may_act_for_the_employer(net: Chain) -> None:
    net.send(net.agreements.functions.setOperator(net.stranger.address, True))
    terms = make_terms(net)
    agreement_id = offer(net, terms, milestones=[], key=STRANGER_KEY)
    assert state(net, agreement_id) == "Offered"
    net.send(net.agreements.functions.setOperator(net.stranger.address, False))


# ---- signatures ------------------------------------------------------------------------------


def test_python_digest_equals_the_contracts(net: Chain) -> None:
    terms = make_terms(net)
    agreement_id = offer(net, terms)
    digest = chain.typed_data_digest(typed(net, agreement_id, terms))
    assert digest == bytes(
        net.agreements.functions.commitmentDigest(agreement_id, CEREMONY_B).call()
    )
    deadline = net.now + 3600
    cancel = cancellation_typed_data(
        chain_id=31337,
        registry=net.agreements.address,
        agreement_id="0x" + agreement_id.hex(),
        nonce=net.agreements.functions.nonces(terms.candidate).call(),
        deadline=deadline,
    )
    assert chain.typed_data_digest(cancel) == bytes(
        net.agreements.functions.cancellationDigest(agreement_id, deadline).call()
    )


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js not installed")
def test_an_ethers_signature_over_the_typed_data_commits(net: Chain) -> None:
    terms = make_terms(net)
    agreement_id = offer(net, terms)
    signature = sign(CANDIDATE_KEY, typed(net, agreement_id, terms))
    nonce = net.agreements.functions.nonces(terms.candidate).call()
    # Relayed by someone else: the candidate needs no ether.
    receipt = net.send(
        net.agreements.functions.commit(agreement_id, CEREMONY_B, signature), STRANGER_KEY
    )
    assert state(net, agreement_id) == "Committed"
    event = net.agreements.events.Committed().process_receipt(receipt)[0]
    assert event["args"]["nonce"] == nonce
    assert net.agreements.functions.nonces(terms.candidate).call() == nonce + 1


def test_signatures_do_not_replay(net: Chain) -> None:
    terms = make_terms(net)
    first, second = offer(net, terms), offer(net, terms)

    def commit(agreement: bytes, signature: bytes) -> Any:
        return net.agreements.functions.commit(agreement, CEREMONY_B, signature)

    sender = net.stranger.address
    # Another agreement with identical terms.
    for_first = sign(CANDIDATE_KEY, typed(net, first, terms))
    assert revert_of(commit(second, for_first), sender=sender)[0] == "InvalidSignature"
    # Another chain, another registry.
    other_chain = sign(CANDIDATE_KEY, typed(net, first, terms, chain_id=1))
    assert revert_of(commit(first, other_chain), sender=sender)[0] == "InvalidSignature"
    other_registry = sign(CANDIDATE_KEY, typed(net, first, terms, registry=net.registry.address))
    assert revert_of(commit(first, other_registry), sender=sender)[0] == "InvalidSignature"
    # A stranger's key.
    forged = sign(STRANGER_KEY, typed(net, first, terms))
    assert revert_of(commit(first, forged), sender=sender)[0] == "InvalidSignature"
    # The genuine one works once; afterwards its nonce is used.
    net.send(commit(first, for_first), STRANGER_KEY)
    stale_nonce = sign(CANDIDATE_KEY, typed(net, second, terms, nonce=0))
    if net.agreements.functions.nonces(terms.candidate).call() != 0:
        assert revert_of(commit(second, stale_nonce), sender=sender)[0] == "InvalidSignature"
    assert revert_of(commit(first, for_first), sender=sender) == (
        "InvalidState",
        (first, STATES.index("Committed")),
    )


def test_a_smart_wallet_candidate_signs_with_erc1271(net: Chain) -> None:
    owner = chain.account(WALLET_OWNER_KEY)
    wallet = chain.deploy(net.w3, net.employer, "SmartWalletMock", owner.address)
    terms = make_terms(net, candidate=wallet)
    agreement_id = offer(net, terms)
    digest = bytes(net.agreements.functions.commitmentDigest(agreement_id, CEREMONY_B).call())
    assert digest == chain.typed_data_digest(typed(net, agreement_id, terms))
    signature = bytes(owner.unsafe_sign_hash(digest).signature)
    net.send(net.agreements.functions.commit(agreement_id, CEREMONY_B, signature), STRANGER_KEY)
    assert state(net, agreement_id) == "Committed"


def test_commit_after_the_offer_expired_is_refused_and_the_offer_expires(net: Chain) -> None:
    terms = make_terms(net)
    agreement_id = offer(net, terms)
    signature = sign(CANDIDATE_KEY, typed(net, agreement_id, terms))
    assert revert_of(net.agreements.functions.expire(agreement_id))[0] == "OfferStillOpen"
    net.travel(8 * 86400)
    assert (
        revert_of(net.agreements.functions.commit(agreement_id, CEREMONY_B, signature))[0]
        == "OfferExpired"
    )
    net.send(net.agreements.functions.expire(agreement_id), STRANGER_KEY)  # anyone
    assert state(net, agreement_id) == "Expired"


# ---- after commitment ------------------------------------------------------------------------


def committed(net: Chain, **changes: Any) -> tuple[bytes, Terms]:
    terms = make_terms(net, **changes)
    agreement_id = offer(net, terms)
    net.send(
        net.agreements.functions.commit(
            agreement_id, CEREMONY_B, sign(CANDIDATE_KEY, typed(net, agreement_id, terms))
        ),
        STRANGER_KEY,
    )
    return agreement_id, terms


def evidence_tree(count: int) -> tuple[merkle.MerkleTree, list[bytes], list[bytes]]:
    """A tree of `count` documents: (tree, leaves, values hashes keccak256(sha256 ‖ salt))."""
    values = [(os.urandom(32), os.urandom(32)) for _ in range(count)]
    leaves = [merkle.leaf_hash(sha, salt) for sha, salt in values]
    return (
        merkle.MerkleTree.build(leaves),
        leaves,
        [bytes(Web3.keccak(sha + salt)) for sha, salt in values],
    )


def anchor(net: Chain, root: bytes) -> None:
    prepared = net.registry.prepare_anchor(
        net.employer, root, net.w3.eth.get_transaction_count(net.employer.address)
    )
    net.registry.send_raw(prepared.raw)
    net.w3.eth.wait_for_transaction_receipt(prepared.tx_hash)  # type: ignore[arg-type]


def test_milestone_evidence_is_verified_against_the_evidence_registry(net: Chain) -> None:
    agreement_id, _ = committed(net)
    tree, leaves, values = evidence_tree(5)
    confirm = net.agreements.functions.confirmMilestone
    sender = net.employer.address
    proof = tree.proof(leaves[2])
    assert (
        revert_of(confirm(agreement_id, 0, tree.root, values[2], proof), sender=sender)[0]
        == "EvidenceNotAnchored"
    )
    prepared = net.registry.prepare_anchor(
        net.employer, tree.root, net.w3.eth.get_transaction_count(net.employer.address)
    )
    net.registry.send_raw(prepared.raw)
    net.w3.eth.wait_for_transaction_receipt(prepared.tx_hash)  # type: ignore[arg-type]
    assert (
        revert_of(confirm(agreement_id, 0, tree.root, values[3], proof), sender=sender)[0]
        == "EvidenceNotAnchored"
    )  # a leaf the proof does not prove
    assert (
        revert_of(confirm(agreement_id, 0, tree.root, leaves[2], proof), sender=sender)[0]
        == "EvidenceNotAnchored"
    )  # the leaf itself is no longer accepted: the contract hashes the values
    assert (
        revert_of(
            confirm(agreement_id, 0, tree.root, values[2], proof), sender=net.stranger.address
        )[0]
        == "NotEmployer"
    )
    net.send(confirm(agreement_id, 0, tree.root, values[2], proof))
    assert bytes(net.agreements.functions.evidenceOf(agreement_id, 0).call()) == leaves[2]
    assert net.agreements.functions.milestonesOf(agreement_id).call()[0][2] > 0
    assert (
        revert_of(confirm(agreement_id, 0, tree.root, values[2], proof), sender=sender)[0]
        == "MilestoneAlreadyConfirmed"
    )
    assert (
        revert_of(confirm(agreement_id, 7, tree.root, values[2], proof), sender=sender)[0]
        == "MilestoneOutOfRange"
    )


def test_an_inner_node_of_the_tree_is_not_evidence(net: Chain) -> None:
    agreement_id, _ = committed(net)
    tree, leaves, values = evidence_tree(4)
    anchor(net, tree.root)
    confirm = net.agreements.functions.confirmMilestone
    sender = net.employer.address
    # The parent of leaf 0 and its sibling, proven by the one node above it: version 1 took
    # it as a leaf; now whatever is passed is hashed into a leaf first.
    sibling, uncle = tree.proof(leaves[0])
    inner = merkle.hash_pair(leaves[0], sibling)
    assert merkle.process_proof(inner, [uncle]) == tree.root  # a valid proof of the node
    assert (
        revert_of(confirm(agreement_id, 0, tree.root, inner, [uncle]), sender=sender)[0]
        == "EvidenceNotAnchored"
    )
    net.send(confirm(agreement_id, 0, tree.root, values[1], tree.proof(leaves[1])))
    assert bytes(net.agreements.functions.evidenceOf(agreement_id, 0).call()) == leaves[1]


def test_breach_is_declarable_by_anyone_only_after_start_plus_grace(net: Chain) -> None:
    agreement_id, terms = committed(net)
    declare = net.agreements.functions.declareBreach(agreement_id)
    name, args = revert_of(declare, sender=net.stranger.address)
    assert name == "BreachNotDeclarable" and args[1] == terms.start_date + terms.grace_seconds
    net.travel(terms.start_date + terms.grace_seconds - net.now - 60)
    assert revert_of(declare, sender=net.stranger.address)[0] == "BreachNotDeclarable"
    net.travel(120)
    receipt = net.send(declare, STRANGER_KEY)
    event = net.agreements.events.Breached().process_receipt(receipt)[0]
    assert event["args"]["damages"] == terms.liquidated_damages
    assert event["args"]["declaredBy"] == net.stranger.address
    assert state(net, agreement_id) == "Breached"
    assert revert_of(
        net.agreements.functions.confirmStart(agreement_id), sender=net.employer.address
    ) == ("InvalidState", (agreement_id, STATES.index("Breached")))


def test_start_withdrawal_and_cancellation(net: Chain) -> None:
    fns = net.agreements.functions
    started, _ = committed(net)
    assert revert_of(fns.confirmStart(started), sender=net.stranger.address)[0] == "NotEmployer"
    net.send(fns.confirmStart(started))
    assert state(net, started) == "Fulfilled"

    withdrawn, terms = committed(net)
    receipt = net.send(fns.withdrawOffer(withdrawn))
    assert (
        net.agreements.events.EmployerBreached().process_receipt(receipt)[0]["args"]["damages"]
        == terms.liquidated_damages
    )
    assert state(net, withdrawn) == "EmployerBreached"

    offered = offer(net, make_terms(net))
    net.send(fns.cancel(offered, 0, b""))  # before commitment the employer alone
    assert state(net, offered) == "Cancelled"

    mutual, terms = committed(net)
    deadline = net.now + 3600
    assert revert_of(fns.cancel(mutual, deadline, b"\x00" * 65), sender=net.employer.address)[
        0
    ] in ("InvalidSignature", "ECDSAInvalidSignature")
    release = cancellation_typed_data(
        chain_id=31337,
        registry=net.agreements.address,
        agreement_id="0x" + mutual.hex(),
        nonce=fns.nonces(terms.candidate).call(),
        deadline=deadline,
    )
    signature = sign(CANDIDATE_KEY, release)
    receipt = net.send(fns.cancel(mutual, deadline, signature))
    assert net.agreements.events.Cancelled().process_receipt(receipt)[0]["args"]["mutual"]
    assert state(net, mutual) == "Cancelled"


def _amendment(text: str, start: int, dues: list[int]) -> Any:
    return ("0x" + hashlib.sha256(text.encode()).hexdigest(), start, dues)


def test_an_offered_agreement_is_amended_by_the_employer_alone(net: Chain) -> None:
    fns = net.agreements.functions
    terms = make_terms(net)
    agreement_id = offer(net, terms)
    old_typed = typed(net, agreement_id, terms)
    later = terms.start_date + 14 * 86400
    amendment = _amendment("re-issued text", later, [later - 86400] * 3)
    assert (
        revert_of(fns.amend(agreement_id, amendment, 0, b""), sender=net.stranger.address)[0]
        == "NotEmployer"
    )
    too_early = ("0x" + "11" * 32, terms.offer_expires_at - 1, [0, 0, 0])
    assert (
        revert_of(fns.amend(agreement_id, too_early, 0, b""), sender=net.employer.address)[0]
        == "InvalidTerms"
    )
    short = ("0x" + "11" * 32, later, [later])
    assert revert_of(fns.amend(agreement_id, short, 0, b""), sender=net.employer.address) == (
        "InvalidMilestone",
        (1,),
    )
    receipt = net.send(fns.amend(agreement_id, amendment, 0, b""))
    event = net.agreements.events.Amended().process_receipt(receipt)[0]["args"]
    assert event["startDate"] == later and not event["mutual"]
    assert fns.termsOf(agreement_id).call()[2] == bytes.fromhex(amendment[0][2:])
    assert [m[1] for m in fns.milestonesOf(agreement_id).call()] == [later - 86400] * 3
    # The commitment covers the new terms: a signature over the old ones no longer commits.
    stale = sign(CANDIDATE_KEY, old_typed)
    assert revert_of(fns.commit(agreement_id, CEREMONY_B, stale), sender=net.stranger.address)[
        0
    ] == ("InvalidSignature")
    new_terms = replace(terms, terms_hash=amendment[0], start_date=later)
    net.send(
        fns.commit(
            agreement_id, CEREMONY_B, sign(CANDIDATE_KEY, typed(net, agreement_id, new_terms))
        )
    )
    assert state(net, agreement_id) == "Committed"


def test_a_committed_agreement_is_amended_only_with_the_candidate_s_signature(
    net: Chain,
) -> None:
    fns = net.agreements.functions
    agreement_id, terms = committed(net)
    later = terms.start_date + 7 * 86400
    amendment = _amendment("v2", later, [later - 3 * 86400] * 3)
    deadline = net.now + 3600
    assert revert_of(
        fns.amend(agreement_id, amendment, deadline, b"\x01" * 65), sender=net.employer.address
    )[0] in ("InvalidSignature", "ECDSAInvalidSignature")

    def typed_amendment(a: Any, nonce: int | None = None, until: int = deadline) -> Any:
        return amendment_typed_data(
            chain_id=31337,
            registry=net.agreements.address,
            agreement_id="0x" + agreement_id.hex(),
            terms_hash=a[0],
            start_date=a[1],
            dues=a[2],
            nonce=fns.nonces(terms.candidate).call() if nonce is None else nonce,
            deadline=until,
        )

    # Python's digest (eth_account) equals the contract's, array field included.
    assert (
        chain.typed_data_digest(typed_amendment(amendment))
        == fns.amendmentDigest(agreement_id, amendment, deadline).call()
    )
    signature = sign(CANDIDATE_KEY, typed_amendment(amendment))
    other_dates = (amendment[0], later, [later] * 3)  # not what the candidate signed
    assert (
        revert_of(
            fns.amend(agreement_id, other_dates, deadline, signature), sender=net.employer.address
        )[0]
        == "InvalidSignature"
    )
    expired = sign(CANDIDATE_KEY, typed_amendment(amendment, until=net.now - 1))
    assert (
        revert_of(
            fns.amend(agreement_id, amendment, net.now - 1, expired), sender=net.employer.address
        )[0]
        == "SignatureExpired"
    )
    assert (
        revert_of(
            fns.amend(agreement_id, amendment, deadline, signature), sender=net.stranger.address
        )[0]
        == "NotEmployer"
    )
    receipt = net.send(fns.amend(agreement_id, amendment, deadline, signature))
    assert net.agreements.events.Amended().process_receipt(receipt)[0]["args"]["mutual"]
    assert fns.termsOf(agreement_id).call()[3] == later
    # The nonce was used: the same signature cannot be replayed.
    assert (
        revert_of(
            fns.amend(agreement_id, amendment, deadline, signature), sender=net.employer.address
        )[0]
        == "InvalidSignature"
    )
    # Breach now waits for the new start date plus grace.
    net.travel(terms.start_date + terms.grace_seconds - net.now + 60)
    assert revert_of(fns.declareBreach(agreement_id))[0] == "BreachNotDeclarable"


def test_a_confirmed_milestone_keeps_its_date(net: Chain) -> None:
    fns = net.agreements.functions
    agreement_id, terms = committed(net)
    tree, leaves, values = evidence_tree(2)
    anchor(net, tree.root)
    net.send(fns.confirmMilestone(agreement_id, 0, tree.root, values[0], tree.proof(leaves[0])))
    due = [m[1] for m in fns.milestonesOf(agreement_id).call()]
    deadline = net.now + 3600

    def signed(a: Any) -> bytes:
        return sign(
            CANDIDATE_KEY,
            amendment_typed_data(
                chain_id=31337,
                registry=net.agreements.address,
                agreement_id="0x" + agreement_id.hex(),
                terms_hash=a[0],
                start_date=a[1],
                dues=a[2],
                nonce=fns.nonces(terms.candidate).call(),
                deadline=deadline,
            ),
        )

    confirmed_moved = ("0x" + "22" * 32, terms.start_date, [due[0] + 86400, due[1], due[2]])
    assert revert_of(
        fns.amend(agreement_id, confirmed_moved, deadline, signed(confirmed_moved)),
        sender=net.employer.address,
    ) == ("InvalidMilestone", (0,))
    open_moved = ("0x" + "22" * 32, terms.start_date, [due[0], due[1] + 86400, due[2]])
    net.send(fns.amend(agreement_id, open_moved, deadline, signed(open_moved)))
    assert [m[1] for m in fns.milestonesOf(agreement_id).call()] == open_moved[2]
    assert fns.milestonesOf(agreement_id).call()[0][2] > 0  # still confirmed
    finished = offer(net, make_terms(net))
    net.send(fns.cancel(finished, 0, b""))
    assert (
        revert_of(
            fns.amend(finished, ("0x" + "33" * 32, terms.start_date, [0, 0, 0]), 0, b""),
            sender=net.employer.address,
        )[0]
        == "InvalidState"
    )


def test_illegal_transitions_name_the_state(net: Chain) -> None:
    fns = net.agreements.functions
    unknown = new_id()
    for call in (
        fns.commit(unknown, CEREMONY_B, b""),
        fns.confirmStart(unknown),
        fns.declareBreach(unknown),
        fns.withdrawOffer(unknown),
        fns.expire(unknown),
        fns.cancel(unknown, 0, b""),
    ):
        assert revert_of(call, sender=net.employer.address) == ("InvalidState", (unknown, 0))
    offered = offer(net, make_terms(net))
    assert revert_of(fns.withdrawOffer(offered), sender=net.employer.address) == (
        "InvalidState",
        (offered, STATES.index("Offered")),
    )


def test_nothing_personal_reaches_the_chain(net: Chain) -> None:
    terms = make_terms(net)
    receipt = net.send(net.agreements.functions.offer(new_id(), terms.as_tuple(), []))
    tx = net.w3.eth.get_transaction(receipt["transactionHash"])
    blob = bytes(tx["input"]) + b"".join(bytes(e["data"]) for e in receipt["logs"])
    for personal in ("张三", "zhang.san@example.com", "+86 138"):
        assert personal.encode() not in blob


# ---- version 2: ids, the whole commitment, arrival -----------------------------------------


def test_version_is_2_3(net: Chain) -> None:
    assert net.agreements.functions.version().call() == "2.3.0"


def offer_data(net: Chain, salt: bytes, terms: Terms) -> bytes:
    due = terms.start_date - 86400
    call = net.agreements.functions.offer(
        salt, terms.as_tuple(), [(k, due, 0) for k, _, _ in MILESTONES]
    )
    return bytes.fromhex(call._encode_transaction_data()[2:])


def test_a_multicall_offers_as_its_sender_all_or_none(net: Chain) -> None:
    """Several offers in one `multicall`: each under the sender's own id, as if sent alone,
    for less gas than one by one; one refused offer reverts the whole transaction with its
    own error, and none of the others is stored."""
    fns = net.agreements.functions
    salts = [new_id() for _ in range(4)]
    terms = make_terms(net)
    receipt = net.send(fns.multicall([offer_data(net, salt, terms) for salt in salts]))
    ids = [agreement_id_of(net.employer.address, salt) for salt in salts]
    assert [state(net, i) for i in ids] == ["Offered"] * 4
    events = net.agreements.events.Offered().process_receipt(receipt, errors=DISCARD)
    assert [bytes(e["args"]["agreementId"]) for e in events] == ids
    alone = net.send(
        fns.offer(
            new_id(), terms.as_tuple(), [(k, terms.start_date - 86400, 0) for k, _, _ in MILESTONES]
        )
    )["gasUsed"]
    # the 21,000 of a transaction paid once, less what the multicall adds per call
    assert receipt["gasUsed"] < 4 * alone - 40_000

    good, refused = new_id(), replace(terms, liquidated_damages=terms.monthly_salary)
    name, _ = revert_of(
        fns.multicall([offer_data(net, good, terms), offer_data(net, new_id(), refused)]),
        sender=net.employer.address,
    )
    assert name == "DamagesAboveCap"
    # from a stranger, each offer is refused as the stranger's own (not the employer's)
    name, _ = revert_of(fns.multicall([offer_data(net, good, terms)]), sender=net.stranger.address)
    assert name == "NotEmployer"
    assert state(net, agreement_id_of(net.employer.address, good)) == "None"


def test_an_id_is_the_senders_and_cannot_be_squatted(net: Chain) -> None:
    fns = net.agreements.functions
    salt = new_id()
    ours = agreement_id_of(net.employer.address, salt)
    assert bytes(fns.agreementIdOf(net.employer.address, salt).call()) == ours
    # Someone who copies our pending offer (same salt, their own address as employer) gets an
    # agreement under another id, and ours still goes through.
    theirs = offer(net, make_terms(net, employer=net.stranger.address), salt, key=STRANGER_KEY)
    assert theirs != ours and state(net, theirs) == "Offered"
    assert offer(net, make_terms(net), salt) == ours
    assert state(net, ours) == "Offered"
    assert fns.termsOf(ours).call()[0] == net.employer.address


def test_the_commitment_covers_milestones_and_grace(net: Chain) -> None:
    fns = net.agreements.functions
    terms = make_terms(net)
    agreement_id = offer(net, terms)
    signed = sign(CANDIDATE_KEY, typed(net, agreement_id, terms))
    # A signature over another grace period does not commit.
    other_grace = sign(CANDIDATE_KEY, typed(net, agreement_id, replace(terms, grace_seconds=0)))
    assert revert_of(
        fns.commit(agreement_id, CEREMONY_B, other_grace), sender=net.stranger.address
    )[0] == ("InvalidSignature")
    # While offered the employer moves only a milestone (same text hash, same start): the
    # pending signature no longer commits, in version 1 it did.
    dues = [m[1] for m in fns.milestonesOf(agreement_id).call()]
    moved = (terms.terms_hash, terms.start_date, [dues[0] - 86400, *dues[1:]])
    net.send(fns.amend(agreement_id, moved, 0, b""))
    assert revert_of(fns.commit(agreement_id, CEREMONY_B, signed), sender=net.stranger.address)[
        0
    ] == ("InvalidSignature")
    net.send(
        fns.commit(agreement_id, CEREMONY_B, sign(CANDIDATE_KEY, typed(net, agreement_id, terms)))
    )
    assert state(net, agreement_id) == "Committed"


def arrival(net: Chain, agreement_id: bytes, terms: Terms, deadline: int) -> bytes:
    typed_arrival = arrival_typed_data(
        chain_id=31337,
        registry=net.agreements.address,
        agreement_id="0x" + agreement_id.hex(),
        nonce=net.agreements.functions.nonces(terms.candidate).call(),
        deadline=deadline,
    )
    digest = net.agreements.functions.arrivalDigest(agreement_id, deadline).call()
    assert chain.typed_data_digest(typed_arrival) == bytes(digest)
    return sign(CANDIDATE_KEY, typed_arrival)


def test_an_arrived_candidate_cannot_be_declared_in_breach(net: Chain) -> None:
    fns = net.agreements.functions
    agreement_id, terms = committed(net)
    window = fns.DISPUTE_WINDOW().call()
    deadline = terms.start_date + 86400
    signature = arrival(net, agreement_id, terms, deadline)
    name, args = revert_of(fns.recordArrival(agreement_id, deadline, signature))
    assert name == "ArrivalNotOpen" and args[1] == terms.start_date - 12 * 3600
    net.travel(terms.start_date - net.now - 3600)  # the start date's morning
    forged = sign(
        STRANGER_KEY,
        arrival_typed_data(
            chain_id=31337,
            registry=net.agreements.address,
            agreement_id="0x" + agreement_id.hex(),
            nonce=fns.nonces(terms.candidate).call(),
            deadline=deadline,
        ),
    )
    assert revert_of(fns.recordArrival(agreement_id, deadline, forged))[0] == "InvalidSignature"
    receipt = net.send(fns.recordArrival(agreement_id, deadline, signature), STRANGER_KEY)
    event = net.agreements.events.ArrivalRecorded().process_receipt(receipt)[0]["args"]
    assert event["candidate"] == terms.candidate
    arrived_at, disputed = fns.arrivalOf(agreement_id).call()
    assert arrived_at > 0 and not disputed
    assert revert_of(fns.recordArrival(agreement_id, deadline, signature))[0] == (
        "ArrivalAlreadyRecorded"
    )
    # HR forgot /start: after start + grace, the breach that version 1 allowed is refused.
    net.travel(terms.grace_seconds + 7200)
    assert revert_of(fns.declareBreach(agreement_id), sender=net.stranger.address) == (
        "CandidateArrived",
        (agreement_id, arrived_at),
    )
    assert revert_of(fns.fulfilByArrival(agreement_id))[0] == "DisputeWindowOpen"
    # The employer neither confirms nor disputes: after the window anyone fulfils.
    net.travel(arrived_at + window - net.now + 60)
    assert revert_of(fns.disputeArrival(agreement_id), sender=net.employer.address)[0] == (
        "DisputeWindowClosed"
    )
    receipt = net.send(fns.fulfilByArrival(agreement_id), STRANGER_KEY)
    assert net.agreements.events.FulfilledByArrival().process_receipt(receipt, errors=DISCARD)
    assert net.agreements.events.Fulfilled().process_receipt(receipt, errors=DISCARD)
    assert state(net, agreement_id) == "Fulfilled"


def test_a_disputed_arrival_lets_the_breach_be_declared(net: Chain) -> None:
    fns = net.agreements.functions
    agreement_id, terms = committed(net)
    assert revert_of(fns.disputeArrival(agreement_id), sender=net.employer.address)[0] == (
        "NoArrival"
    )
    net.travel(terms.start_date - net.now + 60)
    deadline = net.now + 3600
    expired = arrival(net, agreement_id, terms, net.now - 1)
    assert revert_of(fns.recordArrival(agreement_id, net.now - 1, expired))[0] == (
        "SignatureExpired"
    )
    net.send(fns.recordArrival(agreement_id, deadline, arrival(net, agreement_id, terms, deadline)))
    assert revert_of(fns.disputeArrival(agreement_id), sender=net.stranger.address)[0] == (
        "NotEmployer"
    )
    receipt = net.send(fns.disputeArrival(agreement_id))
    assert net.agreements.events.ArrivalDisputed().process_receipt(receipt)
    assert fns.arrivalOf(agreement_id).call()[1] is True
    assert revert_of(fns.disputeArrival(agreement_id), sender=net.employer.address)[0] == (
        "ArrivalUnderDispute"
    )
    net.travel(terms.grace_seconds + 60)
    assert revert_of(fns.fulfilByArrival(agreement_id))[0] == "ArrivalUnderDispute"
    net.send(fns.declareBreach(agreement_id), STRANGER_KEY)
    assert state(net, agreement_id) == "Breached"
    # After a breach an arrival is no longer accepted.
    late, late_terms = committed(net)
    net.travel(late_terms.start_date + late_terms.grace_seconds - net.now + 60)
    net.send(fns.declareBreach(late), STRANGER_KEY)
    until = net.now + 3600
    assert revert_of(fns.recordArrival(late, until, arrival(net, late, late_terms, until)))[0] == (
        "InvalidState"
    )

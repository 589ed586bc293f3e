"""The contracts service layer against a fake chain and a fake evidence service, with a real
SQLite database: offer -> the candidate's signature -> a milestone -> start, amendments, the
sweeper, refusals and recovery. The states, the recorded chain operations and the outbox
messages are what is checked; no Anvil, no broker."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select

from offerseal.contracts.domain.agreements import MILESTONE_KINDS, STATES, Terms
from offerseal.contracts.domain.dates import DateChange
from offerseal.contracts.errors import (
    ChainRefusal,
    Conflict,
    InvalidSignature,
    TransactionFailed,
    ValidationFailed,
)
from offerseal.contracts.models import Agreement, AgreementAmendment, AgreementMilestone, ChainOp
from offerseal.contracts.ports import ChainCall, Mined
from offerseal.contracts.service import EmployerAddress, NewAgreement
from offerseal.contracts.service_layer import ContractsService
from offerseal.shared.auth import Principal
from offerseal.shared.chain import PreparedTx, typed_data_digest
from offerseal.shared.db import Database
from offerseal.shared.errors import Forbidden
from offerseal.shared.links import LinkSigner
from offerseal.shared.models import OutboxMessage

RELAYER = "0x" + "11" * 20
CONTRACT = "0x" + "22" * 20
CANDIDATE = "0x" + "33" * 20
OTHER = "0x" + "44" * 20
HR = Principal(key_id="k-hr", role="hr", tenant="acme")
LEGAL = Principal(key_id="k-legal", role="legal", tenant="acme")
DAY = dt.timedelta(days=1)
TRANSITION_STATES = {
    "commit": "committed",
    "confirmStart": "fulfilled",
    "declareBreach": "breached",
    "withdrawOffer": "employer_breached",
    "cancel": "cancelled",
    "expire": "expired",
    "fulfilByArrival": "fulfilled",
}


def fake_signature(address: str, digest: bytes) -> bytes:
    """A 65-byte stand-in for `address`'s ECDSA signature over `digest`."""
    one = hashlib.sha256(address.lower().encode() + digest).digest()
    return one + hashlib.sha256(one).digest() + b"\x1b"


class FakeChain:
    """The IntentAgreements contract in memory: keeps terms and states, refuses what the real
    contract would refuse that these tests need, and mines every sent transaction at once."""

    address = CONTRACT
    relayer = RELAYER

    def __init__(self) -> None:
        self.now = int(time.time())
        self.terms: dict[str, Terms] = {}
        self.schedules: dict[str, tuple[tuple[int, int], ...]] = {}
        self.states: dict[str, str] = {}
        self.arrivals: dict[str, tuple[int, bool]] = {}
        self.sent: list[ChainCall] = []
        self.refuse: dict[str, ChainRefusal] = {}  # contract function -> its custom error
        self.revert: set[str] = set()  # contract functions whose transaction reverts
        self.lose_receipt = False  # the process "dies" while waiting for the receipt
        # receipts the node no longer has although the nonce stays used (Anvil restarted from
        # its saved state keeps the effects of its last blocks, not always their receipts)
        self.forgotten: set[str] = set()
        self.poor: set[int] = set()  # monthly salaries whose offers the contract refuses
        self.bundles: list[int] = []  # how many calls each multicall sent held
        self._pending: dict[str, tuple[ChainCall, bytes]] = {}
        self._mined: dict[str, Mined] = {}
        self._calls: dict[str, ChainCall] = {}

    # -- calls
    def agreement_id(self, salt: bytes) -> str:
        return "0x" + hashlib.sha256(RELAYER.encode() + salt).hexdigest()

    def offer(
        self, salt: bytes, terms: Terms, milestones: Sequence[tuple[str, dt.datetime]]
    ) -> ChainCall:
        schedule = tuple((MILESTONE_KINDS[k], int(d.timestamp())) for k, d in milestones)
        return ChainCall("offer", (salt, terms, schedule))

    def commit(self, onchain_id: str, ceremony_hash: str, signature: bytes) -> ChainCall:
        return ChainCall("commit", (onchain_id, ceremony_hash, signature))

    def confirm_milestone(
        self, onchain_id: str, index: int, root: str, values: Sequence[str], proof: Sequence[str]
    ) -> ChainCall:
        return ChainCall("confirmMilestone", (onchain_id, index, root, tuple(values), tuple(proof)))

    def record_arrival(self, onchain_id: str, deadline: int, signature: bytes) -> ChainCall:
        return ChainCall("recordArrival", (onchain_id, deadline, signature))

    def amend(
        self,
        onchain_id: str,
        terms_hash: str,
        start: int,
        dues: Sequence[int],
        deadline: int,
        signature: bytes,
    ) -> ChainCall:
        return ChainCall("amend", (onchain_id, terms_hash, start, tuple(dues), deadline, signature))

    def transition(
        self, onchain_id: str, action: str, deadline: int = 0, signature: bytes = b""
    ) -> ChainCall:
        name = {
            "start": "confirmStart",
            "breach": "declareBreach",
            "withdraw": "withdrawOffer",
            "cancel": "cancel",
            "expire": "expire",
            "dispute_arrival": "disputeArrival",
            "fulfil_by_arrival": "fulfilByArrival",
        }[action]
        return ChainCall(name, (onchain_id, deadline, signature))

    # -- the transaction
    def simulate(self, call: ChainCall) -> None:
        for one in self._inner(call):
            if one.function in self.refuse:
                raise self.refuse[one.function]
            if one.function == "offer" and one.args and one.args[1].monthly_salary in self.poor:
                raise ChainRefusal("DamagesAboveCap", (), "refused for this offer only")

    multicall = True  # a 2.2 contract: several calls in one transaction

    def bundle(self, calls: Sequence[ChainCall]) -> ChainCall | None:
        return ChainCall("multicall", (tuple(calls),)) if self.multicall else None

    @staticmethod
    def _inner(call: ChainCall) -> tuple[ChainCall, ...]:
        return call.args[0] if call.function == "multicall" else (call,)

    def unsigned(self, call: ChainCall) -> dict[str, Any]:
        self.simulate(call)  # the estimate runs the call: it refuses as the simulation does
        ref = f"call-{len(self._calls)}"
        self._calls[ref] = call
        return {"call": ref, "maxFeePerGas": 2, "maxPriorityFeePerGas": 1}

    def _execute(self, call: ChainCall) -> None:
        onchain_id = call.args[0]
        if call.function == "offer":
            onchain_id = self.agreement_id(call.args[0])
            self.terms[onchain_id] = call.args[1]
            self.schedules[onchain_id] = call.args[2]
            self.states[onchain_id] = "offered"
        elif call.function == "recordArrival":
            self.arrivals[onchain_id] = (self.now, False)
        elif call.function == "disputeArrival":
            self.arrivals[onchain_id] = (self.arrivals[onchain_id][0], True)
        elif call.function in TRANSITION_STATES:
            self.states[onchain_id] = TRANSITION_STATES[call.function]

    # -- reading
    def chain_id(self) -> int:
        return 31337

    def chain_time(self) -> int:
        return self.now

    def block_number(self) -> int:
        return len(self._mined)

    def nonce_of(self, address: str) -> int:
        return 0

    def terms_of(self, onchain_id: str) -> Terms:
        return self.terms[onchain_id]

    def milestones_of(self, onchain_id: str) -> list[tuple[int, int]]:
        return list(self.schedules.get(onchain_id, ()))

    def state_of(self, onchain_id: str) -> str:
        return self.states.get(onchain_id, STATES[0])

    def arrival_of(self, onchain_id: str) -> tuple[int, bool]:
        return self.arrivals.get(onchain_id, (0, False))

    def version(self) -> str:
        return "2.2.0" if self.multicall else "2.1.0"

    operators: set[str] = set()  # addresses that appointed the relayer (per test instance)

    def operator_approved(self, employer: str) -> bool:
        return employer in self.operators

    def is_contract(self, address: str) -> bool:
        return False

    def signed_by(self, address: str, digest: bytes, signature: bytes) -> bool:
        return signature == fake_signature(address, digest)


class FakeNode:
    """The relayer's key on the fake chain: signs, sends (mined at once) and finds receipts."""

    signer = RELAYER

    def __init__(self, chain: FakeChain) -> None:
        self.chain = chain

    def chain_id(self) -> int:
        return self.chain.chain_id()

    def block_number(self) -> int:
        return self.chain.block_number()

    def self_transfer(self) -> dict[str, Any]:
        return {"call": None, "maxFeePerGas": 2, "maxPriorityFeePerGas": 1}

    def suggested_fees(self) -> dict[str, int]:
        return {"maxFeePerGas": 2, "maxPriorityFeePerGas": 1}

    def sign(self, fields: dict[str, Any], nonce: int) -> PreparedTx:
        raw = json.dumps({**fields, "nonce": nonce}, sort_keys=True).encode()
        tx_hash = "0x" + hashlib.sha256(raw).hexdigest()
        self.chain._pending[tx_hash] = (self.chain._calls[fields["call"]], raw)
        return PreparedTx(raw, tx_hash, nonce)

    def fields_of(self, raw: bytes) -> dict[str, Any]:
        return {k: v for k, v in json.loads(raw).items() if k != "nonce"}

    def send(self, raw: bytes) -> None:
        chain = self.chain
        tx_hash = "0x" + hashlib.sha256(raw).hexdigest()
        call, _ = chain._pending.pop(tx_hash)
        inner = chain._inner(call)
        if call.function == "multicall":
            chain.bundles.append(len(inner))
        chain.sent.extend(inner)
        ok = all(one.function not in chain.revert for one in inner)  # all or none
        if ok:
            for one in inner:
                chain._execute(one)
        chain._mined[tx_hash] = Mined(tx_hash, ok)

    def mined(self, tx_hash: str) -> Mined | None:
        if self.chain.lose_receipt:
            raise TimeoutError("the node went away")
        if tx_hash in self.chain.forgotten:
            return None
        return self.chain._mined.get(tx_hash)

    def transaction_known(self, tx_hash: str) -> bool:
        return tx_hash in self.chain._mined and tx_hash not in self.chain.forgotten

    def mined_many(self, tx_hashes: Sequence[str]) -> dict[str, Mined]:
        found = {h: self.mined(h) for h in tx_hashes}
        return {h: m for h, m in found.items() if m is not None}

    def sent_count(self, address: str, pending: bool = False) -> int:
        return len(self.chain._mined)


class FakeEvidence:
    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    def milestone_evidence(self, document_id: str, authorization: str) -> dict[str, Any]:
        self.asked.append((document_id, authorization))
        return {
            "document_id": document_id,
            "leaf": "0x" + "aa" * 32,
            "values": ["0x" + "dd" * 32, "0x" + "ee" * 32],
            "root": "0x" + "bb" * 32,
            "proof": ["0x" + "cc" * 32],
        }


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'contracts.db'}")
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture
def chain() -> FakeChain:
    return FakeChain()


@pytest.fixture
def node(chain: FakeChain) -> FakeNode:
    return FakeNode(chain)


@pytest.fixture
def contracts(db: Database, chain: FakeChain, node: FakeNode) -> ContractsService:
    return ContractsService.build(
        db,
        chain,
        LinkSigner(b"k" * 32),
        signing=node,
        public_url="https://offers.example/",
        link_ttl=3600,
    )


def new_agreement(candidate: str = CANDIDATE, **changes: Any) -> NewAgreement:
    now = dt.datetime.now(dt.UTC)
    fields: dict[str, Any] = {
        "candidate_ref": "cand-1",
        "candidate_address": candidate,
        "contact": {"email": "li@example.com", "timezone": "Asia/Shanghai"},
        "employer_name": "Acme",
        "position": "Engineer",
        "currency": "CNY",
        "monthly_salary": 3_000_000,
        "liquidated_damages": 900_000,
        "start_at": now + 60 * DAY,
        "grace_days": 3,
        "offer_expires_at": now + 7 * DAY,
        "milestones": (("resignation_submitted", now + 20 * DAY),),
        "language": "en",
        "non_compete": False,
        "project_wrap_up": False,
        "replacement_days": 0,
    }
    fields.update(changes)
    return NewAgreement(**fields)


def outbox(db: Database) -> list[dict[str, Any]]:
    with db.sessions() as session:
        rows = session.execute(select(OutboxMessage).order_by(OutboxMessage.id)).scalars()
        return [r.body for r in rows]


def message_types(db: Database) -> list[str]:
    return [m["type"] for m in outbox(db)]


def ops(db: Database) -> list[tuple[str, str]]:
    with db.sessions() as session:
        rows = session.execute(select(ChainOp).order_by(ChainOp.id)).scalars()
        return [(r.op, r.state) for r in rows]


def sign_commitment(contracts: ContractsService, agreement_id: str) -> bytes:
    typed = contracts.signatures.typed_data(HR, None, agreement_id)
    return fake_signature(CANDIDATE, typed_data_digest(typed))


def committed(contracts: ContractsService) -> dict[str, Any]:
    agreement = contracts.agreements.create(HR, new_agreement(), wait=5)
    signature = sign_commitment(contracts, agreement["id"])
    return contracts.signatures.submit_signature(HR, None, agreement["id"], signature)


def test_offer_signature_milestone_and_start(
    db: Database, chain: FakeChain, contracts: ContractsService
) -> None:
    offered = contracts.agreements.create(HR, new_agreement(), wait=5)
    assert offered["state"] == "offered" and offered["contract"] == CONTRACT
    assert offered["transaction"].startswith("0x")
    assert offered["signing_link"].startswith("https://offers.example/v1/agreements/")
    offer = chain.sent[0]
    # The id is the contract's, derived from our sender and the salt, known before sending.
    assert offer.function == "offer" and chain.agreement_id(offer.args[0]) == offered["onchain_id"]
    assert offer.args[1].employer == RELAYER and offer.args[1].candidate == CANDIDATE
    assert offer.args[1].terms_hash == offered["terms_hash"]
    assert offer.args[2][0][0] == MILESTONE_KINDS["resignation_submitted"]
    assert message_types(db) == ["agreement.offered", "risk.changed"]
    assert outbox(db)[0]["payload"]["signing_link"].startswith("https://offers.example/")

    signature = sign_commitment(contracts, offered["id"])
    signed = contracts.signatures.submit_signature(HR, None, offered["id"], signature)
    assert signed["state"] == "committed"
    # The commitment covers the ceremony's hash, frozen in the signing record with it.
    record = contracts.signing_records.signing_record(HR, None, offered["id"])
    assert record["ceremony"]["agreement"]["onchain_id"] == offered["onchain_id"]
    assert chain.sent[-1] == ChainCall(
        "commit", (offered["onchain_id"], record["ceremony_hash"], signature)
    )
    assert chain.state_of(offered["onchain_id"]) == "committed"

    evidence = FakeEvidence()
    confirmed = contracts.milestones.confirm_with_document(
        HR,
        offered["id"],
        "resignation_submitted",
        "doc-1",
        evidence=evidence,
        authorization="Bearer osk_x",
    )
    assert evidence.asked == [("doc-1", "Bearer osk_x")]
    milestone = confirmed["milestones"][0]
    assert milestone["confirmed_at"] and milestone["document_id"] == "doc-1"
    assert chain.sent[-1].function == "confirmMilestone"
    # The leaf's values go to the chain, which computes the leaf itself.
    assert chain.sent[-1].args[1:4] == (0, "0x" + "bb" * 32, ("0x" + "dd" * 32, "0x" + "ee" * 32))

    started = contracts.agreements.transition(HR, offered["id"], "start")
    assert started["state"] == "fulfilled"
    assert ops(db) == [
        ("offer", "mined"),
        ("commit", "mined"),
        ("confirm_milestone", "mined"),
        ("start", "mined"),
    ]
    types = message_types(db)
    assert [t for t in types if t != "risk.changed"] == [
        "agreement.offered",
        "agreement.committed",
        "milestone.confirmed",
        "agreement.fulfilled",
    ]
    fulfilled = outbox(db)[types.index("agreement.fulfilled")]["payload"]
    assert fulfilled["state"] == "fulfilled" and fulfilled["liquidated_damages"] == 900_000


def test_a_signature_not_the_candidates_is_refused_and_nothing_is_sent(
    db: Database, chain: FakeChain, contracts: ContractsService
) -> None:
    offered = contracts.agreements.create(HR, new_agreement(), wait=5)
    typed = contracts.signatures.typed_data(HR, None, offered["id"])
    forged = fake_signature(OTHER, typed_data_digest(typed))
    with pytest.raises(InvalidSignature, match="wrong signer"):
        contracts.signatures.submit_signature(HR, None, offered["id"], forged)
    with pytest.raises(InvalidSignature, match="malformed"):
        contracts.signatures.submit_signature(HR, None, offered["id"], b"\x01" * 64)
    assert [c.function for c in chain.sent] == ["offer"]
    assert ops(db) == [("offer", "mined")]


def test_the_signature_over_another_offer_is_named_as_such(contracts: ContractsService) -> None:
    first = contracts.agreements.create(HR, new_agreement(), wait=5)
    second = contracts.agreements.create(HR, new_agreement(), wait=5)
    signature = sign_commitment(contracts, second["id"])
    with pytest.raises(InvalidSignature, match="wrong agreement"):
        contracts.signatures.submit_signature(HR, None, first["id"], signature)


def test_another_tenants_offer_to_the_same_candidate_is_never_revealed(
    contracts: ContractsService,
) -> None:
    globex = Principal(key_id="k-globex", role="hr", tenant="globex")
    ours = contracts.agreements.create(HR, new_agreement(), wait=5)
    theirs = contracts.agreements.create(globex, new_agreement(), wait=5)
    signature = fake_signature(
        CANDIDATE, typed_data_digest(contracts.signatures.typed_data(globex, None, theirs["id"]))
    )
    with pytest.raises(InvalidSignature) as refused:
        contracts.signatures.submit_signature(HR, None, ours["id"], signature)
    assert "another agreement" not in str(refused.value)  # no hint that globex made an offer


def test_offer_dates_are_checked_before_anything_is_sent(
    db: Database, chain: FakeChain, contracts: ContractsService
) -> None:
    now = dt.datetime.now(dt.UTC)
    late = new_agreement(offer_expires_at=now + 90 * DAY)
    with pytest.raises(ValidationFailed) as exc:
        contracts.agreements.create(HR, late)
    assert exc.value.extra["errors"] == [
        {"field": "offer_expires_at", "message": "must not be after the start date"}
    ]
    assert chain.sent == [] and ops(db) == [] and outbox(db) == []


def test_a_refusal_by_the_contract_writes_nothing(
    db: Database, chain: FakeChain, contracts: ContractsService
) -> None:
    chain.refuse["offer"] = ChainRefusal("DamagesAboveCap", (1, 0), "DamagesAboveCap: too much")
    with pytest.raises(ChainRefusal) as exc:
        contracts.agreements.create(HR, new_agreement(), wait=5)
    assert exc.value.error == "DamagesAboveCap"
    with db.sessions() as session:
        assert session.execute(select(Agreement)).first() is None
    assert chain.sent == [] and ops(db) == [] and outbox(db) == []


def test_a_reverted_offer_fails_the_agreement(
    db: Database, chain: FakeChain, contracts: ContractsService
) -> None:
    chain.revert.add("offer")
    with pytest.raises(TransactionFailed):
        contracts.agreements.create(HR, new_agreement(), wait=5)
    with db.sessions() as session:
        assert [a.state for a in session.execute(select(Agreement)).scalars()] == ["failed"]
    assert ops(db) == [("offer", "failed")] and outbox(db) == []


def _offer_whose_receipt_is_lost(chain: FakeChain, contracts: ContractsService) -> str:
    """An offer mined while its process waited, then the node lost the receipt (not the nonce);
    the confirmer looks twice (its nonce used, none of its transactions in a block)."""
    chain.lose_receipt = True
    offered = contracts.agreements.create(HR, new_agreement(), wait=5)
    assert offered["state"] == "offering"
    chain.lose_receipt = False
    chain.forgotten.update(chain._mined)
    return str(offered["id"])


def test_an_offer_the_chain_holds_is_offered_though_its_receipt_was_lost(
    db: Database, chain: FakeChain, contracts: ContractsService
) -> None:
    """Anvil stopped while it mined kept a transaction's effect in its saved state without
    its block (3 restarts in 8 under load, measured): the chain holds the agreement, so it
    is offered, never failed."""
    agreement_id = _offer_whose_receipt_is_lost(chain, contracts)
    contracts.confirm()
    contracts.confirm()
    assert contracts.agreements.get(HR, agreement_id)["state"] == "offered"
    assert ops(db) == [("offer", "mined")]
    assert "agreement.offered" in message_types(db)


def test_an_offer_whose_nonce_another_transaction_took_fails(
    db: Database, chain: FakeChain, contracts: ContractsService
) -> None:
    agreement_id = _offer_whose_receipt_is_lost(chain, contracts)
    chain.states.clear()  # the nonce went to another transaction: the chain has no agreement
    contracts.confirm()
    contracts.confirm()
    assert contracts.agreements.get(HR, agreement_id)["state"] == "failed"
    assert ops(db) == [("offer", "failed")] and "agreement.offered" not in message_types(db)


def test_only_hr_and_admins_offer(db: Database, contracts: ContractsService) -> None:
    with pytest.raises(Exception, match="may not do this"):
        contracts.agreements.create(LEGAL, new_agreement(), wait=5)
    assert ops(db) == []


def test_recovery_records_a_transaction_sent_before_a_crash(
    db: Database, chain: FakeChain, contracts: ContractsService
) -> None:
    agreement = contracts.agreements.create(HR, new_agreement(), wait=5)
    chain.lose_receipt = True
    with pytest.raises(TimeoutError):
        contracts.agreements.transition(HR, agreement["id"], "withdraw")
    assert ops(db)[-1] == ("withdraw", "prepared") and contracts.pending_count() == 1
    chain.lose_receipt = False
    assert contracts.recover() == 1
    assert ops(db)[-1] == ("withdraw", "mined") and contracts.pending_count() == 0
    assert [c.function for c in chain.sent] == ["offer", "withdrawOffer"]  # never sent twice
    assert contracts.agreements.get(HR, agreement["id"])["state"] == "employer_breached"
    assert "agreement.employer_breached" in message_types(db)


def test_amending_an_offered_agreement_applies_on_chain_at_once(
    db: Database, chain: FakeChain, contracts: ContractsService
) -> None:
    agreement = contracts.agreements.create(HR, new_agreement(), wait=5)
    new_start = dt.datetime.fromisoformat(agreement["start_at"]) + 5 * DAY
    amendment = contracts.amendments.amend(HR, agreement["id"], DateChange(new_start, ()))
    assert amendment["state"] == "applied" and amendment["number"] == 1
    call = chain.sent[-1]
    assert call.function == "amend" and call.args[2] == int(new_start.timestamp())
    assert call.args[4:] == (0, b"")  # the employer alone: no candidate signature yet
    after = contracts.agreements.get(HR, agreement["id"])
    assert after["start_at"] == amendment["start_at"]
    assert after["terms_hash"] == amendment["terms_hash"] != agreement["terms_hash"]
    amended = [m for m in outbox(db) if m["type"] == "agreement.amended"]
    assert len(amended) == 1 and amended[0]["payload"]["mutual"] is False
    assert amended[0]["payload"]["signing_link"]


def test_amending_a_committed_agreement_waits_for_the_candidate(
    db: Database, chain: FakeChain, contracts: ContractsService
) -> None:
    agreement = committed(contracts)
    due = dt.datetime.fromisoformat(agreement["milestones"][0]["due_at"]) + DAY
    proposed = contracts.amendments.amend(
        HR, agreement["id"], DateChange(None, ((0, due),), reason="notice period")
    )
    assert proposed["state"] == "awaiting_signature" and proposed["signing_link"]
    assert chain.sent[-1].function == "commit"  # nothing sent yet
    assert message_types(db)[-1] == "agreement.amendment_proposed"

    unchanged = DateChange(None, ((0, due - DAY),))  # the date it has until the candidate signs
    with pytest.raises(ValidationFailed, match="nothing changes"):
        contracts.amendments.amend(HR, agreement["id"], unchanged)

    typed = contracts.amendments.amendment_typed_data(HR, None, agreement["id"], proposed["id"])
    assert typed["primaryType"] == "Amendment" and typed["message"]["dues"][0] == int(
        due.timestamp()
    )
    signature = fake_signature(CANDIDATE, typed_data_digest(typed))
    applied = contracts.amendments.submit_amendment_signature(
        HR, None, agreement["id"], proposed["id"], signature
    )
    assert applied["state"] == "applied" and applied["tx_hash"]
    assert chain.sent[-1].function == "amend" and chain.sent[-1].args[-1] == signature
    amended = [m for m in outbox(db) if m["type"] == "agreement.amended"][-1]["payload"]
    assert amended["mutual"] is True and amended["signing_link"] is None
    moved = contracts.agreements.get(HR, agreement["id"])["milestones"][0]["due_at"]
    assert dt.datetime.fromisoformat(moved) == due
    with db.sessions() as session:
        states = [r.state for r in session.execute(select(AgreementAmendment)).scalars()]
    assert states == ["applied"]


def test_a_newer_proposal_supersedes_and_the_end_voids(
    db: Database, chain: FakeChain, contracts: ContractsService
) -> None:
    agreement = committed(contracts)
    start = dt.datetime.fromisoformat(agreement["start_at"])
    first = contracts.amendments.amend(HR, agreement["id"], DateChange(start + DAY, ()))
    second = contracts.amendments.amend(HR, agreement["id"], DateChange(start + 2 * DAY, ()))
    assert contracts.amendments.amendment(HR, agreement["id"], first["id"])["state"] == (
        "superseded"
    )
    contracts.agreements.transition(HR, agreement["id"], "start")
    assert contracts.amendments.amendment(HR, agreement["id"], second["id"])["state"] == "void"
    with pytest.raises(ChainRefusal, match="only offered or committed"):
        contracts.amendments.amend(HR, agreement["id"], DateChange(start + 3 * DAY, ()))


def test_the_sweeper_expires_offers_and_flags_overdue_milestones(
    db: Database, chain: FakeChain, contracts: ContractsService
) -> None:
    now = dt.datetime.now(dt.UTC)
    offered = contracts.agreements.create(HR, new_agreement(), wait=5)
    signed = committed(contracts)
    chain.now = int((now + 21 * DAY).timestamp())  # past the expiry and the milestone's due
    assert contracts.sweep() == {
        "breached": 0,
        "expired": 1,
        "fulfilled": 0,
        "overdue": 1,
        "breach_due": 0,
    }
    assert contracts.agreements.get(HR, offered["id"])["state"] == "expired"
    after = contracts.agreements.get(HR, signed["id"])
    assert after["state"] == "committed" and after["milestones"][0]["overdue"] is True
    assert after["risk"]["level"] != "blue"
    assert "milestone.overdue" in message_types(db) and "agreement.expired" in message_types(db)
    assert contracts.sweep() == dict.fromkeys(
        ("breached", "expired", "fulfilled", "overdue", "breach_due"), 0
    )


def test_a_sweep_reads_only_the_agreements_whose_dates_may_have_come(
    chain: FakeChain, contracts: ContractsService
) -> None:
    """Issue 27: each sweep loaded every committed agreement and every open milestone ever
    signed, so its work and the memory it took grew with the history (the service's RSS
    climbed without end under steady load). Dates weeks away are not read at all; once due,
    the same rows are found."""
    now = dt.datetime.now(dt.UTC)
    for _ in range(5):
        committed(contracts)  # starts in 60 days, a milestone due in 20
    contracts.agreements.create(HR, new_agreement(), wait=5)  # offer expires in 7 days
    loaded: list[str] = []

    def on_load(target: Any, _context: Any) -> None:
        loaded.append(type(target).__name__)

    event.listen(Agreement, "load", on_load)
    event.listen(AgreementMilestone, "load", on_load)
    try:
        assert contracts.sweep() == dict.fromkeys(
            ("breached", "expired", "fulfilled", "overdue", "breach_due"), 0
        )
        assert loaded == []
        chain.now = int((now + 21 * DAY).timestamp())  # the offer expired, milestones overdue
        swept = contracts.sweep()
    finally:
        event.remove(Agreement, "load", on_load)
        event.remove(AgreementMilestone, "load", on_load)
    assert swept["expired"] == 1 and swept["overdue"] == 5 and swept["breach_due"] == 0


def test_employer_is_the_relayer_until_the_chain_approves_another(
    contracts: ContractsService,
) -> None:
    admin = Principal(key_id="k-admin", role="admin", tenant="acme")
    employer = contracts.agreements.employer(admin)
    assert employer == EmployerAddress(
        address=RELAYER,
        source="relayer",
        relayer=RELAYER,
        contract=CONTRACT,
        operator_approved=True,
    )
    agreements = contracts.agreements
    with pytest.raises(ValidationFailed, match="EmployerBinding"):
        agreements.set_employer(admin, OTHER)  # no proof that acme controls the address

    deadline = int(time.time()) + 600
    typed = agreements.employer_binding(admin, OTHER, deadline)
    assert typed["message"] == {
        "tenant": "acme",
        "employer": OTHER,
        "relayer": RELAYER,
        "deadline": deadline,
    }
    digest = typed_data_digest(typed)
    with pytest.raises(ValidationFailed, match="signature"):  # signed by someone else
        agreements.set_employer(admin, OTHER, fake_signature(RELAYER, digest), deadline)
    with pytest.raises(ValidationFailed, match="expired"):
        agreements.set_employer(admin, OTHER, fake_signature(OTHER, digest), 1)
    with pytest.raises(Conflict, match=r"setOperator\(0x1111"):
        agreements.set_employer(admin, OTHER, fake_signature(OTHER, digest), deadline)

    chain = agreements.chain
    chain.operators = {OTHER}  # type: ignore[attr-defined]
    bound = agreements.set_employer(admin, OTHER, fake_signature(OTHER, digest), deadline)
    assert bound.address == OTHER and bound.source == "tenant"

    # globex cannot take acme's address, even with a binding the address signed for globex
    globex = Principal(key_id="k-globex", role="admin", tenant="globex")
    theirs = typed_data_digest(agreements.employer_binding(globex, OTHER, deadline))
    with pytest.raises(Conflict, match="another tenant"):
        agreements.set_employer(globex, OTHER, fake_signature(OTHER, theirs), deadline)
    assert agreements.employer(globex).address == RELAYER
    # a binding acme's address signed cannot be replayed by globex either
    with pytest.raises(ValidationFailed, match="signature"):
        agreements.set_employer(globex, OTHER, fake_signature(OTHER, digest), deadline)


def sign_arrival(contracts: ContractsService, agreement_id: str) -> tuple[int, bytes]:
    typed = contracts.arrivals.typed_data(HR, None, agreement_id)
    deadline = int(typed["message"]["deadline"])
    return deadline, fake_signature(CANDIDATE, typed_data_digest(typed))


def test_an_arrived_candidate_is_fulfilled_by_the_sweeper_never_breached(
    db: Database, chain: FakeChain, contracts: ContractsService
) -> None:
    agreement = committed(contracts)
    start = int(dt.datetime.fromisoformat(agreement["start_at"]).timestamp())
    deadline, signature = sign_arrival(contracts, agreement["id"])
    with pytest.raises(ChainRefusal):  # weeks before the start date
        contracts.arrivals.submit(HR, None, agreement["id"], deadline, signature)
    chain.now = start - 3600
    deadline, signature = sign_arrival(contracts, agreement["id"])
    with pytest.raises(InvalidSignature):
        contracts.arrivals.submit(HR, None, agreement["id"], deadline, signature[::-1])
    arrived = contracts.arrivals.submit(HR, None, agreement["id"], deadline, signature)
    assert arrived["arrival"]["arrived_at"] and chain.sent[-1].function == "recordArrival"
    # HR forgot /start: past start + grace the sweeper does not even try a breach.
    chain.now = start + 4 * 86400
    assert contracts.sweep()["breached"] == 0
    assert "declareBreach" not in [c.function for c in chain.sent]
    # After the dispute window anyone may fulfil; the sweeper does.
    chain.now = start + 9 * 86400
    assert contracts.sweep()["fulfilled"] == 1
    assert chain.sent[-1].function == "fulfilByArrival"
    assert contracts.agreements.get(HR, agreement["id"])["state"] == "fulfilled"
    assert "agreement.fulfilled" in message_types(db)


def test_a_disputed_arrival_is_breached_by_the_sweeper(
    db: Database, chain: FakeChain, contracts: ContractsService
) -> None:
    agreement = committed(contracts)
    start = int(dt.datetime.fromisoformat(agreement["start_at"]).timestamp())
    chain.now = start
    contracts.arrivals.submit(HR, None, agreement["id"], *sign_arrival(contracts, agreement["id"]))
    with pytest.raises(Forbidden):  # legal reads, never disputes
        contracts.arrivals.dispute(LEGAL, agreement["id"])
    disputed = contracts.arrivals.dispute(HR, agreement["id"])
    assert disputed["arrival"]["disputed_at"] and chain.sent[-1].function == "disputeArrival"
    [disputed_message] = [m for m in outbox(db) if m["type"] == "agreement.arrival_disputed"]
    assert disputed_message["payload"]["agreement_id"] == agreement["id"]
    declarable = dt.datetime.fromisoformat(disputed_message["payload"]["declarable_at"])
    assert declarable == dt.datetime.fromisoformat(agreement["start_at"]) + 3 * DAY
    chain.now = start + 4 * 86400
    assert contracts.sweep()["breached"] == 1
    assert contracts.agreements.get(HR, agreement["id"])["state"] == "breached"


def test_a_breach_coming_due_is_announced_once_per_breach_date(
    db: Database, chain: FakeChain, contracts: ContractsService
) -> None:
    """Within the lead (two days by default) before start plus grace, with no arrival standing,
    `agreement.breach_due` is published once; an amendment moving the start makes it due anew;
    a recorded, undisputed arrival never is."""
    agreement, arrived = committed(contracts), committed(contracts)
    start = int(dt.datetime.fromisoformat(agreement["start_at"]).timestamp())
    declarable = start + 3 * 86400  # grace of three days

    def due() -> list[dict[str, Any]]:
        return [m["payload"] for m in outbox(db) if m["type"] == "agreement.breach_due"]

    chain.now = declarable - 2 * 86400 - 60  # not yet within the lead
    assert contracts.sweep()["breach_due"] == 0
    chain.now = start
    contracts.arrivals.submit(HR, None, arrived["id"], *sign_arrival(contracts, arrived["id"]))
    chain.now = declarable - 2 * 86400 + 60
    assert contracts.sweep()["breach_due"] == 1
    assert contracts.sweep()["breach_due"] == 0  # once
    [payload] = due()
    assert payload["agreement_id"] == agreement["id"] and payload["automatic"] is True
    assert dt.datetime.fromisoformat(payload["declarable_at"]) == (
        dt.datetime.fromisoformat(agreement["start_at"]) + 3 * DAY
    )
    assert payload["liquidated_damages"] == agreement["liquidated_damages"]
    # An amendment moved the start by a week: the new breach date is announced when near.
    with db.transaction() as session:
        row = session.get(Agreement, agreement["id"])
        assert row is not None
        row.start_at = row.start_at + 7 * DAY
    assert contracts.sweep()["breach_due"] == 0
    chain.now = declarable + 7 * 86400 - 2 * 86400 + 60
    assert contracts.sweep()["breach_due"] == 1
    assert [p["agreement_id"] for p in due()] == [agreement["id"]] * 2


def test_after_someone_else_moved_the_agreement_the_database_follows_the_chain(
    db: Database, chain: FakeChain, contracts: ContractsService
) -> None:
    now = dt.datetime.now(dt.UTC)
    offered = contracts.agreements.create(HR, new_agreement(), wait=5)
    # A third party called expire() directly: our expire is refused by the chain.
    chain.states[offered["onchain_id"]] = "expired"
    chain.refuse["expire"] = ChainRefusal("InvalidState", (), "the agreement is expired on chain")
    chain.now = int((now + 8 * DAY).timestamp())
    assert contracts.sweep()["expired"] == 0
    current = contracts.agreements.get(HR, offered["id"])
    assert current["state"] == "expired"
    expired = [m for m in outbox(db) if m["type"] == "agreement.expired"]
    assert expired and expired[0]["payload"]["tx_hash"] is None
    sent = len(chain.sent)
    assert contracts.sweep() == dict.fromkeys(
        ("breached", "expired", "fulfilled", "overdue", "breach_due"), 0
    )
    assert len(chain.sent) == sent  # nothing tried again

    # A committed agreement whose arrival was relayed by someone else: the refused breach
    # records the arrival, and the sweeper stops trying.
    chain.now = int(now.timestamp())
    agreement = committed(contracts)
    start = int(dt.datetime.fromisoformat(agreement["start_at"]).timestamp())
    chain.arrivals[agreement["onchain_id"]] = (start, False)
    chain.refuse["declareBreach"] = ChainRefusal("CandidateArrived", (), "arrived")
    chain.now = start + 4 * 86400
    contracts.sweep()
    assert contracts.agreements.get(HR, agreement["id"])["arrival"]["arrived_at"]
    del chain.refuse["declareBreach"]
    contracts.sweep()
    assert "declareBreach" not in [c.function for c in chain.sent]


def test_a_1x_deployment_is_refused_with_what_to_do() -> None:
    from offerseal.contracts.app import require_supported
    from offerseal.shared.deployments import ContractMissing

    require_supported("2.1.0", CONTRACT, 31337)
    with pytest.raises(ContractMissing):  # no passkeys, no candidates bound after the offer
        require_supported("2.0.0", CONTRACT, 31337)
    with pytest.raises(ContractMissing) as refused:
        require_supported("1.1.0", CONTRACT, 31337)
    assert "OFFERSEAL_AGREEMENTS_ADDRESS" in str(refused.value) and "1.1.0" in str(refused.value)


def test_a_signature_whose_commit_reverts_is_not_answered_as_accepted(
    db: Database, chain: FakeChain, contracts: ContractsService
) -> None:
    # Two offers to one candidate signed at once: both commitments carry the candidate's
    # nonce, both simulate, the second reverts in its block. Its signature must not look
    # accepted (make chaos saw 200s for agreements left offered).
    offered = contracts.agreements.create(HR, new_agreement(), wait=5)
    signature = sign_commitment(contracts, offered["id"])
    chain.revert.add("commit")
    with pytest.raises(TransactionFailed, match="sign it anew"):
        contracts.signatures.submit_signature(HR, None, offered["id"], signature)
    assert contracts.agreements.get(HR, offered["id"])["state"] == "offered"
    assert ops(db)[-1] == ("commit", "failed")

"""Contracts service layer: agreements from offer to fulfilment or breach, independent of HTTP.

Every chain transition follows one path (`_transact`): simulate the call (a refusal is the
contract's own custom error, answered 409, and nothing is written), store the signed
transaction, send it, wait for the receipt, then record its effect with the outbox messages in
one database transaction. A crash between sending and recording is finished by `recover()`:
the stored transaction is looked up on chain, never sent twice.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any
from zoneinfo import ZoneInfo

from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from web3 import Web3

from ..shared import failpoints, messages
from ..shared.auth import READ_ROLES, WRITE_ROLES, Principal
from ..shared.broker import enqueue
from ..shared.chain import typed_data_digest
from ..shared.db import Database
from ..shared.links import Link, LinkSigner
from ..shared.locks import ExclusiveLock
from ..shared.models import aware, iso, utcnow
from .chainops import AgreementsClient
from .domain import risk as risk_rules
from .domain.agreements import (
    MILESTONE_KINDS,
    Terms,
    amendment_typed_data,
    cancellation_typed_data,
    commitment_typed_data,
    damages_cap,
)
from .domain.templates import AgreementText, render, terms_hash
from .errors import (
    AgreementNotFound,
    ChainRefusal,
    Conflict,
    InvalidSignature,
    TransactionFailed,
    ValidationFailed,
)
from .models import (
    Agreement,
    AgreementAmendment,
    AgreementMilestone,
    AgreementSignal,
    ChainOp,
    TenantEmployer,
)

log = logging.getLogger(__name__)

SIGN_PURPOSE = "sign"
AMEND_PURPOSE = "amend"
AMENDMENT_TTL = 7 * 86400  # how long a proposed amendment can be signed

# The state an operation leads to, and the message announcing it.
TRANSITIONS = {
    "commit": "committed",
    "start": "fulfilled",
    "breach": "breached",
    "withdraw": "employer_breached",
    "cancel": "cancelled",
    "expire": "expired",
}


@dataclass(frozen=True)
class DateChange:
    """New dates HR asks for: the start, and milestones by index."""

    start_at: dt.datetime | None
    milestones: tuple[tuple[int, dt.datetime], ...]
    reason: str | None = None


@dataclass(frozen=True)
class NewAgreement:
    candidate_ref: str
    candidate_address: str
    contact: dict[str, Any]
    employer_name: str
    position: str
    currency: str
    monthly_salary: int
    liquidated_damages: int
    start_at: dt.datetime
    grace_days: int
    offer_expires_at: dt.datetime
    milestones: tuple[tuple[str, dt.datetime], ...]
    language: str
    non_compete: bool
    project_wrap_up: bool
    replacement_days: int


def agreement_text(
    language: str,
    tz: ZoneInfo,
    *,
    employer_name: str,
    position: str,
    currency: str,
    monthly_salary: int,
    liquidated_damages: int,
    grace_days: int,
    offer_expires_at: dt.datetime,
    start_at: dt.datetime,
    milestones: tuple[tuple[str, dt.datetime], ...],
) -> str:
    """The text the candidate reads (its sha256 goes on chain), dates in their time zone."""
    return render(
        language,
        AgreementText(
            employer_name=employer_name,
            position=position,
            currency=currency,
            monthly_salary=monthly_salary,
            liquidated_damages=liquidated_damages,
            cap=damages_cap(monthly_salary),
            start=start_at.astimezone(tz),
            grace_days=grace_days,
            offer_expires_at=offer_expires_at.astimezone(tz),
            breach_declarable_after=(start_at + dt.timedelta(days=grace_days)).astimezone(tz),
            milestones=tuple((kind, due.astimezone(tz)) for kind, due in milestones),
        ),
    )


class AgreementService:
    def __init__(
        self,
        db: Database,
        client: AgreementsClient,
        signer: LocalAccount,
        links: LinkSigner,
        *,
        public_url: str,
        link_ttl: float,
    ) -> None:
        self.db = db
        self.client = client
        self.signer = signer
        self.links = links
        self.public_url = public_url.rstrip("/")
        self.link_ttl = link_ttl
        self._local_lock = threading.Lock()

    # ---- the one path for chain transitions ----------------------------------------------

    @contextmanager
    def _writer(self) -> Iterator[None]:
        """One sender per signer key, across threads and processes: nonces never collide."""
        with self._local_lock:
            lock = ExclusiveLock(self.db, f"tx:{self.signer.address}")
            while not lock.try_acquire():
                time.sleep(0.05)
            try:
                yield
            finally:
                lock.release()

    def _transact(
        self,
        agreement_id: str,
        op: str,
        fn: Any,
        args: dict[str, Any] | None = None,
        before: Callable[[Session], None] | None = None,
    ) -> Any:
        self.client.simulate(fn, self.signer.address)
        with self._writer():
            nonce = self.client.w3.eth.get_transaction_count(self.signer.address, "pending")
            prepared = self.client.prepare(fn, self.signer, nonce)
            with self.db.transaction() as session:
                if before is not None:
                    before(session)
                row = ChainOp(
                    agreement_id=agreement_id,
                    op=op,
                    args=args or {},
                    signer=self.signer.address,
                    nonce=nonce,
                    tx_hash=prepared.tx_hash,
                    raw_tx=prepared.raw,
                )
                session.add(row)
                session.flush()
                op_id = row.id
            failpoints.hit("contracts.before_send")
            self.client.send_raw(prepared.raw)
        failpoints.hit("contracts.after_send")
        receipt = self.client.wait(prepared.tx_hash)
        failpoints.hit("contracts.after_receipt")
        self._finish(op_id, receipt)
        return receipt

    def _finish(self, op_id: int, receipt: Any) -> None:
        with self.db.transaction() as session:
            op = session.get(ChainOp, op_id)
            assert op is not None
            if op.state != "prepared":
                return
            agreement = session.get(Agreement, op.agreement_id)
            assert agreement is not None
            op.finished_at = utcnow()
            if receipt["status"] != 1:
                op.state = "failed"
                op.error = "reverted"
                if op.op == "offer":
                    agreement.state = "failed"
                if op.op == "amend":
                    amendment = session.get(AgreementAmendment, op.args["amendment_id"])
                    if amendment is not None and amendment.state == "pending":
                        # Only the employer's own amendment fails with its transaction; a
                        # candidate's signature relayed twice leaves the first one applied.
                        amendment.state = "failed"
                log.error("%s for agreement %s reverted (%s)", op.op, agreement.id, op.tx_hash)
                return
            op.state = "mined"
            self._apply(session, agreement, op)

    def _apply(self, session: Session, agreement: Agreement, op: ChainOp) -> None:
        agreement.updated_at = utcnow()
        if op.op == "offer":
            agreement.state = "offered"
            enqueue(
                session,
                [
                    messages.build(
                        messages.AGREEMENT_OFFERED,
                        agreement.tenant,
                        self._offered_payload(session, agreement),
                    )
                ],
            )
        elif op.op == "confirm_milestone":
            milestone = session.get(AgreementMilestone, (agreement.id, int(op.args["index"])))
            assert milestone is not None
            milestone.confirmed_at = utcnow()
            milestone.tx_hash = op.tx_hash
            milestone.document_id = op.args.get("document_id")
            milestone.leaf, milestone.root = op.args["leaf"], op.args["root"]
            milestone.proof = op.args["proof"]
            self._announce(session, messages.MILESTONE_CONFIRMED, agreement, milestone)
        elif op.op == "amend":
            self._apply_amendment(session, agreement, op)
        else:
            state = TRANSITIONS[op.op]
            agreement.state = state
            if state != "committed":
                self._supersede(session, agreement.id, state="void")
            enqueue(
                session,
                [
                    messages.build(
                        messages.AGREEMENT_STATES[state],
                        agreement.tenant,
                        {
                            "agreement_id": agreement.id,
                            "onchain_id": agreement.onchain_id,
                            "candidate_ref": agreement.candidate_ref,
                            "state": state,
                            "tx_hash": op.tx_hash,
                            "liquidated_damages": agreement.liquidated_damages,
                            "currency": agreement.currency,
                            "start_at": aware(agreement.start_at),
                        },
                    )
                ],
            )
        self._refresh_risk(session, agreement)

    @staticmethod
    def _announce(
        session: Session,
        message_type: messages.MessageType,
        agreement: Agreement,
        milestone: AgreementMilestone,
    ) -> None:
        enqueue(
            session,
            [
                messages.build(
                    message_type,
                    agreement.tenant,
                    {
                        "agreement_id": agreement.id,
                        "candidate_ref": agreement.candidate_ref,
                        "index": milestone.idx,
                        "kind": milestone.kind,
                        "due_at": aware(milestone.due_at),
                        "document_id": milestone.document_id,
                        "tx_hash": milestone.tx_hash,
                    },
                )
            ],
        )

    def recover(self) -> int:
        """Finish operations a previous process prepared (and maybe sent) but did not record."""
        with self.db.sessions() as session:
            ops = (
                session.execute(
                    select(ChainOp).where(ChainOp.state == "prepared").order_by(ChainOp.id)
                )
                .scalars()
                .all()
            )
        for op in ops:
            receipt = self.client.receipt(op.tx_hash)
            if receipt is None and not self.client.transaction_known(op.tx_hash):
                latest = self.client.w3.eth.get_transaction_count(
                    Web3.to_checksum_address(op.signer), "latest"
                )
                if latest != op.nonce:
                    self._abandon(op.id, "the transaction was dropped and its nonce reused")
                    continue
                log.info("re-sending the stored transaction of %s %s", op.op, op.tx_hash)
                self.client.send_raw(op.raw_tx)
            log.info("recovering %s for agreement %s (%s)", op.op, op.agreement_id, op.tx_hash)
            self._finish(op.id, receipt or self.client.wait(op.tx_hash))
        return len(ops)

    def _abandon(self, op_id: int, reason: str) -> None:
        with self.db.transaction() as session:
            op = session.get(ChainOp, op_id)
            assert op is not None
            op.state, op.error, op.finished_at = "failed", reason, utcnow()
            agreement = session.get(Agreement, op.agreement_id)
            if agreement is not None and op.op == "offer":
                agreement.state = "failed"

    # ---- creation -------------------------------------------------------------------------

    def create(self, principal: Principal, new: NewAgreement) -> dict[str, Any]:
        principal.require(*WRITE_ROLES)
        # Stored in UTC (SQLite keeps no offsets); shown in the candidate's zone in the text.
        new = replace(
            new,
            start_at=new.start_at.astimezone(dt.UTC),
            offer_expires_at=new.offer_expires_at.astimezone(dt.UTC),
            milestones=tuple((k, d.astimezone(dt.UTC)) for k, d in new.milestones),
        )
        agreement_id = str(uuid.uuid4())
        onchain_id = "0x" + os.urandom(32).hex()  # random: reveals nothing about anyone
        grace = dt.timedelta(days=new.grace_days)
        text = agreement_text(
            new.language,
            ZoneInfo(new.contact.get("timezone") or "UTC"),
            employer_name=new.employer_name,
            position=new.position,
            currency=new.currency,
            monthly_salary=new.monthly_salary,
            liquidated_damages=new.liquidated_damages,
            grace_days=new.grace_days,
            offer_expires_at=new.offer_expires_at,
            start_at=new.start_at,
            milestones=new.milestones,
        )
        employer = self._employer_of(principal.tenant)
        terms = Terms(
            employer=employer,
            candidate=new.candidate_address,
            terms_hash=terms_hash(text),
            start_date=int(new.start_at.timestamp()),
            grace_seconds=int(grace.total_seconds()),
            offer_expires_at=int(new.offer_expires_at.timestamp()),
            monthly_salary=new.monthly_salary,
            liquidated_damages=new.liquidated_damages,
        )
        milestones = [
            (MILESTONE_KINDS[kind], int(due.timestamp()), 0) for kind, due in new.milestones
        ]
        fn = self.client.functions.offer(
            bytes.fromhex(onchain_id[2:]), terms.as_tuple(), milestones
        )

        def insert(session: Session) -> None:
            session.add(
                Agreement(
                    id=agreement_id,
                    tenant=principal.tenant,
                    onchain_id=onchain_id,
                    candidate_ref=new.candidate_ref,
                    candidate_address=new.candidate_address,
                    contact=new.contact,
                    employer_name=new.employer_name,
                    employer_address=employer,
                    position=new.position,
                    currency=new.currency,
                    monthly_salary=new.monthly_salary,
                    liquidated_damages=new.liquidated_damages,
                    start_at=new.start_at,
                    grace_days=new.grace_days,
                    offer_expires_at=new.offer_expires_at,
                    language=new.language,
                    terms_text=text,
                    terms_hash=terms.terms_hash,
                    non_compete=new.non_compete,
                    project_wrap_up=new.project_wrap_up,
                    replacement_days=new.replacement_days,
                    state="offering",
                    created_by=principal.key_id,
                )
            )
            session.flush()
            for idx, (kind, due) in enumerate(new.milestones):
                session.add(
                    AgreementMilestone(agreement_id=agreement_id, idx=idx, kind=kind, due_at=due)
                )

        receipt = self._transact(agreement_id, "offer", fn, before=insert)
        if receipt["status"] != 1:
            raise TransactionFailed("the offer transaction reverted")
        out = self.get(principal, agreement_id)
        out["transaction"] = receipt["transactionHash"].to_0x_hex()
        with self.db.sessions() as session:  # for HR systems that deliver the link themselves
            out["signing_link"] = self.signing_link(
                self._load(session, principal.tenant, agreement_id)
            )
        return out

    # ---- the employer on chain ---------------------------------------------------------------

    def _employer_of(self, tenant: str) -> str:
        with self.db.sessions() as session:
            row = session.get(TenantEmployer, tenant)
            return row.address if row is not None else self.signer.address

    def _operator_approved(self, employer: str) -> bool:
        if employer == self.signer.address:
            return True
        return bool(self.client.functions.isOperator(employer, self.signer.address).call())

    def employer(self, principal: Principal) -> dict[str, Any]:
        """Who signs as employer in new agreements, and whether the chain lets us act for it."""
        principal.require(*READ_ROLES)
        address = self._employer_of(principal.tenant)
        return {
            "address": address,
            "source": "relayer" if address == self.signer.address else "tenant",
            "relayer": self.signer.address,
            "contract": self.client.address,
            "operator_approved": self._operator_approved(address),
        }

    def set_employer(self, principal: Principal, address: str | None) -> dict[str, Any]:
        """The tenant's own address as employer. It must first appoint the relayer as its
        operator on chain (`setOperator(relayer, true)` sent from that address), so that the
        relayer can offer and confirm for it; the chain is asked before anything is stored.
        None goes back to the relayer. Existing agreements keep their employer."""
        principal.require("admin")
        if address is not None and not self._operator_approved(address):
            raise Conflict(
                f"{address} has not appointed {self.signer.address} as its operator: send "
                f"setOperator({self.signer.address}, true) from {address} to the contract "
                f"{self.client.address} first"
            )
        with self.db.transaction() as session:
            row = session.get(TenantEmployer, principal.tenant)
            if address is None:
                if row is not None:
                    session.delete(row)
            else:
                if row is None:
                    row = TenantEmployer(tenant=principal.tenant)
                    session.add(row)
                row.address, row.updated_by, row.updated_at = address, principal.key_id, utcnow()
        return self.employer(principal)

    # ---- reads ----------------------------------------------------------------------------

    def _load(self, session: Session, tenant: str, agreement_id: str) -> Agreement:
        agreement = session.get(Agreement, agreement_id)
        if agreement is None or agreement.tenant != tenant:
            raise AgreementNotFound(f"no agreement {agreement_id}")
        return agreement

    @staticmethod
    def _milestones(session: Session, agreement_id: str) -> list[AgreementMilestone]:
        return list(
            session.execute(
                select(AgreementMilestone)
                .where(AgreementMilestone.agreement_id == agreement_id)
                .order_by(AgreementMilestone.idx)
            ).scalars()
        )

    def _describe(self, session: Session, a: Agreement) -> dict[str, Any]:
        milestones = self._milestones(session, a.id)
        return {
            "id": a.id,
            "onchain_id": a.onchain_id,
            "state": a.state,
            "candidate_ref": a.candidate_ref,
            "candidate_address": a.candidate_address,
            "employer_name": a.employer_name,
            "employer_address": a.employer_address,
            "position": a.position,
            "currency": a.currency,
            "monthly_salary": a.monthly_salary,
            "liquidated_damages": a.liquidated_damages,
            "start_at": iso(a.start_at),
            "grace_days": a.grace_days,
            "offer_expires_at": iso(a.offer_expires_at),
            "language": a.language,
            "terms_hash": a.terms_hash,
            "contract": self.client.address,
            "risk": {"level": a.risk_level, "score": a.risk_score, "reasons": a.risk_reasons},
            "milestones": [
                {
                    "index": m.idx,
                    "kind": m.kind,
                    "due_at": iso(m.due_at),
                    "confirmed_at": iso(m.confirmed_at),
                    "document_id": m.document_id,
                    "tx_hash": m.tx_hash,
                    "overdue": m.overdue_notified and m.confirmed_at is None,
                }
                for m in milestones
            ],
            "created_at": iso(a.created_at),
        }

    def get(self, principal: Principal, agreement_id: str) -> dict[str, Any]:
        principal.require(*READ_ROLES)
        with self.db.sessions() as session:
            return self._describe(session, self._load(session, principal.tenant, agreement_id))

    def list_agreements(
        self,
        principal: Principal,
        state: str | None,
        risk: str | None,
        after: str | None,
        limit: int,
    ) -> tuple[list[dict[str, Any]], str | None]:
        principal.require(*READ_ROLES)
        with self.db.sessions() as session:
            query = select(Agreement).where(Agreement.tenant == principal.tenant)
            if state:
                query = query.where(Agreement.state == state)
            if risk:
                query = query.where(Agreement.risk_level == risk)
            if after:
                query = query.where(Agreement.id > after)
            rows = session.execute(query.order_by(Agreement.id).limit(limit + 1)).scalars().all()
            page = rows[:limit]
            return (
                [self._describe(session, a) for a in page],
                page[-1].id if len(rows) > limit else None,
            )

    def _reader(self, principal: Principal | None, link: Link | None, agreement_id: str) -> str:
        """The tenant a caller may read this agreement as: an API key's, or a candidate link's
        (which opens exactly one agreement)."""
        if principal is not None:
            principal.require(*READ_ROLES)
            return principal.tenant
        assert link is not None
        if link.agreement_id != agreement_id:
            raise AgreementNotFound(f"no agreement {agreement_id}")
        return link.tenant

    def terms(
        self, principal: Principal | None, link: Link | None, agreement_id: str
    ) -> tuple[str, str]:
        tenant = self._reader(principal, link, agreement_id)
        with self.db.sessions() as session:
            a = self._load(session, tenant, agreement_id)
            return a.terms_text, a.terms_hash

    def typed_data(
        self,
        principal: Principal | None,
        link: Link | None,
        agreement_id: str,
        cancellation_deadline: int | None = None,
    ) -> dict[str, Any]:
        """The Commitment to sign; or, with a deadline, the Cancellation (mutual release)."""
        tenant = self._reader(principal, link, agreement_id)
        with self.db.sessions() as session:
            a = self._load(session, tenant, agreement_id)
            if cancellation_deadline is None:
                return self._typed_data(a)
            return cancellation_typed_data(
                chain_id=int(self.client.w3.eth.chain_id),
                registry=self.client.address,
                agreement_id=a.onchain_id,
                nonce=self.client.nonce_of(a.candidate_address),
                deadline=cancellation_deadline,
            )

    def _terms_of(self, a: Agreement) -> Terms:
        """The terms as the chain holds them: what the candidate signs must match the
        contract's own digest, whatever our database says."""
        t = self.client.functions.termsOf(bytes.fromhex(a.onchain_id[2:])).call()
        return Terms(
            employer=t[0],
            candidate=t[1],
            terms_hash="0x" + bytes(t[2]).hex(),
            start_date=int(t[3]),
            grace_seconds=int(t[4]),
            offer_expires_at=int(t[5]),
            monthly_salary=int(t[6]),
            liquidated_damages=int(t[7]),
        )

    def _typed_data(self, a: Agreement) -> dict[str, Any]:
        return commitment_typed_data(
            chain_id=int(self.client.w3.eth.chain_id),
            registry=self.client.address,
            agreement_id=a.onchain_id,
            terms=self._terms_of(a),
            nonce=self.client.nonce_of(a.candidate_address),
        )

    def signing_link(self, a: Agreement) -> str:
        token = self.links.issue(
            Link(a.tenant, a.id, a.candidate_ref, SIGN_PURPOSE, int(time.time() + self.link_ttl))
        )
        return f"{self.public_url}/v1/agreements/{a.id}/typed-data?token={token}"

    def _offered_payload(self, session: Session, a: Agreement) -> dict[str, Any]:
        milestones = self._milestones(session, a.id)
        contact = dict(a.contact)
        contact.setdefault("language", a.language)
        return {
            "agreement_id": a.id,
            "onchain_id": a.onchain_id,
            "candidate_ref": a.candidate_ref,
            "candidate_contact": contact,
            "language": a.language,
            "position": a.position,
            "employer_name": a.employer_name,
            "start_at": aware(a.start_at),
            "offer_expires_at": aware(a.offer_expires_at),
            "signing_link": self.signing_link(a),
            "milestones": [{"kind": m.kind, "due_at": aware(m.due_at)} for m in milestones],
            "liquidated_damages": a.liquidated_damages,
            "currency": a.currency,
        }

    # ---- the candidate's signature ----------------------------------------------------------

    def submit_signature(
        self, principal: Principal | None, link: Link | None, agreement_id: str, signature: bytes
    ) -> dict[str, Any]:
        tenant = self._reader(principal, link, agreement_id)
        if principal is not None:
            principal.require(*WRITE_ROLES)
        with self.db.sessions() as session:
            a = self._load(session, tenant, agreement_id)
            typed = self._typed_data(a)
            onchain_id, candidate = a.onchain_id, a.candidate_address
            others = (
                session.execute(
                    select(Agreement).where(
                        Agreement.candidate_address == candidate,
                        Agreement.id != a.id,
                        Agreement.state == "offered",
                    )
                )
                .scalars()
                .all()
            )
            other_digests = [typed_data_digest(self._typed_data(o)) for o in others]
            state = a.state
        if state != "offered":
            raise ChainRefusal("InvalidState", (), f"the agreement is {state}, not offered")
        if self.client.chain_time() > typed["message"]["deadline"]:
            raise InvalidSignature("signature", "expired: the offer can no longer be signed")
        digest = typed_data_digest(typed)
        if len(signature) != 65 and not self.client.is_contract(candidate):
            raise InvalidSignature("signature", "malformed: expected 65 bytes (r, s, v)")
        if not self._signed_by(candidate, digest, signature):
            if any(self._signed_by(candidate, d, signature) for d in other_digests):
                raise InvalidSignature(
                    "signature",
                    "wrong agreement: the candidate signed another agreement's commitment",
                )
            raise InvalidSignature(
                "signature",
                "wrong signer: not the candidate's signature over this agreement's commitment",
            )
        fn = self.client.functions.commit(bytes.fromhex(onchain_id[2:]), signature)
        self._transact(agreement_id, "commit", fn)
        with self.db.sessions() as session:
            return self._describe(session, self._load(session, tenant, agreement_id))

    def _signed_by(self, candidate: str, digest: bytes, signature: bytes) -> bool:
        if len(signature) == 65:
            try:
                if Account._recover_hash(digest, signature=signature).lower() == candidate.lower():
                    return True
            except Exception:  # not a valid ECDSA signature at all
                pass
        return self.client.is_contract(candidate) and self.client.erc1271_valid(
            candidate, digest, signature
        )

    # ---- milestones -----------------------------------------------------------------------

    def confirm_milestone(
        self, principal: Principal, agreement_id: str, kind: str, evidence: dict[str, Any]
    ) -> dict[str, Any]:
        """`evidence`: the evidence service's proof bundle (already checked to belong to the
        caller's tenant by the evidence service) plus the document id."""
        principal.require(*WRITE_ROLES)
        with self.db.sessions() as session:
            a = self._load(session, principal.tenant, agreement_id)
            milestone = (
                session.execute(
                    select(AgreementMilestone)
                    .where(
                        AgreementMilestone.agreement_id == a.id,
                        AgreementMilestone.kind == kind,
                        AgreementMilestone.confirmed_at.is_(None),
                    )
                    .order_by(AgreementMilestone.idx)
                )
                .scalars()
                .first()
            )
            onchain_id = a.onchain_id
        if milestone is None:
            raise AgreementNotFound(f"agreement {agreement_id} has no unconfirmed {kind} milestone")
        self._confirm(agreement_id, onchain_id, milestone.idx, evidence)
        return self.get(principal, agreement_id)

    def _confirm(
        self, agreement_id: str, onchain_id: str, index: int, evidence: dict[str, Any]
    ) -> None:
        proof = [bytes.fromhex(p[2:]) for p in evidence["proof"]]
        fn = self.client.functions.confirmMilestone(
            bytes.fromhex(onchain_id[2:]),
            index,
            bytes.fromhex(evidence["root"][2:]),
            bytes.fromhex(evidence["leaf"][2:]),
            proof,
        )
        self._transact(
            agreement_id,
            "confirm_milestone",
            fn,
            args={
                "index": index,
                "document_id": evidence.get("document_id"),
                "root": evidence["root"],
                "leaf": evidence["leaf"],
                "proof": evidence["proof"],
            },
        )

    def on_evidence_anchored(self, session: Session, message: messages.Message) -> None:
        """Consumer: evidence tied to an agreement milestone is anchored. Recorded here; the
        worker sends the confirmation (no chain call inside a consumer's transaction)."""
        p = message.payload
        if not p.get("agreement_id") or not p.get("milestone"):
            return
        agreement = session.get(Agreement, p["agreement_id"])
        if agreement is None or agreement.tenant != message.tenant:
            log.warning("evidence for unknown agreement %s ignored", p["agreement_id"])
            return
        milestone = (
            session.execute(
                select(AgreementMilestone)
                .where(
                    AgreementMilestone.agreement_id == agreement.id,
                    AgreementMilestone.kind == p["milestone"],
                    AgreementMilestone.confirmed_at.is_(None),
                    AgreementMilestone.leaf.is_(None),
                )
                .order_by(AgreementMilestone.idx)
            )
            .scalars()
            .first()
        )
        if milestone is None:
            return
        milestone.document_id = p["document_id"]
        milestone.leaf, milestone.root, milestone.proof = p["leaf"], p["root"], p["proof"]

    def confirm_recorded_evidence(self) -> int:
        """Worker: confirm on chain the milestones whose evidence arrived by message."""
        with self.db.sessions() as session:
            rows = session.execute(
                select(
                    AgreementMilestone.agreement_id,
                    AgreementMilestone.idx,
                    AgreementMilestone.document_id,
                    AgreementMilestone.leaf,
                    AgreementMilestone.root,
                    AgreementMilestone.proof,
                    Agreement.onchain_id,
                )
                .join(Agreement, Agreement.id == AgreementMilestone.agreement_id)
                .where(
                    AgreementMilestone.leaf.is_not(None),
                    AgreementMilestone.confirmed_at.is_(None),
                    Agreement.state == "committed",
                )
            ).all()
        done = 0
        for agreement_id, idx, document_id, leaf, root, proof, onchain_id in rows:
            try:
                self._confirm(
                    agreement_id,
                    onchain_id,
                    idx,
                    {"document_id": document_id, "leaf": leaf, "root": root, "proof": proof},
                )
                done += 1
            except ChainRefusal as exc:
                log.warning("milestone %s of %s not confirmed: %s", idx, agreement_id, exc.detail)
        return done

    # ---- transitions ----------------------------------------------------------------------

    def transition(
        self,
        principal: Principal | None,
        agreement_id: str,
        action: str,
        tenant: str | None = None,
        deadline: int = 0,
        signature: bytes = b"",
    ) -> dict[str, Any]:
        """start / breach / withdraw / cancel / expire; the chain decides eligibility."""
        if principal is not None:
            principal.require(*WRITE_ROLES)
            tenant = principal.tenant
        assert tenant is not None
        with self.db.sessions() as session:
            onchain = bytes.fromhex(self._load(session, tenant, agreement_id).onchain_id[2:])
        fns = self.client.functions
        fn = {
            "start": lambda: fns.confirmStart(onchain),
            "breach": lambda: fns.declareBreach(onchain),
            "withdraw": lambda: fns.withdrawOffer(onchain),
            "cancel": lambda: fns.cancel(onchain, deadline, signature),
            "expire": lambda: fns.expire(onchain),
        }[action]()
        self._transact(agreement_id, action, fn)
        with self.db.sessions() as session:
            return self._describe(session, self._load(session, tenant, agreement_id))

    # ---- amendments: new dates ---------------------------------------------------------------

    def amend(self, principal: Principal, agreement_id: str, change: DateChange) -> dict[str, Any]:
        """New start and milestone dates with a re-issued text. Offered: applied on chain at
        once (the candidate signs the new terms when committing). Committed: proposed; the
        candidate gets a link to read and sign the `Amendment`, and nothing changes until then."""
        principal.require(*WRITE_ROLES)
        with self.db.sessions() as session:
            a = self._load(session, principal.tenant, agreement_id)
            milestones = self._milestones(session, a.id)
            number = 1 + int(
                session.execute(
                    select(func.max(AgreementAmendment.number)).where(
                        AgreementAmendment.agreement_id == a.id
                    )
                ).scalar()
                or 0
            )
        if a.state not in ("offered", "committed"):
            raise ChainRefusal(
                "InvalidState",
                (),
                f"the agreement is {a.state}; only offered or committed agreements can be amended",
            )
        old_start = aware(a.start_at)
        start = (change.start_at or old_start).astimezone(dt.UTC)
        dues = [aware(m.due_at) for m in milestones]
        for i, (index, due) in enumerate(change.milestones):
            if not 0 <= index < len(milestones):
                raise ValidationFailed(
                    f"milestones.{i}.index", f"the agreement has {len(milestones)} milestone(s)"
                )
            if milestones[index].confirmed_at is not None:
                raise ValidationFailed(
                    f"milestones.{i}.index",
                    "confirmed on chain with evidence: its date cannot change",
                )
            if due <= utcnow():
                raise ValidationFailed(f"milestones.{i}.due", "must be in the future")
            dues[index] = due.astimezone(dt.UTC)
        if change.start_at is not None and start <= utcnow():
            raise ValidationFailed("start_date", "must be in the future")
        if a.state == "offered" and start < aware(a.offer_expires_at):
            raise ValidationFailed("start_date", "must not be before the offer expires")
        for index, due in enumerate(dues):
            if due > start and milestones[index].confirmed_at is None:
                field = next(
                    (
                        f"milestones.{i}.due"
                        for i, (j, _) in enumerate(change.milestones)
                        if j == index
                    ),
                    "start_date",
                )
                raise ValidationFailed(
                    field, f"milestone {index} would be due after the start date"
                )
        if start == old_start and dues == [aware(m.due_at) for m in milestones]:
            raise ValidationFailed("start_date", "nothing changes: give new dates")
        text = agreement_text(
            a.language,
            ZoneInfo(a.contact.get("timezone") or "UTC"),
            employer_name=a.employer_name,
            position=a.position,
            currency=a.currency,
            monthly_salary=a.monthly_salary,
            liquidated_damages=a.liquidated_damages,
            grace_days=a.grace_days,
            offer_expires_at=aware(a.offer_expires_at),
            start_at=start,
            milestones=tuple((m.kind, d) for m, d in zip(milestones, dues, strict=True)),
        )
        row = AgreementAmendment(
            id=str(uuid.uuid4()),
            agreement_id=a.id,
            number=number,
            start_at=start,
            dues=[d.isoformat() for d in dues],
            terms_text=text,
            terms_hash=terms_hash(text),
            deadline=0,
            reason=change.reason,
            state="pending",
            created_by=principal.key_id,
        )
        try:
            self._record_amendment(a, row, milestones)
        except IntegrityError:  # another amendment took this number a moment ago
            raise Conflict("another amendment of this agreement was just made; retry") from None
        return self.amendment(principal, a.id, row.id)

    def _record_amendment(
        self, a: Agreement, row: AgreementAmendment, milestones: list[AgreementMilestone]
    ) -> None:
        if a.state == "offered":
            fn = self.client.functions.amend(
                bytes.fromhex(a.onchain_id[2:]), self._amendment_tuple(row), 0, b""
            )
            self._transact(
                a.id,
                "amend",
                fn,
                args={"amendment_id": row.id},
                before=lambda session: session.add(row),
            )
        else:
            row.state = "awaiting_signature"
            row.deadline = self.client.chain_time() + AMENDMENT_TTL
            with self.db.transaction() as session:
                self._supersede(session, a.id)
                session.add(row)
                session.flush()
                enqueue(
                    session,
                    [
                        messages.build(
                            messages.AGREEMENT_AMENDMENT_PROPOSED,
                            a.tenant,
                            {
                                **self._amendment_payload(a, row, milestones),
                                "signing_link": self.amendment_link(a, row),
                                "deadline": dt.datetime.fromtimestamp(row.deadline, dt.UTC),
                                "reason": row.reason,
                            },
                        )
                    ],
                )

    @staticmethod
    def _amendment_tuple(row: AgreementAmendment) -> tuple[bytes, int, list[int]]:
        return (
            bytes.fromhex(row.terms_hash[2:]),
            int(aware(row.start_at).timestamp()),
            [int(dt.datetime.fromisoformat(d).timestamp()) for d in row.dues],
        )

    @staticmethod
    def _amendment_payload(
        a: Agreement, row: AgreementAmendment, milestones: list[AgreementMilestone]
    ) -> dict[str, Any]:
        return {
            "agreement_id": a.id,
            "candidate_ref": a.candidate_ref,
            "amendment_id": row.id,
            "number": row.number,
            "start_at": aware(row.start_at),
            "milestones": [
                {"index": m.idx, "kind": m.kind, "due_at": dt.datetime.fromisoformat(d)}
                for m, d in zip(milestones, row.dues, strict=True)
            ],
        }

    @staticmethod
    def _supersede(
        session: Session, agreement_id: str, keep: str | None = None, state: str = "superseded"
    ) -> None:
        """A newer proposal (or an applied one) replaces those still awaiting a signature; an
        agreement that ended voids them."""
        for other in session.execute(
            select(AgreementAmendment).where(
                AgreementAmendment.agreement_id == agreement_id,
                AgreementAmendment.state == "awaiting_signature",
                AgreementAmendment.id != (keep or ""),
            )
        ).scalars():
            other.state = state

    def timezone_of(self, principal: Principal, agreement_id: str) -> str:
        """The candidate's time zone, in which HR's calendar dates are meant."""
        principal.require(*READ_ROLES)
        with self.db.sessions() as session:
            a = self._load(session, principal.tenant, agreement_id)
            return str(a.contact.get("timezone") or "UTC")

    def amendment_link(self, a: Agreement, row: AgreementAmendment) -> str:
        token = self.links.issue(
            Link(a.tenant, a.id, a.candidate_ref, AMEND_PURPOSE, int(row.deadline), row.id)
        )
        return (
            f"{self.public_url}/v1/agreements/{a.id}/amendments/{row.id}/typed-data?token={token}"
        )

    def _apply_amendment(self, session: Session, a: Agreement, op: ChainOp) -> None:
        row = session.get(AgreementAmendment, op.args["amendment_id"])
        assert row is not None
        mutual = row.state == "awaiting_signature"
        row.state, row.tx_hash, row.applied_at = "applied", op.tx_hash, utcnow()
        self._supersede(session, a.id, keep=row.id)
        a.start_at, a.terms_text, a.terms_hash = row.start_at, row.terms_text, row.terms_hash
        milestones = self._milestones(session, a.id)
        for m, due in zip(milestones, row.dues, strict=True):
            moved = dt.datetime.fromisoformat(due)
            if aware(m.due_at) != moved:
                m.due_at, m.overdue_notified = moved, False
        enqueue(
            session,
            [
                messages.build(
                    messages.AGREEMENT_AMENDED,
                    a.tenant,
                    {
                        **self._amendment_payload(a, row, milestones),
                        "terms_hash": row.terms_hash,
                        "tx_hash": op.tx_hash,
                        "mutual": mutual,
                        "signing_link": None if mutual else self.signing_link(a),
                    },
                )
            ],
        )

    def _amendment_reader(
        self, principal: Principal | None, link: Link | None, agreement_id: str, amendment_id: str
    ) -> str:
        if link is not None and link.subject != amendment_id:
            raise AgreementNotFound(f"no amendment {amendment_id}")
        return self._reader(principal, link, agreement_id)

    def _load_amendment(
        self, session: Session, tenant: str, agreement_id: str, amendment_id: str
    ) -> tuple[Agreement, AgreementAmendment]:
        a = self._load(session, tenant, agreement_id)
        row = session.get(AgreementAmendment, amendment_id)
        if row is None or row.agreement_id != a.id:
            raise AgreementNotFound(f"no amendment {amendment_id}")
        return a, row

    def _describe_amendment(self, row: AgreementAmendment) -> dict[str, Any]:
        return {
            "id": row.id,
            "agreement_id": row.agreement_id,
            "number": row.number,
            "state": row.state,
            "start_at": iso(row.start_at),
            "milestone_dues": list(row.dues),
            "terms_hash": row.terms_hash,
            "reason": row.reason,
            "deadline": iso(dt.datetime.fromtimestamp(row.deadline, dt.UTC))
            if row.deadline
            else None,
            "tx_hash": row.tx_hash,
            "created_at": iso(row.created_at),
            "applied_at": iso(row.applied_at),
        }

    def amendment(
        self,
        principal: Principal | None,
        agreement_id: str,
        amendment_id: str,
        link: Link | None = None,
    ) -> dict[str, Any]:
        tenant = self._amendment_reader(principal, link, agreement_id, amendment_id)
        with self.db.sessions() as session:
            a, row = self._load_amendment(session, tenant, agreement_id, amendment_id)
            out = self._describe_amendment(row)
            if row.state == "awaiting_signature" and principal is not None:
                out["signing_link"] = self.amendment_link(a, row)
            return out

    def amendments(self, principal: Principal, agreement_id: str) -> list[dict[str, Any]]:
        principal.require(*READ_ROLES)
        with self.db.sessions() as session:
            a = self._load(session, principal.tenant, agreement_id)
            rows = session.execute(
                select(AgreementAmendment)
                .where(AgreementAmendment.agreement_id == a.id)
                .order_by(AgreementAmendment.number)
            ).scalars()
            return [self._describe_amendment(r) for r in rows]

    def amendment_terms(
        self, principal: Principal | None, link: Link | None, agreement_id: str, amendment_id: str
    ) -> tuple[str, str]:
        tenant = self._amendment_reader(principal, link, agreement_id, amendment_id)
        with self.db.sessions() as session:
            _, row = self._load_amendment(session, tenant, agreement_id, amendment_id)
            return row.terms_text, row.terms_hash

    def _amendment_typed(self, a: Agreement, row: AgreementAmendment) -> dict[str, Any]:
        terms_digest, start, dues = self._amendment_tuple(row)
        return amendment_typed_data(
            chain_id=int(self.client.w3.eth.chain_id),
            registry=self.client.address,
            agreement_id=a.onchain_id,
            terms_hash="0x" + terms_digest.hex(),
            start_date=start,
            dues=dues,
            nonce=self.client.nonce_of(a.candidate_address),
            deadline=int(row.deadline),
        )

    def amendment_typed_data(
        self, principal: Principal | None, link: Link | None, agreement_id: str, amendment_id: str
    ) -> dict[str, Any]:
        tenant = self._amendment_reader(principal, link, agreement_id, amendment_id)
        with self.db.sessions() as session:
            a, row = self._load_amendment(session, tenant, agreement_id, amendment_id)
            if row.state != "awaiting_signature":
                raise Conflict(f"the amendment is {row.state}; there is nothing to sign")
            return self._amendment_typed(a, row)

    def submit_amendment_signature(
        self,
        principal: Principal | None,
        link: Link | None,
        agreement_id: str,
        amendment_id: str,
        signature: bytes,
    ) -> dict[str, Any]:
        tenant = self._amendment_reader(principal, link, agreement_id, amendment_id)
        if principal is not None:
            principal.require(*WRITE_ROLES)
        with self.db.sessions() as session:
            a, row = self._load_amendment(session, tenant, agreement_id, amendment_id)
            if row.state != "awaiting_signature":
                raise Conflict(f"the amendment is {row.state}; there is nothing to sign")
            if a.state != "committed":
                raise ChainRefusal("InvalidState", (), f"the agreement is {a.state}")
            typed = self._amendment_typed(a, row)
            candidate, onchain_id = a.candidate_address, a.onchain_id
            call_args = self._amendment_tuple(row), int(row.deadline)
        if self.client.chain_time() > typed["message"]["deadline"]:
            raise InvalidSignature("signature", "expired: this amendment can no longer be signed")
        if len(signature) != 65 and not self.client.is_contract(candidate):
            raise InvalidSignature("signature", "malformed: expected 65 bytes (r, s, v)")
        if not self._signed_by(candidate, typed_data_digest(typed), signature):
            raise InvalidSignature(
                "signature", "wrong signer: not the candidate's signature over this amendment"
            )
        fn = self.client.functions.amend(
            bytes.fromhex(onchain_id[2:]), call_args[0], call_args[1], signature
        )
        self._transact(agreement_id, "amend", fn, args={"amendment_id": amendment_id})
        with self.db.sessions() as session:
            _, row = self._load_amendment(session, tenant, agreement_id, amendment_id)
            return self._describe_amendment(row)

    # ---- risk -------------------------------------------------------------------------------

    def _signals(self, session: Session, a: Agreement) -> risk_rules.Signals:
        rows = (
            session.execute(
                select(AgreementSignal)
                .where(AgreementSignal.agreement_id == a.id)
                .order_by(AgreementSignal.id)
            )
            .scalars()
            .all()
        )
        replies = [r for r in rows if r.kind == "replied"]
        latest = replies[-1].answer if replies else None
        last_agreed = session.execute(
            select(func.max(AgreementAmendment.applied_at)).where(
                AgreementAmendment.agreement_id == a.id,
                AgreementAmendment.state == "applied",
                AgreementAmendment.deadline > 0,  # signed by the candidate (once committed)
            )
        ).scalar()
        milestones = self._milestones(session, a.id)
        overdue = sum(1 for m in milestones if m.overdue_notified and m.confirmed_at is None)
        on_time = sum(
            1
            for m in milestones
            if m.confirmed_at is not None and aware(m.confirmed_at) <= aware(m.due_at)
        )
        return risk_rules.Signals(
            non_compete=a.non_compete,
            project_wrap_up=a.project_wrap_up,
            replacement_days=a.replacement_days,
            overdue_milestones=overdue,
            milestones_on_time=on_time,
            checkins_answered=len(replies),
            checkins_missed=sum(1 for r in rows if r.kind == "missed"),
            reply_delays_hours=tuple(r.delay_hours for r in replies if r.delay_hours is not None),
            reported_delay=latest == "delayed",
            delay_agreed=latest == "delayed"
            and last_agreed is not None
            and aware(last_agreed) >= aware(replies[-1].occurred_at),
            reported_withdrawal=latest == "withdrawing",
            asked_for_help=latest == "need_help",
            documents_submitted=sum(1 for m in milestones if m.document_id),
        )

    def _refresh_risk(self, session: Session, a: Agreement) -> None:
        assessed = risk_rules.assess(self._signals(session, a))
        previous = a.risk_level
        changed = assessed.level != previous or list(assessed.reasons) != list(a.risk_reasons or [])
        a.risk_level, a.risk_score, a.risk_reasons = (
            assessed.level,
            assessed.score,
            list(assessed.reasons),
        )
        if changed and a.state not in messages.FINAL_STATES:
            enqueue(
                session,
                [
                    messages.build(
                        messages.RISK_CHANGED,
                        a.tenant,
                        {
                            "agreement_id": a.id,
                            "candidate_ref": a.candidate_ref,
                            "level": assessed.level,
                            "previous": previous,
                            "reasons": list(assessed.reasons),
                            "response": assessed.response,
                            "score": assessed.score,
                        },
                    )
                ],
            )

    def risk(self, principal: Principal, agreement_id: str) -> dict[str, Any]:
        principal.require(*READ_ROLES)
        with self.db.sessions() as session:
            a = self._load(session, principal.tenant, agreement_id)
            assessed = risk_rules.assess(self._signals(session, a))
            declarable = aware(a.start_at) + dt.timedelta(days=a.grace_days)
            return {
                "agreement_id": a.id,
                "level": assessed.level,
                "reasons": list(assessed.reasons),
                "response": assessed.response,
                "stability_score": assessed.score,
                "score_factors": list(assessed.score_factors),
                "exposure": {
                    **risk_rules.exposure(
                        liquidated_damages=a.liquidated_damages,
                        monthly_salary=a.monthly_salary,
                        cap=damages_cap(a.monthly_salary),
                        breach_declarable_after=declarable,
                    ),
                    "currency": a.currency,
                },
            }

    def on_touchpoint(self, session: Session, message: messages.Message) -> None:
        """Consumer: the candidate answered or missed a check-in; risk follows."""
        p = message.payload
        agreement = session.get(Agreement, p["agreement_id"])
        if agreement is None or agreement.tenant != message.tenant:
            log.warning("touchpoint for unknown agreement %s ignored", p["agreement_id"])
            return
        if message.type is messages.TOUCHPOINT_REPLIED:
            delay = (p["replied_at"] - p["sent_at"]).total_seconds() / 3600
            session.add(
                AgreementSignal(
                    agreement_id=agreement.id,
                    kind="replied",
                    answer=p["answer"],
                    new_date=p["new_date"].isoformat() if p.get("new_date") else None,
                    delay_hours=max(0.0, delay),
                    occurred_at=p["replied_at"],
                )
            )
        else:
            session.add(
                AgreementSignal(agreement_id=agreement.id, kind="missed", occurred_at=p["sent_at"])
            )
        session.flush()
        self._refresh_risk(session, agreement)

    # ---- the sweeper ----------------------------------------------------------------------

    def sweep(self) -> dict[str, int]:
        """Declare due breaches and expiries (the chain's clock decides) and flag overdue
        milestones, so nobody has to remember."""
        now = self.client.chain_time()
        moment = dt.datetime.fromtimestamp(now, dt.UTC)
        done = {"breached": 0, "expired": 0, "overdue": 0}
        with self.db.sessions() as session:
            due_breach = [
                (a.id, a.tenant)
                for a in session.execute(
                    select(Agreement).where(Agreement.state == "committed")
                ).scalars()
                if aware(a.start_at) + dt.timedelta(days=a.grace_days) < moment
            ]
            due_expiry = [
                (a.id, a.tenant)
                for a in session.execute(
                    select(Agreement).where(Agreement.state == "offered")
                ).scalars()
                if aware(a.offer_expires_at) < moment
            ]
        for agreement_id, tenant in due_breach:
            self._sweep_one(agreement_id, tenant, "breach", done, "breached")
        for agreement_id, tenant in due_expiry:
            self._sweep_one(agreement_id, tenant, "expire", done, "expired")
        with self.db.transaction() as session:
            rows = session.execute(
                select(AgreementMilestone, Agreement)
                .join(Agreement, Agreement.id == AgreementMilestone.agreement_id)
                .where(
                    Agreement.state == "committed",
                    AgreementMilestone.confirmed_at.is_(None),
                    AgreementMilestone.overdue_notified.is_(False),
                )
            ).all()
            for milestone, agreement in rows:
                if aware(milestone.due_at) >= moment:
                    continue
                milestone.overdue_notified = True
                self._announce(session, messages.MILESTONE_OVERDUE, agreement, milestone)
                session.flush()
                self._refresh_risk(session, agreement)
                done["overdue"] += 1
        return done

    def _sweep_one(
        self, agreement_id: str, tenant: str, action: str, done: dict[str, int], key: str
    ) -> None:
        try:
            self.transition(None, agreement_id, action, tenant=tenant)
            done[key] += 1
        except ChainRefusal as exc:  # not yet by the chain's clock, or already moved
            log.info("sweeper: %s of %s refused: %s", action, agreement_id, exc.detail)

    def pending_count(self) -> int:
        with self.db.sessions() as session:
            return int(
                session.execute(
                    select(func.count()).select_from(ChainOp).where(ChainOp.state == "prepared")
                ).scalar()
                or 0
            )

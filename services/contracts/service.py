"""Agreements: offering one (text, terms and the `offer` transaction), reading them, their
transitions (start, breach, withdraw, cancel, expire: the chain decides eligibility), and the
employer address a tenant offers from."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from dataclasses import asdict, dataclass, replace
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..shared import idempotency, revocations
from ..shared.auth import READ_ROLES, WRITE_ROLES, Principal
from ..shared.chain import typed_data_digest
from ..shared.db import Database
from ..shared.links import Link
from ..shared.models import iso, utcnow
from .domain.agreements import Terms, employer_binding_typed_data
from .domain.dates import DateRuleBroken, check_offer_dates
from .domain.templates import agreement_text, terms_hash
from .errors import Conflict, TransactionFailed, ValidationFailed
from .models import Agreement, AgreementMilestone, TenantEmployer
from .ports import AgreementsChain
from .records import CandidateLinks, describe, load, offer_transaction, reader
from .transactions import TransactionPath

BINDING_TTL = 3600  # how long a fresh EmployerBinding may be signed and submitted


ZERO_ADDRESS = "0x" + "00" * 20  # an offer whose candidate enrols later


@dataclass(frozen=True)
class EmployerAddress:
    """Who signs as employer in the tenant's new agreements."""

    address: str
    source: str  # "relayer" (ours) or "tenant" (the company's own address)
    relayer: str
    contract: str
    operator_approved: bool  # whether the chain lets the relayer act for the address


@dataclass(frozen=True)
class LinksRevoked:
    agreement_id: str
    candidate_ref: str
    revoked_at: str
    reason: str


@dataclass(frozen=True)
class NewAgreement:
    candidate_ref: str
    candidate_address: str | None  # None: bound when the candidate enrols
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


class AgreementService:
    def __init__(
        self, db: Database, chain: AgreementsChain, tx: TransactionPath, links: CandidateLinks
    ) -> None:
        self.db = db
        self.chain = chain
        self.tx = tx
        self.links = links

    # ---- creation -------------------------------------------------------------------------

    def create(
        self,
        principal: Principal,
        new: NewAgreement,
        idempotency_key: str | None = None,
        wait: float = 0.0,
    ) -> dict[str, Any]:
        """Offer `new` on chain: the agreement and its signed `offer` transaction are committed
        and sent, and the answer comes at once with the state `offering` (the confirmer moves
        it to `offered`, and the invitation goes out, when the transaction is mined). `wait`:
        seconds to wait for that first (an answer still `offering` when they run out). With an
        Idempotency-Key, a retry with the same body answers with the same agreement (no
        second offer); another body is a 409."""
        request_fp = idempotency.fingerprint("agreement", asdict(new))
        if idempotency_key is not None:
            with self.db.sessions() as session:
                earlier = idempotency.lookup(
                    session, principal.tenant, idempotency_key, request_fp, conflict=Conflict
                )
            if earlier is not None:
                return self._replay(principal, earlier.response)
        try:
            check_offer_dates(
                new.start_at,
                new.offer_expires_at,
                [due for _, due in new.milestones],
                dt.datetime.now(dt.UTC),
            )
        except DateRuleBroken as exc:
            raise ValidationFailed(exc.field, exc.message) from None
        principal.require(*WRITE_ROLES)
        # Stored in UTC (SQLite keeps no offsets); shown in the candidate's zone in the text.
        new = replace(
            new,
            start_at=new.start_at.astimezone(dt.UTC),
            offer_expires_at=new.offer_expires_at.astimezone(dt.UTC),
            milestones=tuple((k, d.astimezone(dt.UTC)) for k, d in new.milestones),
        )
        agreement_id = str(uuid.uuid4())
        # The contract derives the id from the sender (our relayer) and a random salt, so
        # nobody can take it first from the mempool; computed here before sending.
        salt = os.urandom(32)
        onchain_id = self.chain.agreement_id(salt)
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
            candidate=new.candidate_address or ZERO_ADDRESS,
            terms_hash=terms_hash(text),
            start_date=int(new.start_at.timestamp()),
            grace_seconds=int(grace.total_seconds()),
            offer_expires_at=int(new.offer_expires_at.timestamp()),
            monthly_salary=new.monthly_salary,
            liquidated_damages=new.liquidated_damages,
        )
        call = self.chain.offer(salt, terms, new.milestones)

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
            if idempotency_key is not None:  # claimed with the offer's signed transaction
                idempotency.remember(
                    session,
                    principal.tenant,
                    idempotency_key,
                    request_fp,
                    201,
                    {"id": agreement_id},
                )

        try:
            submitted = self.tx.submit(
                agreement_id, "offer", call, args={"salt": "0x" + salt.hex()}, before=insert
            )
        except IntegrityError:
            if idempotency_key is None:
                raise
            with self.db.sessions() as session:  # a concurrent twin claimed the key first
                earlier = idempotency.lookup(
                    session, principal.tenant, idempotency_key, request_fp, conflict=Conflict
                )
            if earlier is None:
                raise
            return self._replay(principal, earlier.response)
        if wait > 0:
            try:
                mined = self.tx.await_op(submitted.op_id, timeout=wait)
            except TimeoutError:
                pass  # answered as offering; the confirmer records it
            else:
                if not mined.succeeded:
                    raise TransactionFailed("the offer transaction reverted")
        out = self._answer(principal, agreement_id)
        if idempotency_key is not None:
            idempotency.answer(self.db, principal.tenant, idempotency_key, request_fp, out)
        return out

    def _answer(self, principal: Principal, agreement_id: str) -> dict[str, Any]:
        principal.require(*READ_ROLES)
        with self.db.sessions() as session:
            a = load(session, principal.tenant, agreement_id)
            out = describe(session, a, self.chain.address)
            out["chain"] = offer_transaction(session, a)
            out["transaction"] = out["chain"]["tx"]
            out["signing_link"] = self.links.signing(a)  # for HR systems that deliver it
        return out

    def _replay(self, principal: Principal, recorded: dict[str, Any]) -> dict[str, Any]:
        """The answer to a retried offer: the first answer while the agreement has not moved
        since, else the same agreement as it stands now (the offer confirmed since)."""
        now = self._answer(principal, recorded["id"])
        if recorded.get("state") == now["state"] and recorded.get("chain") == now["chain"]:
            return recorded
        return now

    # ---- the employer on chain ---------------------------------------------------------------

    def _employer_of(self, tenant: str) -> str:
        with self.db.sessions() as session:
            row = session.get(TenantEmployer, tenant)
            return row.address if row is not None else self.chain.relayer

    def _operator_approved(self, employer: str) -> bool:
        return employer == self.chain.relayer or self.chain.operator_approved(employer)

    def employer(self, principal: Principal) -> EmployerAddress:
        """Who signs as employer in new agreements, and whether the chain lets us act for it."""
        principal.require(*READ_ROLES)
        address = self._employer_of(principal.tenant)
        return EmployerAddress(
            address=address,
            source="relayer" if address == self.chain.relayer else "tenant",
            relayer=self.chain.relayer,
            contract=self.chain.address,
            operator_approved=self._operator_approved(address),
        )

    def employer_binding(
        self, principal: Principal, address: str, deadline: int | None = None
    ) -> dict[str, Any]:
        """The EIP-712 `EmployerBinding` that `address` signs to let this tenant offer in its
        name (valid for BINDING_TTL unless `deadline` is given)."""
        principal.require("admin")
        deadline = deadline or int(utcnow().timestamp()) + BINDING_TTL
        return employer_binding_typed_data(
            chain_id=self.chain.chain_id(),
            registry=self.chain.address,
            tenant=principal.tenant,
            employer=address,
            relayer=self.chain.relayer,
            deadline=deadline,
        )

    def set_employer(
        self,
        principal: Principal,
        address: str | None,
        signature: bytes | None = None,
        deadline: int | None = None,
    ) -> EmployerAddress:
        """The tenant's own address as employer. Three things must hold, checked before
        anything is stored: the address signed an `EmployerBinding` naming this tenant and the
        relayer (ECDSA, or ERC-1271 for a contract wallet), it appointed the relayer as its
        operator on chain (`setOperator(relayer, true)`), and no other tenant holds it. None
        goes back to the relayer. Existing agreements keep their employer."""
        principal.require("admin")
        relayer = self.chain.relayer
        if address is not None:
            self._check_binding(principal, address, signature, deadline)
            if not self._operator_approved(address):
                raise Conflict(
                    f"{address} has not appointed {relayer} as its operator: send "
                    f"setOperator({relayer}, true) from {address} to the contract "
                    f"{self.chain.address} first"
                )
        with self.db.transaction() as session:
            if address is not None:
                holder = session.execute(
                    select(TenantEmployer.tenant).where(
                        TenantEmployer.address == address,
                        TenantEmployer.tenant != principal.tenant,
                    )
                ).scalar_one_or_none()
                if holder is not None:
                    raise Conflict(f"{address} is already the employer address of another tenant")
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

    def _check_binding(
        self,
        principal: Principal,
        address: str,
        signature: bytes | None,
        deadline: int | None,
    ) -> None:
        if signature is None or deadline is None:
            raise ValidationFailed(
                "signature",
                "the address must sign the EmployerBinding from GET /v1/employer/binding "
                "(send `signature` and its `deadline`)",
            )
        if deadline <= int(utcnow().timestamp()):
            raise ValidationFailed("deadline", "the binding has expired; sign a new one")
        typed = employer_binding_typed_data(
            chain_id=self.chain.chain_id(),
            registry=self.chain.address,
            tenant=principal.tenant,
            employer=address,
            relayer=self.chain.relayer,
            deadline=deadline,
        )
        if not self.chain.signed_by(address, typed_data_digest(typed), signature):
            raise ValidationFailed(
                "signature", f"not {address}'s signature of this tenant's EmployerBinding"
            )

    # ---- reads ----------------------------------------------------------------------------

    def get(self, principal: Principal, agreement_id: str) -> dict[str, Any]:
        principal.require(*READ_ROLES)
        with self.db.sessions() as session:
            a = load(session, principal.tenant, agreement_id)
            out = describe(session, a, self.chain.address)
            out["chain"] = offer_transaction(session, a)
            return out

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
                [describe(session, a, self.chain.address) for a in page],
                page[-1].id if len(rows) > limit else None,
            )

    def terms(
        self, principal: Principal | None, link: Link | None, agreement_id: str
    ) -> tuple[str, str]:
        tenant = reader(principal, link, agreement_id)
        with self.db.sessions() as session:
            a = load(session, tenant, agreement_id)
            return a.terms_text, a.terms_hash

    def timezone_of(self, principal: Principal, agreement_id: str) -> str:
        """The candidate's time zone, in which HR's calendar dates are meant."""
        principal.require(*READ_ROLES)
        with self.db.sessions() as session:
            a = load(session, principal.tenant, agreement_id)
            return str(a.contact.get("timezone") or "UTC")

    # ---- links ----------------------------------------------------------------------------

    def revoke_links(self, principal: Principal, agreement_id: str, reason: str) -> LinksRevoked:
        """Withdraw every link sent so far for this agreement and its candidate (e.g. mailed to
        a wrong address); links issued afterwards work. Recorded with who and why."""
        principal.require(*WRITE_ROLES)
        with self.db.transaction() as session:
            agreement = load(session, principal.tenant, agreement_id)
            revocations.revoke(
                session,
                tenant=principal.tenant,
                agreement_id=agreement.id,
                candidate_ref=agreement.candidate_ref,
                reason=reason,
                by=principal.key_id,
            )
        return LinksRevoked(agreement_id, agreement.candidate_ref, str(iso(utcnow())), reason)

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
        """start / breach / withdraw / cancel / expire (and, for the sweeper and arrivals,
        dispute_arrival / fulfil_by_arrival); the chain decides eligibility."""
        if principal is not None:
            principal.require(*WRITE_ROLES)
            tenant = principal.tenant
        assert tenant is not None
        with self.db.sessions() as session:
            onchain_id = load(session, tenant, agreement_id).onchain_id
        call = self.chain.transition(onchain_id, action, deadline, signature)
        self.tx.transact(agreement_id, action, call)
        with self.db.sessions() as session:
            return describe(session, load(session, tenant, agreement_id), self.chain.address)

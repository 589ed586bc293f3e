"""The signing record as evidence, and the ceremony the candidate's signature covers: built
from the journal, frozen in the transaction that stores the commitment (thawed if that
transaction reverts), shown to HR, to the candidate once signed or to the browser that proved
the code, and anchored once through the evidence service."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ..shared.auth import Principal
from ..shared.db import Database
from ..shared.errors import (
    OfferSealError,
)
from ..shared.links import PURPOSE_UPLOAD, Link, LinkSigner
from ..shared.models import iso
from .contact_proof import ContactProof, NotProven
from .domain.ceremony import Ceremony, JournalEntry, build_ceremony
from .errors import AgreementNotFound
from .journal import (
    CEREMONY_SIGNED,
    Visitor,
    event,
)
from .models import (
    Agreement,
    CandidateCode,
    CandidateEvent,
    CandidateSigner,
)
from .ports import AgreementsChain, EvidenceSource
from .records import load, reader

log = logging.getLogger(__name__)
SIGNING_RECORD = "signing_record"  # the evidence document's subject (not a milestone)


class SigningRecords:
    def __init__(
        self, db: Database, chain: AgreementsChain, links: LinkSigner, proof: ContactProof
    ) -> None:
        self.db = db
        self.chain = chain
        self.links = links
        self.proof = proof

    # ---- the signing record as evidence ---------------------------------------------------

    def anchor_signing_record(
        self, link: Link, agreement_id: str, evidence: EvidenceSource
    ) -> str | None:
        """Store the signing record through the evidence service as a document of the agreement
        (intake receipt, Merkle proof, anchored root), once per agreement; the document's id.
        The evidence service being down never fails the signature: the next request of the
        record tries again."""
        reader(None, link, agreement_id)
        done = self._anchored_record(agreement_id)
        if done is not None:
            return done
        record = self._record(agreement_id)
        if record["state"] == "offered":
            return None
        token = self.links.issue(
            Link(
                link.tenant,
                agreement_id,
                link.candidate_ref,
                PURPOSE_UPLOAD,
                int(time.time()) + 3600,
                SIGNING_RECORD,
            )
        )
        content = json.dumps(record, ensure_ascii=False, indent=2, sort_keys=True).encode()
        try:
            stored = evidence.upload_through_link(
                token, f"signing-record-{agreement_id}.json", content, "application/json"
            )
        except OfferSealError as exc:
            log.warning("signing record of %s not anchored yet: %s", agreement_id, exc.detail)
            return None
        with self.db.transaction() as session:
            event(
                session,
                agreement_id,
                "record_anchored",
                {"document_id": stored["id"], "sha256": stored["sha256"]},
                Visitor(None, None),
            )
        return str(stored["id"])

    def _anchored_record(self, agreement_id: str) -> str | None:
        with self.db.sessions() as session:
            event = session.execute(
                select(CandidateEvent).where(
                    CandidateEvent.agreement_id == agreement_id,
                    CandidateEvent.kind == "record_anchored",
                )
            ).scalar_one_or_none()
            return None if event is None else str(event.detail["document_id"])

    # ---- what the portal shows -----------------------------------------------------------

    def events(self, agreement_id: str) -> list[dict[str, Any]]:
        with self.db.sessions() as session:
            rows = session.execute(
                select(CandidateEvent)
                .where(CandidateEvent.agreement_id == agreement_id)
                .order_by(CandidateEvent.created_at, CandidateEvent.id)
            ).scalars()
            return [
                {
                    "kind": e.kind,
                    "at": iso(e.created_at),
                    "detail": e.detail,
                    "ip": e.ip,
                    "user_agent": e.user_agent,
                }
                for e in rows
            ]

    # ---- the ceremony the candidate's signature covers ------------------------------------

    def ceremony(self, agreement_id: str) -> Ceremony:
        """The ceremony as it stands now: what the candidate's commitment will cover."""
        with self.db.sessions() as session:
            a = session.get(Agreement, agreement_id)
            if a is None:
                raise AgreementNotFound(f"no agreement {agreement_id}")
            signer = session.execute(
                select(CandidateSigner).where(
                    CandidateSigner.agreement_id == a.id, CandidateSigner.active.is_(True)
                )
            ).scalar_one_or_none()
            journal = [
                JournalEntry(e.kind, str(iso(e.created_at)), dict(e.detail or {}))
                for e in session.execute(
                    select(CandidateEvent)
                    .where(CandidateEvent.agreement_id == a.id)
                    .order_by(CandidateEvent.created_at, CandidateEvent.id)
                ).scalars()
            ]
            code = session.get(CandidateCode, signer.code_id) if signer is not None else None
            bound = next(
                (
                    e
                    for e in reversed(journal)
                    if e.kind == "signer_bound"
                    and signer is not None
                    and e.detail.get("code_id") == signer.code_id
                ),
                None,
            )
            signer_part: dict[str, Any] = {
                "kind": signer.kind if signer is not None else "address",
                "address": (
                    signer.address if signer is not None else a.candidate_address or ""
                ).lower(),
                "credential_id": signer.credential_id if signer is not None else None,
                "public_key": (
                    {"x": signer.public_key_x, "y": signer.public_key_y}
                    if signer is not None and signer.public_key_x
                    else None
                ),
                "bound_at": iso(signer.created_at) if signer is not None else None,
                "replaces": (bound.detail.get("replaces") or None) if bound else None,
            }
            code_part = (
                {
                    "id": code.id,
                    "channel": code.channel,
                    "destination": code.destination,
                    "destination_hash": code.destination_hash,
                    "sent_at": iso(code.created_at),
                    "verified_at": iso(code.verified_at) if code.verified_at else None,
                }
                if code is not None
                else None
            )
            return build_ceremony(
                onchain_id=a.onchain_id or "",
                chain_id=self.chain.chain_id(),
                registry=self.chain.address,
                terms_hash=a.terms_hash,
                journal=journal,
                code=code_part,
                signer=signer_part,
            )

    def freeze(self, agreement_id: str, ceremony: Ceremony) -> Callable[[Session], None]:
        """What the signature's transaction also writes: the ceremony as signed, after which
        the journal takes nothing that could change it."""

        def write(session: Session) -> None:
            event(
                session,
                agreement_id,
                CEREMONY_SIGNED,
                {"ceremony": ceremony.record, "ceremony_hash": ceremony.hash},
                Visitor(None, None),
            )

        return write

    def thaw(self, agreement_id: str) -> None:
        """The commitment's transaction reverted in its block: nothing was signed on chain,
        so the ceremony written with it is taken back and the record is open again."""
        with self.db.transaction() as session:
            a = session.get(Agreement, agreement_id)
            if a is None or a.state != "offered":
                return
            session.execute(
                delete(CandidateEvent).where(
                    CandidateEvent.agreement_id == agreement_id,
                    CandidateEvent.kind == CEREMONY_SIGNED,
                )
            )

    def signing_record(
        self,
        principal: Principal | None,
        link: Link | None,
        agreement_id: str,
        session_secret: str | None = None,
    ) -> dict[str, Any]:
        """What e-signature platforms call the evidence of intent: the terms hash, when the
        text was opened and for how long, the consent, the code check, the passkey (credential
        id, public key, flags), the addresses and browsers, the signature and its transaction;
        and the ceremony as the candidate's signature covered it (`ceremony`, whose keccak256
        is `ceremony_hash`, stored on chain by commit()). Through the link alone it is shown
        only once signed: before that, to the browser that proved the code."""
        with self.db.sessions() as session:
            a = load(session, reader(principal, link, agreement_id), agreement_id)
            if (
                principal is None
                and a.state == "offered"
                and self.proof.session_code(session, a.id, session_secret) is None
            ):
                raise NotProven("the signing record is shown to the browser that proved the code")
        return self._record(agreement_id)

    def _record(self, agreement_id: str) -> dict[str, Any]:
        with self.db.sessions() as session:
            a = session.get(Agreement, agreement_id)
            assert a is not None
            head = {
                "agreement_id": a.id,
                "onchain_id": a.onchain_id,
                "registry": self.chain.address,
                "chain_id": self.chain.chain_id(),
                "terms_hash": a.terms_hash,
                "candidate_address": a.candidate_address,
                "state": a.state,
            }
        events = [e for e in self.events(agreement_id) if e["kind"] != "record_anchored"]
        record: dict[str, Any] = {"format": "offerseal-signing-record/2", **head}
        signed = next((e for e in events if e["kind"] == CEREMONY_SIGNED), None)
        if signed is not None:
            record["ceremony"] = signed["detail"]["ceremony"]
            record["ceremony_hash"] = signed["detail"]["ceremony_hash"]
        record["events"] = [e for e in events if e["kind"] != CEREMONY_SIGNED]
        anchored = self._anchored_record(agreement_id)
        if anchored is not None:  # the evidence document holding the record as it was then
            record["evidence_document_id"] = anchored
        return record

"""The agreement dossier: one download a legal team takes to arbitration or court. It gathers
what the three services and the chain know about one agreement, lists every file in a manifest
whose hash is anchored through the evidence service, and adds a signed cover report.

Decides: what goes in, under which name, and when the dossier is ready (its manifest anchored).
The evidence and notify services are read with the caller's own credentials (`auth`), so each
decides what the tenant may see."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..shared.auth import Principal
from ..shared.db import Database
from ..shared.links import PURPOSE_RECORD, Link, LinkSigner
from ..shared.models import iso
from .amendments import describe_amendment
from .domain import dossier as d
from .errors import DossierNotFound, DossierPending
from .models import AgreementAmendment, AgreementSignal, ChainOp, RiskChange
from .ports import AgreementHistory, EvidenceArchive, NoticeLog, PageSource
from .records import describe, load
from .signing_records import SigningRecords

log = logging.getLogger(__name__)

DOSSIER_ROLES = ("legal", "admin")  # legal reads everything; HR asks legal for the package
MANIFEST_KIND = "dossier_manifest"
PROOF_NAME = "proof.json"  # an evidence document's proof bundle, beside it in its folder


def _rows(session: Session, model: Any, agreement_id: str, order: Any) -> Any:
    """The rows of `model` about one agreement, in `order`."""
    return session.execute(
        select(model).where(model.agreement_id == agreement_id).order_by(order)
    ).scalars()


@dataclass(frozen=True)
class Dossier:
    agreement_id: str
    manifest_sha256: str
    manifest_document_id: str
    content: bytes  # the ZIP

    @property
    def filename(self) -> str:
        return f"offerseal-dossier-{self.agreement_id}.zip"


@dataclass(frozen=True)
class Pending:
    """The manifest is deposited but not anchored yet: ask again shortly."""

    agreement_id: str
    manifest_sha256: str
    manifest_document_id: str


# (facts for the cover, lang) -> the signed cover PDF
CoverMaker = Callable[[dict[str, Any], str], bytes]


class Dossiers:
    def __init__(
        self,
        db: Database,
        chain: AgreementHistory,
        links: LinkSigner,
        records: SigningRecords,
        cover: CoverMaker,
        verify_url: str,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.db = db
        self.chain = chain
        self.links = links
        self.records = records
        self.cover = cover
        self.verify_url = verify_url
        self.clock = clock
        self.sleep = sleep

    def build(
        self,
        principal: Principal,
        agreement_id: str,
        auth: Mapping[str, str],
        archive: EvidenceArchive,
        notices: NoticeLog,
        pages: PageSource,
        lang: str = "zh-CN",
        wait: float = 20.0,
        create: bool = True,
    ) -> Dossier:
        """The dossier as of now; raises `DossierPending` when its manifest is not anchored
        within `wait` seconds (asking again gives the same manifest while nothing changed).
        Without `create` nothing is deposited or anchored: the dossier of the agreement as it
        stands must have been created before, else `DossierNotFound`."""
        principal.require(*DOSSIER_ROLES)
        facts, times, candidate_ref = self._facts(principal, agreement_id)
        documents = archive.documents_of(candidate_ref, agreement_id, auth)
        manifests = [doc for doc in documents if doc["kind"] == MANIFEST_KIND]
        files = self._files(facts, [doc for doc in documents if doc["kind"] != MANIFEST_KIND])
        files += self._evidence(
            [doc for doc in documents if doc["kind"] != MANIFEST_KIND], auth, archive
        )
        touchpoints = notices.touchpoints(candidate_ref, agreement_id, auth)
        files.append(
            d.json_file(
                "notices/touchpoints.json",
                "Proof of notice: every message planned, sent or answered (channel, time, "
                "Message-ID, the server's answer, the candidate's answer)",
                touchpoints,
            )
        )
        files.append(
            d.DossierFile(
                "README.txt",
                d.readme(agreement_id, self.verify_url).encode(),
                "How to read and verify this dossier (en, zh-CN)",
            )
        )
        # The saved verify page in both languages (the same files whatever the cover's
        # language, so the manifest depends on the facts only).
        for page_lang, path in (("zh-CN", "verify.html"), ("en", "verify.en.html")):
            verifier = pages.verifier_html(page_lang)
            if verifier is not None:
                files.append(
                    d.DossierFile(
                        path,
                        verifier,
                        f"The verify page ({page_lang}): checks this dossier offline",
                    )
                )
        # The dossier's own earlier manifests are not facts of the agreement: counting their
        # times would make every request's manifest newer than the last, so a new one each time
        # (and a GET would never find the one a POST made).
        times += [doc.get("received_at") for doc in documents if doc["kind"] != MANIFEST_KIND]
        for tp in touchpoints:
            times += [tp.get("sent_at"), tp.get("answered_at")]
        as_of = d.latest(times)
        head = {
            "id": agreement_id,
            "onchain_id": facts["agreement"]["onchain_id"],
            "chain_id": facts["chain"]["chain_id"],
            "registry": facts["chain"]["registry"],
            "state": facts["agreement"]["state"],
        }
        manifest = d.manifest_bytes(head, as_of, files)
        sha = hashlib.sha256(manifest).hexdigest()
        document_id = next(
            (str(m["id"]) for m in manifests if str(m["sha256"]).lower().removeprefix("0x") == sha),
            None,
        )
        if document_id is None and not create:
            raise DossierNotFound(
                f"no dossier of agreement {agreement_id} as it stands now (it changed since the "
                f"last one, or none was made): create it with POST "
                f"/v1/agreements/{agreement_id}/dossier",
                manifest_sha256=sha,
            )
        if document_id is None:
            document_id = self._deposit(principal, agreement_id, candidate_ref, manifest, archive)
        bundle = self._await_proof(document_id, auth, archive, wait)
        if bundle is None:
            raise DossierPending(
                "the dossier's manifest is being anchored on the chain; ask again in a few seconds",
                manifest_sha256=sha,
                document_id=document_id,
            )
        manifest_proof = (json.dumps(bundle, indent=2, sort_keys=True) + "\n").encode()
        cover_facts = {
            **facts,
            "manifest_sha256": sha,
            "manifest_document_id": document_id,
            "manifest_anchor": bundle.get("anchor", {}),
            "as_of": as_of,
            "files": [(f.path, f.title) for f in sorted(files, key=lambda f: f.path)],
            "touchpoints": touchpoints,
            "verify_url": self.verify_url,
        }
        cover = self.cover(cover_facts, lang)
        entries = [
            (d.MANIFEST, manifest),
            (d.MANIFEST_PROOF, manifest_proof),
            (d.COVER, cover),
        ]
        entries += [(f.path, f.content) for f in sorted(files, key=lambda f: f.path)]
        when = dt.datetime.fromisoformat(as_of)
        return Dossier(agreement_id, sha, document_id, d.zip_bytes(entries, when))

    # ---- what the contracts service knows ---------------------------------------------------

    def _facts(
        self, principal: Principal, agreement_id: str
    ) -> tuple[dict[str, Any], list[str | None], str]:
        with self.db.sessions() as session:
            a = load(session, principal.tenant, agreement_id)
            agreement = describe(session, a, self.chain.address)
            terms_text = a.terms_text
            amendments = [
                describe_amendment(row)
                for row in _rows(session, AgreementAmendment, a.id, AgreementAmendment.number)
            ]
            ops = [
                {
                    "operation": op.op,
                    "transaction": op.tx_hash,
                    "signer": op.signer,
                    "nonce": op.nonce,
                    "state": op.state,
                    "error": op.error,
                    "prepared_at": iso(op.created_at),
                    "finished_at": iso(op.finished_at),
                }
                for op in _rows(session, ChainOp, a.id, ChainOp.id)
            ]
            signals = [
                {
                    "kind": s.kind,
                    "answer": s.answer,
                    "new_date": s.new_date,
                    "delay_hours": s.delay_hours,
                    "occurred_at": iso(s.occurred_at),
                }
                for s in _rows(session, AgreementSignal, a.id, AgreementSignal.id)
            ]
            risk = [
                {
                    "from": r.previous,
                    "to": r.level,
                    "score": r.score,
                    "reasons": r.reasons,
                    "at": iso(r.at),
                }
                for r in _rows(session, RiskChange, a.id, RiskChange.id)
            ]
            candidate_ref = a.candidate_ref
            updated = iso(a.updated_at)
        events = self.chain.events_of(agreement["onchain_id"])
        chain = {
            "chain_id": self.chain.chain_id(),
            "registry": self.chain.address,
            "contract_version": self.chain.version(),
            "state": self.chain.state_of(agreement["onchain_id"]),
        }
        facts = {
            "agreement": agreement,
            "terms_text": terms_text,
            "amendments": amendments,
            "transactions": ops,
            "signals": signals,
            "risk_changes": risk,
            "events": events,
            "chain": chain,
            "signing_record": self.records.signing_record(principal, None, agreement_id),
            "damages": d.damages_statement(
                currency=agreement["currency"],
                monthly_salary=agreement["monthly_salary"],
                liquidated_damages=agreement["liquidated_damages"],
                state=agreement["state"],
            ),
        }
        rows: list[dict[str, Any]] = [*ops, *signals, *risk, *amendments]
        times: list[str | None] = [updated, *(e["block_time"] for e in events)]
        for row in rows:
            times += [row.get(k) for k in ("finished_at", "occurred_at", "at", "applied_at")]
        return facts, times, candidate_ref

    def _files(self, facts: dict[str, Any], documents: list[dict[str, Any]]) -> list[d.DossierFile]:
        agreement = facts["agreement"]
        terms = facts["terms_text"].encode()
        files = [
            d.json_file(
                "agreement/agreement.json",
                "The agreement as OfferSeal records it: parties' addresses, terms, milestones, "
                "risk",
                agreement,
            ),
            d.DossierFile(
                f"agreement/text.{agreement['language']}.txt",
                terms,
                f"The text the candidate read and signed; its sha256 is the terms hash "
                f"{agreement['terms_hash']} on chain",
            ),
            d.json_file(
                "signatures/signing-record.json",
                "The signing record: text opened, code check, passkey or wallet, consent, "
                "signature, transaction",
                facts["signing_record"],
            ),
            d.json_file(
                "chain/state.json",
                "The agreement's state on chain now, the contract and its version",
                {**facts["chain"], "onchain_id": agreement["onchain_id"]},
            ),
            d.json_file(
                "chain/events.json",
                "Every event the contract emitted about the agreement, with its transaction, "
                "block and block time",
                facts["events"],
            ),
            d.json_file(
                "chain/transactions.json",
                "Every transaction OfferSeal sent for the agreement (prepared, sent, mined)",
                facts["transactions"],
            ),
            d.json_file(
                "agreement/check-ins.json",
                "The candidate's check-in answers and missed check-ins, and the risk changes "
                "with their reasons",
                {"signals": facts["signals"], "risk_changes": facts["risk_changes"]},
            ),
            d.json_file(
                "damages.json",
                "The liquidated damages against the cap of 30% of one month's salary",
                facts["damages"],
            ),
        ]
        for amendment in facts["amendments"]:
            files.append(
                d.json_file(
                    f"amendments/{amendment['number']:03d}-{amendment['id']}.json",
                    f"Amendment {amendment['number']}: new dates, its terms hash, its state",
                    amendment,
                )
            )
        files.append(
            d.json_file(
                "evidence/index.json",
                "Every document of the agreement in the evidence service: kind, stage, sha256, "
                "intake receipt, anchor",
                documents,
            )
        )
        return files

    def _evidence(
        self, documents: list[dict[str, Any]], auth: Mapping[str, str], archive: EvidenceArchive
    ) -> list[d.DossierFile]:
        """Each document's bytes (when stored) beside its proof bundle (when anchored)."""
        files: list[d.DossierFile] = []
        for doc in documents:
            folder = f"evidence/{doc.get('milestone') or doc['kind']}/{doc['id']}"
            bundle = archive.proof(str(doc["id"]), auth) if doc.get("anchor") else None
            proof_path = None
            if bundle is not None:
                proof_path = f"{folder}/{PROOF_NAME}"
                files.append(
                    d.json_file(
                        proof_path,
                        f"Proof bundle of document {doc['id']} ({doc['kind']})",
                        bundle,
                    )
                )
            if doc.get("has_content"):
                name = d.safe_name(doc.get("filename") or "", f"document-{doc['id']}")
                # The folder's proof.json is reserved, whatever case or form the upload's
                # name takes (PROOF.json would be the same file once extracted).
                name = d.distinct_name(name, {d.path_key(PROOF_NAME)})
                content = archive.content(str(doc["id"]), auth)
                files.append(
                    d.DossierFile(
                        f"{folder}/{name}",
                        content,
                        f"Document {doc['id']}: {doc['kind']}"
                        + (f", stage {doc['milestone']}" if doc.get("milestone") else "")
                        + ("" if bundle else " (not anchored yet)"),
                        proof_path,
                    )
                )
        return files

    # ---- the manifest, anchored --------------------------------------------------------------

    def _deposit(
        self,
        principal: Principal,
        agreement_id: str,
        candidate_ref: str,
        manifest: bytes,
        archive: EvidenceArchive,
    ) -> str:
        token = self.links.issue(
            Link(
                principal.tenant,
                agreement_id,
                candidate_ref,
                PURPOSE_RECORD,
                int(time.time()) + 600,
                MANIFEST_KIND,
            )
        )
        stored = archive.deposit_record(token, f"dossier-manifest-{agreement_id}.json", manifest)
        log.info("dossier manifest of %s deposited as %s", agreement_id, stored["id"])
        return str(stored["id"])

    def _await_proof(
        self, document_id: str, auth: Mapping[str, str], archive: EvidenceArchive, wait: float
    ) -> dict[str, Any] | None:
        deadline = self.clock() + wait
        while True:
            bundle = archive.proof(document_id, auth)
            if bundle is not None or self.clock() >= deadline:
                return bundle
            self.sleep(0.25)

"""The issuing employer confirms a document. The candidate authorises it in the portal for one
former employer's domain (what is shared and why, kept with the consent); HR then asks that
employer's HR, at an address of that domain, about one certificate: an e-mail with the document's
SHA-256 and SM3 and a short link to a page that shows them and takes one answer (a POST: a mail
scanner fetching the link records nothing). HR may instead record an answer that came back by
e-mail, with that e-mail's DKIM result. Each answer is anchored through the evidence service as
an `employer_confirmation` record of the agreement, so it is in the timeline and the dossier.
The answer is shown to the tenant only."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from ..shared.auth import READ_ROLES, WRITE_ROLES, Principal
from ..shared.db import Database
from ..shared.errors import Conflict, NotFound, TooManyRequests, TransientError, ValidationFailed
from ..shared.links import PURPOSE_CONFIRM, PURPOSE_RECORD, PURPOSE_SIGN, Link, LinkSigner
from ..shared.models import aware, iso, utcnow
from ..shared.shortlinks import Shortener, Wanted
from .adapters.channels import Outgoing
from .domain import confirmations as rules
from .domain.templates import Rendered
from .errors import NotifyError
from .models import EmployerConfirmation, EmployerConsent, FollowedAgreement, TenantBranding

log = logging.getLogger(__name__)
LINK_TTL = 30 * 86400  # the former employer's HR may take a few weeks to answer


class ConsentRequired(NotifyError, Conflict):
    """The candidate has not authorised a request to this employer (or withdrew it)."""

    title = "The candidate has not authorised this"


class AlreadyAnswered(NotifyError, Conflict):
    """The request has its answer: one per request, whichever way it came."""

    title = "Already answered"


class ConfirmationNotFound(NotifyError, NotFound):
    """No such request for this tenant (another tenant's looks exactly like a missing one)."""


class Documents(Protocol):
    def document(self, document_id: str, authorization: str) -> dict[str, Any]: ...

    def deposit(
        self, token: str, filename: str, content: bytes, content_type: str
    ) -> dict[str, Any]: ...


def _checked(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except rules.RuleBroken as exc:
        raise ValidationFailed(exc.field, exc.detail) from None


class EmployerConfirmations:
    def __init__(
        self,
        db: Database,
        links: LinkSigner,
        channels: dict[str, Any],
        documents: Documents,
        *,
        public_url: str,
        mail_domain: str,
        shortener: Shortener | None = None,
    ) -> None:
        self.db = db
        self.links = links
        self.channels = channels
        self.documents = documents
        self.public_url = public_url.rstrip("/")
        self.mail_domain = mail_domain
        self.shortener = shortener

    # ---- the candidate, in the portal ------------------------------------------------------

    def _employer_name(self, tenant: str, agreement_id: str) -> str:
        with self.db.sessions() as session:
            brand = session.get(TenantBranding, tenant)
            followed = session.get(FollowedAgreement, agreement_id)
        if brand is not None and brand.display_name:
            return str(brand.display_name)
        if followed is not None and followed.tenant == tenant and followed.employer_name:
            return str(followed.employer_name)
        return tenant

    def portal(self, token: str, lang: str = "zh-CN") -> dict[str, Any]:
        """What the candidate authorised, the text they would authorise, and which requests
        were sent under it (when and to which domain; never the employer's answer)."""
        link = self.links.verify(token, PURPOSE_SIGN)
        employer = self._employer_name(link.tenant, link.agreement_id)
        with self.db.sessions() as session:
            consents = session.execute(
                select(EmployerConsent)
                .where(
                    EmployerConsent.tenant == link.tenant,
                    EmployerConsent.agreement_id == link.agreement_id,
                )
                .order_by(EmployerConsent.given_at)
            ).scalars()
            sent = session.execute(
                select(EmployerConfirmation).where(
                    EmployerConfirmation.tenant == link.tenant,
                    EmployerConfirmation.agreement_id == link.agreement_id,
                )
            ).scalars()
            requests = [
                {
                    "consent_id": r.consent_id,
                    "document_id": r.document_id,
                    "document_kind": r.document_kind,
                    "employer_domain": r.employer_domain,
                    "requested_at": iso(r.requested_at),
                }
                for r in sent
            ]
            return {
                "statement": rules.statement(lang, employer, "{employer_domain}"),
                "shared": ["document_kind", "sha256", "sm3"],
                "consents": [
                    {
                        "id": c.id,
                        "employer_domain": c.employer_domain,
                        "statement": c.statement,
                        "given_at": iso(c.given_at),
                        "withdrawn_at": iso(c.withdrawn_at),
                    }
                    for c in consents
                ],
                "requests": requests,
            }

    def consent(self, token: str, domain: str, lang: str) -> dict[str, Any]:
        """The candidate authorises requests to `domain`; the text they read is kept."""
        link = self.links.verify(token, PURPOSE_SIGN)
        domain = _checked(lambda: rules.employer_domain(domain))
        lang = "en" if lang == "en" else "zh-CN"
        text = rules.statement(lang, self._employer_name(link.tenant, link.agreement_id), domain)
        row = EmployerConsent(
            id=str(uuid.uuid4()),
            tenant=link.tenant,
            agreement_id=link.agreement_id,
            candidate_ref=link.candidate_ref,
            employer_domain=domain,
            statement=text,
            language=lang,
            given_at=utcnow(),
        )
        with self.db.transaction() as session:
            session.add(row)
        return {
            "id": row.id,
            "employer_domain": domain,
            "statement": text,
            "given_at": iso(row.given_at),
            "withdrawn_at": None,
        }

    def withdraw(self, token: str, consent_id: str) -> dict[str, Any]:
        link = self.links.verify(token, PURPOSE_SIGN)
        with self.db.transaction() as session:
            row = session.get(EmployerConsent, consent_id)
            if row is None or (row.tenant, row.agreement_id) != (link.tenant, link.agreement_id):
                raise NotFound("no such authorisation")
            if row.withdrawn_at is None:
                row.withdrawn_at = utcnow()
            return {"id": row.id, "withdrawn_at": iso(row.withdrawn_at)}

    # ---- HR --------------------------------------------------------------------------------

    def request(
        self, principal: Principal, authorization: str, document_id: str, employer_email: str
    ) -> dict[str, Any]:
        """Ask the former employer at `employer_email` to confirm the document: refused
        (409) without the candidate's authorisation for that domain, or when the document was
        already sent to it; 429 beyond the tenant's hourly allowance."""
        principal.require(*WRITE_ROLES)
        host = (employer_email or "").rpartition("@")[2]
        domain = _checked(lambda: rules.employer_domain(host))
        address = _checked(lambda: rules.address_at(employer_email, domain))
        document = self.documents.document(document_id, authorization)
        if document.get("kind") not in rules.CONFIRMABLE_KINDS:
            raise ValidationFailed(
                "document_id",
                "only a resignation or employment certificate can be confirmed by its issuer",
            )
        if not document.get("agreement_id") or not document.get("sm3"):
            raise ValidationFailed("document_id", "the document belongs to no agreement")
        agreement_id = str(document["agreement_id"])
        now = utcnow()
        with self.db.transaction() as session:
            consent = session.execute(
                select(EmployerConsent)
                .where(
                    EmployerConsent.tenant == principal.tenant,
                    EmployerConsent.agreement_id == agreement_id,
                    EmployerConsent.employer_domain.in_(_parents(domain)),
                    EmployerConsent.withdrawn_at.is_(None),
                )
                .order_by(EmployerConsent.given_at.desc())
                .limit(1)
            ).scalar_one_or_none()
            if consent is None:
                raise ConsentRequired(
                    f"the candidate has not authorised a request to {domain}: they give it "
                    "in their portal"
                )
            recent = session.execute(
                select(func.count())
                .select_from(EmployerConfirmation)
                .where(
                    EmployerConfirmation.tenant == principal.tenant,
                    EmployerConfirmation.requested_at >= now - rules.RATE_WINDOW,
                )
            ).scalar_one()
            if recent >= rules.RATE_LIMIT:
                raise TooManyRequests(
                    f"at most {rules.RATE_LIMIT} confirmation requests an hour; try later"
                )
            row = EmployerConfirmation(
                id=str(uuid.uuid4()),
                tenant=principal.tenant,
                agreement_id=agreement_id,
                candidate_ref=str(document.get("candidate_ref") or ""),
                document_id=document_id,
                document_kind=str(document["kind"]),
                sha256=str(document["sha256"]),
                sm3=str(document["sm3"]),
                employer_domain=consent.employer_domain,
                employer_email=address,
                consent_id=consent.id,
                requested_by=principal.key_id,
                requested_at=now,
                message_id=f"<confirm-{uuid.uuid4()}@{self.mail_domain}>",
                state="sending",
            )
            once = Conflict(
                f"this document was already sent to {consent.employer_domain} for "
                "confirmation (one request per document and employer)"
            )
            if session.execute(
                select(EmployerConfirmation.id).where(
                    EmployerConfirmation.tenant == principal.tenant,
                    EmployerConfirmation.document_id == document_id,
                    EmployerConfirmation.employer_domain == consent.employer_domain,
                )
            ).first():
                raise once
            session.add(row)
            try:
                session.flush()
            except IntegrityError:  # the same request, sent at the same moment
                raise once from None
            facts = _facts(row)
        try:
            self._send(principal.tenant, facts)
        except Exception as exc:
            with self.db.transaction() as session:  # not sent: HR may ask again
                gone = session.get(EmployerConfirmation, facts["id"])
                if gone is not None:
                    session.delete(gone)
            log.warning("confirmation request %s not sent: %s", facts["id"], type(exc).__name__)
            raise TransientError("the e-mail could not be sent; try again shortly") from None
        with self.db.transaction() as session:
            sent = session.get(EmployerConfirmation, facts["id"])
            assert sent is not None
            sent.state = "sent"
            return _view(sent)

    def _send(self, tenant: str, facts: dict[str, Any]) -> None:
        channel = self.channels.get("email")
        if channel is None:
            raise TransientError("no e-mail channel is configured")
        # The token is readable by whoever holds it (the former employer): it names no
        # candidate, only the request.
        link = Link(
            tenant,
            facts["agreement_id"],
            "",
            PURPOSE_CONFIRM,
            int(time.time()) + LINK_TTL,
            facts["id"],
            int(time.time()),
        )
        url = f"{self.public_url}/v1/confirm/{self.links.issue(link)}"
        if self.shortener is not None:
            [url] = self.shortener.shorten([Wanted(url, link)])
        employer = self._employer_name(tenant, facts["agreement_id"])
        with self.db.sessions() as session:
            brand = session.get(TenantBranding, tenant)
        text = rules.mail(employer, facts["document_kind"], facts["sha256"], facts["sm3"], url)
        channel.send(
            Outgoing(
                touchpoint_id=facts["id"],
                message_id=facts["message_id"],
                to_email=facts["employer_email"],
                rendered=Rendered(text.subject, text.text, text.html),
                essential=True,
                unsubscribe_url=None,
                payload={"kind": rules.ATTESTATION_RECORD},
                employer=employer,
                reply_to=brand.reply_to if brand is not None else None,
                tenant=tenant,
            )
        )

    def view(self, principal: Principal, request_id: str) -> dict[str, Any]:
        principal.require(*READ_ROLES)
        with self.db.sessions() as session:
            row = session.get(EmployerConfirmation, request_id)
            if row is None or row.tenant != principal.tenant:
                raise ConfirmationNotFound(f"no confirmation request {request_id}")
            pending = row.answer is not None and row.attestation_document_id is None
        if pending:  # answered, but the evidence service was away: deposit now
            self._attest(request_id)
        with self.db.sessions() as session:
            found = session.get(EmployerConfirmation, request_id)
            assert found is not None
            return _view(found)

    def answer_by_email(
        self, principal: Principal, request_id: str, answer: str, eml: bytes, filename: str
    ) -> dict[str, Any]:
        """HR records the former employer's answer that came back by e-mail: the e-mail is
        deposited as evidence (the evidence service checks its DKIM signature) and its verdict
        is kept with the request."""
        principal.require(*WRITE_ROLES)
        if answer not in rules.ANSWERS:
            raise ValidationFailed("answer", f"one of {', '.join(rules.ANSWERS)}")
        with self.db.sessions() as session:
            row = session.get(EmployerConfirmation, request_id)
            if row is None or row.tenant != principal.tenant:
                raise ConfirmationNotFound(f"no confirmation request {request_id}")
            if row.answer is not None:
                raise AlreadyAnswered("the former employer's answer is already recorded")
            facts = _facts(row)
        stored = self.documents.deposit(
            self._record_token(facts, rules.REPLY_RECORD),
            filename if filename.lower().endswith(".eml") else "reply.eml",
            eml,
            "message/rfc822",
        )
        said = (
            ((stored.get("intake_receipt") or {}).get("payload") or {}).get("provenance") or {}
        ).get("email") or {}
        dkim = said.get("dkim") or {"result": "none"}
        sender_domain = rules.from_domain(str(said.get("from") or ""))
        reply = {
            "document_id": stored["id"],
            "sha256": stored["sha256"],
            "from": said.get("from"),
            "message_id": said.get("message_id"),
            "from_matches_employer": rules.aligned(sender_domain, facts["employer_domain"]),
            "dkim": dkim,
        }
        self._record(request_id, answer, rules.VIA_EMAIL, reply)
        return self.view(principal, request_id)

    # ---- the former employer, through the link ---------------------------------------------

    def open(self, token: str) -> dict[str, Any]:
        """What the confirmation page shows: who asks and the document's fingerprints. Opening
        it records nothing."""
        link = self.links.verify(token, PURPOSE_CONFIRM)
        with self.db.sessions() as session:
            row = session.get(EmployerConfirmation, link.subject)
            if row is None or row.tenant != link.tenant:
                raise ConfirmationNotFound("no such confirmation request")
            facts = _facts(row)
            answered = row.answer
        return {
            "employer": self._employer_name(link.tenant, facts["agreement_id"]),
            "document_kind": facts["document_kind"],
            "sha256": facts["sha256"],
            "sm3": facts["sm3"],
            "requested_at": facts["requested_at"],
            "answered": answered is not None,
        }

    def answer(self, token: str, answer: str) -> dict[str, Any]:
        link = self.links.verify(token, PURPOSE_CONFIRM)
        if answer not in rules.ANSWERS:
            raise ValidationFailed("answer", f"one of {', '.join(rules.ANSWERS)}")
        with self.db.sessions() as session:
            row = session.get(EmployerConfirmation, link.subject)
            if row is None or row.tenant != link.tenant:
                raise ConfirmationNotFound("no such confirmation request")
        self._record(link.subject, answer, rules.VIA_LINK, None)
        return {"answer": answer, "recorded": True}

    # ---- recording and anchoring -----------------------------------------------------------

    def _record(self, request_id: str, answer: str, via: str, reply: dict[str, Any] | None) -> None:
        with self.db.transaction() as session:
            # one answer per request: the first UPDATE wins, a concurrent second changes nothing
            done = session.execute(
                update(EmployerConfirmation)
                .where(EmployerConfirmation.id == request_id, EmployerConfirmation.answer.is_(None))
                .values(
                    answer=answer,
                    answered_at=utcnow(),
                    answered_via=via,
                    reply=reply,
                    state="answered",
                )
            )
            if done.rowcount != 1:  # type: ignore[attr-defined]
                raise AlreadyAnswered("an answer to this request is already recorded")
        self._attest(request_id)

    def _attest(self, request_id: str) -> None:
        """Deposit the answer as an anchored record of the agreement; an evidence service that
        is away leaves it for the next read of the request."""
        with self.db.sessions() as session:
            row = session.get(EmployerConfirmation, request_id)
            assert row is not None and row.answer is not None and row.answered_at is not None
            facts = _facts(row)
            with_consent = session.get(EmployerConsent, row.consent_id)
            facts["consent"] = {
                "id": row.consent_id,
                "given_at": iso(with_consent.given_at) if with_consent else None,
                "statement": with_consent.statement if with_consent else None,
            }
            content = rules.attestation(
                request=facts,
                answer=row.answer,
                via=row.answered_via or rules.VIA_LINK,
                answered_at=aware(row.answered_at),
                reply=row.reply,
            )
        try:
            stored = self.documents.deposit(
                self._record_token(facts, rules.ATTESTATION_RECORD),
                f"employer-confirmation-{request_id}.json",
                content,
                "application/json",
            )
        except TransientError as exc:
            log.warning("confirmation %s not anchored yet: %s", request_id, exc)
            return
        with self.db.transaction() as session:
            row = session.get(EmployerConfirmation, request_id)
            assert row is not None
            if row.attestation_document_id is None:
                row.attestation_document_id = str(stored["id"])

    def _record_token(self, facts: dict[str, Any], record: str) -> str:
        return self.links.issue(
            Link(
                facts["tenant"],
                facts["agreement_id"],
                facts["candidate_ref"],
                PURPOSE_RECORD,
                int(time.time()) + 600,
                record,
            )
        )


def _parents(domain: str) -> list[str]:
    """`hr.example.com` -> [hr.example.com, example.com]: an authorisation for a domain covers
    its subdomains."""
    labels = domain.split(".")
    return [".".join(labels[i:]) for i in range(len(labels) - 1)]


def _facts(row: EmployerConfirmation) -> dict[str, Any]:
    return {
        "id": row.id,
        "tenant": row.tenant,
        "agreement_id": row.agreement_id,
        "candidate_ref": row.candidate_ref,
        "document_id": row.document_id,
        "document_kind": row.document_kind,
        "sha256": row.sha256,
        "sm3": row.sm3,
        "employer_domain": row.employer_domain,
        "employer_email": row.employer_email,
        "requested_at": iso(row.requested_at),
        "message_id": row.message_id,
    }


def _view(row: EmployerConfirmation) -> dict[str, Any]:
    return {
        **{k: v for k, v in _facts(row).items() if k != "tenant"},
        "consent_id": row.consent_id,
        "requested_by": row.requested_by,
        "state": row.state,
        "answer": row.answer,
        "answered_at": iso(row.answered_at),
        "answered_via": row.answered_via,
        "reply": row.reply,
        "attestation_document_id": row.attestation_document_id,
    }

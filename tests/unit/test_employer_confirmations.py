"""The employer's confirmation without a network: the rules for domains and addresses, the
statement the candidate authorises, and the service layer with a fake evidence service and a
fake mail channel (the authorisation first, one request per document and employer, the hourly
allowance, one answer per request, nothing sent when the mail fails)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from offerseal.notify.confirmations import (
    AlreadyAnswered,
    ConsentRequired,
    EmployerConfirmations,
)
from offerseal.notify.domain import confirmations as rules
from offerseal.notify.errors import RetryLater
from offerseal.shared.auth import Principal
from offerseal.shared.db import Database
from offerseal.shared.errors import (
    Conflict,
    NotFound,
    TooManyRequests,
    TransientError,
    ValidationFailed,
)
from offerseal.shared.links import PURPOSE_CONFIRM, PURPOSE_SIGN, Link, LinkSigner
from offerseal.shared.problems import status_of

SIGNER = LinkSigner(b"c" * 32)
HR = Principal(key_id="k-hr", role="hr", tenant="acme")
OTHER = Principal(key_id="k-other", role="hr", tenant="globex")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Old-Employer.Example.", "old-employer.example"),
        ("例子.中国", "xn--fsqu00a.xn--fiqs8s"),
    ],
)
def test_a_domain_is_normalised(text: str, expected: str) -> None:
    assert rules.employer_domain(text) == expected


@pytest.mark.parametrize("text", ["", "localhost", "127.0.0.1", "-bad.example", "a..example"])
def test_a_domain_that_is_no_domain_is_refused(text: str) -> None:
    with pytest.raises(rules.RuleBroken) as refused:
        rules.employer_domain(text)
    assert refused.value.field == "employer_domain"


def test_an_address_must_be_at_the_domain_or_below_it() -> None:
    assert rules.address_at("hr@old.example", "old.example") == "hr@old.example"
    assert rules.address_at("hr@Mail.Old.Example", "old.example") == "hr@mail.old.example"
    for bad in ("hr@evil.example", "hr@notold.example", "hr@old.example@evil.example", "x"):
        with pytest.raises(rules.RuleBroken):
            rules.address_at(bad, "old.example")


def test_the_statement_says_what_is_shared_with_whom_and_why() -> None:
    en = rules.statement("en", "Acme", "old.example")
    assert "SHA-256 and SM3" in en and "old.example" in en and "withdraw" in en
    zh = rules.statement("zh-CN", "Acme", "old.example")
    assert "SM3" in zh and "old.example" in zh and "撤回" in zh


class FakeDocuments:
    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}
        self.deposited: list[tuple[str, bytes]] = []

    def add(self, doc_id: str, tenant: str = "acme", kind: str = "employment_certificate") -> None:
        self.docs[doc_id] = {
            "id": doc_id,
            "tenant": tenant,
            "kind": kind,
            "sha256": "0x" + "11" * 32,
            "sm3": "0x" + "22" * 32,
            "agreement_id": "ag-1",
            "candidate_ref": "cand-1",
        }

    def document(self, document_id: str, authorization: str) -> dict[str, Any]:
        doc = self.docs.get(document_id)
        if doc is None or doc["tenant"] != authorization:  # the key stands for its tenant
            raise NotFound(f"no document {document_id}")
        return doc

    def deposit(
        self, token: str, filename: str, content: bytes, content_type: str
    ) -> dict[str, Any]:
        self.deposited.append((filename, content))
        return {"id": f"rec-{len(self.deposited)}", "sha256": "0x" + "33" * 32}


class FakeMail:
    def __init__(self) -> None:
        self.sent: list[Any] = []
        self.failing = False

    def send(self, out: Any) -> str:
        if self.failing:
            raise RetryLater("421 try later")
        self.sent.append(out)
        return "250 OK"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'notify.db'}")
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture
def world(db: Database) -> tuple[EmployerConfirmations, FakeDocuments, FakeMail]:
    documents, mail = FakeDocuments(), FakeMail()
    service = EmployerConfirmations(
        db,
        SIGNER,
        {"email": mail},
        documents,
        public_url="https://people.test",
        mail_domain="offerseal.test",
    )
    return service, documents, mail


def portal() -> str:
    now = int(time.time())
    return SIGNER.issue(Link("acme", "ag-1", "cand-1", PURPOSE_SIGN, now + 600, "", now))


def test_nothing_is_sent_without_the_candidates_authorisation(world: Any) -> None:
    service, documents, mail = world
    documents.add("doc-1")
    with pytest.raises(ConsentRequired) as refused:
        service.request(HR, "acme", "doc-1", "hr@old.example")
    assert status_of(refused.value) == 409
    given = service.consent(portal(), "old.example", "en")
    service.withdraw(portal(), given["id"])
    with pytest.raises(ConsentRequired):
        service.request(HR, "acme", "doc-1", "hr@old.example")
    assert mail.sent == []


def test_one_request_per_document_and_employer_and_one_answer(world: Any) -> None:
    service, documents, mail = world
    documents.add("doc-1")
    service.consent(portal(), "old.example", "zh-CN")
    sent = service.request(HR, "acme", "doc-1", "hr@old.example")
    assert sent["state"] == "sent" and len(mail.sent) == 1
    out = mail.sent[0]
    assert out.to_email == "hr@old.example" and "0x" + "22" * 32 in out.rendered.text
    with pytest.raises(Conflict):
        service.request(HR, "acme", "doc-1", "payroll@old.example")
    with pytest.raises(NotFound):
        service.view(OTHER, sent["id"])
    token = SIGNER.issue(
        Link("acme", "ag-1", "cand-1", PURPOSE_CONFIRM, int(time.time()) + 600, sent["id"])
    )
    assert service.open(token)["answered"] is False
    assert service.view(HR, sent["id"])["answer"] is None  # opening records nothing
    with pytest.raises(ValidationFailed):
        service.answer(token, "maybe")
    service.answer(token, "genuine")
    with pytest.raises(AlreadyAnswered):
        service.answer(token, "not_ours")
    seen = service.view(HR, sent["id"])
    assert seen["answer"] == "genuine" and seen["attestation_document_id"] == "rec-1"
    attestation = json.loads(documents.deposited[0][1])
    assert attestation["format"] == rules.ATTESTATION_FORMAT
    assert attestation["answer"] == "genuine" and attestation["consent"]["statement"]


def test_the_hourly_allowance_per_tenant(world: Any) -> None:
    service, documents, _ = world
    service.consent(portal(), "old.example", "en")
    for i in range(rules.RATE_LIMIT):
        documents.add(f"doc-{i}")
        service.request(HR, "acme", f"doc-{i}", "hr@old.example")
    documents.add("doc-last")
    with pytest.raises(TooManyRequests) as refused:
        service.request(HR, "acme", "doc-last", "hr@old.example")
    assert status_of(refused.value) == 429


def test_a_mail_that_cannot_be_sent_leaves_no_request(world: Any) -> None:
    service, documents, mail = world
    documents.add("doc-1")
    service.consent(portal(), "old.example", "en")
    mail.failing = True
    with pytest.raises(TransientError):
        service.request(HR, "acme", "doc-1", "hr@old.example")
    mail.failing = False
    assert service.request(HR, "acme", "doc-1", "hr@old.example")["state"] == "sent"


def test_only_certificates_an_employer_issues_can_be_sent(world: Any) -> None:
    service, documents, _ = world
    documents.add("offer", kind="offer_letter")
    service.consent(portal(), "old.example", "en")
    with pytest.raises(ValidationFailed) as refused:
        service.request(HR, "acme", "offer", "hr@old.example")
    assert str(refused.value).startswith("document_id:")

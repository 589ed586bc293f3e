"""The issuing employer confirms a certificate, over real HTTP on one module stack (SQLite, Anvil,
the broker, a real SMTP server): nothing is sent without the candidate's authorisation given in
the portal (409), one request per document and employer, the former employer's page shows the
fingerprints and records nothing on GET (mail scanners), one answer per request, the answer is
anchored as an `employer_confirmation` record of the agreement, an answer by e-mail keeps its
DKIM result, and another tenant's key learns nothing (404)."""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from aiosmtpd.controller import Controller

from offerseal.shared import secrets
from offerseal.shared.links import PURPOSE_SIGN, Link, LinkSigner
from tests.conftest import (
    ROOT,
    RunningStack,
    free_port,
    make_settings,
    start_stack,
    upload,
    wait_for_proof,
)
from tests.integration.test_notify import Mailbox, resolve, text_of
from tests.unit.test_provenance import MESSAGE, PUBLISHED, signed

pytestmark = pytest.mark.chain
DOMAIN = "old-employer.example"  # the domain test_provenance's DKIM key signs for
PROBLEM = "application/problem+json"
ARTIFACTS = ROOT / "test-artifacts" / "confirmation"


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, anvil: Any
) -> Iterator[tuple[RunningStack, Mailbox]]:
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    tmp = tmp_path_factory.mktemp("confirm")
    settings = make_settings(
        tmp,
        f"sqlite:///{tmp / 'offerseal.db'}",
        anvil.url,
        smtp_url=f"smtp://127.0.0.1:{controller.port}",
        dispatch_interval=0.1,
        extra={"dkim_dns": PUBLISHED},
    )
    stack = start_stack(settings)
    try:
        yield stack, box
    finally:
        stack.stack.stop()
        controller.stop()


def at(stack: RunningStack, path: str) -> str:
    """`path` on the people's origin (one port for pages and every service's API)."""
    return str(stack.stack.urls["web"]) + path


def portal_token(stack: RunningStack, agreement_id: str, candidate_ref: str) -> str:
    """The candidate's portal link, as the invitation carries it."""
    now = int(time.time())
    link = Link("acme", agreement_id, candidate_ref, PURPOSE_SIGN, now + 3600, "", now)
    return LinkSigner(secrets.link_secret(stack.settings)).issue(link)


def certificate(stack: RunningStack, kind: str = "employment_certificate") -> dict[str, Any]:
    agreement_id, candidate_ref = str(uuid.uuid4()), f"cand-{uuid.uuid4().hex[:8]}"
    stored = upload(
        stack,
        b"%PDF-1.7 certificate " + os.urandom(8),
        kind=kind,
        candidate_ref=candidate_ref,
        agreement_id=agreement_id,
    )
    assert stored.status_code == 201, stored.text
    return {
        **stored.json(),
        "agreement_id": agreement_id,
        "candidate_ref": candidate_ref,
        "token": portal_token(stack, agreement_id, candidate_ref),
    }


def ask(stack: RunningStack, document_id: str, address: str, **kw: Any) -> requests.Response:
    return requests.post(
        at(stack, "/v1/employer-confirmations"),
        headers=kw.get("headers", stack.hr),
        json={"document_id": document_id, "employer_email": address},
        timeout=60,
    )


def consent(stack: RunningStack, doc: dict[str, Any], domain: str = DOMAIN) -> dict[str, Any]:
    given = requests.post(
        at(stack, "/v1/inbox/employer-consents"),
        params={"token": doc["token"]},
        json={"employer_domain": domain, "lang": "en"},
        timeout=30,
    )
    assert given.status_code == 201, given.text
    body: dict[str, Any] = given.json()
    return body


def view(stack: RunningStack, request_id: str, headers: dict[str, str] | None = None) -> Any:
    return requests.get(
        at(stack, f"/v1/employer-confirmations/{request_id}"),
        headers=headers or stack.hr,
        timeout=30,
    )


def test_hr_cannot_send_without_the_candidates_authorisation(
    world: tuple[RunningStack, Mailbox],
) -> None:
    stack, box = world
    doc = certificate(stack)
    refused = ask(stack, doc["id"], f"hr@{DOMAIN}")
    assert refused.status_code == 409, refused.text
    assert refused.headers["Content-Type"].startswith(PROBLEM)
    assert "authorised" in refused.json()["detail"]
    # authorised for one employer is not authorised for another
    consent(stack, doc, "another-employer.example")
    elsewhere = ask(stack, doc["id"], f"hr@{DOMAIN}")
    assert elsewhere.status_code == 409 and elsewhere.headers["Content-Type"].startswith(PROBLEM)
    # an authorisation withdrawn before the request no longer counts
    given = consent(stack, doc)
    withdrawn = requests.delete(
        at(stack, f"/v1/inbox/employer-consents/{given['id']}"),
        params={"token": doc["token"]},
        timeout=30,
    )
    assert withdrawn.status_code == 200 and withdrawn.json()["withdrawn_at"]
    assert ask(stack, doc["id"], f"hr@{DOMAIN}").status_code == 409
    assert not [m for m in box.messages if m["To"] == f"hr@{DOMAIN}" and doc["sha256"] in str(m)]


def test_bad_input_is_a_problem_naming_the_field(world: tuple[RunningStack, Mailbox]) -> None:
    stack, _ = world
    doc = certificate(stack)
    bad = requests.post(
        at(stack, "/v1/inbox/employer-consents"),
        params={"token": doc["token"]},
        json={"employer_domain": "127.0.0.1"},
        timeout=30,
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "employer_domain"
    consent(stack, doc)
    for address in ("not-an-address", f"hr@{DOMAIN}@evil.example", "hr@evil..example"):
        answer = ask(stack, doc["id"], address)
        assert answer.status_code in (409, 422), (address, answer.text)
        assert answer.headers["Content-Type"].startswith(PROBLEM)
    offer = certificate(stack, kind="offer_letter")
    consent(stack, offer)
    wrong_kind = ask(stack, offer["id"], f"hr@{DOMAIN}")
    assert wrong_kind.status_code == 422 and wrong_kind.json()["errors"][0]["field"] == (
        "document_id"
    )
    # another tenant's document looks exactly like a missing one
    assert ask(stack, doc["id"], f"hr@{DOMAIN}", headers=stack.other_tenant).status_code == 404


def test_the_former_employer_confirms_through_the_link_and_it_is_anchored(
    world: tuple[RunningStack, Mailbox],
) -> None:
    stack, box = world
    doc = certificate(stack)
    given = consent(stack, doc)
    assert "SHA-256 and SM3" in given["statement"] and DOMAIN in given["statement"]
    sent = ask(stack, doc["id"], f"hr@{DOMAIN}")
    assert sent.status_code == 201, sent.text
    request = sent.json()
    assert request["state"] == "sent" and request["answer"] is None
    assert request["sha256"] == doc["sha256"] and request["sm3"] == doc["sm3"]
    again = ask(stack, doc["id"], f"payroll@{DOMAIN}")  # one per document and employer
    assert again.status_code == 409 and again.headers["Content-Type"].startswith(PROBLEM)

    [mail] = box.wait(lambda m: doc["sm3"] in text_of(m))
    assert mail["To"] == f"hr@{DOMAIN}"
    text = text_of(mail)
    assert doc["sha256"] in text and doc["candidate_ref"] not in text
    [short] = [u for u in re.findall(r"https?://\S+", text) if "/l/" in u][:1]
    target = resolve(short)
    assert "/v1/confirm/" in target
    # the token is readable by the former employer: it names the request, not the candidate
    carried = LinkSigner(secrets.link_secret(stack.settings)).read(target.rsplit("/", 1)[1])
    assert carried.candidate_ref == "" and carried.subject == request["id"]

    # Mail scanners and people fetch the page: it shows the fingerprints, records nothing.
    for _ in range(2):
        page = requests.get(target, headers={"Accept": "text/html"}, timeout=30)
        assert page.status_code == 200
        assert doc["sha256"] in page.text and doc["sm3"] in page.text
        assert 'method="post"' in page.text and 'value="genuine"' in page.text
    assert view(stack, request["id"]).json()["answer"] is None

    # another tenant's key learns nothing of the request or its answer
    assert view(stack, request["id"], stack.other_tenant).status_code == 404

    answered = requests.post(target, data={"answer": "genuine"}, timeout=60)
    assert answered.status_code == 200 and "recorded" in answered.text
    twice = requests.post(target, json={"answer": "not_ours"}, timeout=60)
    assert twice.status_code == 409 and twice.headers["Content-Type"].startswith(PROBLEM)

    seen = view(stack, request["id"]).json()
    assert seen["answer"] == "genuine" and seen["answered_via"] == "link"
    assert seen["attestation_document_id"]
    assert view(stack, request["id"], stack.other_tenant).status_code == 404
    proof = wait_for_proof(stack, seen["attestation_document_id"])
    assert proof["document"]["kind"] == "employer_confirmation"
    record = requests.get(
        stack.url(f"/v1/documents/{seen['attestation_document_id']}"),
        headers=stack.hr,
        timeout=30,
    ).json()
    assert record["agreement_id"] == doc["agreement_id"]  # so the dossier and timeline have it
    content = requests.get(
        stack.url(f"/v1/documents/{seen['attestation_document_id']}/content"),
        headers=stack.hr,
        timeout=30,
    )
    attestation = json.loads(content.content)
    assert attestation["answer"] == "genuine" and attestation["via"] == "link"
    assert attestation["document"] == {
        "id": doc["id"],
        "kind": "employment_certificate",
        "sha256": doc["sha256"],
        "sm3": doc["sm3"],
    }
    assert attestation["consent"]["id"] == given["id"]
    other = requests.get(
        stack.url(f"/v1/documents/{seen['attestation_document_id']}"),
        headers=stack.other_tenant,
        timeout=30,
    )
    assert other.status_code == 404

    # the candidate sees that the request was sent, never the answer
    portal = requests.get(
        at(stack, "/v1/inbox/employer-consents"), params={"token": doc["token"]}, timeout=30
    ).json()
    assert [r["employer_domain"] for r in portal["requests"]] == [DOMAIN]
    assert "answer" not in json.dumps(portal["requests"]) and '"answer' not in json.dumps(portal)


def test_an_answer_by_email_keeps_its_dkim_result(world: tuple[RunningStack, Mailbox]) -> None:
    stack, box = world
    doc = certificate(stack, kind="resignation_acceptance")
    consent(stack, doc)
    sent = ask(stack, doc["id"], f"hr@{DOMAIN}")
    assert sent.status_code == 201, sent.text
    request = sent.json()
    [mail] = box.wait(lambda m: doc["sm3"] in text_of(m))
    target = resolve(next(u for u in re.findall(r"https?://\S+", text_of(mail)) if "/l/" in u))

    reply = signed(MESSAGE)  # DKIM-signed by old-employer.example, whose key DNS publishes
    recorded = requests.post(
        at(stack, f"/v1/employer-confirmations/{request['id']}/email-reply"),
        headers=stack.hr,
        data={"answer": "not_ours"},
        files={"email": ("reply.eml", reply, "message/rfc822")},
        timeout=60,
    )
    assert recorded.status_code == 200, recorded.text
    seen = recorded.json()
    assert seen["answer"] == "not_ours" and seen["answered_via"] == "email"
    assert seen["reply"]["dkim"]["result"] == "pass"
    assert seen["reply"]["dkim"]["domain"] == DOMAIN
    assert seen["reply"]["from_matches_employer"] is True
    assert seen["attestation_document_id"]
    content = requests.get(
        stack.url(f"/v1/documents/{seen['attestation_document_id']}/content"),
        headers=stack.hr,
        timeout=30,
    )
    attestation = json.loads(content.content)
    assert attestation["via"] == "email" and attestation["reply"]["dkim"]["result"] == "pass"
    # the link cannot change a recorded answer
    late = requests.post(target, json={"answer": "genuine"}, timeout=60)
    assert late.status_code == 409
    assert view(stack, request["id"]).json()["answer"] == "not_ours"


def test_the_answer_is_on_the_console_timeline_and_in_the_dossier(
    world: tuple[RunningStack, Mailbox],
) -> None:
    from tests.integration.test_contracts_service import create
    from tests.integration.test_dossier import dossier

    stack, box = world
    agreement = create(stack, candidate_ref="cand-confirm")
    stored = upload(
        stack,
        b"%PDF-1.7 employment certificate " + os.urandom(8),
        kind="employment_certificate",
        candidate_ref="cand-confirm",
        agreement_id=agreement["id"],
    )
    assert stored.status_code == 201, stored.text
    doc = {**stored.json(), "token": portal_token(stack, agreement["id"], "cand-confirm")}
    consent(stack, doc)
    sent = ask(stack, doc["id"], f"hr@{DOMAIN}")
    assert sent.status_code == 201, sent.text
    [mail] = box.wait(lambda m: doc["sm3"] in text_of(m))
    target = resolve(next(u for u in re.findall(r"https?://\S+", text_of(mail)) if "/l/" in u))
    assert requests.post(target, data={"answer": "genuine"}, timeout=60).status_code == 200
    record = view(stack, sent.json()["id"]).json()["attestation_document_id"]
    wait_for_proof(stack, record)

    page = requests.get(
        at(stack, f"/console/agreements/{agreement['id']}"),
        headers={**stack.hr, "Accept-Language": "en"},
        timeout=30,
    )
    assert page.status_code == 200, page.text
    assert "Former employer asked to confirm a document" in page.text
    assert "The former employer confirmed it issued the document" in page.text
    assert "timeline__item--employer" in page.text

    import io
    import zipfile

    archive = dossier(stack, agreement["id"], stack.legal, lang="en")
    assert archive.status_code == 200, archive.text
    names = zipfile.ZipFile(io.BytesIO(archive.content)).namelist()
    folder = f"evidence/employer_confirmation/{record}/"
    assert any(n.startswith(folder) and n.endswith("proof.json") for n in names), names


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from tests.integration.test_verify_page import WIDTH, start_chromium

    driver = start_chromium(tmp_path_factory.mktemp("chromium-confirm"), WIDTH, 780)
    yield driver
    driver.quit()


def test_the_candidate_authorises_in_the_portal_reading_what_is_shared(
    world: tuple[RunningStack, Mailbox], browser: Any
) -> None:
    """In Chromium, in English: the section shows the statement the service keeps, a domain
    that is no domain is refused beside its field, a good one is authorised and can be
    withdrawn; HR's request follows the authorisation."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.integration.test_contracts_service import create

    stack, _ = world
    agreement = create(stack, candidate_ref="cand-portal-consent", language="en")
    token = portal_token(stack, agreement["id"], "cand-portal-consent")
    browser.get(at(stack, f"/portal/{agreement['id']}?token={token}&lang=en"))
    wait = WebDriverWait(browser, 30)
    section = wait.until(ec.visibility_of_element_located((By.ID, "employer-section")))
    field = browser.find_element(By.ID, "employer-domain")
    field.send_keys("not a domain")
    statement = browser.find_element(By.ID, "employer-statement").text
    assert "SHA-256" in statement and "SM3" in statement and "not a domain" in statement
    browser.find_element(By.ID, "employer-consent").click()
    error = wait.until(ec.visibility_of_element_located((By.ID, "employer-domain-error")))
    assert "domain" in error.text
    field.clear()
    field.send_keys(DOMAIN)
    browser.find_element(By.ID, "employer-consent").click()
    wait.until(lambda _: DOMAIN in browser.find_element(By.ID, "employer-consents").text)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.execute_script("arguments[0].scrollIntoView()", section)
    browser.save_screenshot(str(ARTIFACTS / "portal-consent-en.png"))

    kept = requests.get(
        at(stack, "/v1/inbox/employer-consents"), params={"token": token}, timeout=30
    ).json()
    [given] = kept["consents"]
    assert given["employer_domain"] == DOMAIN and DOMAIN in given["statement"]
    assert "SHA-256 and SM3" in given["statement"]

    browser.find_element(By.CSS_SELECTOR, "#employer-consents button").click()
    wait.until(lambda _: "withdrawn" in browser.find_element(By.ID, "employer-consents").text)
    kept = requests.get(
        at(stack, "/v1/inbox/employer-consents"), params={"token": token}, timeout=30
    ).json()
    assert kept["consents"][0]["withdrawn_at"]

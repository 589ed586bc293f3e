"""Real answers of representative routes of the three services validate against the schemas
their own OpenAPI documents declare for them (JSON Schema 2020-12, which OpenAPI 3.1 uses):
the documents describe what the services actually send, errors included."""

from __future__ import annotations

import urllib.parse
from typing import Any

import jsonschema
import pytest
import requests

from tests.conftest import RunningStack, upload, wait_for_proof
from tests.integration.test_contracts_service import body

pytestmark = pytest.mark.chain


def documents(stack: RunningStack) -> dict[str, dict[str, Any]]:
    return {
        name: requests.get(stack.stack.urls[name] + "/openapi.json", timeout=30).json()
        for name in ("evidence", "contracts", "notify")
    }


def check(spec: dict[str, Any], path: str, method: str, answer: requests.Response) -> None:
    """`answer` is documented for (path, method) with its status and content type, and its body
    validates against the declared schema."""
    responses = spec["paths"][path][method.lower()]["responses"]
    documented = responses.get(str(answer.status_code)) or responses["default"]
    while "$ref" in documented:
        documented = spec["components"]["responses"][documented["$ref"].rsplit("/", 1)[1]]
    content_type = answer.headers["Content-Type"].split(";")[0]
    assert content_type in documented["content"], (path, answer.status_code, content_type)
    schema = {"components": spec["components"], **documented["content"][content_type]["schema"]}
    jsonschema.Draft202012Validator(schema).validate(answer.json())


@pytest.fixture(scope="module")
def specs(module_evidence_sqlite: RunningStack) -> dict[str, dict[str, Any]]:
    return documents(module_evidence_sqlite)


def test_evidence_answers_match_the_document(
    module_evidence_sqlite: RunningStack, specs: dict[str, dict[str, Any]]
) -> None:
    stack, spec = module_evidence_sqlite, specs["evidence"]
    created = upload(stack, b"answers conform", candidate_ref="answers-1")
    check(spec, "/v1/documents", "POST", created)
    doc_id = created.json()["id"]
    bundle = wait_for_proof(stack, doc_id)
    reads = {
        "/v1/documents/{document_id}": f"/v1/documents/{doc_id}",
        "/v1/documents/{document_id}/proof": f"/v1/documents/{doc_id}/proof",
        "/v1/documents/{document_id}/proofs": f"/v1/documents/{doc_id}/proofs",
        "/v1/documents": "/v1/documents?candidate_ref=answers-1&limit=1",
        "/v1/keys": "/v1/keys",
        "/v1/schemas": "/v1/schemas",
    }
    for documented, path in reads.items():
        check(spec, documented, "GET", requests.get(stack.url(path), headers=stack.hr, timeout=30))
    verdict = requests.post(stack.url("/v1/verify"), json={"proof": bundle}, timeout=60)
    check(spec, "/v1/verify", "POST", verdict)
    assert verdict.json()["checks"]
    item = {"kind": "other", "candidate_ref": "answers-1", "sha256": "0x" + "a" * 64}
    hashes = requests.post(
        stack.url("/v1/documents/hashes"), headers=stack.hr, json={"items": [item]}, timeout=30
    )
    check(spec, "/v1/documents/hashes", "POST", hashes)
    missing = requests.get(stack.url("/v1/documents/nope"), headers=stack.hr, timeout=30)
    assert missing.status_code == 404
    check(spec, "/v1/documents/{document_id}", "GET", missing)
    hashes_url = stack.url("/v1/documents/hashes")
    refused = requests.post(hashes_url, headers=stack.hr, json={}, timeout=30)
    assert refused.status_code == 422
    check(spec, "/v1/documents/hashes", "POST", refused)


def test_contracts_answers_match_the_document(
    module_evidence_sqlite: RunningStack, specs: dict[str, dict[str, Any]]
) -> None:
    stack, spec = module_evidence_sqlite, specs["contracts"]
    base = stack.stack.urls["contracts"]
    offered = requests.post(
        base + "/v1/agreements",
        headers={**stack.hr, "Prefer": "wait=30"},
        json=body(candidate_ref="answers-2"),
        timeout=60,
    )
    assert offered.status_code == 201, offered.text
    check(spec, "/v1/agreements", "POST", offered)
    agreement = offered.json()
    aid = agreement["id"]
    reads = {
        "/v1/agreements/{agreement_id}": f"/v1/agreements/{aid}",
        "/v1/agreements": "/v1/agreements?limit=2",
        "/v1/agreements/{agreement_id}/risk": f"/v1/agreements/{aid}/risk",
        "/v1/agreements/{agreement_id}/amendments": f"/v1/agreements/{aid}/amendments",
        "/v1/employer": "/v1/employer",
        "/v1/policy": "/v1/policy",
    }
    for documented, path in reads.items():
        check(spec, documented, "GET", requests.get(base + path, headers=stack.hr, timeout=30))
    token = urllib.parse.parse_qs(urllib.parse.urlparse(agreement["signing_link"]).query)["token"]
    portal = {
        "/v1/agreements/{agreement_id}/typed-data": f"/v1/agreements/{aid}/typed-data",
        "/v1/agreements/{agreement_id}/enrolment": f"/v1/agreements/{aid}/enrolment",
        "/v1/agreements/{agreement_id}/ceremony": f"/v1/agreements/{aid}/ceremony",
    }
    for documented, path in portal.items():
        answer = requests.get(base + path, params={"token": token[0]}, timeout=30)
        assert answer.status_code == 200, (path, answer.text)
        check(spec, documented, "GET", answer)
    revoked = requests.post(
        base + f"/v1/agreements/{aid}/links/revoke",
        headers=stack.hr,
        json={"reason": "answers test"},
        timeout=30,
    )
    check(spec, "/v1/agreements/{agreement_id}/links/revoke", "POST", revoked)
    refused = requests.post(
        base + f"/v1/agreements/{aid}/start", headers=stack.hr, timeout=60
    )  # the contract refuses: not committed
    assert refused.status_code == 409, refused.text
    check(spec, "/v1/agreements/{agreement_id}/start", "POST", refused)


def test_notify_answers_match_the_document(
    module_evidence_sqlite: RunningStack, specs: dict[str, dict[str, Any]]
) -> None:
    stack, spec = module_evidence_sqlite, specs["notify"]
    base = stack.stack.urls["notify"]
    reads = {
        "/v1/templates": "/v1/templates",
        "/v1/templates/{kind}/{language}": "/v1/templates/checkin/en",
        "/v1/branding": "/v1/branding",
        "/v1/sms": "/v1/sms",
        "/v1/alerts": "/v1/alerts",
        "/v1/calendar": "/v1/calendar",
        "/v1/candidates/{candidate_ref}/touchpoints": "/v1/candidates/answers-3/touchpoints",
    }
    for documented, path in reads.items():
        answer = requests.get(base + path, headers=stack.hr, timeout=30)
        assert answer.status_code == 200, (path, answer.text)
        check(spec, documented, "GET", answer)
    missing = requests.get(base + "/v1/touchpoints/nope", headers=stack.hr, timeout=30)
    assert missing.status_code == 404
    check(spec, "/v1/touchpoints/{touchpoint_id}", "GET", missing)

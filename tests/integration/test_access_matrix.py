"""Every endpoint of every service, every role, two tenants: the expected answer of each cell is
declared once below, and an endpoint that is not declared fails the test.

Policies: READ (hr, legal, admin), WRITE (hr, admin), ADMIN (admin) need a key of the tenant;
LINK endpoints take a candidate's `?token=` or a key; TOKEN endpoints take a signed token in the
path whatever else is sent; PUBLIC endpoints need nothing and are rate limited; PROBE endpoints
(health, metrics, OpenAPI) need nothing. The console's pages (PAGE_READ, PAGE_WRITE) take a key
or a signed-in person's session like READ and WRITE, and send an anonymous visitor to sign in;
its public forms (FORM) accept nothing without their CSRF token.

A key of the wrong role is 403 before anything is parsed; another tenant's key on this tenant's
resource is 404 (no existence leak); a valid caller never gets 401/403 or a 5xx.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import ROOT, RunningStack, make_settings, start_stack, upload, wait_for_proof
from tests.integration.test_contracts_service import body

pytestmark = [pytest.mark.chain]

READ, WRITE, ADMIN, LINK, TOKEN, PUBLIC, PROBE = (
    "read",
    "write",
    "admin",
    "link",
    "token",
    "public",
    "probe",
)
# The agreement's dossier: legal and admin only (HR asks legal for the package).
LEGAL = "legal-read"
# Console pages (HTML): a key or a session of the right role and tenant, like READ and WRITE;
# without either, the person is sent to sign in (303 to /console/login) instead of a 401.
PAGE_READ, PAGE_WRITE, PAGE_ADMIN = "page-read", "page-write", "page-admin"
# Public forms (sign-in, set-password): nothing is accepted without the double-submitted CSRF
# token (403), or from a set-up link that does not exist (410).
FORM = "form"
ALLOWED = {
    READ: {"hr", "legal", "admin"},
    WRITE: {"hr", "admin"},
    ADMIN: {"admin"},
    LEGAL: {"legal", "admin"},
    PAGE_READ: {"hr", "legal", "admin"},
    PAGE_WRITE: {"hr", "admin"},
    PAGE_ADMIN: {"admin"},
}
PAGES = {PAGE_READ, PAGE_WRITE, PAGE_ADMIN}

A = "/v1/agreements/<string:agreement_id>"
AM = A + "/amendments/<string:amendment_id>"
CA = "/console/agreements/<string:agreement_id>"
EXPECTED: dict[tuple[str, str, str], str] = {
    # evidence
    ("evidence", "POST", "/v1/documents"): WRITE,
    ("evidence", "GET", "/v1/documents"): READ,
    ("evidence", "POST", "/v1/documents/hashes"): WRITE,
    ("evidence", "GET", "/v1/documents/<string:document_id>"): READ,
    ("evidence", "GET", "/v1/documents/<string:document_id>/content"): READ,
    ("evidence", "GET", "/v1/documents/<string:document_id>/proof"): READ,
    ("evidence", "GET", "/v1/documents/<string:document_id>/proofs"): READ,
    ("evidence", "GET", "/v1/documents/<string:document_id>/certificate"): READ,
    ("evidence", "POST", "/v1/verify"): PUBLIC,
    ("evidence", "GET", "/v1/keys"): PUBLIC,
    ("evidence", "GET", "/v1/schemas"): PUBLIC,
    ("evidence", "GET", "/v1/schemas/<string:name>"): PUBLIC,
    ("evidence", "GET", "/v1/uploads/<string:token>"): TOKEN,
    ("evidence", "POST", "/v1/uploads/<string:token>"): TOKEN,
    ("evidence", "POST", "/v1/documents/records/<string:token>"): TOKEN,
    # contracts
    ("contracts", "POST", "/v1/agreements"): WRITE,
    ("contracts", "GET", "/v1/agreements"): READ,
    ("contracts", "GET", A): READ,
    ("contracts", "GET", A + "/terms"): LINK,
    ("contracts", "GET", A + "/typed-data"): LINK,
    ("contracts", "POST", A + "/signature"): LINK,
    ("contracts", "GET", A + "/enrolment"): LINK,
    ("contracts", "POST", A + "/enrolment/code"): LINK,
    ("contracts", "POST", A + "/enrolment/verify"): LINK,
    ("contracts", "POST", A + "/enrolment/signer"): LINK,
    ("contracts", "POST", A + "/enrolment/events"): LINK,
    ("contracts", "GET", A + "/signing-record"): LINK,
    ("contracts", "GET", A + "/ceremony"): LINK,
    ("contracts", "POST", A + "/milestones/<string:kind>/evidence"): WRITE,
    ("contracts", "POST", A + "/start"): WRITE,
    ("contracts", "POST", A + "/breach"): WRITE,
    ("contracts", "POST", A + "/withdraw"): WRITE,
    ("contracts", "POST", A + "/expire"): WRITE,
    ("contracts", "POST", A + "/cancel"): WRITE,
    ("contracts", "GET", A + "/arrival/typed-data"): LINK,
    ("contracts", "POST", A + "/arrival"): LINK,
    ("contracts", "POST", A + "/arrival/dispute"): WRITE,
    ("contracts", "GET", A + "/risk"): READ,
    ("contracts", "GET", A + "/dossier"): LEGAL,
    ("contracts", "POST", A + "/dossier"): LEGAL,
    ("contracts", "POST", A + "/amendments"): WRITE,
    ("contracts", "GET", A + "/amendments"): READ,
    ("contracts", "GET", AM): LINK,
    ("contracts", "GET", AM + "/terms"): LINK,
    ("contracts", "GET", AM + "/typed-data"): LINK,
    ("contracts", "POST", AM + "/signature"): LINK,
    ("contracts", "GET", "/v1/employer"): READ,
    ("contracts", "PUT", "/v1/employer"): ADMIN,
    ("contracts", "GET", "/v1/employer/binding"): ADMIN,
    ("contracts", "POST", A + "/links/revoke"): WRITE,
    ("contracts", "GET", "/v1/policy"): READ,
    ("contracts", "PUT", "/v1/policy"): ADMIN,
    ("evidence", "GET", "/v1/witnesses/<string:witness>"): READ,
    ("evidence", "PUT", "/v1/witnesses/<string:witness>"): ADMIN,
    ("evidence", "DELETE", "/v1/witnesses/<string:witness>"): ADMIN,
    # notify
    ("notify", "GET", "/v1/replies/<string:token>"): TOKEN,
    ("notify", "POST", "/v1/replies/<string:token>"): TOKEN,
    ("notify", "GET", "/v1/unsubscribe/<string:token>"): TOKEN,
    ("notify", "POST", "/v1/unsubscribe/<string:token>"): TOKEN,
    ("notify", "GET", "/v1/candidates/<string:candidate_ref>/preferences"): READ,
    ("notify", "PUT", "/v1/candidates/<string:candidate_ref>/preferences"): WRITE,
    ("notify", "GET", "/v1/candidates/<string:candidate_ref>/touchpoints"): READ,
    ("notify", "GET", "/v1/touchpoints/<string:touchpoint_id>"): READ,
    ("notify", "GET", "/v1/inbox"): LINK,
    ("notify", "PUT", "/v1/inbox/preferences"): LINK,
    ("notify", "GET", "/v1/inbox/employer-consents"): LINK,
    ("notify", "POST", "/v1/inbox/employer-consents"): LINK,
    ("notify", "DELETE", "/v1/inbox/employer-consents/<string:consent_id>"): LINK,
    ("notify", "POST", "/v1/employer-confirmations"): WRITE,
    ("notify", "GET", "/v1/employer-confirmations/<string:request_id>"): READ,
    ("notify", "POST", "/v1/employer-confirmations/<string:request_id>/email-reply"): WRITE,
    ("notify", "GET", "/v1/confirm/<string:token>"): TOKEN,
    ("notify", "POST", "/v1/confirm/<string:token>"): TOKEN,
    ("notify", "GET", "/v1/templates"): READ,
    ("notify", "GET", "/v1/templates/<string:kind>/<string:language>"): READ,
    ("notify", "PUT", "/v1/templates/<string:kind>/<string:language>"): WRITE,
    ("notify", "DELETE", "/v1/templates/<string:kind>/<string:language>"): WRITE,
    ("notify", "GET", "/v1/branding"): READ,
    ("notify", "PUT", "/v1/branding"): WRITE,
    ("notify", "GET", "/v1/sms"): READ,
    ("notify", "PUT", "/v1/sms"): WRITE,
    ("notify", "GET", "/v1/alerts"): READ,
    ("notify", "PUT", "/v1/alerts"): WRITE,
    ("notify", "POST", "/v1/alerts/test"): WRITE,
    ("notify", "GET", "/v1/calendar"): READ,
    ("notify", "PUT", "/v1/calendar"): WRITE,
    # web: the pages for people
    ("web", "GET", "/verify"): PUBLIC,
    ("web", "GET", "/verify/verifier.html"): PUBLIC,
    ("web", "GET", "/static/<path:filename>"): PUBLIC,
    # The portal's page is the same for everyone (its script calls the APIs with the link's
    # token); a program asking for JSON is sent to the typed data, which needs the link.
    ("web", "GET", "/portal/<string:agreement_id>"): LINK,
    ("web", "GET", "/portal/<string:agreement_id>/amendments/<string:amendment_id>"): LINK,
    # Where an e-mail's reply, upload or unsubscribe link lands for a browser: the page only.
    ("web", "GET", "/portal/<string:agreement_id>/reply"): PUBLIC,
    ("web", "GET", "/portal/<string:agreement_id>/upload"): PUBLIC,
    ("web", "GET", "/portal/<string:agreement_id>/unsubscribe"): PUBLIC,
    ("web", "GET", "/l/<string:code>"): PUBLIC,
    # web: the HR console
    ("web", "GET", "/console/login"): PUBLIC,
    ("web", "POST", "/console/login"): FORM,
    ("web", "GET", "/console/setup/<string:token>"): PUBLIC,
    ("web", "POST", "/console/setup/<string:token>"): FORM,
    ("web", "POST", "/console/logout"): READ,
    ("web", "GET", "/console"): PAGE_READ,
    ("web", "GET", "/console/board.json"): READ,
    ("web", "GET", CA): PAGE_READ,
    ("web", "GET", CA + "/<string:action>"): PAGE_WRITE,
    ("web", "POST", CA + "/<string:action>"): WRITE,
    ("web", "GET", CA + "/amend"): PAGE_WRITE,
    ("web", "POST", CA + "/amend"): WRITE,
    ("web", "GET", "/console/offer"): PAGE_WRITE,
    ("web", "POST", "/console/offer"): WRITE,
    ("web", "GET", "/console/alerts"): PAGE_WRITE,
    ("web", "POST", "/console/alerts"): WRITE,
    ("web", "POST", "/console/alerts/test"): WRITE,
    ("web", "GET", "/console/report"): PAGE_READ,
    ("web", "GET", "/console/report.csv"): READ,
    ("web", "GET", "/console/people"): PAGE_ADMIN,
    ("web", "POST", "/console/people"): ADMIN,
    ("web", "GET", "/console/people/<string:user_id>/disable"): PAGE_ADMIN,
    ("web", "POST", "/console/people/<string:user_id>/disable"): ADMIN,
}
for _service in ("evidence", "contracts", "notify", "web"):
    EXPECTED[(_service, "GET", "/healthz")] = PROBE
    EXPECTED[(_service, "GET", "/metrics")] = PROBE
    EXPECTED[(_service, "GET", "/openapi.json")] = PROBE
    EXPECTED[(_service, "GET", "/docs")] = PROBE

# Path parameters that name no resource of either tenant: a write reaches the service layer
# (and proves the role passed) without changing anything.
MISSING = {
    "agreement_id": "00000000-0000-4000-8000-000000000000",
    "amendment_id": "00000000-0000-4000-8000-000000000001",
    "document_id": "00000000-0000-4000-8000-000000000002",
    "touchpoint_id": "00000000-0000-4000-8000-000000000003",
    "candidate_ref": "nobody-at-all",
    "kind": "resignation_submitted",
    "language": "en",
    "token": "not-a-token",
    "filename": "no-such-file.css",
    "code": "AAAAAAAAAAAA",
    "action": "revoke",
    "user_id": "0000000000000000",
    "name": "no-such-schema",
    "request_id": "00000000-0000-4000-8000-000000000004",
    "consent_id": "00000000-0000-4000-8000-000000000005",
    "witness": "btoe",
}


def _days_from_now(days: int) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=days)).date().isoformat()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, anvil: Any) -> Iterator[dict[str, Any]]:
    tmp: Path = tmp_path_factory.mktemp("matrix")
    settings = make_settings(
        tmp, f"sqlite:///{tmp / 'm.db'}", anvil.url, public_rate_limit="100000/minute"
    )
    stack = start_stack(settings)
    try:
        doc = upload(stack, b"%PDF matrix", candidate_ref="cand-matrix")
        assert doc.status_code == 201, doc.text
        wait_for_proof(stack, doc.json()["id"])
        contracts = stack.stack.urls["contracts"]
        offered = requests.post(
            contracts + "/v1/agreements",
            json=body(candidate_ref="cand-matrix"),
            headers={**stack.hr, "Prefer": "wait=30"},
            timeout=60,
        )
        assert offered.status_code == 201, offered.text
        agreement = offered.json()
        amended = requests.post(
            contracts + f"/v1/agreements/{agreement['id']}/amendments",
            # a new due date after the offered one (today + 10 days) and before the start
            json={"milestones": [{"index": 0, "due": _days_from_now(12)}], "reason": "matrix"},
            headers=stack.hr,
            timeout=60,
        )
        assert amended.status_code == 201, amended.text
        touchpoints = _eventually_touchpoints(stack)
        from offerseal.shared.users import add_user

        ids = {
            "agreement_id": agreement["id"],
            "amendment_id": amended.json()["id"],
            "document_id": doc.json()["id"],
            "touchpoint_id": touchpoints[0]["id"],
            "candidate_ref": "cand-matrix",
            "kind": "invitation",
            "language": "en",
            "token": "not-a-token",
            "filename": "site.css",
            "code": "AAAAAAAAAAAA",
            "action": "revoke",
            "user_id": add_user(stack.db, "matrix@acme.example", "hr", "acme", by="test")[0],
            "name": "proof-bundle-2.json",
            "request_id": MISSING["request_id"],
            "consent_id": MISSING["consent_id"],
            "witness": "btoe",
        }
        from offerseal.shared.auth import create_key

        other_admin = {"Authorization": f"Bearer {create_key(stack.db, 'admin', 'globex')[1]}"}
        yield {"stack": stack, "ids": ids, "other_admin": other_admin}
    finally:
        stack.stack.stop()


def _eventually_touchpoints(stack: RunningStack) -> list[dict[str, Any]]:
    import time

    url = stack.stack.urls["notify"] + "/v1/candidates/cand-matrix/touchpoints"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        response = requests.get(url, headers=stack.hr, timeout=30)
        if response.status_code == 200 and response.json()["items"]:
            return list(response.json()["items"])
        time.sleep(0.2)
    raise AssertionError("notify planned no touchpoint for the offer")


def _routes(stack: RunningStack) -> dict[tuple[str, str, str], None]:
    found: dict[tuple[str, str, str], None] = {}
    for app, name in (
        (stack.stack.evidence.app, "evidence"),
        (stack.stack.contracts.app, "contracts"),
        (stack.stack.notify.app, "notify"),
        (stack.stack.web_app, "web"),
    ):
        for rule in app.url_map.iter_rules():
            if rule.endpoint == "static" and name != "web":  # only the web app serves files
                continue
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                found[(name, method, rule.rule)] = None
    return found


def _path(rule: str, values: dict[str, str]) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: values[m.group(1)], rule)


def _call(
    world: dict[str, Any],
    service: str,
    method: str,
    path: str,
    headers: dict[str, str],
    follow: bool = True,
) -> requests.Response:
    stack: RunningStack = world["stack"]
    kwargs: dict[str, Any] = {"headers": headers, "timeout": 60, "allow_redirects": follow}
    if method in {"POST", "PUT"}:
        kwargs["json"] = {}
    return requests.request(method, stack.stack.urls[service] + path, **kwargs)


def test_the_peoples_origin_routes_every_api_path_to_its_service(world: dict[str, Any]) -> None:
    """One origin for people: each service's /v1 routes reach that service through the web
    port's gateway, and docker-compose's gateway routes the same prefixes."""
    from offerseal.shared.gateway import PREFIXES

    gateway = (ROOT / "deploy" / "gateway.conf").read_text()
    for service, method, rule in _routes(world["stack"]):
        if service == "web" or not rule.startswith("/v1/"):
            continue
        owner = [
            name
            for name, prefixes in PREFIXES.items()
            if any(rule == p or rule.startswith(p + "/") for p in prefixes)
        ]
        assert owner == [service], (service, method, rule, owner)
    for service, prefixes in PREFIXES.items():
        for prefix in prefixes:
            assert f"location {prefix} {{ proxy_pass http://{service};" in gateway, prefix


def test_every_route_is_declared(world: dict[str, Any]) -> None:
    found = set(_routes(world["stack"]))
    assert found - set(EXPECTED) == set(), "new endpoints need an entry in EXPECTED"
    assert set(EXPECTED) - found == set(), "EXPECTED names endpoints that do not exist"


CELLS = sorted(EXPECTED)


ID_PARAMS = ("agreement_id", "amendment_id", "document_id", "touchpoint_id", "user_id")


@pytest.mark.parametrize(("service", "method", "rule"), CELLS)
def test_cell(world: dict[str, Any], service: str, method: str, rule: str) -> None:
    policy = EXPECTED[(service, method, rule)]
    stack: RunningStack = world["stack"]
    own = _path(rule, world["ids"])
    missing = _path(rule, MISSING)
    mutates = method in {"POST", "PUT", "DELETE"}
    has_resource = any(f"<string:{name}>" in rule for name in ID_PARAMS)

    def call(path: str, headers: dict[str, str]) -> requests.Response:
        response = _call(world, service, method, path, headers)
        assert response.status_code < 500, f"{method} {path}: {response.status_code}"
        return response

    def answer(path: str, headers: dict[str, str]) -> int:
        return call(path, headers).status_code

    def another_tenant_learns_nothing(other: dict[str, str]) -> None:
        if has_resource and mutates:
            # the same answer as for a resource that does not exist, and nothing done
            theirs, nobodys = answer(own, other), answer(missing, other)
            assert theirs == nobodys and not 200 <= theirs < 300, (theirs, nobodys)
        elif has_resource:
            assert answer(own, other) == 404, "another tenant's key must not see this"
        elif "<string:candidate_ref>" in rule and not mutates:
            assert world["ids"]["touchpoint_id"] not in call(own, other).text

    if policy in PAGES:
        anonymous = _call(world, service, method, own, {}, follow=False)
        assert anonymous.status_code == 303
        assert anonymous.headers["Location"].startswith("/console/login?next=")
    if policy in ALLOWED:
        if policy not in PAGES:
            assert answer(own, {}) == 401
        for role in ("hr", "legal", "admin"):
            headers = getattr(stack, role)
            if role not in ALLOWED[policy]:
                assert answer(own, headers) == 403, role
            else:
                # writes go to a resource that does not exist: the role passed, nothing changed
                status = answer(missing if mutates and has_resource else own, headers)
                assert status not in (401, 403), (role, status)
        another_tenant_learns_nothing(
            world["other_admin"] if policy in (ADMIN, PAGE_ADMIN, LEGAL) else stack.other_tenant
        )
    elif policy == LINK:
        assert answer(own, {}) == 401  # no key and no token
        assert answer(own + "?token=not-a-token", {}) == 401
        status = answer(missing if mutates else own, stack.hr)
        assert status not in (401, 403), status
        another_tenant_learns_nothing(stack.other_tenant)
    elif policy == FORM:
        assert answer(own, {}) in (403, 410)  # no CSRF token, or no such set-up link
    elif policy == TOKEN:
        for headers in ({}, stack.hr, stack.other_tenant):
            assert answer(own, headers) == 401
    else:  # PUBLIC, PROBE
        status = answer(own, {})
        assert status not in (401, 403), status

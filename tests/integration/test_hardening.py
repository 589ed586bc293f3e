"""Hostile requests against real service processes: no request takes a service down, nothing
is parsed before the caller is known, and anonymous endpoints cost a bounded amount."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from harness.procs import ServiceProcess, create_key, service_env
from offerseal.shared.config import ANVIL_DEV_KEY_2
from tests.conftest import api_link, free_port
from tests.integration.test_notify import (
    _insert_due,
    links_in,
    mailbox,  # noqa: F401  (fixture)
    notify_stack,
    offer,
    sign,
)

pytestmark = [pytest.mark.chain, pytest.mark.slow]


@pytest.fixture
def stack(tmp_path: Path, sqlite_url: str, anvil: Any) -> Iterator[dict[str, Any]]:
    """All three services in one real process, as `offerseal up` runs them."""
    env = service_env(
        tmp_path,
        sqlite_url,
        anvil.url,
        OFFERSEAL_CONTRACTS_SIGNER_KEY=ANVIL_DEV_KEY_2,
        OFFERSEAL_CONTRACTS_PORT=str(free_port()),
        OFFERSEAL_NOTIFY_PORT=str(free_port()),
        OFFERSEAL_PUBLIC_RATE_LIMIT="1000/minute",
    )
    process = ServiceProcess(env, tmp_path / "service.log").start()
    try:  # a process that did not come up is stopped too, not left running
        process.wait_http(60)
        urls = {
            "evidence": f"http://127.0.0.1:{env['OFFERSEAL_EVIDENCE_PORT']}",
            "contracts": f"http://127.0.0.1:{env['OFFERSEAL_CONTRACTS_PORT']}",
            "notify": f"http://127.0.0.1:{env['OFFERSEAL_NOTIFY_PORT']}",
        }
        for base in urls.values():
            _wait_healthy(base)
        yield {"process": process, "urls": urls, "env": env, "log": tmp_path / "service.log"}
    finally:
        process.terminate()


def _wait_healthy(base: str, timeout: float = 60.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(base + "/healthz", timeout=5).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):
            pass
        time.sleep(0.2)
    raise AssertionError(f"{base} did not become healthy")


def _alive(stack: dict[str, Any]) -> None:
    process = stack["process"].process
    assert process.poll() is None, f"the service process died:\n{stack['log'].read_text()[-3000:]}"
    for base in stack["urls"].values():
        assert requests.get(base + "/healthz", timeout=10).status_code == 200


def _deep(depth: int) -> bytes:
    return b'{"proof": ' + b"[" * depth + b"]" * depth + b"}"


@pytest.mark.parametrize(
    ("service", "path", "headers"),
    [
        ("evidence", "/v1/verify", {}),
        ("contracts", "/v1/agreements", {}),
        ("notify", "/v1/replies/x", {}),
    ],
)
def test_a_deeply_nested_body_is_refused_and_every_service_stays_up(
    stack: dict[str, Any], service: str, path: str, headers: dict[str, str]
) -> None:
    body = _deep(80_000)  # ~160 KB: once enough to SIGSEGV the whole stack
    response = requests.post(
        stack["urls"][service] + path,
        data=body,
        headers={"Content-Type": "application/json", **headers},
        timeout=30,
    )
    assert response.status_code in (401, 413, 422), response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    _alive(stack)


def test_nesting_is_refused_with_the_field_named_even_for_a_valid_key(
    stack: dict[str, Any],
) -> None:
    key = create_key(stack["env"], "hr", "acme")
    response = requests.post(
        stack["urls"]["contracts"] + "/v1/agreements",
        data=_deep(200),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "body"
    assert "nest" in response.json()["detail"]
    _alive(stack)


def test_a_json_body_above_one_mebibyte_is_413_without_parsing(stack: dict[str, Any]) -> None:
    key = create_key(stack["env"], "hr", "acme")
    big = json.dumps({"candidate_ref": "x" * (1 << 20)}).encode()
    response = requests.post(
        stack["urls"]["contracts"] + "/v1/agreements",
        data=big,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert response.status_code == 413, response.text
    _alive(stack)


def test_no_key_is_401_before_the_body_is_read(stack: dict[str, Any]) -> None:
    # 12 MB of hashes without a key: refused as unauthenticated, not parsed and found invalid.
    body = b'{"items": [' + b",".join([b'{"sha256": "0x00"}'] * 600_000) + b"]}"
    response = requests.post(
        stack["urls"]["evidence"] + "/v1/documents/hashes",
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=60,
    )
    assert response.status_code == 401, response.text
    for service, path in [("contracts", "/v1/agreements"), ("notify", "/v1/templates")]:
        response = requests.post(
            stack["urls"][service] + path,
            data=b"{not json",
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
        assert response.status_code in (401, 405), response.text
    _alive(stack)


def test_an_anonymous_proof_longer_than_any_tree_is_refused(stack: dict[str, Any]) -> None:
    bundle = {
        "format": "offerseal-proof/1",
        "merkle": {"root": "0x" + "00" * 32, "proof": ["0x" + "11" * 32] * 10_000},
    }
    response = requests.post(
        stack["urls"]["evidence"] + "/v1/verify",
        json={"proof": bundle, "sha256": "0x" + "22" * 32},
        timeout=30,
    )
    assert response.status_code == 422, response.text
    assert any(e["field"].startswith("proof") for e in response.json()["errors"])
    _alive(stack)


def test_anonymous_endpoints_are_rate_limited_per_client(
    tmp_path: Path, sqlite_url: str, anvil: Any
) -> None:
    env = service_env(tmp_path, sqlite_url, anvil.url, OFFERSEAL_PUBLIC_RATE_LIMIT="5/minute")
    process = ServiceProcess(env, tmp_path / "service.log").start()
    try:
        # /healthz is a probe: it spends none of the anonymous budget (a GET /v1/keys that
        # timed out while the server started would still be counted once it is read)
        process.wait_healthy(60)
        # X-Forwarded-For is not trusted by default: forging it buys no new budget
        statuses = [
            requests.post(
                process.base + "/v1/verify",
                json={"proof": {}},
                headers={"X-Forwarded-For": f"198.51.100.{i}"},
                timeout=30,
            ).status_code
            for i in range(8)
        ]
        assert statuses == [200] * 5 + [429] * 3, statuses
        limited = requests.post(process.base + "/v1/verify", json={"proof": {}}, timeout=30)
        assert limited.headers["Content-Type"].startswith("application/problem+json")
        assert int(limited.headers["Retry-After"]) >= 1
        # a caller with a key is not limited by the anonymous budget
        key = create_key(env, "hr", "acme")
        ok = requests.get(
            process.base + "/v1/documents", headers={"Authorization": f"Bearer {key}"}, timeout=30
        )
        assert ok.status_code == 200, ok.text
    finally:
        process.terminate()


def test_behind_a_trusted_proxy_each_client_has_its_own_budget(
    tmp_path: Path, sqlite_url: str, anvil: Any
) -> None:
    env = service_env(
        tmp_path,
        sqlite_url,
        anvil.url,
        OFFERSEAL_PUBLIC_RATE_LIMIT="3/minute",
        OFFERSEAL_TRUSTED_PROXIES="1",
    )
    process = ServiceProcess(env, tmp_path / "service.log").start()
    try:
        process.wait_http(60)

        def verify(client: str) -> int:
            # what the gateway sends: the client's address appended by the one proxy hop
            return requests.post(
                process.base + "/v1/verify",
                json={"proof": {}},
                headers={"X-Forwarded-For": f"203.0.113.250, {client}"},
                timeout=30,
            ).status_code

        assert [verify("198.51.100.7") for _ in range(4)] == [200, 200, 200, 429]
        assert verify("198.51.100.8") == 200  # another client behind the same gateway
        # the intake receipt names the client, not the gateway
        key = create_key(env, "hr", "acme")
        stored = requests.post(
            process.base + "/v1/documents",
            headers={"Authorization": f"Bearer {key}", "X-Forwarded-For": "198.51.100.9"},
            data={"kind": "other", "candidate_ref": "cand-1"},
            files={"file": ("a.txt", b"behind the gateway", "text/plain")},
            timeout=30,
        )
        assert stored.status_code == 201, stored.text
        described = requests.get(
            process.base + f"/v1/documents/{stored.json()['id']}",
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        ).json()
        assert described["provenance"]["client_address"] == "198.51.100.9", described
    finally:
        process.terminate()


def test_replicas_share_one_budget_through_redis() -> None:
    import uuid

    from offerseal.shared.errors import TooManyRequests
    from offerseal.shared.guards import RateLimiter
    from tests.conftest import require_server

    require_server("Redis", "127.0.0.1", 6379)
    service = f"test-{uuid.uuid4().hex}"  # a fresh budget for this run
    one = RateLimiter(service, "4/minute", "redis://127.0.0.1:6379")
    two = RateLimiter(service, "4/minute", "redis://127.0.0.1:6379")
    one.hit("203.0.113.9")
    two.hit("203.0.113.9")
    one.hit("203.0.113.9")
    two.hit("203.0.113.9")
    with pytest.raises(TooManyRequests):
        one.hit("203.0.113.9")


def test_stored_files_are_downloads_never_pages(evidence_sqlite: Any) -> None:
    stack = evidence_sqlite
    response = requests.post(
        stack.url("/v1/documents"),
        headers=stack.hr,
        data={"kind": "other", "candidate_ref": "cand-1"},
        files={"file": ("note.html", b"<script>alert(1)</script>", "text/html")},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    content = requests.get(
        stack.url(f"/v1/documents/{response.json()['id']}/content"), headers=stack.hr, timeout=30
    )
    assert content.status_code == 200
    assert content.headers["Content-Type"] == "application/octet-stream"
    assert content.headers["Content-Disposition"].startswith("attachment;")
    assert content.headers["X-Content-Type-Options"] == "nosniff"


def test_every_answer_carries_the_security_headers(module_evidence_sqlite: Any) -> None:
    for path, headers in [
        ("/v1/keys", {}),
        ("/v1/documents", module_evidence_sqlite.hr),
        ("/nope", {}),
    ]:
        response = requests.get(module_evidence_sqlite.url(path), headers=headers, timeout=30)
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert "Strict-Transport-Security" not in response.headers  # plain HTTP here


def test_made_up_methods_do_not_grow_the_metrics(evidence_sqlite: Any) -> None:
    for method in ("FOO", "BAR", "BAZ"):
        requests.request(method, evidence_sqlite.url("/v1/keys"), timeout=30)
    metrics = requests.get(evidence_sqlite.url("/metrics"), timeout=30).text
    assert 'method="FOO"' not in metrics
    assert 'method="other"' in metrics


def test_a_json_array_as_a_reply_is_422_not_500(module_evidence_sqlite: Any) -> None:
    import time

    from offerseal.shared.links import PURPOSE_REPLY, Link

    stack = module_evidence_sqlite
    signer = stack.stack.notify.service.replies.links
    token = signer.issue(
        Link("acme", "ag-1", "cand-1", PURPOSE_REPLY, int(time.time()) + 600, "tp-1")
    )
    base = stack.stack.urls["notify"] + "/v1/replies/"
    response = requests.post(base + token, json=["on_track"], timeout=30)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "body"
    # a token we did not issue is refused before the body is even read
    assert requests.post(base + "x.y", json=["on_track"], timeout=30).status_code == 401


def test_keys_are_listed_revoked_and_expire_from_the_command_line(
    stack: dict[str, Any],
) -> None:
    import subprocess
    import sys

    env = {**__import__("os").environ, **stack["env"]}

    def offerseal(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "offerseal.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    created = offerseal("keys", "create", "--role", "hr", "--tenant", "acme", "--expires", "1h")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    key_id = token.split("_")[1]
    auth = {"Authorization": f"Bearer {token}"}
    documents = stack["urls"]["evidence"] + "/v1/documents"
    assert requests.get(documents, headers=auth, timeout=30).status_code == 200

    listed = offerseal("keys", "list", "--tenant", "acme", "--json")
    row = next(k for k in json.loads(listed.stdout) if k["key_id"] == key_id)
    assert row["active"] and row["expires_at"] and token.rsplit("_", 1)[1] not in listed.stdout

    revoked = offerseal("keys", "revoke", key_id)
    assert revoked.returncode == 0, revoked.stderr
    # the serving process caches a valid key for at most CACHE_SECONDS
    import time

    from offerseal.shared.auth import CACHE_SECONDS

    deadline = time.monotonic() + CACHE_SECONDS + 30
    while requests.get(documents, headers=auth, timeout=30).status_code != 401:
        assert time.monotonic() < deadline, "the revoked key still works"
        time.sleep(0.2)
    assert offerseal("keys", "revoke", key_id).returncode == 1


def test_a_cursor_beyond_any_row_number_is_422_not_500(module_evidence_sqlite: Any) -> None:
    response = requests.get(
        module_evidence_sqlite.url("/v1/documents"),
        params={"after": str(2**120)},
        headers=module_evidence_sqlite.hr,
        timeout=30,
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "after"


# ---- leaked links ------------------------------------------------------------------------


def test_a_leaked_upload_link_is_bounded_and_dies_with_its_milestone(
    tmp_path: Path,
    sqlite_url: str,
    fresh_anvil: Any,
    mailbox: Any,  # noqa: F811
) -> None:
    import time

    box, smtp_url = mailbox
    stack = notify_stack(tmp_path, sqlite_url, fresh_anvil, smtp_url=smtp_url)
    try:
        requests.put(
            stack.stack.urls["contracts"] + "/v1/policy",
            json={"candidate_uploads": "auto"},
            headers=stack.admin,
            timeout=30,
        ).raise_for_status()
        agreement = offer(
            stack, language="en", candidate_contact={"email": "c@example.com", "language": "en"}
        )
        box.wait(lambda m: "sign" in m["Subject"])
        sign(stack, agreement)
        _insert_due(
            stack,
            agreement["id"],
            "milestone_request",
            essential=True,
            data={"milestone": "resignation_submitted", "due_at": "2026-12-10"},
        )
        [request_mail] = box.wait(lambda m: "evidence" in m["Subject"])
        link = next(u for u in links_in(request_mail) if "/v1/uploads/" in u)

        def post(n: int) -> requests.Response:
            return requests.post(
                link, files={"file": (f"{n}.pdf", f"%PDF {n}".encode())}, timeout=30
            )

        from offerseal.evidence.domain.documents import MAX_CANDIDATE_UPLOADS
        from offerseal.shared.chain import connect

        # "auto": the first anchored upload confirms the stage, and notify then withdraws this
        # very link (410). Hold the blocks while the bound is checked: on a busy machine that
        # pipeline could otherwise overtake uploads 1, 2 and 99.
        rpc = connect(fresh_anvil.url).provider
        rpc.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
        try:
            first = post(0)
            assert first.status_code == 201, first.text
            for n in range(1, MAX_CANDIDATE_UPLOADS):
                assert post(n).status_code == 201
            over = post(99)
            assert over.status_code == 409 and "HR contact" in over.json()["detail"]
        finally:
            rpc.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
            rpc.make_request("evm_mine", [])  # type: ignore[arg-type]

        url = stack.stack.urls["contracts"] + f"/v1/agreements/{agreement['id']}"
        deadline = time.monotonic() + 60
        while not requests.get(url, headers=stack.hr, timeout=30).json()["milestones"][0][
            "confirmed_at"
        ]:
            assert time.monotonic() < deadline, "the milestone was never confirmed"
            time.sleep(0.2)
        # once the stage is confirmed (and notify heard of it) the link is dead
        deadline = time.monotonic() + 60
        while (status := requests.get(link, timeout=30).status_code) != 410:
            assert status == 200 and time.monotonic() < deadline, status
            time.sleep(0.2)
        assert post(100).status_code == 410
    finally:
        stack.stack.stop()


def test_hr_withdraws_a_link_sent_to_a_wrong_address(
    tmp_path: Path, sqlite_url: str, fresh_anvil: Any
) -> None:
    from offerseal.contracts.models import Agreement

    stack = notify_stack(tmp_path, sqlite_url, fresh_anvil)
    try:
        agreement = offer(stack)
        link = agreement["signing_link"]
        terms = api_link(link, "/terms")
        assert requests.get(terms, timeout=30).status_code == 200
        base = stack.stack.urls["contracts"] + f"/v1/agreements/{agreement['id']}"
        legal = requests.post(
            base + "/links/revoke",
            json={"reason": "wrong address"},
            headers=stack.legal,
            timeout=30,
        )
        assert legal.status_code == 403
        foreign = requests.post(
            base + "/links/revoke", json={"reason": "x"}, headers=stack.other_tenant, timeout=30
        )
        assert foreign.status_code == 404
        revoked = requests.post(
            base + "/links/revoke", json={"reason": "wrong address"}, headers=stack.hr, timeout=30
        )
        assert revoked.status_code == 200, revoked.text
        gone = requests.get(terms, timeout=30)
        assert gone.status_code == 410 and "withdrawn" in gone.json()["detail"]
        # a link issued afterwards (the corrected invitation, here in a later second) works
        import time

        revoked_second = int(time.time())
        while int(time.time()) <= revoked_second:
            time.sleep(0.05)
        with stack.db.sessions() as session:
            row = session.get(Agreement, agreement["id"])
            fresh = stack.stack.contracts.service.agreements.links.signing(row)
        assert requests.get(fresh, timeout=30).status_code == 200
    finally:
        stack.stack.stop()


def test_a_webhook_credential_never_reaches_what_is_stored_or_returned(
    tmp_path: Path, sqlite_url: str, fresh_anvil: Any
) -> None:
    import time

    secret = "s3cr3tT0ken42"
    hook = f"http://127.0.0.1:{free_port()}/hook?access_token={secret}"  # nothing listens
    stack = notify_stack(tmp_path, sqlite_url, fresh_anvil, webhook_url=hook)
    try:
        agreement = offer(stack, candidate_contact={"phone": "+86 138 0000 0000"})
        url = (
            stack.stack.urls["notify"] + f"/v1/candidates/{agreement['candidate_ref']}/touchpoints"
        )
        deadline = time.monotonic() + 60
        while True:
            items = requests.get(url, headers=stack.hr, timeout=30).json()["items"]
            one = (
                requests.get(
                    stack.stack.urls["notify"] + f"/v1/touchpoints/{items[0]['id']}",
                    headers=stack.hr,
                    timeout=30,
                )
                if items
                else None
            )
            if one is not None and one.json().get("attempts"):
                break
            assert time.monotonic() < deadline, "no delivery attempt was recorded"
            time.sleep(0.2)
        assert "webhook" in one.text and secret not in one.text
        with stack.db.sessions() as session:
            from sqlalchemy import text

            stored = session.execute(text("SELECT detail FROM touchpoint_attempts")).all()
        assert stored and all(secret not in (row.detail or "") for row in stored)
    finally:
        stack.stack.stop()


def test_by_default_a_candidate_upload_waits_for_hr_before_the_chain(
    tmp_path: Path,
    sqlite_url: str,
    fresh_anvil: Any,
    mailbox: Any,  # noqa: F811
) -> None:
    import time

    box, smtp_url = mailbox
    stack = notify_stack(tmp_path, sqlite_url, fresh_anvil, smtp_url=smtp_url)
    try:
        policy = requests.get(
            stack.stack.urls["contracts"] + "/v1/policy", headers=stack.legal, timeout=30
        ).json()
        assert policy["candidate_uploads"] == "review"  # the safe default
        agreement = offer(
            stack, language="en", candidate_contact={"email": "c@example.com", "language": "en"}
        )
        box.wait(lambda m: "sign" in m["Subject"])
        sign(stack, agreement)
        _insert_due(
            stack,
            agreement["id"],
            "milestone_request",
            essential=True,
            data={"milestone": "resignation_submitted", "due_at": "2026-12-10"},
        )
        [request_mail] = box.wait(lambda m: "evidence" in m["Subject"])
        link = next(u for u in links_in(request_mail) if "/v1/uploads/" in u)
        uploaded = requests.post(link, files={"file": ("a.pdf", b"%PDF review")}, timeout=30)
        assert uploaded.status_code == 201, uploaded.text
        document_id = uploaded.json()["id"]
        url = stack.stack.urls["contracts"] + f"/v1/agreements/{agreement['id']}"
        deadline = time.monotonic() + 60
        while (m := requests.get(url, headers=stack.hr, timeout=30).json()["milestones"][0])[
            "document_id"
        ] != document_id:
            assert time.monotonic() < deadline, "the anchored upload was not recorded"
            time.sleep(0.2)
        assert m["confirmed_at"] is None  # anchored, recorded, not on chain: HR decides
        confirmed = requests.post(
            url + "/milestones/resignation_submitted/evidence",
            json={"document_id": document_id},
            headers=stack.hr,
            timeout=60,
        )
        assert confirmed.status_code == 200, confirmed.text
        after = requests.get(url, headers=stack.hr, timeout=30).json()["milestones"][0]
        assert after["confirmed_at"] and after["document_id"] == document_id
    finally:
        stack.stack.stop()


def test_a_form_body_is_bounded_on_services_that_take_no_uploads(
    module_evidence_sqlite: Any,
) -> None:
    import time

    from offerseal.shared.links import PURPOSE_REPLY, Link

    stack = module_evidence_sqlite
    token = stack.stack.notify.service.replies.links.issue(
        Link("acme", "ag-1", "cand-1", PURPOSE_REPLY, int(time.time()) + 600, "tp-1")
    )
    response = requests.post(
        stack.stack.urls["notify"] + "/v1/replies/" + token,
        files={"file": ("big.bin", b"x" * (3 << 20))},
        timeout=60,
    )
    assert response.status_code == 413, response.status_code

"""Schemathesis against every service's own OpenAPI document, with and without keys: no answer
is a 5xx, every answer matches the schema the document declares for its status (errors: the
shared problem+json), and no service dies. `make test` runs a short pass; `make fuzz` a long one
(FUZZ_EXAMPLES examples per operation)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.conftest import RunningStack, make_settings, start_stack

pytestmark = [pytest.mark.chain, pytest.mark.slow, pytest.mark.spread]  # long, independent runs
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, anvil: Any) -> Iterator[RunningStack]:
    tmp = tmp_path_factory.mktemp("fuzz")
    settings = make_settings(
        tmp, f"sqlite:///{tmp / 'fuzz.db'}", anvil.url, public_rate_limit="100000/minute"
    )
    running = start_stack(settings)
    yield running
    running.stack.stop()


def _schemathesis(base: str, headers: dict[str, str], report: Path) -> subprocess.CompletedProcess:
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{base}/openapi.json",
        "--checks",
        "not_a_server_error,response_schema_conformance",
        "--max-examples",
        str(EXAMPLES),
        "--workers",
        "1",
        "--seed",
        "20261125",
        "--request-timeout",
        "60",
        "--suppress-health-check",
        "all",
        "--no-color",
    ]
    for name, value in headers.items():
        command += ["--header", f"{name}: {value}"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    report.write_text(result.stdout + result.stderr)
    return result


@pytest.mark.parametrize("service", ["evidence", "contracts", "notify"])
@pytest.mark.parametrize("who", ["anonymous", "hr", "admin"])
def test_no_generated_request_gets_a_server_error(
    stack: RunningStack, service: str, who: str, tmp_path: Path
) -> None:
    base = stack.stack.urls[service]
    headers = {} if who == "anonymous" else getattr(stack, who)
    result = _schemathesis(base, headers, tmp_path / "schemathesis.txt")
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    for name, url in stack.stack.urls.items():
        if name != "rpc":
            assert requests.get(url + "/healthz", timeout=30).status_code == 200, name


# ---- hostile multipart bodies (schemathesis only sends well-formed ones) ---------------------

_BOUNDARY = b"fuzzboundary7MA4YWxk"
_TEXT = st.one_of(
    st.binary(max_size=40),
    st.sampled_from([b"file", b"kind", b"candidate_ref", b"", b"a\x00b", b"\xff\xfe", b'"', b";"]),
)


@st.composite
def _part_headers(draw: st.DrawFn) -> bytes:
    """One part's header block, hostile: names and filenames of any bytes, quotes left open,
    RFC 2231 `filename*` with bad escapes or charsets, odd content types, lines without a
    colon, folded lines, bare LFs."""
    name, filename = draw(_TEXT), draw(_TEXT)
    disposition = draw(
        st.sampled_from(
            [
                b'form-data; name="%s"; filename="%s"',
                b"form-data; name=%s; filename=%s",
                b'form-data; name="%s; filename="%s',
                b"form-data; name=\"%s\"; filename*=UTF-8''%s",
                b"form-data; name=\"%s\"; filename*=x-bogus''%s",
                b"form-data; %s%s",
                b"form-data%.0s%.0s",  # names no field (werkzeug: the name None)
                b"attachment; name=%s; filename=%%%s",
            ]
        )
    ) % (name, filename)
    lines = [b"Content-Disposition: " + disposition]
    lines += draw(
        st.lists(
            st.one_of(
                st.builds(lambda v: b"Content-Type: " + v, _TEXT),
                st.builds(lambda v: b"Content-Type: text/plain; charset=" + v, _TEXT),
                st.builds(lambda v: b" folded " + v, _TEXT),
                st.builds(lambda v: b"no colon " + v, _TEXT),
                st.builds(lambda v: b"X-" + v + b": " + v, _TEXT),
            ),
            max_size=3,
        )
    )
    block = b"\r\n".join(lines)
    return draw(st.sampled_from([block, block.replace(b"\r\n", b"\n")]))


@st.composite
def hostile_multipart(draw: st.DrawFn) -> bytes:
    parts = [
        b"--" + _BOUNDARY + b"\r\n" + draw(_part_headers()) + b"\r\n\r\n" + draw(_TEXT)
        for _ in range(draw(st.integers(1, 4)))
    ]
    body = b"\r\n".join(parts) + b"\r\n--" + _BOUNDARY + b"--\r\n"
    cut = draw(st.one_of(st.none(), st.integers(0, len(body))))  # sometimes truncated
    return body if cut is None else body[:cut]


NAMELESS = (
    b"--" + _BOUNDARY + b"\r\nContent-Disposition: form-data\r\n\r\nx\r\n--" + _BOUNDARY + b"--\r\n"
)


def _post_raw(base: str, path: str, headers: dict[str, str], body: bytes) -> int:
    from tests.integration.test_hostile_multipart import _raw_post

    content_type = b"multipart/form-data; boundary=" + _BOUNDARY
    return _raw_post(base, path, headers, content_type, body)


@pytest.mark.parametrize("route", ["documents", "uploads", "replies"])
def test_hostile_multipart_bodies_never_get_a_server_error(stack: RunningStack, route: str) -> None:
    """POST /v1/documents with an hr key, and the candidate's link routes (the upload link,
    the reply link) with a VALID token, each with generated hostile multipart bodies."""
    import time as _time

    from offerseal.shared.links import PURPOSE_REPLY, PURPOSE_UPLOAD, Link

    links = stack.stack.notify.service.replies.links
    expires = int(_time.time()) + 3600
    if route == "documents":
        base, path, headers = stack.stack.urls["evidence"], "/v1/documents", stack.hr
    elif route == "uploads":
        token = links.issue(
            Link("acme", "ag-fuzz", "cand-1", PURPOSE_UPLOAD, expires, "resignation_submitted")
        )
        base, path, headers = stack.stack.urls["evidence"], f"/v1/uploads/{token}", {}
    else:
        token = links.issue(Link("acme", "ag-fuzz", "cand-1", PURPOSE_REPLY, expires, "tp-1"))
        base, path, headers = stack.stack.urls["notify"], f"/v1/replies/{token}", {}

    @settings(
        max_examples=EXAMPLES * 4,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(body=hostile_multipart())
    @example(body=NAMELESS)  # the 500 an independent run found
    def check(body: bytes) -> None:
        status = _post_raw(base, path, headers, body)
        assert status < 500, (status, body[:300])

    check()
    assert requests.get(base + "/healthz", timeout=30).status_code == 200

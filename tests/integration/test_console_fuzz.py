"""The console's forms, fuzzed as a signed-in person would send them (the session's cookie and
its CSRF token, so the request reaches the form's own handling): no answer is a 5xx. The
standing fuzz (test_fuzz.py) reaches the console only as 401s; FUZZ_EXAMPLES raises the count
here too."""

from __future__ import annotations

import os
import re
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.test_console import (  # noqa: F401 (the fixture)
    Console,
    console,
    csrf_of,
    person,
)

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))
HOSTILE = st.one_of(
    st.text(max_size=60),
    st.sampled_from(
        ["", " ", "\x00", "a\x00b", "-1", "0", "1e309", "NaN", "2026-02-30", "9" * 400,
         "<script>", "' OR 1=1 --", "../../etc/passwd", "\ud7ff", "x" * 5000]
    ),
)  # fmt: skip


def _field_names(html: str) -> list[str]:
    names = re.findall(r'<(?:input|select|textarea)[^>]*\sname="([^"]+)"', html)
    return sorted({n for n in names if n != "csrf_token"})


@pytest.mark.parametrize(
    ("who", "page", "action"),
    [
        ("hr", "/console/offer", "/console/offer"),
        ("hr", "/console/agreements/{acme}/amend", "/console/agreements/{acme}/amend"),
        ("hr", "/console", "/console/agreements/{acme}/revoke"),
        ("hr", "/console", "/console/agreements/{acme}/no-such-action"),
        ("admin", "/console/people", "/console/people"),
        ("admin", "/console/people", "/console/people/nobody/disable"),
        ("hr", "/console", "/console/logout"),
    ],
)
def test_the_consoles_forms_never_answer_a_server_error(
    console: Console,  # noqa: F811
    who: str,
    page: str,
    action: str,
) -> None:
    email = f"fuzz-{who}-{abs(hash((page, action))) % 10**8}@acme.example"
    browser = person(console, email, who, "acme")
    page_url = console.url + page.format(acme=console.acme)
    shown = browser.get(page_url, timeout=30)
    assert shown.status_code < 500, shown.status_code
    token = csrf_of(shown.text) if "csrf_token" in shown.text else ""
    names = _field_names(shown.text) or ["reason"]
    post_url = console.url + action.format(acme=console.acme)
    seen: set[int] = set()

    @settings(
        max_examples=EXAMPLES * 4,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        values=st.fixed_dictionaries({}, optional={n: HOSTILE for n in names}),
        extra=st.dictionaries(HOSTILE, HOSTILE, max_size=2),
    )
    def check(values: dict[str, Any], extra: dict[str, Any]) -> None:
        answer = browser.post(
            post_url,
            data={**extra, **values, "csrf_token": token},
            timeout=30,
            allow_redirects=False,
        )
        seen.add(answer.status_code)
        assert answer.status_code < 500, (answer.status_code, values, extra)

    check()
    # the forms' own answers, not the CSRF guard's 403 for every request
    assert seen - {403}, seen
    assert requests.get(console.url + "/healthz", timeout=30).status_code == 200

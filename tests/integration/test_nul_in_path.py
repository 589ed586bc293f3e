"""A NUL (%00) in a path parameter, on every route of every service, over real HTTP against
SQLite and PostgreSQL (which refuses a NUL in text): no id, code or name holds one, so the route
answers as for any value that names nothing, never with a 500. The APIs answer the problem
document an unknown id gets; the pages for people (portal, short links, the console's set-up
link) keep their own friendly pages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.conftest import RunningStack

pytestmark = pytest.mark.chain

PROBLEM = "application/problem+json"
PARAM = re.compile(r"<string:(\w+)>")
NOTHING = "no-such-thing"
NUL = "no%00such"


def _cases(stack: RunningStack) -> Iterator[tuple[str, str, str, str]]:
    """(service, method, rule, parameter) for each string path parameter of every route."""
    apps = {
        "evidence": stack.stack.evidence.app,
        "contracts": stack.stack.contracts.app,
        "notify": stack.stack.notify.app,
        "web": stack.stack.web_app,
    }
    for service, app in apps.items():
        for rule in app.url_map.iter_rules():
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                for param in PARAM.findall(rule.rule):
                    yield service, method, rule.rule, param


def _call(stack: RunningStack, service: str, method: str, path: str) -> requests.Response:
    kwargs: dict[str, Any] = {"headers": stack.admin, "timeout": 30, "allow_redirects": False}
    if method in {"POST", "PUT"}:
        kwargs["json"] = {}
    return requests.request(method, stack.stack.urls[service] + path, **kwargs)


def _shape(answer: requests.Response) -> tuple[int, str, str | None]:
    kind = answer.headers.get("Content-Type", "")
    title = answer.json().get("title") if kind == PROBLEM else None
    return answer.status_code, kind, title


def test_a_nul_in_a_path_parameter_names_nothing(evidence: RunningStack) -> None:
    cases = list(_cases(evidence))
    assert len(cases) > 50  # every service's routes were found
    wrong: list[str] = []
    for service, method, rule, param in cases:

        def path(value: str, rule: str = rule, param: str = param) -> str:
            return PARAM.sub(lambda m: value if m.group(1) == param else NOTHING, rule)

        nul = _call(evidence, service, method, path(NUL))
        unknown = _call(evidence, service, method, path(NOTHING))
        if unknown.status_code in (401, 404, 410):
            # a value that names nothing: a NUL gets exactly that answer (401: a link we did not
            # issue; 404: the API's problem or a person's friendly page; 410: a set-up link)
            expected = _shape(unknown)
        else:
            # the body was checked first (422) or the route lists nothing (200): a NUL names
            # nothing before any body is read
            expected = (404, PROBLEM, _shape(nul)[2])
        if nul.status_code >= 500 or _shape(nul) != expected:
            wrong.append(f"{service} {method} {path(NUL)}: {_shape(nul)} != {expected}")
    assert wrong == [], "\n".join(wrong)


def test_a_nul_in_a_path_is_never_a_500(evidence: RunningStack) -> None:
    """The examples: a document, an agreement, the pages' files, a candidate's short link."""
    for service, path, status, kind, title in (
        ("evidence", "/v1/documents/%00abc", 404, PROBLEM, "Document not found"),
        ("contracts", "/v1/agreements/a%00b/risk", 404, PROBLEM, "Agreement not found"),
        ("notify", "/v1/touchpoints/%00", 404, PROBLEM, "Not found"),
        ("web", "/static/site%00.css", 404, PROBLEM, "Not found"),
        ("web", "/console/agreements/%00", 404, PROBLEM, "Not found"),
        ("web", "/l/%00", 404, "text/html; charset=utf-8", None),
    ):
        answer = _call(evidence, service, "GET", path)
        assert _shape(answer) == (status, kind, title), (path, answer.text[:300])
    # without a key the key is asked for first, as for any id
    anonymous = requests.get(evidence.url("/v1/documents/%00abc"), timeout=30)
    assert anonymous.status_code == 401

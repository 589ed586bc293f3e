"""Request guards that need no server: JSON depth without parsing, the recursion limit."""

from __future__ import annotations

import json
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from offerseal.shared import guards
from offerseal.shared.errors import TooManyRequests, ValidationFailed


def _depth(value: object) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab'),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(alphabet='[]{}"\\a', max_size=3), children, max_size=3),
    max_leaves=40,
)


@given(json_values, st.integers(min_value=0, max_value=8))
def test_depth_is_decided_as_the_parser_would(value: object, limit: int) -> None:
    text = json.dumps(value).encode()
    assert guards.json_too_deep(text, limit) == (_depth(value) > limit)


def test_brackets_inside_strings_do_not_count() -> None:
    assert not guards.json_too_deep(json.dumps({"a": "[" * 1000}).encode(), 4)
    assert guards.json_too_deep(b"[" * 100 + b"]" * 100, 32)


def test_an_attack_body_is_refused_naming_the_field() -> None:
    with pytest.raises(ValidationFailed) as caught:
        guards.check_json_text(b'{"proof": ' + b"[" * 80_000 + b"]" * 80_000 + b"}", "proof")
    assert caught.value.extra["errors"][0]["field"] == "proof"


def test_importing_web3_through_offerseal_leaves_a_sane_recursion_limit() -> None:
    import offerseal.shared.chain  # noqa: F401  (imports web3, which imports py_ecc)

    assert sys.getrecursionlimit() <= guards.RECURSION_LIMIT


def test_the_memory_limiter_refuses_past_the_budget_with_retry_after() -> None:
    limiter = guards.RateLimiter("unit", "3/minute", "memory://")
    for _ in range(3):
        limiter.hit("10.0.0.1")
    with pytest.raises(TooManyRequests) as caught:
        limiter.hit("10.0.0.1")
    assert int(caught.value.extra["headers"]["Retry-After"]) >= 1
    limiter.hit("10.0.0.2")  # another client has its own budget


def test_an_unreachable_shared_store_does_not_refuse_everyone() -> None:
    from offerseal.shared.net import free_port

    limiter = guards.RateLimiter("unit", "1/minute", f"redis://127.0.0.1:{free_port()}")
    limiter.hit("10.0.0.1")
    limiter.hit("10.0.0.1")  # no store, no limit (and a warning), rather than 500s for all


def test_a_nul_in_json_is_refused_naming_the_member() -> None:
    for body, field in (
        (b'{"candidate_ref": "a\\u0000b"}', "candidate_ref"),
        (b'{"items": [{"sha256": "0x"}, {"kind": "x\\u0000"}]}', "items.1.kind"),
        (b'{"contact": {"e\\u0000mail": "x"}}', "contact.e\\u0000mail"),
    ):
        with pytest.raises(ValidationFailed) as info:
            guards.check_json_text(body)
        assert info.value.extra["errors"][0]["field"] == field
        assert "NUL" in info.value.extra["errors"][0]["message"]
    guards.check_json_text(b'{"note": "a backslash before u0000: \\\\u0000"}')  # no NUL
    guards.check_json_text(b'{"broken": "\\u0000"')  # not JSON: the endpoint answers that


def test_a_nul_in_a_path_parameter_is_the_route_s_not_found() -> None:
    from flask import Flask, request

    from offerseal.shared import problems
    from offerseal.shared.auth import Principal
    from offerseal.shared.errors import NotFound, Unauthorized

    class ThingNotFound(NotFound):
        title = "Thing not found"

    def authenticate() -> Principal:
        if "Authorization" not in request.headers:
            raise Unauthorized("an API key is required")
        return Principal("k", "hr", "acme")

    app = Flask("nul")
    problems.register(app)
    guards.install(app, guards.RateLimiter("nul", "100/minute", "memory://"), authenticate)
    guards.not_found_as(app, {"thing_id": ThingNotFound})
    app.add_url_rule("/things/<thing_id>", "thing", lambda thing_id: "a thing")
    app.add_url_rule("/other/<other_id>", "other", lambda other_id: "another")
    page = guards.own_path(guards.access("public")(lambda code: f"my own page for {code!r}"))
    app.add_url_rule("/l/<code>", "page", page)
    client = app.test_client()
    key = {"Authorization": "Bearer x"}

    thing = client.get("/things/a%00b", headers=key)
    assert thing.status_code == 404 and thing.mimetype == problems.PROBLEM_TYPE
    assert thing.json is not None and thing.json["title"] == "Thing not found"
    assert "thing_id" in thing.json["detail"]
    other = client.get("/other/%00", headers=key)
    assert other.status_code == 404 and other.json is not None
    assert other.json["title"] == "Not found"
    assert client.get("/things/a%00b").status_code == 401  # the key first, as for any id
    assert client.get("/things/ab", headers=key).text == "a thing"
    assert client.get("/l/%00").text == "my own page for '\\x00'"  # a page answers itself

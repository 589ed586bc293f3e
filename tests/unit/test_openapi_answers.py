"""Every service's OpenAPI document describes every answer: each operation's success response
has a schema (JSON, a file or text), and its errors are the shared problem+json. Built from the
blueprints alone, without a stack."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from flask_smorest import Blueprint

from offerseal.contracts import api as contracts_api
from offerseal.evidence import api as evidence_api
from offerseal.notify import api as notify_api
from offerseal.shared.answers import Answer, UndeclaredField
from offerseal.shared.config import Settings
from offerseal.shared.web import create_base_app

BLUEPRINTS: dict[str, list[Blueprint]] = {
    "evidence": [evidence_api.blp, evidence_api.verify_blp],
    "contracts": [contracts_api.blp],
    "notify": [notify_api.blp],
}
METHODS = {"get", "post", "put", "patch", "delete"}


def document(service: str) -> dict[str, Any]:
    app, api, _ = create_base_app(service, db=None, settings=Settings())  # type: ignore[arg-type]
    for blp in BLUEPRINTS[service]:
        api.register_blueprint(blp)
    with app.app_context():
        spec: dict[str, Any] = api.spec.to_dict()
    return spec


def resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        _, _, section, name = node["$ref"].split("/")
        node = spec["components"][section][name]
    return node


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]


@pytest.mark.parametrize("service", sorted(BLUEPRINTS))
def test_every_success_answer_has_a_schema(service: str) -> None:
    spec = document(service)
    missing = []
    for method, path, op in operations(spec):
        successes = {code: r for code, r in op["responses"].items() if code[0] in "23"}
        if not successes:
            missing.append(f"{method} {path}: no success response documented")
        for code, response in successes.items():
            response = resolve(spec, response)
            if code in ("204", "303"):
                continue  # no body
            content = response.get("content") or {}
            if not content or not all(c.get("schema") for c in content.values()):
                missing.append(f"{method} {path} {code}: no schema")
    assert not missing, "\n".join(missing)
    assert len(operations(spec)) >= 10


@pytest.mark.parametrize("service", sorted(BLUEPRINTS))
def test_errors_are_documented_as_problem_json(service: str) -> None:
    spec = document(service)
    for method, path, op in operations(spec):
        for code, response in op["responses"].items():
            if code[0] in "23":
                continue
            content = resolve(spec, response).get("content") or {}
            assert set(content) == {"application/problem+json"}, (method, path, code)
            schema = resolve(spec, content["application/problem+json"]["schema"])
            assert {"type", "title", "status"} <= set(schema["required"]), (method, path)


def test_an_answer_with_a_field_its_schema_does_not_declare_warns() -> None:
    from marshmallow import fields

    class Small(Answer):
        a = fields.Integer()

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Small().dump({"a": 1}) == {"a": 1}
        with pytest.raises(UndeclaredField, match="does not declare b"):
            Small().dump({"a": 1, "b": 2})


def test_known_errors_are_documented_per_route() -> None:
    proof = document("evidence")["paths"]["/v1/documents/{document_id}/proof"]["get"]
    assert {"404", "409"} <= set(proof["responses"])  # unknown, or not anchored yet
    start = document("contracts")["paths"]["/v1/agreements/{agreement_id}/start"]["post"]
    assert {"409", "502"} <= set(start["responses"])  # refused by the contract, reverted

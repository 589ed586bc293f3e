"""The upload route's form check (`FlatForm`) accepts and refuses exactly what the documented
DocumentForm and DocumentFile schemas do, with the same messages, and the API document still
shows them."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
import pytest
from flask_smorest.fields import Upload
from marshmallow import fields, validate
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.exceptions import HTTPException

from offerseal.evidence.arguments import (
    UPLOAD_FILE,
    UPLOAD_FORM,
    DocumentFile,
    DocumentForm,
    FlatForm,
)

GOOD = {"kind": "resignation_application", "candidate_ref": "c1"}
CASES: list[dict[str, Any]] = [
    GOOD,
    {**GOOD, "agreement_id": "a", "milestone": "m", "source": '{"system": "x"}'},
    {**GOOD, "extra": "ignored"},
    {"kind": "resignation_application"},
    {"candidate_ref": "c"},
    {},
    {**GOOD, "kind": "love_letter"},
    {**GOOD, "kind": ""},
    {**GOOD, "candidate_ref": ""},
    {**GOOD, "candidate_ref": "x" * 200},
    {**GOOD, "candidate_ref": "x" * 201},
    {**GOOD, "agreement_id": ""},
    {**GOOD, "agreement_id": "a" * 101},
    {**GOOD, "milestone": "m" * 61},
    {"kind": "nope", "candidate_ref": "", "milestone": "", "agreement_id": "a" * 101},
]


def flat_errors(form: FlatForm, data: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        return form.load(data), {}
    except HTTPException as exc:
        assert exc.code == 422
        return {}, exc.data["messages"][form.location]  # type: ignore[attr-defined]


@pytest.mark.parametrize("case", CASES)
def test_the_form_check_equals_the_schema(case: dict[str, Any]) -> None:
    try:
        expected, expected_errors = DocumentForm().load(case), {}
    except ma.ValidationError as exc:
        expected, expected_errors = {}, exc.normalized_messages()
    loaded, errors = flat_errors(UPLOAD_FORM, MultiDict(case))
    assert errors == expected_errors
    assert list(errors) == list(expected_errors)  # the same field first
    assert loaded == expected


def test_the_first_value_of_a_repeated_field_counts() -> None:
    data = MultiDict([("kind", "other"), ("kind", "love_letter"), ("candidate_ref", "c")])
    assert UPLOAD_FORM.load(data)["kind"] == "other"


def test_the_file_is_required() -> None:
    _, errors = flat_errors(UPLOAD_FILE, MultiDict())
    with pytest.raises(ma.ValidationError) as expected:
        DocumentFile().load({})
    assert errors == expected.value.normalized_messages()
    upload = FileStorage(filename="a.pdf")
    assert UPLOAD_FILE.load(MultiDict([("file", upload)])) == {"file": upload}


def test_a_schema_it_cannot_follow_is_refused() -> None:
    class WithDefault(ma.Schema):
        class Meta:
            unknown = ma.EXCLUDE

        n = fields.String(load_default="x")

    class Numbers(ma.Schema):
        class Meta:
            unknown = ma.EXCLUDE

        n = fields.Integer(validate=validate.Range(min=1))

    class Raising(ma.Schema):
        file = Upload()

    for schema in (WithDefault, Numbers, Raising):
        with pytest.raises(TypeError):
            FlatForm(schema, "form")


def test_the_api_document_still_shows_the_schemas() -> None:
    from flask import Flask
    from flask_smorest import Api

    from offerseal.evidence import api

    app = Flask("spec")
    app.config.update(API_TITLE="t", API_VERSION="1", OPENAPI_VERSION="3.1.0")
    docs = Api(app)
    docs.register_blueprint(api.blp)
    spec = docs.spec.to_dict()
    post = spec["paths"]["/v1/documents"]["post"]
    named = {p["name"]: p for p in post["parameters"]}
    assert {"kind", "candidate_ref", "agreement_id", "milestone", "source"} <= set(named)
    assert named["kind"]["required"] and named["candidate_ref"]["schema"]["maxLength"] == 200
    body = post["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"]
    assert spec["components"]["schemas"][body.rsplit("/", 1)[1]]["required"] == ["file"]

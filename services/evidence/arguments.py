"""What the evidence API accepts: the request schemas (documented in the OpenAPI document), and
the fast checks that follow them exactly on the hot routes (`FlatForm` for the upload form,
`check_hash_item` / `hash_items_valid` for hash batches; tests compare them)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, cast

import marshmallow as ma
from flask_smorest.fields import Upload
from marshmallow import fields, validate
from webargs.flaskparser import abort

from offerseal_verify.hexbytes import is_hex32

from .certificate import LANGS
from .domain.documents import KINDS, MAX_HASH_BATCH

HEX32 = validate.Regexp(r"^0x[0-9a-fA-F]{64}\Z", error="expected 0x followed by 64 hex digits")


class DocumentFields(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE

    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    candidate_ref = fields.String(required=True, validate=validate.Length(min=1, max=200))
    agreement_id = fields.String(validate=validate.Length(min=1, max=100))
    milestone = fields.String(validate=validate.Length(min=1, max=60))


class DocumentForm(DocumentFields):
    source = fields.String(
        metadata={
            "description": "optional JSON object of strings saying where the document comes "
            'from, e.g. {"system": "Moka HR", "record": "R-2291"}; signed into the receipt'
        }
    )


class DocumentFile(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE

    file = Upload(required=True)


class HashItem(DocumentFields):
    class Meta:
        unknown = ma.RAISE

    sha256 = fields.String(required=True, validate=HEX32)


_KIND_SET = frozenset(KINDS)
_LENGTHS = {"candidate_ref": 200, "agreement_id": 100, "milestone": 60}
_ITEM_FIELDS = frozenset({"kind", "candidate_ref", "agreement_id", "milestone", "sha256"})


def check_hash_item(item: Any) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """`HashItem().load(item)` without marshmallow's per-field machinery (which costs ~60 us an
    item, a third of a 10,000-item request): same rules, same messages (a test compares)."""
    if not isinstance(item, dict):
        return {}, {"_schema": ["Invalid input type."]}
    errors: dict[str, list[str]] = {}
    for name in item.keys() - _ITEM_FIELDS:
        errors[name] = ["Unknown field."]
    for name in ("kind", "candidate_ref", "sha256"):
        if name not in item:
            errors[name] = ["Missing data for required field."]
    out: dict[str, Any] = {}
    for name in _ITEM_FIELDS & item.keys():
        value = item[name]
        if value is None:
            errors[name] = ["Field may not be null."]
        elif not isinstance(value, str):
            errors[name] = ["Not a valid string."]
        elif name == "kind" and value not in _KIND_SET:
            errors[name] = [f"Must be one of: {', '.join(KINDS)}."]
        elif name == "sha256" and not is_hex32(value):
            errors[name] = ["expected 0x followed by 64 hex digits"]
        elif name in _LENGTHS and not 1 <= len(value) <= _LENGTHS[name]:
            errors[name] = [f"Length must be between 1 and {_LENGTHS[name]}."]
        else:
            out[name] = value
    return out, errors


_HEX32S = re.compile(r"(?:0x[0-9a-fA-F]{64})*")


def _strings_within(values: list[Any], longest: int) -> bool:
    """Whether every value is a string of 1 to `longest` characters (none: True)."""
    return not values or (
        set(map(type, values)) == {str}
        and min(map(len, values)) >= 1
        and max(map(len, values)) <= longest
    )


def hash_items_valid(items: list[Any]) -> bool:
    """Whether every item passes `check_hash_item` unchanged (each one a dict of the known
    fields only, every value valid), decided column by column without a loop in Python over
    the items' fields: a 10,000-item batch in a few milliseconds. False sends the batch through
    `check_hash_item`, item by item, for the exact errors."""
    if set(map(type, items)) != {dict} or not set().union(*items) <= _ITEM_FIELDS:
        return False
    kinds = [item.get("kind") for item in items]
    sha256s = [item.get("sha256") for item in items]
    try:
        if not set(kinds) <= _KIND_SET:
            return False
    except TypeError:  # an unhashable value (a list, an object): not a kind
        return False
    if set(map(type, sha256s)) != {str} or set(map(len, sha256s)) != {66}:
        return False
    if not _HEX32S.fullmatch("".join(sha256s)):
        return False
    return (
        _strings_within([item.get("candidate_ref") for item in items], _LENGTHS["candidate_ref"])
        and _strings_within(
            [item["agreement_id"] for item in items if "agreement_id" in item],
            _LENGTHS["agreement_id"],
        )
        and _strings_within(
            [item["milestone"] for item in items if "milestone" in item], _LENGTHS["milestone"]
        )
    )


class HashItems(fields.List):
    """The items of a hash batch, validated with `check_hash_item` (documented as HashItem);
    a batch that `hash_items_valid` passes is taken as it is."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, list):
            raise self.make_error("invalid")
        if value and hash_items_valid(value):
            return value
        loaded, errors = [], {}
        for index, item in enumerate(value):
            out, problems = check_hash_item(item)
            if problems:
                errors[index] = problems
            loaded.append(out)
        if errors:
            raise ma.ValidationError(errors, valid_data=loaded)
        return loaded


class HashBatch(ma.Schema):
    items = HashItems(
        fields.Nested(HashItem), required=True, validate=validate.Length(min=1, max=MAX_HASH_BATCH)
    )
    source = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        metadata={"description": "optional: where the documents come from (signed)"},
    )


class ListArgs(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE

    candidate_ref = fields.String(validate=validate.Length(min=1, max=200))
    after = fields.Integer(load_default=0, validate=validate.Range(min=0, max=2**63 - 1))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))


class VerifyJson(ma.Schema):
    proof = fields.Raw(required=True)
    sha256 = fields.String(validate=HEX32)


class FlatForm:
    """`schema().load(form)` for a schema of plain fields, without webargs' and marshmallow's
    per-request machinery (a new schema object per request, a deep copy of its fields, the
    processing hooks): the same fields, the same rules (the fields' own validators) and the
    same messages, on the hot upload route. The schema stays what the API document shows; a
    schema this cannot follow exactly is refused when the module is imported."""

    PLAIN = (fields.String, Upload)

    def __init__(self, schema: type[ma.Schema], location: str) -> None:
        loaded = schema()
        if loaded.unknown != ma.EXCLUDE or any(loaded._hooks.values()):
            raise TypeError(f"{schema.__name__}: only unknown=EXCLUDE and no hooks")
        self.schema = loaded
        self.location = location
        self.rules: list[tuple[str, bool, str, tuple[Callable[[Any], Any], ...]]] = []
        for name, field in loaded.load_fields.items():
            if type(field) not in self.PLAIN or field.data_key is not None:
                raise TypeError(f"{schema.__name__}.{name}: not a plain String or Upload")
            if field.load_default is not ma.missing:
                raise TypeError(f"{schema.__name__}.{name}: a default is not followed")
            required = str(field.error_messages["required"])
            self.rules.append((name, field.required, required, tuple(field.validators)))
        self.strings = frozenset(
            name for name, field in loaded.load_fields.items() if type(field) is fields.String
        )

    def load(self, data: Any) -> dict[str, Any]:
        """The loaded values, or the 422 webargs gives, naming each field (`data`: a MultiDict,
        first value of each name)."""
        out: dict[str, Any] = {}
        errors: dict[str, list[str]] = {}
        for name, required, missing, validators in self.rules:
            value = data.get(name)
            if value is None:
                if required:
                    errors[name] = [missing]
                continue
            if name in self.strings and not isinstance(value, str):
                errors[name] = ["Not a valid string."]
                continue
            problems: list[str] = []
            for validator in validators:
                try:
                    validator(value)
                except ma.ValidationError as exc:
                    problems.extend(cast(list[str], exc.messages))
            if problems:
                errors[name] = problems
            else:
                out[name] = value
        if errors:
            messages = {self.location: errors}
            abort(422, exc=ma.ValidationError(messages), messages=messages, schema=self.schema)
        return out


UPLOAD_FORM = FlatForm(DocumentForm, "form")
UPLOAD_FILE = FlatForm(DocumentFile, "files")


class CertificateQuery(ma.Schema):
    lang = fields.String(
        load_default="zh-CN",
        validate=validate.OneOf(LANGS),
        metadata={"description": "language of the certificate"},
    )

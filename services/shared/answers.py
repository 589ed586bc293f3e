"""What every service's API answers, declared once for the OpenAPI documents: the base of the
response schemas, the RFC 9457 problem every error shares, and the shapes of answers that are
not JSON (files, text). The views return the service layer's values; `@blp.response(code,
Schema)` dumps them with these schemas, so the document and the wire are the same thing."""

from __future__ import annotations

import dataclasses
import http
import warnings
from collections.abc import Mapping
from typing import Any

import marshmallow as ma
from marshmallow import fields


class UndeclaredField(UserWarning):
    """An answer carried a field its response schema does not declare: the schema would drop
    it from the wire. Under pytest (warnings are errors) the request fails, so a schema that
    falls behind the service layer breaks a test instead of a client."""


class Answer(ma.Schema):
    """Base of every response schema. Dumping a mapping or dataclass with a member the schema
    does not declare warns `UndeclaredField` (and the member is left out, as marshmallow
    does); the OpenAPI document says `additionalProperties: false`."""

    @ma.pre_dump
    def _declared(self, obj: Any, **_: Any) -> Any:
        if isinstance(obj, Mapping):
            names = set(obj)
        elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            names = {f.name for f in dataclasses.fields(obj)}
        else:
            return obj
        extra = names - self.dump_fields.keys()
        if extra:
            warnings.warn(
                f"{type(self).__name__} does not declare {', '.join(sorted(extra))}",
                UndeclaredField,
                stacklevel=2,
            )
        return obj


def Number(**kwargs: Any) -> fields.Raw:
    """A JSON number dumped as it is (marshmallow's Float would turn 3 into 3.0)."""
    return fields.Raw(metadata={"type": "number", **kwargs.pop("metadata", {})}, **kwargs)


def Object(**kwargs: Any) -> fields.Dict:
    """A JSON object dumped as it is (its members are described in the route's text)."""
    return fields.Dict(**kwargs)


def Items(schema: type[ma.Schema] | ma.Schema, **kwargs: Any) -> fields.List:
    return fields.List(fields.Nested(schema), **kwargs)


class FieldError(Answer):
    field = fields.String(required=True)
    message = fields.String(required=True)


class Problem(ma.Schema):
    """RFC 9457 `application/problem+json`: every error of every service. Extension members
    (`errors` for a 422, `error` for a contract's refusal, ...) may follow."""

    class Meta:
        unknown = ma.INCLUDE

    type = fields.String(required=True, metadata={"example": "about:blank"})
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String()
    instance = fields.String(required=True)
    errors = fields.List(fields.Nested(FieldError), metadata={"description": "422: each field"})


BINARY: dict[str, Any] = {"type": "string", "format": "binary"}
TEXT: dict[str, Any] = {"type": "string"}


class Verbatim(ma.Schema):
    """A signed structure (a proof bundle, a receipt): answered exactly as signed. The fields
    document its members; dumping returns the value unchanged."""

    class Meta:
        unknown = ma.INCLUDE

    def dump(self, obj: Any, *, many: bool | None = None) -> Any:
        return obj


def problems(blp: Any, *statuses: int) -> Any:
    """Document the problem+json errors a route is known to answer (each status's registered
    response: the shared `Problem`), beyond the `default` every operation has."""

    def decorator(func: Any) -> Any:
        for status in statuses:
            func = blp.alt_response(status, response=http.HTTPStatus(status).name)(func)
        return func

    return decorator

"""The evidence service's multipart parser gives exactly what werkzeug's gives (fields, files,
their headers and bytes, the same refusals), whether it reads the body itself or hands it on."""

from __future__ import annotations

import io
import random
from typing import Any

import pytest
from werkzeug.formparser import FormDataParser

from offerseal.shared.multipart import FastFormDataParser, parse_simple

B = b"0f1e2d3c4b5a69788796a5b4c3d2e1f0"
DOC = bytes(range(256)) * 40 + b"\r\n--" + B[:-1] + b"\r\n"  # looks like a delimiter, is not
BODY = (
    b"--" + B + b"\r\n"
    b'Content-Disposition: form-data; name="kind"\r\n\r\nresignation_application\r\n'
    b"--" + B + b"\r\n"
    b'Content-Disposition: form-data; name="candidate_ref"\r\n\r\nbench\r\n'
    b"--" + B + b"\r\n"
    b'Content-Disposition: form-data; name="file"; filename="doc.pdf"\r\n'
    b"Content-Type: application/pdf\r\n\r\n" + DOC + b"\r\n--" + B + b"--\r\n"
)


def parse(cls: type[FormDataParser], body: bytes, **limits: Any) -> Any:
    parser = cls(
        max_form_memory_size=limits.get("memory", 500_000),
        max_form_parts=limits.get("parts", 1000),
    )
    try:
        _, form, files = parser.parse(
            io.BytesIO(body), "multipart/form-data", len(body), {"boundary": B.decode()}
        )
    except Exception as exc:
        return type(exc).__name__
    return (
        list(form.items(multi=True)),
        [
            (name, f.filename, f.name, f.content_type, list(f.headers.items()), f.read())
            for name, f in files.items(multi=True)
        ],
    )


ODD = [
    BODY.replace(b"\r\n", b"\n"),
    BODY[:-4],
    BODY[:-10],
    BODY + b"an epilogue",
    b"a preamble\r\n" + BODY,
    BODY.replace(b'name="kind"', b'name="kind"; filename=""'),
    BODY.replace(b"resignation_application", b"x\r\n--" + B + b"x"),
    BODY.replace(b"resignation_application", b""),
    BODY.replace(b"resignation_application", b"x\n--" + B + b"\r\ny"),
    BODY.replace(b"Content-Type: application/pdf", b"Content-Type: a/b\r\n X-Folded: y"),
    BODY.replace(b"Content-Type: application/pdf", b"Content-Type: text/plain; charset=latin1"),
    BODY.replace(b'"kind"\r\n', b'"kind"\r\nContent-Type: text/plain; charset=iso-8859-1\r\n'),
    BODY.replace(b"resignation_application", "é€".encode()),
    BODY.replace(b"resignation_application", "é".encode("latin-1")),
    BODY.replace(b'name="candidate_ref"', b"name=\"c\"; filename*=UTF-8''%E2%82%AC.txt"),
    BODY.replace(b"\r\n\r\nbench", b"\r\n\r\n\r\nbench"),
    BODY.replace(b"bench\r\n--" + B, b"bench\r\n--" + B + b" "),
    BODY.replace(b"--" + B + b"--", b"--" + B + b"--  \r\nmore"),
    BODY.replace(b"Content-Disposition", b"Content-Dispositio", 1),
    BODY.replace(b"Content-Disposition: form-data; ", b"Content-Disposition:form-data;", 1),
    BODY.replace(b"; name=", b"; nome=", 1),
    BODY.replace(b"Content-Type: application/pdf", "X-Name: é".encode("latin-1")),
]


@pytest.mark.parametrize("body", [BODY, *ODD])
def test_same_as_werkzeug(body: bytes) -> None:
    assert parse(FastFormDataParser, body) == parse(FormDataParser, body)


def test_the_plain_upload_is_read_without_werkzeug_parser() -> None:
    assert parse_simple(BODY, B, 1000) is not None
    assert parse(FastFormDataParser, BODY)[1][0][-1] == DOC


def test_damaged_bodies_same_as_werkzeug() -> None:
    rng = random.Random(13)
    for _ in range(400):
        at = rng.randrange(len(BODY))
        if rng.random() < 0.5:
            body = BODY[:at] + bytes([rng.choice(b'\r\n- ;="a')]) + BODY[at + 1 :]
        else:
            body = BODY[:at] + BODY[at + rng.randint(1, 6) :]
        assert parse(FastFormDataParser, body) == parse(FormDataParser, body), body


@pytest.mark.parametrize("limits", [{"parts": 2}, {"parts": 3}, {"memory": 100}])
def test_limits_as_werkzeug(limits: dict[str, int]) -> None:
    assert parse(FastFormDataParser, BODY, **limits) == parse(FormDataParser, BODY, **limits)
    assert parse(FastFormDataParser, BODY, parts=2) == "RequestEntityTooLarge"

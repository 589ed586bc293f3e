"""Hostile multipart bodies on POST /v1/documents: each is refused with problem+json (4xx) or
accepted, never a 500 (an independent schemathesis run found one; `make fuzz` now sends these
too, see test_fuzz.py)."""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import urlparse

import pytest

pytestmark = [pytest.mark.chain, pytest.mark.slow]

B = b"hostileboundary"
FORM = (
    b"--" + B + b"\r\n"
    b'Content-Disposition: form-data; name="kind"\r\n\r\nother\r\n'
    b"--" + B + b"\r\n"
    b'Content-Disposition: form-data; name="candidate_ref"\r\n\r\ncand-1\r\n'
)


def _file_part(headers: bytes, data: bytes = b"%PDF-1.4 hostile") -> bytes:
    return b"--" + B + b"\r\n" + headers + b"\r\n\r\n" + data + b"\r\n--" + B + b"--\r\n"


GOOD_FILE = b'Content-Disposition: form-data; name="file"; filename="a.pdf"'
# (name, Content-Type header value as bytes, body)
BODIES: list[tuple[str, bytes, bytes]] = [
    ("non-ascii boundary", b"multipart/form-data; boundary=\xe9t\xe9", FORM),
    ("empty boundary", b"multipart/form-data; boundary=", FORM),
    ("no boundary", b"multipart/form-data", FORM),
    ("boundary never used", b"multipart/form-data; boundary=other", FORM + _file_part(GOOD_FILE)),
    ("part without a name", b"", FORM + _file_part(b"Content-Disposition: form-data")),
    (
        "file part without a name",
        b"",
        FORM + _file_part(b'Content-Disposition: form-data; filename="a.pdf"'),
    ),
    ("no content-disposition", b"", FORM + _file_part(b"Content-Type: application/pdf")),
    ("header without a colon", b"", FORM + _file_part(GOOD_FILE + b"\r\nnonsense")),
    (
        "latin-1 header",
        b"",
        FORM + _file_part(b'Content-Disposition: form-data; name="file"; filename="\xe9.pdf"'),
    ),
    (
        "nul in the name",
        b"",
        FORM + _file_part(b'Content-Disposition: form-data; name="fi\x00le"; filename="a"'),
    ),
    (
        "nul in the filename",
        b"",
        FORM + _file_part(b'Content-Disposition: form-data; name="file"; filename="a\x00.pdf"'),
    ),
    (
        "unterminated quote",
        b"",
        FORM + _file_part(b'Content-Disposition: form-data; name="file; filename="a.pdf'),
    ),
    (
        "filename* not utf-8",
        b"",
        FORM
        + _file_part(b"Content-Disposition: form-data; name=\"file\"; filename*=UTF-8''%FF%FE.pdf"),
    ),
    (
        "filename* unknown charset",
        b"",
        FORM
        + _file_part(b"Content-Disposition: form-data; name=\"file\"; filename*=x-bogus''a.pdf"),
    ),
    ("bad part content-type", b"", FORM + _file_part(GOOD_FILE + b"\r\nContent-Type: ;;;=\x01")),
    (
        "part content-type charset",
        b"",
        FORM + _file_part(GOOD_FILE + b'\r\nContent-Type: text/plain; charset="\xff"'),
    ),
    (
        "traversal filename",
        b"",
        FORM
        + _file_part(b'Content-Disposition: form-data; name="file"; filename="../../etc/passwd"'),
    ),
    (
        "folded header",
        b"",
        FORM + _file_part(b'Content-Disposition: form-data;\r\n name="file"; filename="a.pdf"'),
    ),
    ("truncated", b"", FORM + b"--" + B + b"\r\n" + GOOD_FILE + b"\r\n\r\n%PDF"),
    ("no final delimiter", b"", FORM + b"--" + B + b"\r\n" + GOOD_FILE + b"\r\n\r\n%PDF\r\n"),
    (
        "kind not utf-8",
        b"",
        b"--"
        + B
        + b'\r\nContent-Disposition: form-data; name="kind"\r\n\r\n\xff\xfe\r\n'
        + _file_part(GOOD_FILE),
    ),
    (
        "two files",
        b"",
        FORM + b"--" + B + b"\r\n" + GOOD_FILE + b"\r\n\r\nx\r\n" + _file_part(GOOD_FILE),
    ),
    (
        "empty name",
        b"",
        FORM + _file_part(b'Content-Disposition: form-data; name=""; filename="a"'),
    ),
    ("bare LF", b"", FORM.replace(b"\r\n", b"\n") + _file_part(GOOD_FILE).replace(b"\r\n", b"\n")),
    ("huge header line", b"", FORM + _file_part(GOOD_FILE + b"\r\nX-Pad: " + b"a" * 70_000)),
    ("many parts", b"", FORM * 2000 + _file_part(GOOD_FILE)),
]


def _raw_post(
    url: str, path: str, headers: dict[str, str], content_type: bytes, body: bytes
) -> int:
    """POST with the bytes exactly as given (requests would re-encode a hostile header)."""
    where = urlparse(url)
    head = [f"POST {path} HTTP/1.1".encode(), f"Host: {where.netloc}".encode()]
    head += [f"{k}: {v}".encode() for k, v in headers.items()]
    head += [b"Content-Type: " + content_type, f"Content-Length: {len(body)}".encode()]
    head += [b"Connection: close"]
    with socket.create_connection((where.hostname, where.port), timeout=30) as sock:
        sock.sendall(b"\r\n".join(head) + b"\r\n\r\n" + body)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    return int(reply.split(b" ", 2)[1])


def test_hostile_multipart_bodies_are_never_a_server_error(evidence_sqlite: Any) -> None:
    stack = evidence_sqlite
    failures = []
    for name, content_type, body in BODIES:
        status = _raw_post(
            stack.stack.urls["evidence"],
            "/v1/documents",
            stack.hr,
            content_type or b"multipart/form-data; boundary=" + B,
            body,
        )
        if status >= 500:
            failures.append((name, status))
    assert failures == []

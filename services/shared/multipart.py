"""multipart/form-data without compiling regular expressions per request.

Werkzeug's parser compiles two regular expressions that embed each request's boundary; every
client picks a fresh boundary, so `re`'s cache never hits and each upload pays for compiling
them (about a third of parsing a 10 KB upload). `FastFormDataParser` reads a small, well-formed
body (CRLF line breaks, no preamble, no folded headers, every delimiter where it belongs) with
`bytes.find` and gives exactly the form and files werkzeug's parser would; anything else, and
every body above the form memory limit, is parsed by werkzeug's own code. Its limits (size of
the body, of each field, number of parts) therefore apply unchanged.
"""

from __future__ import annotations

import io
from typing import IO, Any, cast

from flask import Request
from werkzeug.datastructures import FileStorage, Headers
from werkzeug.formparser import FormDataParser, MultiPartParser
from werkzeug.http import parse_options_header

# Bodies at most this long are read at once (werkzeug's files stay in memory up to 500 KiB too).
FAST_MAX_BYTES = 500 * 1024

_Parsed = tuple[list[tuple[str, str]], list[tuple[str, FileStorage]]]
_CHARSETS = MultiPartParser()  # its `get_part_charset`: which charset a field's text is in


def _headers(block: bytes) -> Headers | None:
    """A part's header lines as werkzeug reads them, or None when they are folded (continued on
    the next line) or not UTF-8."""
    if b"\r\n " in block or b"\r\n\t" in block:
        return None
    headers: list[tuple[str, str]] = []
    try:
        for line in block.split(b"\r\n"):
            line = line.strip(b" \t")
            if line:
                name, _, value = line.decode().partition(":")
                headers.append((name.strip(" \t"), value.strip(" \t")))
    except UnicodeDecodeError:
        return None
    return Headers(headers)


def parse_simple(body: bytes, boundary: bytes, max_parts: int | None) -> _Parsed | None:
    """The fields and files of a well-formed body, or None for werkzeug's parser to decide."""
    delimiter = b"--" + boundary
    if not body.startswith(delimiter + b"\r\n"):
        return None
    fields: list[tuple[str, str]] = []
    files: list[tuple[str, FileStorage]] = []
    at = len(delimiter) + 2
    while True:
        if max_parts is not None and len(fields) + len(files) >= max_parts:
            return None  # werkzeug refuses it (413)
        end = body.find(b"\r\n\r\n", at)
        if end <= at:
            return None
        block = body[at:end]
        # Only CRLF pairs: werkzeug would also end the headers at a bare "\n\n" or "\r\r".
        crlf = block.count(b"\r\n")
        if block.count(b"\r") != crlf or block.count(b"\n") != crlf:
            return None
        headers = _headers(block)
        if headers is None or "content-disposition" not in headers:
            return None
        _, options = parse_options_header(headers["content-disposition"])
        start = end + 4
        close = body.find(b"\r\n" + delimiter, start - 2)
        # The next delimiter must be the first one after the headers, preceded by CRLF and
        # followed by CRLF (another part) or "--" (the end).
        if close < start or body.find(delimiter, end) != close + 2:
            return None
        after = close + 2 + len(delimiter)
        tail = body[after : after + 2]
        if tail not in (b"\r\n", b"--"):
            return None
        data = body[start:close]
        name = cast(str, options.get("name"))  # as werkzeug: None when the part names none
        filename = options.get("filename")
        if filename is not None:
            files.append((name, FileStorage(io.BytesIO(data), filename, name, headers=headers)))
        else:
            fields.append((name, data.decode(_CHARSETS.get_part_charset(headers), "replace")))
        if tail == b"--":
            return fields, files
        at = after + 2


class FastFormDataParser(FormDataParser):
    """`FormDataParser` reading small well-formed multipart bodies without werkzeug's
    per-request regular expressions (see the module's documentation)."""

    def _parse_multipart(
        self,
        stream: IO[bytes],
        mimetype: str,
        content_length: int | None,
        options: dict[str, str],
    ) -> tuple[IO[bytes], Any, Any]:
        boundary = options.get("boundary", "").encode("ascii")
        limit = FAST_MAX_BYTES
        if self.max_form_memory_size is not None:
            limit = min(limit, self.max_form_memory_size)  # no field can exceed it
        if not boundary or content_length is None or content_length > limit:
            return super()._parse_multipart(stream, mimetype, content_length, options)
        body = stream.read()
        parsed = parse_simple(body, boundary, self.max_form_parts)
        if parsed is None:
            return super()._parse_multipart(io.BytesIO(body), mimetype, content_length, options)
        fields, files = parsed
        return stream, self.cls(fields), self.cls(files)


class FastFormRequest(Request):
    """Flask's request, its multipart bodies read by `FastFormDataParser`."""

    form_data_parser_class = FastFormDataParser

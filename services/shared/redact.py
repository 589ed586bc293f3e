"""Credentials out of URLs before a URL is logged, stored or returned: the one place that does it.

Providers put API keys in three places: the user-info (`https://user:secret@host`), the path
(`https://mainnet.example/v3/<key>`) and the query (`?access_token=...`). All three are replaced
by `***`; what is left still says which host and endpoint was meant.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
_URL = re.compile(r"""\b[a-z][a-z0-9+.-]*://[^\s'"<>]+""", re.IGNORECASE)
_SECRET_PARAM = re.compile(r"key|token|secret|sig|pass|auth|credential|session", re.IGNORECASE)


def _secret_segment(segment: str) -> bool:
    """A path segment that looks like a key: long, and letters mixed with digits."""
    return (
        len(segment) >= 16
        and re.fullmatch(r"[A-Za-z0-9_\-]+", segment) is not None
        and re.search(r"[0-9]", segment) is not None
        and re.search(r"[A-Za-z]", segment) is not None
    )


def redact_url(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user, has_password, _ = userinfo.partition(":")
        netloc = f"{user}:{MASK}@{host}" if has_password else f"{MASK}@{host}"
    path = "/".join(MASK if _secret_segment(s) else s for s in parts.path.split("/"))
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, MASK if _SECRET_PARAM.search(k) else v) for k, v in pairs], safe="*")
    if (netloc, path, query) == (parts.netloc, parts.path, parts.query):
        # Nothing secret: the URL as given (urlunsplit would turn `sqlite:////tmp/x.db` into
        # `sqlite://tmp/x.db` and `memory://` into `memory:`), without its fragment.
        return url.partition("#")[0]
    return urlunsplit((parts.scheme, netloc, path, query, ""))


_QUERY_SECRET = re.compile(
    r"([?&][^=\s&#]*(?:key|token|secret|sig|pass|auth|credential|session)[^=\s&#]*=)"
    r"[^&\s'\"#)]+",
    re.IGNORECASE,
)


def redact_text(text: str) -> str:
    """Every URL in free text (an exception message, a server's answer) redacted, and secret
    query parameters even where a message quotes only a path (`with url: /hook?token=...`)."""
    return _QUERY_SECRET.sub(rf"\1{MASK}", _URL.sub(lambda m: redact_url(m.group(0)), text))


class RedactingFilter(logging.Filter):
    """Installed on every handler: no log line carries a credential from a URL."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "://" in message:
            record.msg = redact_text(message)
            record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            if "://" in text:
                record.exc_text = redact_text(text)
        return True

"""Calls from one of our services to another over HTTP (contracts and notify reading the
evidence and notify services): one way to send them and to read what failed. The other
service unreachable, or answering a status the caller did not expect, is a TransientError
(the caller's caller retries); statuses that mean something to the caller are mapped to its
own errors with `errors`, or accepted and read with `accept`."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

import requests

from .errors import TransientError


def call(
    method: str,
    url: str,
    *,
    service: str,
    timeout: float,
    accept: Collection[int] = (200,),
    errors: Mapping[int, Callable[[], BaseException]] | None = None,
    **kwargs: Any,
) -> requests.Response:
    """`method` `url` (requests' keyword arguments in `kwargs`); the answer when its status is
    in `accept`. `errors[status]()` is raised for the statuses it names; anything else, and the
    `service` unreachable, raise TransientError."""
    try:
        answer = requests.request(method, url, timeout=timeout, **kwargs)
    except requests.RequestException as exc:
        raise TransientError(f"the {service} service is unreachable: {exc}") from None
    if answer.status_code in accept:
        return answer
    make = (errors or {}).get(answer.status_code)
    if make is not None:
        raise make()
    raise TransientError(f"the {service} service answered {answer.status_code}")


def post_file(
    url: str, *, service: str, timeout: float, filename: str, content: bytes, content_type: str
) -> dict[str, Any]:
    """POST one file as multipart `file` to `url`: the 201's JSON (as `call`, otherwise)."""
    answer = call(
        "POST",
        url,
        service=service,
        timeout=timeout,
        accept=(201,),
        files={"file": (filename, content, content_type)},
    )
    body: dict[str, Any] = answer.json()
    return body

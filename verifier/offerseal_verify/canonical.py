"""Canonical JSON for signed records: sorted keys, no insignificant white space, UTF-8.

Signed records hold only strings, integers, booleans and null, for which this encoding equals
RFC 8785 (JCS); floats are refused so that no number formatting question can arise.
"""

from __future__ import annotations

import json
from typing import Any

_SCALARS = (str, int, type(None))  # bool is an int; float is neither


def _check(value: Any, path: str) -> None:
    if isinstance(value, float):
        raise ValueError(f"{path}: floats are not allowed in signed records")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{path}: keys must be strings")
            if not isinstance(item, _SCALARS):  # scalars need no further look
                _check(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if not isinstance(item, _SCALARS):
                _check(item, f"{path}[{i}]")


def canonical_json(value: Any) -> bytes:
    _check(value, "$")
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

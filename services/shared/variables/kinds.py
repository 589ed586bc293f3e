"""How a variable's text is read (durations, booleans, sizes, lists) and what a row of the
settings table says (`Variable`)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(text: str) -> float:
    """Seconds from `90`, `1.5`, `500ms`, `90s`, `30m`, `48h` or `2d`."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"not a duration: {text!r} (use seconds or a number with ms/s/m/h/d)")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"not a boolean: {text!r}")


def parse_size(text: str) -> int:
    match = re.match(r"^\s*(\d+)\s*(b|kib|mib|gib|kb|mb|gb)?\s*$", text.lower())
    if not match:
        raise ValueError(f"not a size: {text!r} (bytes, or a number with KiB/MiB/GiB)")
    factor = {
        None: 1,
        "b": 1,
        "kib": 1024,
        "mib": 1024**2,
        "gib": 1024**3,
        "kb": 1000,
        "mb": 1000**2,
        "gb": 1000**3,
    }[match.group(2)]
    return int(match.group(1)) * factor


def parse_list(text: str) -> tuple[str, ...]:
    """Comma- or space-separated values, in order, without empty ones."""
    return tuple(part for part in re.split(r"[\s,]+", text.strip()) if part)


@dataclass(frozen=True)
class Variable:
    env: str
    attr: str
    parse: Callable[[str], Any]
    help: str

"""0x-prefixed hex for 32-byte values, the one spelling used in APIs, messages and proofs."""

from __future__ import annotations

import re

_HEX32 = re.compile(r"0x[0-9a-fA-F]{64}")


def to_hex(value: bytes) -> str:
    return "0x" + value.hex()


def from_hex32(text: str) -> bytes:
    """Parse `0x` + 64 hex digits (either case); raises ValueError otherwise."""
    if not isinstance(text, str) or not _HEX32.fullmatch(text):
        raise ValueError("expected 0x followed by 64 hexadecimal digits")
    return bytes.fromhex(text[2:])


def is_hex32(text: object) -> bool:
    return isinstance(text, str) and bool(_HEX32.fullmatch(text))

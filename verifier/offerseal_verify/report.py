"""How a verdict is printed: one line per check, PASS, FAIL or SKIP with its reason, then the
outcome; or the same as JSON."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

from .deposits import PROVIDER_NAMES
from .proofs import Check, Verdict, claimed_sm3

MARKS = {True: "PASS", False: "FAIL", None: "SKIP"}
CHAIN_CHECKS = ("root_anchored", "anchor_transaction", "block_timestamp")


def hide_secrets(url: str) -> str:
    """An endpoint's URL as it may be printed: no password, no query, and no path segment that
    looks like an access key (as hosted RPC providers put them)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "***"
    host = parts.netloc.rpartition("@")[2]
    path = "/".join(
        "***" if re.fullmatch(r"[A-Za-z0-9_-]{16,}", s) else s for s in parts.path.split("/")
    )
    return urlunsplit((parts.scheme, host, path, "***" if parts.query else "", ""))


def check_lines(checks: tuple[Check, ...], indent: str = "") -> list[str]:
    """One line per check; a check that sums up others and did not pass lists them below it."""
    lines = []
    for check in checks:
        lines.append(f"{indent}{MARKS[check.ok]}  {check.name:<20} {check.detail}")
        if check.parts and check.ok is not True:
            lines.extend(check_lines(check.parts, indent + "      "))
    return lines


def witness_summary(
    bundle: object, verdict: Verdict, redact: Callable[[str], str] = lambda url: url
) -> str:
    """Each witness the bundle carries and whether it held: the chain, each RFC 3161 TSA, each
    judicial-chain deposit (checked off line only: the provider alone confirms it on line); and
    whether the bundle states the document's SM3."""
    chain_checks = [c for c in verdict.checks if c.name in CHAIN_CHECKS]
    chain_ok = None if any(c.ok is None for c in chain_checks) else all(c.ok for c in chain_checks)
    parts = [f"ethereum {MARKS[chain_ok if chain_checks else False]}"]
    stamps = [c for c in verdict.checks if c.name == "rfc3161_timestamp"]
    entries = bundle.get("timestamps") if isinstance(bundle, dict) else None
    for index, check in enumerate(stamps):
        tsa = "?"
        if isinstance(entries, list) and index < len(entries) and isinstance(entries[index], dict):
            tsa = str(entries[index].get("tsa", "?"))
        parts.append(f"rfc3161 {redact(tsa)} {MARKS[check.ok]}")
    if not stamps:
        parts.append("rfc3161 none in this bundle")
    deposits = [c for c in verdict.checks if c.name == "judicial_deposit"]
    entries = bundle.get("deposits") if isinstance(bundle, dict) else None
    for index, check in enumerate(deposits):
        kind = "?"
        if isinstance(entries, list) and index < len(entries) and isinstance(entries[index], dict):
            kind = str(entries[index].get("type", "?"))
        parts.append(
            f"{kind} {MARKS[check.ok]}"
            + (
                f" (present, checked against the provider's answer; on-line confirmation "
                f"needs {PROVIDER_NAMES.get(kind, 'the provider')})"
                if check.ok
                else ""
            )
        )
    if not deposits:
        parts.append("judicial chain none in this bundle")
    if claimed_sm3(bundle) is None:
        parts.append("sm3 not in this bundle (registered by hash only, or an older format)")
    return "; ".join(parts)


def print_verdict(
    verdict: Verdict,
    *,
    offline: bool,
    as_json: bool,
    witnesses: str | None = None,
) -> int:
    """Print the verdict; the exit status: 0 when valid (offline: when nothing failed), else 1."""
    if as_json:
        out = verdict.as_dict()
        out["offline"] = offline
        print(json.dumps(out, indent=2, ensure_ascii=False))
    else:
        for line in check_lines(verdict.checks):
            print(line)
        if offline:
            print("offline: the chain was not consulted; run without --offline for a full check")
        if witnesses is not None:
            print(f"witnesses: {witnesses}")
        print("VALID" if verdict.valid else "NOT VALID")
    if offline:
        return 0 if not verdict.failed else 1
    return 0 if verdict.valid else 1

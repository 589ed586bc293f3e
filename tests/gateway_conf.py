"""What deploy/gateway.conf (nginx) sends upstream, read from the file itself: its `map` blocks
and `proxy_set_header` lines evaluated for one request, so a test can send the services exactly
the forwarded headers the gateway would (there is no nginx on the test machines)."""

from __future__ import annotations

import re
from pathlib import Path

CONF = Path(__file__).resolve().parents[1] / "deploy" / "gateway.conf"
_MAP = re.compile(r"map\s+(\$\w+)\s+(\$\w+)\s*\{(.*?)\}", re.S)
_ENTRY = re.compile(r'\s*("[^"]*"|\S+)\s+("[^"]*"|\S+)\s*;')
_SET = re.compile(r"^\s*proxy_set_header\s+(\S+)\s+(\"[^\"]*\"|\S+)\s*;", re.M)
_VARIABLE = re.compile(r"\$\w+")


def _unquote(text: str) -> str:
    return text[1:-1] if text.startswith('"') and text.endswith('"') else text


def _expand(text: str, variables: dict[str, str]) -> str:
    return _VARIABLE.sub(lambda m: variables[m.group(0)], _unquote(text))


def forwarded_headers(
    request_headers: dict[str, str], peer: str, scheme: str = "http", conf: str | None = None
) -> dict[str, str]:
    """The headers the gateway sets on the request it passes to a service, for a request with
    `request_headers` that reached it from `peer` over `scheme`."""
    text = conf if conf is not None else CONF.read_text()
    text = re.sub(r"#[^\n]*", "", text)
    lowered = {k.lower(): v for k, v in request_headers.items()}
    variables: dict[str, str] = {
        "$scheme": scheme,
        "$remote_addr": peer,
        "$proxy_add_x_forwarded_for": (
            f"{lowered['x-forwarded-for']}, {peer}" if "x-forwarded-for" in lowered else peer
        ),
    }
    for name, value in lowered.items():
        variables["$http_" + name.replace("-", "_")] = value
    for source, target, body in _MAP.findall(text):
        table = {_unquote(k): v for k, v in _ENTRY.findall(body)}
        given = variables.get(source, "")
        chosen = table.get(given, table.get("default", '""'))
        variables[target] = _expand(chosen, variables)
    variables = {**variables, **{k: "" for k in _VARIABLE.findall(text) if k not in variables}}
    return {name: _expand(value, variables) for name, value in _SET.findall(text)}

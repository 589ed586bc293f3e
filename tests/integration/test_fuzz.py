"""Schemathesis against every service's own OpenAPI document, with and without keys: no answer
is a 5xx and no service dies. `make test` runs a short pass; `make fuzz` a long one
(FUZZ_EXAMPLES examples per operation)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import RunningStack, make_settings, start_stack

pytestmark = [pytest.mark.chain, pytest.mark.slow, pytest.mark.spread]  # long, independent runs
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, anvil: Any) -> Iterator[RunningStack]:
    tmp = tmp_path_factory.mktemp("fuzz")
    settings = make_settings(
        tmp, f"sqlite:///{tmp / 'fuzz.db'}", anvil.url, public_rate_limit="100000/minute"
    )
    running = start_stack(settings)
    yield running
    running.stack.stop()


def _schemathesis(base: str, headers: dict[str, str], report: Path) -> subprocess.CompletedProcess:
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{base}/openapi.json",
        "--checks",
        "not_a_server_error",
        "--max-examples",
        str(EXAMPLES),
        "--workers",
        "1",
        "--seed",
        "20261125",
        "--request-timeout",
        "60",
        "--suppress-health-check",
        "all",
        "--no-color",
    ]
    for name, value in headers.items():
        command += ["--header", f"{name}: {value}"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    report.write_text(result.stdout + result.stderr)
    return result


@pytest.mark.parametrize("service", ["evidence", "contracts", "notify"])
@pytest.mark.parametrize("who", ["anonymous", "hr", "admin"])
def test_no_generated_request_gets_a_server_error(
    stack: RunningStack, service: str, who: str, tmp_path: Path
) -> None:
    base = stack.stack.urls[service]
    headers = {} if who == "anonymous" else getattr(stack, who)
    result = _schemathesis(base, headers, tmp_path / "schemathesis.txt")
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    for name, url in stack.stack.urls.items():
        if name != "rpc":
            assert requests.get(url + "/healthz", timeout=30).status_code == 200, name

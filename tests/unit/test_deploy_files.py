"""docker-compose.yml cannot run here (no Docker engine), so it is checked by reading: every
OFFERSEAL_* variable it sets exists, and every command it runs is an `offerseal` command."""

from __future__ import annotations

from pathlib import Path

import yaml

from offerseal.cli import build_parser
from offerseal.shared.config import VARIABLES
from tests.gateway_conf import forwarded_headers

ROOT = Path(__file__).resolve().parents[2]


def test_compose_sets_only_known_variables_and_runs_known_commands() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    known = {v.env for v in VARIABLES}
    parser = build_parser()
    services = compose["services"]
    assert {"postgres", "rabbitmq", "anvil", "evidence", "contracts", "notify"} <= set(services)
    for name, service in services.items():
        env = service.get("environment", {})
        used = {k for k in env if k.startswith("OFFERSEAL_")}
        assert used <= known, f"{name}: unknown {sorted(used - known)}"
        command = service.get("command") or []
        if command[:1] == ["offerseal"]:
            parser.parse_args(command[1:])  # exits on an unknown command
    evidence_env = services["evidence"]["environment"]
    assert evidence_env["OFFERSEAL_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert evidence_env["OFFERSEAL_BROKER_URL"].startswith("amqp://")


def test_ci_script_calls_the_readme_test_command() -> None:
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert "make test" in (ROOT / "README.md").read_text()


def test_the_gateway_passes_on_the_tls_terminators_scheme_and_appends_its_own() -> None:
    """Two hops, terminator -> gateway -> service: the service (ProxyFix, trusting
    OFFERSEAL_TRUSTED_PROXIES=2 hops) reads the terminator's https, so cookies are Secure and
    HSTS is sent. The gateway used to overwrite X-Forwarded-Proto with its own http."""
    behind_tls = forwarded_headers(
        {
            "Host": "offers.example.com",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-For": "198.51.100.7",
        },
        peer="10.0.0.2",
    )
    assert behind_tls["X-Forwarded-Proto"] == "https, http"
    assert behind_tls["X-Forwarded-For"] == "198.51.100.7, 10.0.0.2"
    assert behind_tls["Host"] == "offers.example.com"
    alone = forwarded_headers({"Host": "localhost:8080"}, peer="198.51.100.7")
    assert alone["X-Forwarded-Proto"] == "http"  # one hop: the gateway's own scheme
    assert alone["X-Forwarded-For"] == "198.51.100.7"
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    # 1 by default (the gateway alone); 2 is the operator's choice with a terminator in front
    assert (
        compose["x-offerseal-env"]["OFFERSEAL_TRUSTED_PROXIES"] == "${OFFERSEAL_TRUSTED_PROXIES:-1}"
    )

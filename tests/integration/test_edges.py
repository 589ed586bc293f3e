"""The edges of a deployment, against a real `offerseal up` process: what it prints (never a
password; the bootstrap admin key once, not at every start), and the scheme it believes behind
a TLS terminator and the gateway (deploy/gateway.conf, two trusted hops): Secure cookies and
HSTS; and set-up links that name the configured origin whatever Host header is sent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from offerseal.shared.config import ANVIL_DEV_KEY, ANVIL_DEV_KEY_2
from tests.conftest import free_port
from tests.gateway_conf import forwarded_headers

pytestmark = [pytest.mark.chain, pytest.mark.slow]
PASSWORD = "pg-s3cret-Passw0rd"  # PostgreSQL trusts local connections: it is never asked for
READY = "Ctrl-C stops everything."
ORIGIN = "https://offers.example.com"  # the configured people's origin


@dataclass
class Up:
    process: subprocess.Popen[bytes]
    out: Path
    web: str

    def printed(self) -> str:
        return self.out.read_text(errors="replace")

    def wait_ready(self, timeout: float = 120.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.printed()
            lines = text[text.find(READY) :].splitlines() if READY in text else []
            # ready once the last line is out: the key, or the line that says one exists
            if lines and (len(lines) > 1 or "exists" in lines[0]):
                return text
            assert self.process.poll() is None, f"offerseal up exited:\n{text[-3000:]}"
            time.sleep(0.2)
        raise AssertionError(f"offerseal up did not start:\n{self.printed()[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@pytest.fixture
def env(tmp_path: Path, postgres_url: str, fresh_anvil: Any) -> dict[str, str]:
    with_password = postgres_url.replace("://postgres@", f"://postgres:{PASSWORD}@", 1)
    assert PASSWORD in with_password
    return {
        "OFFERSEAL_DATA_DIR": str(tmp_path / "data"),
        "OFFERSEAL_DATABASE_URL": with_password,
        "OFFERSEAL_BROKER_URL": "memory://",
        "OFFERSEAL_RPC_URL": fresh_anvil.url,
        "OFFERSEAL_SIGNER_KEY": ANVIL_DEV_KEY,
        "OFFERSEAL_CONTRACTS_SIGNER_KEY": ANVIL_DEV_KEY_2,
        "OFFERSEAL_TSA_URLS": "",
        "OFFERSEAL_WEB_PORT": str(free_port()),
        "OFFERSEAL_EVIDENCE_PORT": str(free_port()),
        "OFFERSEAL_CONTRACTS_PORT": str(free_port()),
        "OFFERSEAL_NOTIFY_PORT": str(free_port()),
        # terminator -> gateway -> this process (deploy/gateway.conf)
        "OFFERSEAL_TRUSTED_PROXIES": "2",
        "OFFERSEAL_WEB_PUBLIC_URL": ORIGIN,
        "OFFERSEAL_LOG_LEVEL": "WARNING",
    }


def start_up(env: dict[str, str], out: Path) -> Up:
    with out.open("ab") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "offerseal.cli", "up", "--tenant", "acme"],
            env={**os.environ, **env},
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    return Up(process, out, f"http://127.0.0.1:{env['OFFERSEAL_WEB_PORT']}")


@pytest.fixture
def up(env: dict[str, str], tmp_path: Path) -> Iterator[Up]:
    running = start_up(env, tmp_path / "up-1.log")
    yield running
    running.stop()


def test_up_prints_no_password_and_mints_the_bootstrap_key_once(
    up: Up, env: dict[str, str], tmp_path: Path
) -> None:
    first = up.wait_ready()
    assert PASSWORD not in first, first
    assert "database postgresql+psycopg://postgres:***@127.0.0.1" in first, first
    token = first.strip().splitlines()[-1]
    assert token.startswith("osk_"), first
    assert requests.get(up.web + "/v1/agreements", headers={"Authorization": f"Bearer {token}"})
    up.stop()

    again = start_up(env, tmp_path / "up-2.log")
    try:
        second = again.wait_ready()
    finally:
        again.stop()
    assert PASSWORD not in second and "osk_" not in second, second
    key_id = token.split("_")[1]
    assert f"bootstrap admin key of tenant 'acme' exists (key id {key_id}" in second, second
    assert "offerseal keys create --role admin --tenant acme" in second
    listed = subprocess.run(
        [sys.executable, "-m", "offerseal.cli", "keys", "list", "--tenant", "acme"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert listed.stdout.count("bootstrap (offerseal up)") == 1, listed.stdout
    assert PASSWORD not in listed.stdout + listed.stderr


def test_behind_a_tls_terminator_and_the_gateway_cookies_are_secure_and_hsts_is_sent(
    up: Up,
) -> None:
    up.wait_ready()
    # What the terminator sends the gateway, and what the gateway (its config, evaluated)
    # then sends this process.
    from_terminator = {
        "Host": "offers.example.com",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-For": "198.51.100.7",
    }
    headers = forwarded_headers(from_terminator, peer="10.0.0.2")
    page = requests.get(up.web + "/console/login", headers=headers, timeout=30)
    assert page.status_code == 200, page.text
    assert page.headers.get("Strict-Transport-Security", "").startswith("max-age="), page.headers
    cookie = page.headers["Set-Cookie"]
    assert "offerseal_login_csrf=" in cookie and "Secure" in cookie, cookie

    # Over plain http (the gateway alone, no terminator): no Secure, no HSTS.
    plain = requests.get(
        up.web + "/console/login",
        headers=forwarded_headers({"Host": "localhost"}, peer="10.0.0.2"),
        timeout=30,
    )
    assert "Strict-Transport-Security" not in plain.headers
    assert "Secure" not in plain.headers["Set-Cookie"]


def test_a_set_up_link_names_the_configured_origin_whatever_the_host_header(
    up: Up, env: dict[str, str]
) -> None:
    """The admin adds a colleague and hands on the one-time link the console shows. It was built
    from the request's Host header: a forged one put another site, which would receive the
    set-up token, in the link."""
    from tests.integration.test_console import PASSWORD, csrf_of

    up.wait_ready()
    command = ["users", "add", "boss@acme.example", "--role", "admin", "--tenant", "acme"]
    added = subprocess.run(
        [sys.executable, "-m", "offerseal.cli", *command],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    link = added.stdout.strip().splitlines()[-1]
    assert link.startswith(f"{ORIGIN}/console/setup/"), added.stdout
    setup = up.web + link.removeprefix(ORIGIN)
    admin = requests.Session()
    page = admin.get(setup, timeout=30)
    done = admin.post(
        setup,
        data={"csrf_token": csrf_of(page.text), "password": PASSWORD, "confirm": PASSWORD},
        timeout=30,
    )
    signed_in = admin.post(
        up.web + "/console/login",
        data={"csrf_token": csrf_of(done.text), "email": "boss@acme.example", "password": PASSWORD},
        timeout=30,
    )
    assert signed_in.status_code == 200 and signed_in.url.endswith("/console"), signed_in.text
    people = admin.get(up.web + "/console/people", timeout=30)
    cookies = "; ".join(f"{c.name}={c.value}" for c in admin.cookies)
    forged = requests.post(
        up.web + "/console/people",
        data={"csrf_token": csrf_of(people.text), "email": "new.hr@acme.example", "role": "hr"},
        headers={"Host": "attacker.example", "X-Forwarded-Host": "attacker.example"}
        | {"X-Forwarded-For": "198.51.100.7, 10.0.0.2", "Cookie": cookies},
        timeout=30,
    )
    assert forged.status_code == 201, forged.text
    assert f'id="setup-link">{ORIGIN}/console/setup/' in forged.text
    assert "attacker.example" not in forged.text

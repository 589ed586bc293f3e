"""The console as docker-compose runs it: `offerseal serve web` in one process, the evidence,
contracts and notify services in another, one PostgreSQL database. The console's actions go to
the contracts API over HTTP with the person's session (issue 24: a web node alone answered them
503 before)."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from harness.procs import ServiceProcess, create_key, free_port, service_env
from offerseal.shared import users
from offerseal.shared.config import ANVIL_DEV_KEY_2, load_settings
from offerseal.stack import open_database
from tests.integration.test_console import PASSWORD, csrf_of
from tests.integration.test_contracts_service import body

pytestmark = [pytest.mark.chain, pytest.mark.postgres, pytest.mark.slow]


def _wait_ok(url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=5).status_code == 200:
                return
        except requests.RequestException:  # not listening yet, or busy
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer 200 in {timeout} s")


def test_the_console_changes_a_start_date_with_web_and_contracts_in_separate_processes(
    tmp_path: Path, postgres_url: str, anvil: Any
) -> None:
    env = service_env(
        tmp_path,
        postgres_url,
        anvil.url,
        OFFERSEAL_CONTRACTS_SIGNER_KEY=ANVIL_DEV_KEY_2,
        OFFERSEAL_CONTRACTS_PORT=str(free_port()),
        OFFERSEAL_NOTIFY_PORT=str(free_port()),
    )
    contracts = f"http://127.0.0.1:{env['OFFERSEAL_CONTRACTS_PORT']}"
    services = ServiceProcess(env, tmp_path / "services.log").start()
    web_port = free_port()
    web_env = {
        **os.environ,
        **{k: v for k, v in env.items() if k not in ("OFFERSEAL_CONTRACTS_PORT",)},
        "OFFERSEAL_DATA_DIR": str(tmp_path / "web-data"),
        "OFFERSEAL_WEB_PORT": str(web_port),
        "OFFERSEAL_CONTRACTS_URL": contracts,
    }
    console = f"http://127.0.0.1:{web_port}"
    web: subprocess.Popen[bytes] | None = None
    web_log = (tmp_path / "web.log").open("ab")
    try:
        services.wait_http(180)  # it migrates the database first; the web node starts on it
        _wait_ok(contracts + "/healthz")
        web = subprocess.Popen(
            [sys.executable, "-m", "offerseal.cli", "serve", "web"],
            env=web_env,
            stdout=web_log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        _wait_ok(console + "/healthz")

        key = create_key(env)
        offered = requests.post(
            contracts + "/v1/agreements",
            headers={"Authorization": f"Bearer {key}", "Prefer": "wait=30"},
            json=body(candidate_ref="cand-split"),
            timeout=60,
        )
        assert offered.status_code == 201, offered.text
        agreement = offered.json()

        # An HR person, signed in to the web node (its own process).
        db = open_database(load_settings({**os.environ, **env}))
        try:
            _, token = users.add_user(db, "split.hr@acme.example", "hr", "acme", by="test")
        finally:
            db.dispose()
        browser = requests.Session()
        setup = browser.get(f"{console}/console/setup/{token}", timeout=30)
        done = browser.post(
            f"{console}/console/setup/{token}",
            data={"csrf_token": csrf_of(setup.text), "password": PASSWORD, "confirm": PASSWORD},
            timeout=30,
        )
        signed_in = browser.post(
            f"{console}/console/login",
            data={
                "csrf_token": csrf_of(done.text),
                "email": "split.hr@acme.example",
                "password": PASSWORD,
            },
            timeout=30,
        )
        assert signed_in.url.endswith("/console"), signed_in.text

        # The console's amend form, posted to the web node: applied on chain by contracts.
        url = f"{console}/console/agreements/{agreement['id']}/amend"
        form = browser.get(url, timeout=30)
        assert form.status_code == 200, form.text
        later = (dt.date.fromisoformat(body()["start_date"]) + dt.timedelta(days=7)).isoformat()
        answer = browser.post(
            url,
            data={"csrf_token": csrf_of(form.text), "start_date": later, "reason": "handover"},
            timeout=120,
            allow_redirects=False,
        )
        assert answer.status_code == 303, answer.text
        assert "done=amend_" in answer.headers["Location"]
        seen = requests.get(
            f"{contracts}/v1/agreements/{agreement['id']}",
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        ).json()
        assert seen["start_at"].startswith(later), seen["start_at"]

        # The same form without the session's CSRF token: refused, nothing sent.
        forged = requests.post(
            url,
            data={"start_date": later, "reason": "x"},
            cookies=browser.cookies,
            timeout=30,
            allow_redirects=False,
        )
        assert forged.status_code == 403
    finally:
        if web is not None:
            web.send_signal(signal.SIGTERM)
            try:
                web.wait(20)
            except subprocess.TimeoutExpired:
                web.kill()
        web_log.close()
        services.terminate()

"""Real `offerseal` processes for crash, restart and fail-over tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.conftest import free_port


class ServiceProcess:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        # Each service whose port is in the environment runs in the one process.
        self.services = ["evidence"] + [
            name for name in ("contracts", "notify") if f"OFFERSEAL_{name.upper()}_PORT" in env
        ]
        self.log = log
        self.port = int(env["OFFERSEAL_EVIDENCE_PORT"])
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, failpoint: str = "") -> ServiceProcess:
        env = {**os.environ, **self.env, "OFFERSEAL_FAILPOINT": failpoint}
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "offerseal.cli", "serve", *self.services],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        return self

    def wait_http(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"service exited early:\n{self.log.read_text()[-3000:]}")
            try:
                requests.get(self.base + "/v1/keys", timeout=5)
                return
            except (requests.ConnectionError, requests.Timeout):
                # not listening yet, or too busy to answer in time on a loaded machine
                time.sleep(0.1)
        raise AssertionError("service did not start listening")

    def wait_exit(self, timeout: float = 60.0) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


def service_env(tmp: Path, database_url: str, rpc_url: str, **extra: str) -> dict[str, str]:
    from offerseal.shared.config import ANVIL_DEV_KEY

    env = {
        "OFFERSEAL_DATA_DIR": str(tmp / "data"),
        "OFFERSEAL_DATABASE_URL": database_url,
        "OFFERSEAL_RPC_URL": rpc_url,
        "OFFERSEAL_SIGNER_KEY": ANVIL_DEV_KEY,
        "OFFERSEAL_EVIDENCE_PORT": str(free_port()),
        "OFFERSEAL_BATCH_INTERVAL": "300ms",
        "OFFERSEAL_RECONCILE_INTERVAL": "1s",
        "OFFERSEAL_BROKER_URL": "memory://",
        "OFFERSEAL_LOG_LEVEL": "INFO",
    }
    env.update(extra)
    return env


def create_key(env: dict[str, str], role: str = "hr", tenant: str = "acme") -> str:
    """A key in the database `env` configures, as `offerseal keys create` makes it (the schema
    brought up to date first), but in this process: the command itself is tested in test_cli
    and test_hardening, and a Python process per key cost seconds of CPU."""
    from offerseal.shared.auth import create_key as create
    from offerseal.shared.config import load_settings
    from offerseal.stack import open_database

    db = open_database(load_settings({**os.environ, **env}))
    try:
        return str(create(db, role, tenant)[1])
    finally:
        db.dispose()

"""Real `offerseal` processes for crash, restart, fail-over, chaos and bench runs: one process
(`offerseal serve ...`) or the pre-fork arbiter with its workers (`--workers N`), their
environment, API keys, scratch PostgreSQL databases and ports to listen on.

A process is started cold (a new Python runs `python -m offerseal.cli serve`, as an operator
starts it: the bench runs, which measure starts) or, once `use_warm_starts()` was called (the
test suite), forked from a fork server that has already imported the services: a real process
all the same, with its own pid, environment and log, killed by real signals and its exit status
seen, without the seconds of imports each cold start costs (about 2 s of CPU, a few hundred
starts a suite run)."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import requests

from offerseal.shared.net import free_port as shared_free_port

PG_ADMIN = os.environ.get(
    "OFFERSEAL_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
AMQP = os.environ.get("OFFERSEAL_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672//")
SERVICES = ("evidence", "contracts", "notify")


def free_port() -> int:
    """A port nothing listens on, for a process started later (Anvil, `offerseal serve`):
    `offerseal.shared.net.free_port`, below the kernel's ephemeral range, from a slice of that
    range of this pytest-xdist worker's own (a port picked stays unbound for seconds while a
    key is created or a process starts: another worker could otherwise pick it meanwhile)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    if worker.startswith("gw") and worker[2:].isdigit() and workers > 1:
        return shared_free_port(int(worker[2:]), workers)
    return shared_free_port()


def gone(pid: int) -> bool:
    """True when `pid` has ended (a zombie not yet reaped counts as ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return True


_warm: Any = None  # the fork server's multiprocessing context, once use_warm_starts() ran


def use_warm_starts() -> None:
    """From now on, ServiceProcess forks its processes from a fork server that imported
    `harness.warm` (every module `offerseal serve` needs) instead of starting a new Python."""
    global _warm
    if _warm is None:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["harness.warm"])
        _warm = context


def _serve(argv: list[str], env: dict[str, str], log: str, new_session: bool) -> None:
    """In the forked process: what `subprocess.Popen` would have set up (the environment, a
    session of its own, stdin from /dev/null, stdout and stderr appended to `log`), then
    `offerseal` with `argv`; its return code is the process's exit status."""
    if new_session:
        os.setsid()
    os.environ.clear()
    os.environ.update(env)
    out = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(out)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    sys.stderr.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    sys.argv = ["offerseal", *argv]
    from offerseal.cli import main

    raise SystemExit(main(argv))


class _Forked:
    """The part of `subprocess.Popen` the tests use, for a process of the fork server."""

    def __init__(self, process: Any) -> None:
        self._process = process
        self.pid: int = process.pid

    @property
    def returncode(self) -> int | None:
        code: int | None = self._process.exitcode
        return code

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        if self.returncode is None:
            raise subprocess.TimeoutExpired("offerseal serve", timeout or 0.0)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


class ServiceProcess:
    """`offerseal serve` with the services whose ports `env` names (evidence always), as one
    process or, with `workers`, under the pre-fork arbiter in its own session."""

    def __init__(
        self,
        env: dict[str, str],
        log: Path,
        services: tuple[str, ...] | None = None,
        workers: int = 0,
    ) -> None:
        self.env, self.log, self.workers = env, log, workers
        self.services = services or tuple(
            ["evidence"] + [n for n in SERVICES[1:] if f"OFFERSEAL_{n.upper()}_PORT" in env]
        )
        self.port = int(env["OFFERSEAL_EVIDENCE_PORT"])
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | _Forked | None = None

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.env[f'OFFERSEAL_{service.upper()}_PORT']}"

    def start(self, failpoint: str = "") -> ServiceProcess:
        env = {**os.environ, **self.env, "OFFERSEAL_FAILPOINT": failpoint}
        more = ["--workers", str(self.workers)] if self.workers else []
        if _warm is not None:
            args = (["serve", *self.services, *more], env, str(self.log), bool(self.workers))
            process = _warm.Process(target=_serve, args=args, daemon=True)
            process.start()
            self.process = _Forked(process)
            return self
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "offerseal.cli", "serve", *self.services, *more],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=bool(self.workers),  # its workers end with its session
            )
        return self

    def _alive(self) -> None:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"service exited early:\n{self.log.read_text()[-3000:]}")

    def wait_http(self, timeout: float = 120.0) -> None:
        """Until the evidence service answers HTTP at all (any status)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._alive()
            try:
                requests.get(self.base + "/v1/keys", timeout=5)
                return
            except (requests.ConnectionError, requests.Timeout):
                # not listening yet, or too busy to answer in time on a loaded machine
                time.sleep(0.1)
        raise AssertionError("service did not start listening")

    def wait_healthy(self, timeout: float = 60.0) -> None:
        """Until every service's /healthz answers 200."""
        urls = [self.url(name) for name in self.services]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._alive()
            try:
                if all(requests.get(u + "/healthz", timeout=5).status_code == 200 for u in urls):
                    return
            except requests.RequestException:  # not listening yet, or busy starting
                pass
            time.sleep(0.2)
        raise AssertionError(f"not healthy in {timeout:g} s:\n{self.log.read_text()[-3000:]}")

    def processes(self, want: int, timeout: float = 90.0) -> dict[int, dict[str, Any]]:
        """Ask the evidence service's /healthz on fresh connections until `want` healthy
        processes answered: {pid: its `process` check (role, start cost)}."""
        seen: dict[int, dict[str, Any]] = {}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._alive()
            try:
                r = requests.get(self.base + "/healthz", timeout=5)
            except (requests.ConnectionError, requests.Timeout):  # not up yet, or busy
                time.sleep(0.1)
                continue
            if r.status_code == 200:
                process = r.json()["checks"]["process"]
                seen[int(process["pid"])] = process
                if len(seen) >= want:
                    return seen
            else:
                time.sleep(0.1)
        raise AssertionError(f"only {seen} answered healthy:\n{self.log.read_text()[-3000:]}")

    def wait_exit(self, timeout: float = 60.0) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def kill(self) -> None:
        """SIGKILL the process (under the arbiter: the arbiter and every worker)."""
        if self.process is not None and self.process.poll() is None:
            if self.workers:
                os.killpg(self.process.pid, signal.SIGKILL)
            else:
                self.process.send_signal(signal.SIGKILL)
            self.process.wait(30)

    def kill_workers(self) -> list[int]:
        """SIGKILL every worker process at once, not the arbiter (which forks them again);
        returns their ids once they are gone."""
        assert self.process is not None and self.workers
        pid = self.process.pid
        workers = [int(w) for w in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        for worker in workers:
            os.kill(worker, signal.SIGKILL)
        while not all(gone(w) for w in workers):
            time.sleep(0.01)
        return workers

    def terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(40 if self.workers else 20)
            except subprocess.TimeoutExpired:
                self.kill()

    stop = terminate


def service_env(tmp: Path, database_url: str, rpc_url: str, **extra: str) -> dict[str, str]:
    """The environment of an evidence service (add the other services' ports in `extra`)."""
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


class ScratchDatabase:
    """A PostgreSQL database of its own on the server `admin_url` names, dropped by `drop()`.
    `pooled=False` keeps no admin connection open (the server may be restarted under us)."""

    def __init__(
        self, admin_url: str = PG_ADMIN, prefix: str = "offerseal_bench", pooled: bool = True
    ) -> None:
        import sqlalchemy as sa
        from sqlalchemy.pool import NullPool

        self.name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        pool: dict[str, Any] = {} if pooled else {"poolclass": NullPool}
        self.admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", **pool)
        with self.admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{self.name}"'))
        self.url = admin_url.rsplit("/", 1)[0] + f"/{self.name}"

    def drop(self) -> None:
        import sqlalchemy as sa

        try:
            with self.admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        finally:
            self.admin.dispose()

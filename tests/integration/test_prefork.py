"""`offerseal serve evidence --workers 2` as a real process (gunicorn's pre-fork server) on
PostgreSQL, RabbitMQ and Anvil: uploads are answered by more than one worker process, exactly one
process runs the background (anchoring), everything is anchored exactly once, and a worker
killed with SIGKILL loses no document that was answered 201 (the arbiter forks another)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from offerseal.shared.prefork import PROCESS_HEADER
from tests.integration.test_recovery import assert_anchored_exactly_once, proofs
from tests.procs import create_key, service_env

pytestmark = [pytest.mark.chain, pytest.mark.slow]


class Prefork:
    """`offerseal serve evidence --workers N` in its own session (its workers die with it)."""

    def __init__(self, env: dict[str, str], log: Path, workers: int) -> None:
        self.base = f"http://127.0.0.1:{env['OFFERSEAL_EVIDENCE_PORT']}"
        self.log = log
        self.described: dict[int, dict[str, Any]] = {}  # pid -> its /healthz `process` check
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "offerseal.cli",
                    "serve",
                    "evidence",
                    "--workers",
                    str(workers),
                ],
                env={**os.environ, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def processes(self, want: int, timeout: float = 90.0) -> dict[int, str]:
        """Ask /healthz on fresh connections until `want` healthy processes answered:
        {pid: role}."""
        seen: dict[int, str] = {}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited:\n{self.log.read_text()[-3000:]}")
            try:
                r = requests.get(self.base + "/healthz", timeout=5)
            except (requests.ConnectionError, requests.Timeout):  # not up yet, or busy
                time.sleep(0.1)
                continue
            if r.status_code == 200:
                process = r.json()["checks"]["process"]
                seen[int(process["pid"])] = process["role"]
                self.described[int(process["pid"])] = process
                if len(seen) >= want:
                    return seen
            else:
                time.sleep(0.1)
        raise AssertionError(f"only {seen} answered healthy:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(40)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)


def upload(base: str, key: str, content: bytes) -> tuple[str, int] | None:
    """One upload on a fresh connection: (id, answering pid) on 201, None when the connection
    broke (a killed worker: the document was not accepted)."""
    try:
        r = requests.post(
            base + "/v1/documents",
            headers={"Authorization": f"Bearer {key}"},
            data={"kind": "resignation_application", "candidate_ref": "c"},
            files={"file": ("d.txt", content)},
            timeout=30,
        )
    except requests.ConnectionError:
        return None
    if r.status_code != 201:
        if r.status_code >= 500:
            return None
        raise AssertionError(r.text)
    return str(r.json()["id"]), int(r.headers[PROCESS_HEADER])


def test_two_workers_take_uploads_one_anchors_and_a_killed_worker_loses_nothing(
    tmp_path: Path, postgres_url: str, amqp_url: str, fresh_anvil: Any
) -> None:
    env = service_env(tmp_path, postgres_url, fresh_anvil.url, OFFERSEAL_BROKER_URL=amqp_url)
    key = create_key(env)
    server = Prefork(env, tmp_path / "service.log", workers=2)
    contents: dict[str, bytes] = {}
    answered_by: set[int] = set()
    lock = threading.Lock()
    try:
        roles = server.processes(2)
        assert sorted(roles.values()) == ["background", "requests"], roles

        def client(n: int, tag: str) -> None:
            for i in range(n):
                data = f"{tag} {i} ".encode() + os.urandom(64)
                done = upload(server.base, key, data)
                if done is not None:
                    with lock:
                        contents[done[0]] = data
                        answered_by.add(done[1])

        clients = [threading.Thread(target=client, args=(15, f"a{t}")) for t in range(4)]
        for t in clients:
            t.start()
        for t in clients:
            t.join(120)
        assert len(contents) == 60
        assert len(answered_by) > 1, answered_by  # more than one process took uploads

        # SIGKILL the background process while clients keep uploading.
        background = next(pid for pid, role in roles.items() if role == "background")
        clients = [threading.Thread(target=client, args=(15, f"b{t}")) for t in range(4)]
        for t in clients:
            t.start()
        os.kill(background, signal.SIGKILL)
        for t in clients:
            t.join(120)
        after = server.processes(2)
        assert background not in after
        assert sorted(after.values()) == ["background", "requests"], after
        assert len(contents) > 60
        # The replacement was forked warm: the arbiter had imported the services' modules, so
        # the new process imported (almost) nothing before serving (a cold one imports over 1,000).
        replacement = next(pid for pid, role in after.items() if role == "background")
        started = server.described[replacement]
        assert started["imported_after_fork"] < 50, started

        bundles = proofs(server.base, key, list(contents), timeout=120)
    finally:
        server.stop()
    log = server.log.read_text()
    assert "standing by" not in log  # never two anchorers at once
    assert_anchored_exactly_once(postgres_url, fresh_anvil.url, contents, bundles)

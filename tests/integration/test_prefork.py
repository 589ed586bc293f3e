"""`offerseal serve evidence --workers 2` as a real process (gunicorn's pre-fork server) on
PostgreSQL, RabbitMQ and Anvil: uploads are answered by more than one worker process, exactly one
process runs the background (anchoring), everything is anchored exactly once, and a worker
killed with SIGKILL loses no document that was answered 201 (the arbiter forks another)."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Any

import pytest
import requests

from harness.procs import ServiceProcess, create_key, service_env
from offerseal.shared.prefork import PROCESS_HEADER
from tests.integration.test_recovery import assert_anchored_exactly_once, proofs

pytestmark = [pytest.mark.chain, pytest.mark.slow]


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
    server = ServiceProcess(env, tmp_path / "service.log", workers=2).start()
    contents: dict[str, bytes] = {}
    answered_by: set[int] = set()
    lock = threading.Lock()
    try:
        roles = {pid: p["role"] for pid, p in server.processes(2).items()}
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
        described = server.processes(2)
        after = {pid: p["role"] for pid, p in described.items()}
        assert background not in after
        assert sorted(after.values()) == ["background", "requests"], after
        assert len(contents) > 60
        # The replacement was forked warm: the arbiter had imported the services' modules, so
        # the new process imported (almost) nothing before serving (a cold one imports over 1,000).
        replacement = next(pid for pid, role in after.items() if role == "background")
        started = described[replacement]
        assert started["imported_after_fork"] < 50, started

        bundles = proofs(server.base, key, list(contents), timeout=120)
    finally:
        server.stop()
    log = server.log.read_text()
    assert "standing by" not in log  # never two anchorers at once
    assert_anchored_exactly_once(postgres_url, fresh_anvil.url, contents, bundles)

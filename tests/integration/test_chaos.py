"""The short form of `make chaos` in every test run: under steady load, the service process is
killed with SIGKILL and Anvil is restarted from its state, repeatedly; afterwards nothing
answered 201 is lost or doubled, every accepted signature is committed once, every invitation
went out once, and the outbox is empty. (RabbitMQ and PostgreSQL restarts are in the long form,
`make chaos`, which restarts the machine's shared servers.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import chaos
from tests.conftest import require_server

pytestmark = [pytest.mark.chain, pytest.mark.slow, pytest.mark.postgres, pytest.mark.rabbitmq]


def test_faults_under_load_lose_nothing_and_double_nothing(tmp_path: Path, amqp_url: str) -> None:
    require_server("PostgreSQL", "127.0.0.1", 5432)
    require_server("RabbitMQ", "127.0.0.1", 5672)
    result = chaos.run(
        seconds=45, faults=chaos.LOCAL_FAULTS, every=9, tmp=tmp_path, amqp_url=amqp_url
    )
    assert result["quiet"], result
    assert sum(result["faults"].values()) >= 4, result
    assert result["documents_201"] > 0 and result["signatures_accepted"] > 0, result
    for name in chaos.BAD:
        assert result[name] == 0, (name, result)
    # SMTP's own window (docs/api.md): a SIGKILL between the server's 250 and the journal line
    # resends that one message, with its Message-ID; `emails_duplicated` counts any other.
    assert result["emails_resent_after_kill_in_smtp_window"] <= result["faults"].get("kill9", 0)

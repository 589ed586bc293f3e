"""Messages through the outbox and the broker, on kombu's in-process transport and RabbitMQ:
published after commit, consumed once, invalid ones dead-lettered with the reason, and held
in the outbox while the broker is down."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from kombu import Connection, Producer, Queue
from sqlalchemy import func, select

from offerseal.shared import messages, topology
from offerseal.shared.broker import MessageConsumer, connect, declare
from offerseal.shared.models import HandledMessage, OutboxMessage
from tests.conftest import free_port, make_settings, start_stack, upload, wait_for_proof
from tests.tcpproxy import TcpProxy

pytestmark = pytest.mark.chain


def drain(url: str, queue_name: str, want: int, timeout: float = 20.0) -> list[Any]:
    """Collect `want` messages from a queue (real consumption, acked)."""
    got: list[Any] = []
    deadline = time.monotonic() + timeout
    with Connection(url) as conn:
        simple = conn.SimpleQueue(Queue(queue_name, no_declare=True), no_ack=False)
        try:
            while len(got) < want and time.monotonic() < deadline:
                try:
                    message = simple.get(block=True, timeout=0.5)
                except simple.Empty:
                    continue
                got.append(message.payload)
                message.ack()
        finally:
            simple.close()
    return got


def declare_test_queue(url: str, name: str, keys: tuple[str, ...]) -> None:
    with connect(url) as conn:
        declare(conn)
        topology.service_queue(name, keys)(conn.default_channel).declare()


@pytest.fixture
def consumer_db(tmp_path: Path) -> Iterator[Any]:
    from offerseal.shared.db import Database

    db = Database(f"sqlite:///{tmp_path / 'consumer.db'}")
    db.migrate()
    yield db
    db.dispose()


def test_anchored_documents_are_announced_once_each(
    tmp_path: Path, sqlite_url: str, anvil: Any, broker_url: str
) -> None:
    queue = f"test-{uuid.uuid4().hex[:8]}"
    declare_test_queue(broker_url, queue, ("evidence.anchored.v1",))
    batches = f"test-{uuid.uuid4().hex[:8]}"
    declare_test_queue(broker_url, batches, ("evidence.batch_anchored.v1",))
    stack = start_stack(make_settings(tmp_path, sqlite_url, anvil.url, broker_url=broker_url))
    try:
        upload(stack, b"not tied to an agreement: no per-document message")
        ids = [
            upload(
                stack, f"doc {i}".encode(), agreement_id="ag-1", milestone="resignation_submitted"
            ).json()["id"]
            for i in range(3)
        ]
        for doc_id in ids:
            wait_for_proof(stack, doc_id)
        bodies = drain(broker_url, f"offerseal.{queue}", 3)
        batch_bodies = drain(broker_url, f"offerseal.{batches}", 1)
        assert drain(broker_url, f"offerseal.{queue}", 1, timeout=1.0) == []  # nothing more
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the relay marks rows sent right after publishing
            with stack.db.sessions() as session:
                unsent = session.execute(
                    select(func.count())
                    .select_from(OutboxMessage)
                    .where(OutboxMessage.sent_at.is_(None))
                ).scalar()
            if unsent == 0:
                break
            time.sleep(0.1)
        assert unsent == 0
    finally:
        stack.stack.stop()
    parsed = [messages.parse(b) for b in bodies]
    assert sorted(m.payload["document_id"] for m in parsed) == sorted(ids)
    assert all(m.type is messages.EVIDENCE_ANCHORED and m.tenant == "acme" for m in parsed)
    assert all(m.payload["agreement_id"] == "ag-1" for m in parsed)
    [batch] = [messages.parse(b) for b in batch_bodies]
    assert batch.type is messages.EVIDENCE_BATCH_ANCHORED and batch.payload["documents"] >= 1


def _valid_body() -> dict[str, Any]:
    return messages.build(
        messages.EVIDENCE_ANCHORED,
        "acme",
        {
            "document_id": "d-1",
            "kind": "other",
            "candidate_ref": "c",
            "leaf": "0x" + "1" * 64,
            "root": "0x" + "2" * 64,
            "proof": [],
            "chain_id": 31337,
            "registry": "0x" + "3" * 40,
            "tx_hash": "0x" + "4" * 64,
            "block_number": 1,
            "block_timestamp": 1,
            "batch_id": 1,
        },
    )


def test_consumer_dedupes_and_dead_letters_with_reason(broker_url: str, consumer_db: Any) -> None:
    name = f"test-{uuid.uuid4().hex[:8]}"
    handled: list[str] = []
    consumer = MessageConsumer(
        name,
        consumer_db,
        broker_url,
        handlers={"evidence.anchored": lambda session, m: handled.append(m.message_id)},
        binding_keys=("evidence.anchored.v1", "junk.#"),
    )
    with connect(broker_url) as conn:
        declare(conn)
        topology.dead_letter_queue(conn.default_channel).purge()
        consumer.queue(conn.default_channel).declare()
        producer = Producer(conn.default_channel, exchange=topology.events, serializer="json")
        body = _valid_body()
        producer.publish(body, routing_key="evidence.anchored.v1")
        producer.publish(body, routing_key="evidence.anchored.v1")  # delivered twice
        producer.publish({"type": "evidence.anchored"}, routing_key="evidence.anchored.v1")
        producer.publish(
            b"\xff not json",
            routing_key="junk.raw",
            content_type="application/json",
            content_encoding="binary",
        )
    stop = threading.Event()
    thread = threading.Thread(target=consumer.run, args=(stop,), daemon=True)
    thread.start()
    try:
        dead = drain(broker_url, "offerseal.dead-letter", 2)
    finally:
        stop.set()
        thread.join(10)
    assert handled == [body["message_id"]]
    reasons = sorted(d["reason"] for d in dead)
    assert any("invalid envelope" in r for r in reasons), reasons
    assert any("not JSON" in r for r in reasons), reasons
    assert all(d["consumer"] == name for d in dead)
    with consumer_db.sessions() as session:
        assert session.execute(select(func.count()).select_from(HandledMessage)).scalar() == 1


def test_outbox_waits_while_the_broker_is_down(
    tmp_path: Path, sqlite_url: str, anvil: Any, amqp_url: str
) -> None:
    port = free_port()
    proxy = TcpProxy(("127.0.0.1", 5672), port).start()
    proxied = amqp_url.replace(":5672", f":{port}")
    queue = f"test-{uuid.uuid4().hex[:8]}"
    declare_test_queue(amqp_url, queue, ("evidence.#",))
    stack = start_stack(make_settings(tmp_path, sqlite_url, anvil.url, broker_url=proxied))
    try:
        proxy.stop()  # the broker is unreachable from the service from now on
        doc_id = upload(stack, b"written while the broker is down").json()["id"]
        wait_for_proof(stack, doc_id)  # anchoring does not depend on the broker
        time.sleep(1.0)
        with stack.db.sessions() as session:
            waiting = session.execute(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.sent_at.is_(None))
            ).scalar()
        assert waiting == 1
        proxy.start()
        [body] = drain(amqp_url, f"offerseal.{queue}", 1, timeout=30)
        assert body["type"] == "evidence.batch_anchored" and body["payload"]["documents"] == 1
        assert (
            requests.get(
                stack.url(f"/v1/documents/{doc_id}/proof"), headers=stack.hr, timeout=10
            ).json()["anchor"]["tx_hash"]
            == body["payload"]["tx_hash"]
        )
    finally:
        stack.stack.stop()
        proxy.stop()

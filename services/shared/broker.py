"""kombu adapters: the outbox writer, the relay that publishes it, and the consumer runner.

Publishing is at-least-once through the transactional outbox; consumers make it effectively
once by recording handled message ids in the same transaction as their own work.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from kombu import Connection, Consumer, Producer
from kombu.message import Message as KombuMessage
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.exc import OperationalError as DBOperationalError
from sqlalchemy.orm import Session

from . import messages, topology
from .db import Database, is_sqlite
from .errors import TransientError
from .models import HandledMessage, OutboxMessage, utcnow
from .workers import Backoff, run_every

log = logging.getLogger(__name__)

TRANSIENT_BROKER_ERRORS: tuple[type[BaseException], ...] = (OSError, ConnectionError, TimeoutError)
try:  # kombu's recoverable errors, where the transport defines them
    from kombu.exceptions import OperationalError

    TRANSIENT_BROKER_ERRORS = (*TRANSIENT_BROKER_ERRORS, OperationalError)
except ImportError:  # pragma: no cover
    pass


def connect(url: str) -> Connection:
    options: dict[str, Any] = {}
    if url.startswith(("amqp", "pyamqp")):
        options["confirm_publish"] = True  # publish() returns only once the broker has the message
    return Connection(url, transport_options=options, connect_timeout=5, heartbeat=0)


def declare(connection: Connection) -> None:
    channel = connection.default_channel
    topology.events(channel).declare()
    topology.dead_letter_exchange(channel).declare()
    topology.dead_letter_queue(channel).declare()
    for service in topology.SUBSCRIPTIONS:
        topology.service_queue(service)(channel).declare()


def enqueue(session: Session, envelopes: list[dict[str, Any]]) -> None:
    """Write messages into the outbox as part of the caller's transaction."""
    if not envelopes:
        return
    rows = [
        {
            "message_id": e["message_id"],
            "exchange": messages.EXCHANGE,
            "routing_key": f"{e['type']}.v{e['version']}",
            "body": e,
            "created_at": utcnow(),
            "attempts": 0,
        }
        for e in envelopes
    ]
    session.execute(insert(OutboxMessage), rows)


class OutboxRelay:
    """Publishes outbox rows in order, with publisher confirms, and marks them sent.

    Broker down: rows stay unsent and the relay retries with backoff until it returns."""

    def __init__(self, db: Database, broker_url: str, interval: float, batch: int = 500) -> None:
        self.db = db
        self.broker_url = broker_url
        self.interval = interval
        self.batch = batch
        self._connection: Connection | None = None
        self._producer: Producer | None = None

    def _ensure_producer(self) -> Producer:
        if self._producer is None:
            connection = connect(self.broker_url)
            connection.ensure_connection(max_retries=1)
            declare(connection)
            self._connection = connection
            self._producer = Producer(
                connection.default_channel, exchange=topology.events, serializer="json"
            )
        return self._producer

    def _reset(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):  # closing a connection that already broke
                self._connection.release()
        self._connection = None
        self._producer = None

    def publish_pending(self) -> int:
        """One pass: publish up to `batch` unsent rows. Returns how many were published."""
        with self.db.transaction() as session:
            query = (
                select(OutboxMessage.id, OutboxMessage.routing_key, OutboxMessage.body)
                .where(OutboxMessage.sent_at.is_(None))
                .order_by(OutboxMessage.id)
                .limit(self.batch)
            )
            if not is_sqlite(self.db.engine):
                # Several replicas may relay; each row goes to one of them.
                query = query.with_for_update(skip_locked=True)
            rows = session.execute(query).all()
            if not rows:
                return 0
            producer = self._ensure_producer()
            published: list[int] = []
            try:
                for row_id, routing_key, body in rows:
                    producer.publish(
                        body,
                        routing_key=routing_key,
                        exchange=topology.events,
                        delivery_mode=2,
                        message_id=body["message_id"],
                    )
                    published.append(row_id)
            finally:
                if published:
                    session.execute(
                        update(OutboxMessage)
                        .where(OutboxMessage.id.in_(published))
                        .values(sent_at=utcnow(), attempts=OutboxMessage.attempts + 1)
                    )
            return len(published)

    def run(self, stop: threading.Event) -> None:
        # A full batch means more rows wait: publish again at once. Broker down: the rows stay
        # unsent and the relay retries with a fresh connection, backing off from twice its
        # interval (at least 0.5 s) up to 10 s.
        run_every(
            stop,
            self.interval,
            lambda: self.publish_pending() == self.batch,
            name="outbox relay",
            log=log,
            backoff=Backoff(min(max(self.interval * 2, 0.5), 10.0), 10.0),
            expected=TRANSIENT_BROKER_ERRORS,
            on_error=lambda _exc: self._reset(),
        )
        self._reset()


Handler = Callable[[Session, messages.Message], None]


class MessageConsumer:
    """Consumes one service queue: validates each message against the shared schemas, runs
    the handler and records the message id in one transaction, then acknowledges.

    Invalid messages go to the dead-letter queue with the reason (no crash, no redelivery
    loop); a message id already handled is acknowledged without running the handler again."""

    def __init__(
        self,
        name: str,
        db: Database,
        broker_url: str,
        handlers: dict[str, Handler],
        binding_keys: tuple[str, ...] | None = None,
    ) -> None:
        self.name = name
        self.db = db
        self.broker_url = broker_url
        self.handlers = handlers
        self.queue = topology.service_queue(name, binding_keys)

    def _dead_letter(self, connection: Connection, body: Any, reason: str) -> None:
        producer = Producer(
            connection.default_channel, exchange=topology.dead_letter_exchange, serializer="json"
        )
        producer.publish(
            {"consumer": self.name, "reason": reason, "body": body},
            routing_key="dead",
            exchange=topology.dead_letter_exchange,
            delivery_mode=2,
            headers={"x-offerseal-reason": reason[:500], "x-offerseal-consumer": self.name},
        )
        log.warning("%s: message dead-lettered: %s", self.name, reason)

    def handle(self, body: Any) -> str:
        """Process one decoded body. Returns `handled`, `duplicate` or raises MessageError."""
        message = messages.parse(body)
        handler = self.handlers.get(message.type.name)
        if handler is None:
            raise messages.MessageError(f"{self.name} has no handler for {message.type.name}")
        try:
            with self.db.transaction() as session:
                already = session.get(HandledMessage, (self.name, message.message_id))
                if already is not None:
                    return "duplicate"
                session.add(HandledMessage(consumer=self.name, message_id=message.message_id))
                session.flush()
                handler(session, message)
        except IntegrityError:
            # Another worker recorded the same id concurrently: it did the work.
            return "duplicate"
        return "handled"

    def _on_message(self, connection: Connection, raw: KombuMessage) -> None:
        try:
            body = json.loads(raw.body) if isinstance(raw.body, str | bytes) else raw.body
        except ValueError as exc:
            self._dead_letter(connection, repr(raw.body)[:2000], f"not JSON: {exc}")
            raw.ack()
            return
        try:
            self.handle(body)
        except messages.MessageError as exc:
            self._dead_letter(connection, body, exc.reason)
        except (TransientError, DBOperationalError) as exc:
            # Our own dependency is down: leave the message on the queue for later.
            log.warning("%s: transient failure, message requeued: %s", self.name, exc)
            raw.requeue()
            return
        except Exception as exc:
            log.exception("%s: handler failed", self.name)
            self._dead_letter(connection, body, f"handler failed: {type(exc).__name__}: {exc}")
        raw.ack()

    def run(self, stop: threading.Event) -> None:
        """Consume until `stop`; broker down: reconnect with backoff (reset once consuming)."""
        backoff = Backoff(0.5, 10.0)
        run_every(
            stop,
            0.0,
            lambda: self._consume(stop, backoff),
            name=f"{self.name} consumer",
            log=log,
            backoff=backoff,
            retry=TRANSIENT_BROKER_ERRORS,
            expected=TRANSIENT_BROKER_ERRORS,
        )

    def _consume(self, stop: threading.Event, backoff: Backoff) -> None:
        with connect(self.broker_url) as connection:
            connection.ensure_connection(max_retries=1)
            declare(connection)
            channel = connection.default_channel
            consumer = Consumer(
                channel,
                queues=[self.queue],
                callbacks=[],
                accept=["json", "application/json", "text/plain", "application/data"],
                on_message=lambda raw: self._on_message(connection, raw),
                prefetch_count=50,
            )
            with consumer:
                backoff.reset()
                while not stop.is_set():
                    try:
                        connection.drain_events(timeout=0.5)
                    except TimeoutError:
                        continue

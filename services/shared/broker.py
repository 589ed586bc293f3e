"""kombu adapters: the outbox writer, the relay that publishes it, and the consumer runner.

Publishing is at-least-once through the transactional outbox; consumers make it effectively
once by recording handled message ids in the same transaction as their own work. Connections
use AMQP heartbeats, so a half-open connection is noticed and replaced; a consumer reports
whether it is connected (`/healthz`). A message whose handler fails for a transient reason waits
(with backoff) and is retried; one that keeps failing, or is invalid, goes to the dead-letter
queue with the reason, and the consumer carries on.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from kombu import Connection, Consumer, Producer
from kombu.message import Message as KombuMessage
from sqlalchemy import insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import OperationalError as DBOperationalError
from sqlalchemy.orm import Session

from . import messages, topology
from .db import Database, is_sqlite
from .errors import TransientError
from .models import HandledMessage, OutboxMessage, utcnow
from .workers import IDLE, IDLE_CAP, Backoff, reconnect_backoff, run_every

log = logging.getLogger(__name__)

TRANSIENT_BROKER_ERRORS: tuple[type[BaseException], ...] = (OSError, ConnectionError, TimeoutError)
try:  # kombu's recoverable errors, where the transport defines them
    from kombu.exceptions import OperationalError

    TRANSIENT_BROKER_ERRORS = (*TRANSIENT_BROKER_ERRORS, OperationalError)
except ImportError:  # pragma: no cover
    pass


# A handler that fails this many times for a reason that is not transient: dead-lettered.
MAX_HANDLER_FAILURES = 5
# Longest pause after a transient failure before the message is retried (below the heartbeat
# timeout, since nothing is read from the broker meanwhile).
TRANSIENT_PAUSE_CAP = 5.0


class BrokerDisconnected(ConnectionError):
    """The broker connection broke or went silent (missed heartbeats): reconnect."""


def connect(url: str, heartbeat: float = 0.0) -> Connection:
    """A connection to `url`; `heartbeat` seconds (AMQP) let a half-open connection be noticed
    by `heartbeat_check()`, which its owner calls at least every `heartbeat / 2` seconds."""
    options: dict[str, Any] = {}
    if url.startswith(("amqp", "pyamqp")):
        options["confirm_publish"] = True  # publish() returns only once the broker has the message
    return Connection(url, transport_options=options, connect_timeout=5, heartbeat=heartbeat)


def is_transient(exc: BaseException) -> bool:
    """A failure of a dependency that will likely pass: the database or broker is away."""
    if isinstance(exc, (TransientError, DBOperationalError, *TRANSIENT_BROKER_ERRORS)):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


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

    def __init__(
        self,
        db: Database,
        broker_url: str,
        interval: float,
        batch: int = 500,
        heartbeat: float = 10.0,
        housekeeping: Callable[[], object] | None = None,
        housekeeping_interval: float = 3600.0,
    ) -> None:
        self.db = db
        self.broker_url = broker_url
        self.interval = interval
        self.batch = batch
        self.heartbeat = heartbeat
        # Run every `housekeeping_interval` by the relay's loop (the retention sweep).
        self.housekeeping = housekeeping
        self.housekeeping_interval = housekeeping_interval
        self._last_housekeeping: float | None = None  # None: due at the first pass
        self._connection: Connection | None = None
        self._producer: Producer | None = None

    def _ensure_producer(self) -> Producer:
        if self._producer is None:
            connection = connect(self.broker_url, self.heartbeat)
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
        if self._connection is not None:
            # Heartbeats both ways keep an idle connection open and notice a dead one.
            try:
                self._connection.heartbeat_check()
            except self._connection.connection_errors as exc:
                raise BrokerDisconnected(f"broker connection lost: {exc}") from exc
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

    def _step(self) -> object:
        """One pass: True when a full batch went out (more wait), IDLE when nothing did."""
        if self.housekeeping is not None and (
            self._last_housekeeping is None
            or time.monotonic() - self._last_housekeeping >= self.housekeeping_interval
        ):
            self._last_housekeeping = time.monotonic()
            try:
                self.housekeeping()
            except Exception:  # never in the way of publishing; tried again next time
                log.exception("outbox relay: housekeeping failed")
        published = self.publish_pending()
        return published == self.batch if published else IDLE

    def run(self, stop: threading.Event) -> None:
        # A full batch means more rows wait: publish again at once. Broker down: the rows stay
        # unsent and the relay retries with a fresh connection, backing off from twice its
        # interval (at least 0.5 s) up to RECONNECT_CAP (2 s).
        run_every(
            stop,
            self.interval,
            self._step,
            name="outbox relay",
            log=log,
            backoff=reconnect_backoff(max(self.interval * 2, 0.5)),
            expected=TRANSIENT_BROKER_ERRORS,
            on_error=lambda _exc: self._reset(),
            # Idle or not, a pass (which sends and checks heartbeats) every heartbeat / 2.
            idle_cap=min(IDLE_CAP, self.heartbeat / 2) if self.heartbeat else IDLE_CAP,
        )
        self._reset()


Handler = Callable[[Session, messages.Message], None]


class MessageConsumer:
    """Consumes one service queue: validates each message against the shared schemas, runs
    the handler and records the message id in one transaction, then acknowledges.

    Invalid messages go to the dead-letter queue with the reason (no crash, no redelivery
    loop); a message id already handled is acknowledged without running the handler again. A
    transient failure (database or broker away) pauses with backoff before the message is
    retried; a handler that fails otherwise `max_failures` times is dead-lettered. `connected`
    is set while the consumer is connected and consuming."""

    def __init__(
        self,
        name: str,
        db: Database,
        broker_url: str,
        handlers: dict[str, Handler],
        binding_keys: tuple[str, ...] | None = None,
        *,
        heartbeat: float = 10.0,
        max_failures: int = MAX_HANDLER_FAILURES,
    ) -> None:
        self.name = name
        self.db = db
        self.broker_url = broker_url
        self.handlers = handlers
        self.queue = topology.service_queue(name, binding_keys)
        self.heartbeat = heartbeat
        self.max_failures = max_failures
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._pause = Backoff(0.5, TRANSIENT_PAUSE_CAP)
        self._failures: dict[str, int] = {}  # message id -> handler failures seen here

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
        key = str(body.get("message_id")) if isinstance(body, dict) else repr(body)[:200]
        try:
            self.handle(body)
        except messages.MessageError as exc:
            self._dead_letter(connection, body, exc.reason)
        except Exception as exc:
            if is_transient(exc):
                # Our own dependency is away: wait (longer each time) before the message is
                # tried again, instead of spinning on it.
                delay = self._pause.next()
                log.warning(
                    "%s: transient failure (%s: %s); message retried in %.1fs",
                    self.name,
                    type(exc).__name__,
                    exc,
                    delay,
                )
                self._stop.wait(delay)
                raw.requeue()
                return
            failures = self._failures.get(key, 0) + 1
            if failures < self.max_failures:
                self._remember_failure(key, failures)
                log.warning(
                    "%s: handler failed (%d of %d): %s: %s",
                    self.name,
                    failures,
                    self.max_failures,
                    type(exc).__name__,
                    exc,
                )
                self._stop.wait(min(0.1 * 2**failures, TRANSIENT_PAUSE_CAP))
                raw.requeue()
                return
            self._failures.pop(key, None)
            log.exception("%s: handler failed %d times: dead-lettered", self.name, failures)
            self._dead_letter(
                connection,
                body,
                f"handler failed {failures} times: {type(exc).__name__}: {exc}",
            )
        self._pause.reset()
        self._failures.pop(key, None)
        raw.ack()

    def _remember_failure(self, key: str, failures: int) -> None:
        if len(self._failures) > 10_000:  # bounded: forget the oldest
            self._failures.pop(next(iter(self._failures)))
        self._failures[key] = failures

    def run(self, stop: threading.Event) -> None:
        """Consume until `stop`; broker down or silent: reconnect with backoff (reset once
        consuming). Anything unexpected is logged and the consumer starts again."""
        self._stop = stop
        backoff = reconnect_backoff()

        def lost(_exc: BaseException) -> None:
            self.connected.clear()

        try:
            run_every(
                stop,
                0.0,
                lambda: self._consume(stop, backoff),
                name=f"{self.name} consumer",
                log=log,
                backoff=backoff,
                expected=TRANSIENT_BROKER_ERRORS,
                on_error=lost,
            )
        finally:
            self.connected.clear()

    def _consume(self, stop: threading.Event, backoff: Backoff) -> None:
        with connect(self.broker_url, self.heartbeat) as connection:
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
            # Woken often enough to send heartbeats and to notice missed ones.
            wait = min(0.5, self.heartbeat / 4) if self.heartbeat else 0.5
            with consumer:
                backoff.reset()
                self.connected.set()
                try:
                    while not stop.is_set():
                        with contextlib.suppress(TimeoutError):
                            connection.drain_events(timeout=wait)
                        connection.heartbeat_check()
                except connection.connection_errors as exc:
                    raise BrokerDisconnected(f"broker connection lost: {exc}") from exc
                finally:
                    self.connected.clear()

"""What used to fail quietly (issue 8, item 7): an RPC that fails or lags is not a chain reset,
touchpoint retries end, Idempotency-Key on offers, consumers that back off, dead-letter poison
messages and show in /healthz, and the retention sweep."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import func, select
from web3 import Web3
from web3.providers.rpc import HTTPProvider

from harness.procs import free_port
from offerseal.evidence.adapters.registry import RegistryClient
from offerseal.evidence.anchoring import Anchorer
from offerseal.evidence.crypto import DocumentCipher
from offerseal.evidence.domain.documents import NewDocument
from offerseal.evidence.models import Batch
from offerseal.evidence.service import EvidenceService
from offerseal.shared import chain
from offerseal.shared.auth import Principal
from offerseal.shared.config import ANVIL_DEV_KEY
from offerseal.shared.db import Database
from offerseal.shared.deployments import EVIDENCE_REGISTRY, ChainBehind
from offerseal.shared.models import ChainDeployment, OutboxMessage
from offerseal_verify.receipts import ReceiptSigner

HR = Principal(key_id="k-hr", role="hr", tenant="acme")


# ---- an RPC that fails or lags is not a chain reset ----------------------------------------


class ScriptedRpc(HTTPProvider):
    """A JSON-RPC endpoint that forwards to a real node, except for the methods it answers
    itself (a value) or fails (an exception): a flaky or lagging node in front of a real one."""

    def __init__(self, url: str, script: dict[str, Callable[[Any], Any]]) -> None:
        super().__init__(url, request_kwargs={"timeout": 5})
        self.script = script

    def make_request(self, method: Any, params: Any) -> Any:
        fake = self.script.get(str(method))
        if fake is not None:
            result = fake(params)
            if result is not FORWARD:
                if isinstance(result, BaseException):
                    raise result
                return {"jsonrpc": "2.0", "id": 1, "result": result}
        return super().make_request(method, params)


FORWARD = object()


@pytest.fixture
def anchored(sqlite_url: str, fresh_anvil: Any, tmp_path: Path) -> Iterator[Anchorer]:
    """A database with one anchored batch on a fresh chain, and the worker that anchored it."""
    db = Database(sqlite_url)
    db.migrate()
    anchorer = Anchorer(
        db,
        chain.connect(fresh_anvil.url),
        chain.account(ANVIL_DEV_KEY),
        batch_interval=0.1,
        batch_max=100,
        confirmations=1,
        reconcile_interval=0.1,
        data_dir=tmp_path,
    )
    anchorer.connect()
    service = EvidenceService(
        db, DocumentCipher(os.urandom(32)), ReceiptSigner.from_seed(b"s" * 32)
    )
    service.ingest_hashes(
        HR, [NewDocument(kind="other", candidate_ref="c-1", sha256="0x" + "ab" * 32)]
    )
    assert anchorer.run_once() is not None
    assert anchorer.reconcile() == 0  # the chain holds it
    yield anchorer
    db.dispose()


def _through(anchorer: Anchorer, w3: Web3) -> None:
    anchorer.w3 = w3
    anchorer.registry = RegistryClient(w3, anchorer._registry().address)


def _nothing_changed(anchorer: Anchorer, registry: str) -> None:
    with anchorer.db.sessions() as session:
        states = session.execute(select(Batch.state)).scalars().all()
        superseded = session.execute(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.routing_key == "evidence.superseded.v1")
        ).scalar()
        [deployment] = session.execute(
            select(ChainDeployment).where(ChainDeployment.name == EVIDENCE_REGISTRY)
        ).scalars()
    assert states == ["anchored"]
    assert superseded == 0
    assert deployment.address == registry


def test_an_rpc_that_refuses_or_times_out_supersedes_and_redeploys_nothing(
    anchored: Anchorer, fresh_anvil: Any
) -> None:
    registry = anchored._registry().address
    _through(anchored, chain.connect(f"http://127.0.0.1:{free_port()}", timeout=1))
    with pytest.raises(Exception):  # noqa: B017  (whatever the transport raises)
        anchored.reconcile()
    _nothing_changed(anchored, registry)

    # The node answers everything but blocks: a timeout on get_block is not "root gone".
    timeout = requests.exceptions.ReadTimeout("read timed out")
    _through(
        anchored,
        Web3(ScriptedRpc(fresh_anvil.url, {"eth_getBlockByNumber": lambda _p: timeout})),
    )
    with pytest.raises(requests.exceptions.ReadTimeout):
        anchored.reconcile()
    _nothing_changed(anchored, registry)


def test_a_node_that_lags_behind_is_waited_for_not_taken_for_a_reset(
    anchored: Anchorer, fresh_anvil: Any
) -> None:
    registry = anchored._registry().address
    # Same chain (same genesis block) but its head is before the anchor: the root is unknown
    # to it yet. Before: "root gone", superseded and anchored again.
    behind = {
        "eth_blockNumber": lambda _p: "0x1",
        "eth_call": lambda _p: "0x" + "00" * 32,
    }
    _through(anchored, Web3(ScriptedRpc(fresh_anvil.url, behind)))
    assert anchored.reconcile() == 0
    _nothing_changed(anchored, registry)

    # Not even the registry's code yet: no redeployment (auto-deploy is on), only a wait.
    still_syncing = {**behind, "eth_getCode": lambda _p: "0x"}
    _through(anchored, Web3(ScriptedRpc(fresh_anvil.url, still_syncing)))
    with pytest.raises(ChainBehind):
        anchored.reconcile()
    _nothing_changed(anchored, registry)

    # Back on the real node: all is well, and a real loss is still noticed.
    _through(anchored, chain.connect(fresh_anvil.url))
    assert anchored.reconcile() == 0


# ---- touchpoint retries end -----------------------------------------------------------------


class AlwaysLater:
    """A channel that answers 'try again later' every time (a mailbox full for good)."""

    def __init__(self) -> None:
        self.calls = 0

    def send(self, out: Any) -> str:
        from offerseal.notify.errors import RetryLater

        self.calls += 1
        raise RetryLater("451 4.2.2 mailbox full")


def test_touchpoint_retries_end_failed_after_the_attempt_limit(sqlite_url: str) -> None:
    import datetime as dt

    from sqlalchemy import update

    from offerseal.notify.models import (
        DeliveryAttempt,
        FollowedAgreement,
        NotifyCandidate,
        Touchpoint,
    )
    from offerseal.notify.service import NotifyService
    from offerseal.shared.links import LinkSigner

    db = Database(sqlite_url)
    db.migrate()
    channel = AlwaysLater()
    service = NotifyService(
        db,
        LinkSigner(b"k" * 32),
        {"email": channel},
        public_url="http://127.0.0.1:1",
        evidence_url="http://127.0.0.1:1",
        checkin_interval=3600,
        quiet_hours="00:00-00:00",
        default_timezone="UTC",
        mail_domain="offerseal.local",
        max_attempts=3,
    )
    now = dt.datetime.now(dt.UTC)
    with db.transaction() as session:
        session.add(
            NotifyCandidate(
                tenant="acme",
                candidate_ref="cand-1",
                email="cand1@example.com",
                timezone="UTC",
                language="en",
                quiet_hours="00:00-00:00",
                channels=["email"],
                opted_out=False,
            )
        )
        session.add(
            FollowedAgreement(
                agreement_id="ag-1",
                tenant="acme",
                candidate_ref="cand-1",
                language="en",
                employer_name="Acme",
                position="Engineer",
                start_at=now + dt.timedelta(days=30),
                milestones=[],
                state="committed",
            )
        )
        session.add(
            Touchpoint(
                id="tp-1",
                key="ag-1:closing:0",
                tenant="acme",
                agreement_id="ag-1",
                candidate_ref="cand-1",
                kind="closing",
                occurrence=0,
                essential=True,
                due_at=now,
                data={"state": "fulfilled"},
            )
        )
    for _ in range(5):
        service.dispatch_once()
        with db.transaction() as session:  # the backoff has passed
            session.execute(update(Touchpoint).values(due_at=now))
    with db.sessions() as session:
        tp = session.get(Touchpoint, "tp-1")
        assert tp is not None
        outcomes = (
            session.execute(select(DeliveryAttempt.outcome).order_by(DeliveryAttempt.id))
            .scalars()
            .all()
        )
        failed = (
            session.execute(
                select(OutboxMessage.body).where(
                    OutboxMessage.routing_key == "touchpoint.failed.v1"
                )
            )
            .scalars()
            .all()
        )
    assert channel.calls == 3
    assert outcomes == ["retry", "retry", "failed"]
    assert tp.state == "failed" and tp.attempts == 3
    assert tp.detail is not None and "gave up after 3 attempts" in tp.detail
    assert [m["payload"]["touchpoint_id"] for m in failed] == ["tp-1"]
    db.dispose()


# ---- Idempotency-Key on offers --------------------------------------------------------------


def test_an_offer_retried_with_its_idempotency_key_is_offered_once(
    tmp_path: Path, database_url: str, fresh_anvil: Any
) -> None:
    from tests.conftest import make_settings, start_stack
    from tests.integration.test_contracts_service import body, contracts, outbox

    stack = start_stack(make_settings(tmp_path, database_url, fresh_anvil.url))
    try:
        url = contracts(stack, "/v1/agreements")
        offer = body()
        headers = {**stack.hr, "Idempotency-Key": "offer-cand-042-1", "Prefer": "wait=30"}
        first = requests.post(url, headers=headers, json=offer, timeout=60)
        assert first.status_code == 201, first.text
        again = requests.post(url, headers=headers, json=offer, timeout=60)
        assert again.status_code == 201, again.text
        assert again.json() == first.json()
        assert again.headers["Location"] == first.headers["Location"]
        other = requests.post(
            url, headers=headers, json={**offer, "position": "Chief Engineer"}, timeout=60
        )
        assert other.status_code == 409, other.text
        # Another tenant's identical key is its own.
        theirs = requests.post(
            url,
            headers={
                **stack.other_tenant,
                "Idempotency-Key": "offer-cand-042-1",
                "Prefer": "wait=30",
            },
            json=offer,
            timeout=60,
        )
        assert theirs.status_code == 201 and theirs.json()["id"] != first.json()["id"]
        listed = requests.get(url, headers=stack.hr, timeout=30).json()["items"]
        assert [a["id"] for a in listed] == [first.json()["id"]]
        assert len(outbox(stack, "agreement.offered")) == 2  # acme once, globex once
        without = requests.post(url, headers=stack.hr, json=offer, timeout=60)
        assert without.status_code == 201 and without.json()["id"] != first.json()["id"]
    finally:
        stack.stack.stop()


# ---- consumers: heartbeats, backoff, poison messages, health ---------------------------------


def _consumer_publish(broker_url: str, consumer: Any, bodies: list[dict[str, Any]]) -> None:
    from kombu import Producer

    from offerseal.shared import topology
    from offerseal.shared.broker import connect, declare

    with connect(broker_url) as conn:
        declare(conn)
        topology.dead_letter_queue(conn.default_channel).purge()
        consumer.queue(conn.default_channel).declare()
        producer = Producer(conn.default_channel, exchange=topology.events, serializer="json")
        for b in bodies:
            producer.publish(b, routing_key="evidence.anchored.v1")


def _anchored_body() -> dict[str, Any]:
    from tests.integration.test_broker import _valid_body

    return _valid_body()


@pytest.fixture
def consumer_db(tmp_path: Path) -> Iterator[Database]:
    db = Database(f"sqlite:///{tmp_path / 'consumer.db'}")
    db.migrate()
    yield db
    db.dispose()


def _run(consumer: Any) -> tuple[Any, Any]:
    import threading

    stop = threading.Event()
    thread = threading.Thread(target=consumer.run, args=(stop,), daemon=True)
    thread.start()
    return stop, thread


def test_a_transient_failure_backs_off_instead_of_spinning(
    broker_url: str, consumer_db: Database
) -> None:
    import time
    import uuid

    from sqlalchemy.exc import OperationalError

    from offerseal.shared.broker import MessageConsumer

    calls: list[float] = []

    def handler(session: Any, message: Any) -> None:
        calls.append(time.monotonic())
        if calls[-1] < calls[0] + 3.0:  # the database is away for 3 s from the first try
            raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))

    consumer = MessageConsumer(
        f"test-{uuid.uuid4().hex[:8]}",
        consumer_db,
        broker_url,
        handlers={"evidence.anchored": handler},
        binding_keys=("evidence.anchored.v1",),
    )
    body = _anchored_body()
    _consumer_publish(broker_url, consumer, [body])
    from offerseal.shared.models import HandledMessage

    def handled() -> list[str]:
        with consumer_db.sessions() as session:
            return list(session.execute(select(HandledMessage.message_id)).scalars().all())

    stop, thread = _run(consumer)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not handled():
            time.sleep(0.1)
        time.sleep(0.5)  # a try that should not come would come now
    finally:
        stop.set()
        thread.join(10)
    # 0.5 + 1 + 2 s of pauses: a handful of tries in 3 s, not thousands; then handled once.
    assert 2 <= len(calls) <= 6, len(calls)
    assert handled() == [body["message_id"]]


def test_a_poison_message_is_dead_lettered_and_the_consumer_carries_on(
    broker_url: str, consumer_db: Database
) -> None:
    import uuid

    from offerseal.shared.broker import MAX_HANDLER_FAILURES, MessageConsumer
    from tests.integration.test_broker import drain

    poison, fine = _anchored_body(), _anchored_body()
    tries: dict[str, int] = {}
    handled: list[str] = []

    def handler(session: Any, message: Any) -> None:
        tries[message.message_id] = tries.get(message.message_id, 0) + 1
        if message.message_id == poison["message_id"]:
            raise KeyError("agreement_id")  # a bug, not an outage
        handled.append(message.message_id)

    name = f"test-{uuid.uuid4().hex[:8]}"
    consumer = MessageConsumer(
        name,
        consumer_db,
        broker_url,
        handlers={"evidence.anchored": handler},
        binding_keys=("evidence.anchored.v1",),
    )
    _consumer_publish(broker_url, consumer, [poison, fine])
    stop, thread = _run(consumer)
    try:
        [dead] = drain(broker_url, "offerseal.dead-letter", 1, timeout=30)
        assert thread.is_alive() and consumer.connected.is_set()
    finally:
        stop.set()
        thread.join(10)
    assert dead["consumer"] == name and dead["body"]["message_id"] == poison["message_id"]
    assert f"handler failed {MAX_HANDLER_FAILURES} times: KeyError" in dead["reason"]
    assert tries[poison["message_id"]] == MAX_HANDLER_FAILURES
    assert handled == [fine["message_id"]]


def test_healthz_reports_dead_worker_threads_and_disconnected_consumers(
    sqlite_url: str,
) -> None:
    import threading
    import time

    from offerseal.shared.web import create_base_app, health_route, standard_checks, watch
    from offerseal.shared.workers import Workers

    db = Database(sqlite_url)
    db.migrate()
    app, _api, _registry = create_base_app("test", db)
    health_route(app, standard_checks(db, None, "worker"))

    class Consumer:
        name = "test"
        connected = threading.Event()

    def crashes(stop: threading.Event) -> None:
        return  # a worker whose loop ended (a bug let an exception out, say)

    workers = Workers("test")
    workers.start(steady=lambda stop: stop.wait(), crashing=crashes)
    consumer = Consumer()
    watch(app, workers, [consumer])
    client = app.test_client()
    time.sleep(0.2)
    answer = client.get("/healthz")
    assert answer.status_code == 503
    checks = answer.get_json()["checks"]
    assert checks["threads"].startswith("error") and checks["test_consumer"].startswith("error")
    consumer.connected.set()
    assert client.get("/healthz").status_code == 503  # the dead thread still counts
    workers.threads = [t for t in workers.threads if t.name != "test-crashing"]
    assert client.get("/healthz").status_code == 200
    workers.stop()
    db.dispose()


def test_a_half_open_broker_connection_is_noticed_and_replaced(
    tmp_path: Path, sqlite_url: str, anvil: Any, amqp_url: str
) -> None:
    import time

    from tests.conftest import make_settings, start_stack
    from tests.tcpproxy import TcpProxy

    port = free_port()
    proxy = TcpProxy(("127.0.0.1", 5672), port).start()
    proxied = amqp_url.replace(":5672", f":{port}")
    stack = start_stack(
        make_settings(tmp_path, sqlite_url, anvil.url, broker_url=proxied, broker_heartbeat=1.0)
    )
    health = stack.stack.urls["contracts"] + "/healthz"

    def status_within(want: int, seconds: float) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        while True:
            answer = requests.get(health, timeout=10)
            if answer.status_code == want or time.monotonic() > deadline:
                assert answer.status_code == want, answer.text
                return dict(answer.json())
            time.sleep(0.2)

    try:
        status_within(200, 20)
        proxy.pause()  # the connection stays open, but nothing comes through
        checks = status_within(503, 15)["checks"]
        assert checks["contracts_consumer"].startswith("error"), checks
        proxy.resume()
        checks = status_within(200, 30)["checks"]
        assert checks["contracts_consumer"] == "ok"
    finally:
        stack.stack.stop()
        proxy.stop()


# ---- retention ------------------------------------------------------------------------------


def test_retention_deletes_old_operational_rows_and_keeps_evidence(database: Database) -> None:
    import datetime as dt

    from offerseal.notify.models import DeliveryAttempt, Touchpoint, UsedToken
    from offerseal.shared import retention
    from offerseal.shared.models import HandledMessage, IdempotencyRecord

    now = dt.datetime.now(dt.UTC)
    old, recent = now - dt.timedelta(days=40), now - dt.timedelta(days=1)
    day = 86400.0
    with database.transaction() as session:
        for i, (created, sent) in enumerate([(old, old), (old, None), (recent, recent)]):
            session.add(
                OutboxMessage(
                    message_id=f"m-{i}",
                    exchange="offerseal.events",
                    routing_key="x.v1",
                    body={},
                    created_at=created,
                    sent_at=sent,
                    attempts=1 if sent else 0,
                )
            )
        for i, at in enumerate([old, recent]):
            session.add(HandledMessage(consumer="notify", message_id=f"h-{i}", handled_at=at))
            session.add(
                IdempotencyRecord(
                    tenant="acme",
                    key=f"k-{i}",
                    request_sha256="0" * 64,
                    status_code=201,
                    response={},
                    created_at=at,
                )
            )
        # A used token outlives the retention age while links it came from may still be valid.
        session.add(UsedToken(digest="a" * 64, used_at=now - dt.timedelta(days=70)))
        session.add(UsedToken(digest="b" * 64, used_at=old))
        session.add(
            Touchpoint(
                id="tp-old",
                key="ag-1:closing:0",
                tenant="acme",
                agreement_id="ag-1",
                candidate_ref="c-1",
                kind="closing",
                occurrence=0,
                essential=True,
                due_at=old,
                state="sent",
                sent_at=old,
                created_at=old,
            )
        )
        session.flush()
        for outcome, at in [("deferred", old), ("retry", old), ("sent", old), ("retry", recent)]:
            session.add(
                DeliveryAttempt(touchpoint_id="tp-old", channel="email", outcome=outcome, at=at)
            )
    deleted = retention.sweep(database, retention=30 * day, link_ttl=60 * day)
    assert deleted == {
        "outbox": 1,
        "handled_messages": 1,
        "idempotency_keys": 1,
        "touchpoint_attempts": 2,
        "notify_used_tokens": 1,
        "short_links": 0,
        "notify_alerts": 0,
        "notify_alert_posts": 0,
    }
    with database.sessions() as session:
        outbox = session.execute(select(OutboxMessage.message_id).order_by(OutboxMessage.id))
        assert outbox.scalars().all() == ["m-1", "m-2"]  # unsent rows wait, however old
        assert session.execute(select(HandledMessage.message_id)).scalars().all() == ["h-1"]
        assert session.execute(select(IdempotencyRecord.key)).scalars().all() == ["k-1"]
        assert session.execute(select(UsedToken.digest)).scalars().all() == ["b" * 64]
        # The touchpoint and the record of its delivery stay: proof of notice.
        assert session.get(Touchpoint, "tp-old") is not None
        attempts = session.execute(
            select(DeliveryAttempt.outcome).order_by(DeliveryAttempt.id)
        ).scalars()
        assert attempts.all() == ["sent", "retry"]
    assert retention.sweep(database, retention=30 * day, link_ttl=60 * day) == dict.fromkeys(
        deleted, 0
    )


def test_the_outbox_relay_runs_the_retention_sweep(consumer_db: Database) -> None:
    import threading

    from offerseal.shared.broker import OutboxRelay

    swept = threading.Event()
    relay = OutboxRelay(consumer_db, "memory://", 0.05, housekeeping=swept.set)
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,), daemon=True)
    thread.start()
    try:
        assert swept.wait(5)
    finally:
        stop.set()
        thread.join(10)


# ---- the registry's admin is not the anchoring key --------------------------------------------

ADMIN = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"  # Anvil's fourth account: a "cold" key


def _anchorer(db: Database, w3: Web3, tmp_path: Path, admin: str = "") -> Anchorer:
    return Anchorer(
        db,
        w3,
        chain.account(ANVIL_DEV_KEY),
        batch_interval=0.1,
        batch_max=100,
        confirmations=1,
        reconcile_interval=0.1,
        registry_admin=admin,
        data_dir=tmp_path,
    )


def _anchor_one(db: Database, anchorer: Anchorer) -> None:
    service = EvidenceService(
        db, DocumentCipher(os.urandom(32)), ReceiptSigner.from_seed(b"s" * 32)
    )
    service.ingest_hashes(
        HR, [NewDocument(kind="other", candidate_ref="c-1", sha256="0x" + os.urandom(32).hex())]
    )
    assert anchorer.run_once() is not None


def test_the_registry_admin_is_a_separate_account_and_the_signer_only_anchors(
    sqlite_url: str, fresh_anvil: Any, tmp_path: Path
) -> None:
    db = Database(sqlite_url)
    db.migrate()
    anchorer = _anchorer(db, chain.connect(fresh_anvil.url), tmp_path, admin=ADMIN)
    anchorer.connect()
    registry = anchorer._registry()
    signer = chain.account(ANVIL_DEV_KEY).address
    assert registry.is_admin(ADMIN) and not registry.is_admin(signer)
    assert registry.may_anchor(signer) and not registry.may_anchor(ADMIN)
    assert registry.functions.version().call() == "1.1.0"
    _anchor_one(db, anchorer)
    db.dispose()


def test_a_registry_recorded_before_the_split_keeps_anchoring(
    sqlite_url: str, fresh_anvil: Any, tmp_path: Path
) -> None:
    db = Database(sqlite_url)
    db.migrate()
    w3 = chain.connect(fresh_anvil.url)
    signer = chain.account(ANVIL_DEV_KEY)
    old = chain.deploy(w3, signer, "EvidenceRegistry", signer.address, signer.address)
    with db.transaction() as session:  # as an earlier version recorded it (no genesis)
        session.add(ChainDeployment(chain_id=31337, name=EVIDENCE_REGISTRY, address=old))
    anchorer = _anchorer(db, w3, tmp_path)
    anchorer.connect()
    assert anchorer._registry().address == old
    _anchor_one(db, anchorer)
    db.dispose()


def test_deploying_the_registry_off_a_dev_chain_needs_a_separate_admin(
    sqlite_url: str, fresh_anvil: Any, tmp_path: Path
) -> None:
    from offerseal.shared.deployments import ContractMissing, ensure_registry

    db = Database(sqlite_url)
    db.migrate()
    signer = chain.account(ANVIL_DEV_KEY)
    # A node that says it is chain 1337: not a local development chain.
    w3 = Web3(ScriptedRpc(fresh_anvil.url, {"eth_chainId": lambda _p: "0x539"}))
    for admin, why in [("", "needs OFFERSEAL_REGISTRY_ADMIN"), (signer.address, "cold key")]:
        with pytest.raises(ContractMissing, match=why):
            ensure_registry(
                db, w3, signer, admin=admin, configured="", auto_deploy=True, data_dir=None
            )
    # The contract refuses a zero admin on any chain.
    with pytest.raises(Exception):  # noqa: B017  (estimate_gas or the receipt: reverted)
        chain.deploy(
            chain.connect(fresh_anvil.url),
            signer,
            "EvidenceRegistry",
            "0x" + "00" * 20,
            signer.address,
        )
    db.dispose()

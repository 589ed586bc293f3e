"""Fixtures for real parts: Anvil, PostgreSQL, RabbitMQ, SQLite, and a running evidence stack.

Outside CI a test whose server is unreachable is skipped with the reason; under CI=true it fails.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from harness.procs import free_port, use_warm_starts
from offerseal.shared.config import ANVIL_DEV_KEY, ANVIL_DEV_KEY_2, Settings, load_settings
from offerseal.shared.net import listening

pytest_plugins = ["tests.scheduling", "tests.console_browser"]

# `offerseal serve` processes (crash, restart and fail-over tests) are forked warm from a fork
# server that imported the services once per test process, not started as a new Python each
# (harness/procs.py). The cold start of the command itself is tested by test_cli and test_edges.
use_warm_starts()

ROOT = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() == "true"
PG_ADMIN_URL = os.environ.get(
    "OFFERSEAL_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
AMQP_URL = os.environ.get("OFFERSEAL_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672//")


def require_server(name: str, host: str, port: int) -> None:
    if listening(host, port):
        return
    message = f"{name} is not reachable at {host}:{port}"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: integration tests must run, not skip)")
    pytest.skip(message)


# ---- parallel runs (pytest-xdist, `--dist loadgroup`) ----------------------------------------


def _uses_rabbitmq(item: pytest.Item) -> bool:
    """RabbitMQ's queue and exchange names are fixed (offerseal.events, offerseal.<service>):
    two stacks on one broker at once would take each other's messages."""
    callspec = getattr(item, "callspec", None)
    params = callspec.params if callspec is not None else {}
    return (
        item.get_closest_marker("rabbitmq") is not None
        or "amqp_url" in getattr(item, "fixturenames", ())
        or params.get("broker_url") == "rabbitmq"
    )


def _module_scoped(item: pytest.Item) -> bool:
    """Whether the test uses a fixture set up once per module (or class): such tests stay on
    one worker, so the fixture (a stack, a browser) is set up once, not once per worker."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    return any(
        definition.scope in ("module", "class", "package")
        for definitions in info.name2fixturedefs.values()
        for definition in definitions
    )


def pytest_configure(config: pytest.Config) -> None:
    """`-n N` alone schedules with `--dist load`, which ignores the groups below: whenever tests
    are spread over workers, the controller schedules with `loadgroup` and each worker names
    each test's group (what `--dist loadgroup` does; not in addopts, so a plain `pytest` runs
    without pytest-xdist installed)."""
    if hasattr(config, "workerinput"):
        config.option.loadgroup = True
    elif getattr(config.option, "dist", "no") == "load":
        config.option.dist = "loadgroup"


def _rabbitmq_isolated() -> bool:
    """Whether each test process gets a RabbitMQ virtual host of its own (`amqp_url`)."""
    return "OFFERSEAL_TEST_AMQP" not in os.environ and shutil.which("rabbitmqctl") is not None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Groups for `--dist loadgroup` (the Makefile's `test` runs several workers): tests that
    share a fixed resource run one after another on one worker; everything else spreads."""
    isolated = _rabbitmq_isolated()
    for item in items:
        if item.get_closest_marker("xdist_group") is not None:
            continue
        if _uses_rabbitmq(item) and not isolated:
            item.add_marker(pytest.mark.xdist_group("rabbitmq"))
        elif _module_scoped(item) and item.get_closest_marker("spread") is None:
            module = getattr(item, "module", None)
            item.add_marker(pytest.mark.xdist_group(module.__name__ if module else item.nodeid))
    if hasattr(config, "workerinput") and config.getvalue("loadgroup"):
        _name_groups(items)


def _name_groups(items: list[pytest.Item]) -> None:
    """Append `@group` to each grouped test's id, as pytest-xdist's worker does: the controller
    schedules by that suffix. pytest-xdist 3.8 sets `item._nodeid`, which pytest 9 no longer
    reads (the id is `item._id`, a NodeId), so without this every group would be ignored."""
    try:
        from _pytest.nodeid import NodeId
    except ImportError:  # pytest < 9: pytest-xdist's own suffix works
        return
    for item in items:
        names = sorted(
            {
                str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
                for mark in item.iter_markers("xdist_group")
            }
        )
        if names and "@" not in item.nodeid:
            item._id = NodeId.parse(f"{item.nodeid}@{'_'.join(names)}")


# ---- chain --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def anvil() -> Iterator[Any]:
    from offerseal.shared.anvil import AnvilProcess

    process = AnvilProcess(free_port())
    yield process
    process.stop()


@pytest.fixture
def fresh_anvil() -> Iterator[Any]:
    from offerseal.shared.anvil import AnvilProcess

    process = AnvilProcess(free_port())
    yield process
    process.stop()


# ---- databases ----------------------------------------------------------------------------


def _pg_admin() -> Any:
    import sqlalchemy as sa

    return sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")


@contextlib.contextmanager
def new_postgres_database() -> Iterator[str]:
    """The URL of an empty PostgreSQL database of its own, dropped afterwards."""
    import sqlalchemy as sa

    require_server("PostgreSQL", "127.0.0.1", 5432)
    name = f"offerseal_test_{uuid.uuid4().hex[:12]}"
    admin = _pg_admin()
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with new_postgres_database() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'offerseal.db'}"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def module_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """`database_url` for a module-scoped fixture (one stack for a module's tests, each on its
    own tenant or candidate_ref): an empty database on each engine, kept for the module."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('module-db') / 'offerseal.db'}"
        return
    with new_postgres_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(name))


_schema_lock = threading.Lock()
_sqlite_schema: Path | None = None


def migrated_sqlite_schema() -> Path:
    """A SQLite file at the newest revision, migrated once per test process (each xdist worker
    has its own): copying it (a few ms) replaces 22 Alembic revisions (0.6 s) per database."""
    global _sqlite_schema
    with _schema_lock:
        if _sqlite_schema is None:
            from offerseal.shared.db import Database

            folder = Path(tempfile.mkdtemp(prefix="offerseal-schema-"))
            atexit.register(shutil.rmtree, folder, True)
            path = folder / "schema.db"
            db = Database(f"sqlite:///{path}")
            db.migrate()
            db.dispose()
            assert not path.with_name(path.name + "-wal").exists(), "schema copy left a WAL file"
            _sqlite_schema = path
        return _sqlite_schema


def prefill_sqlite(url: str) -> None:
    """Give a SQLite database that does not exist yet the migrated schema by copying it: what
    `Database.migrate()` would build, cheaper. Anything else (PostgreSQL, an existing file, an
    in-memory database) is left alone."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or "?" in url:
        return
    path = Path(url.removeprefix(prefix))
    if not path.name or path.name == ":memory:" or path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(migrated_sqlite_schema(), path)


@pytest.fixture
def database(database_url: str) -> Iterator[Any]:
    from offerseal.shared.db import Database

    prefill_sqlite(database_url)
    db = Database(database_url)
    db.migrate()
    yield db
    db.dispose()


# ---- broker -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def _amqp_session_url() -> Iterator[str]:
    """The broker for this test process: on the machine's own RabbitMQ (OFFERSEAL_TEST_AMQP
    unset, rabbitmqctl at hand) a virtual host of its own, deleted afterwards. The queue and
    exchange names are fixed (offerseal.events, offerseal.<service>): on a shared broker another
    test run's stacks would take this run's messages, and this run theirs."""
    import subprocess

    require_server("RabbitMQ", "127.0.0.1", 5672)
    ctl = shutil.which("rabbitmqctl")
    if "OFFERSEAL_TEST_AMQP" in os.environ or ctl is None:
        yield AMQP_URL
        return
    vhost = f"offerseal-test-{uuid.uuid4().hex[:12]}"

    def rabbitmqctl(*args: str) -> bool:
        try:
            done = subprocess.run([ctl, "-q", *args], capture_output=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            return False
        return done.returncode == 0

    user = AMQP_URL.split("://", 1)[1].split(":", 1)[0]
    made = False
    for _ in range(3):  # rabbitmqctl can time out on a busy machine
        rabbitmqctl("add_vhost", vhost)  # refused if an earlier try made it after all
        if rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*"):
            made = True  # (refused while the virtual host does not exist)
            break
    if not made:
        if IN_CI:  # the tests on this worker are not grouped for a shared virtual host
            pytest.fail(f"could not make the RabbitMQ virtual host {vhost} with {ctl}")
        yield AMQP_URL  # not allowed to manage the broker: share its default virtual host
        return
    try:
        yield "/".join(AMQP_URL.split("/")[:3]) + "/" + vhost  # amqp://user:pass@host:port/vhost
    finally:
        rabbitmqctl("delete_vhost", vhost)


@pytest.fixture
def amqp_url(_amqp_session_url: str) -> str:
    return _amqp_session_url


@pytest.fixture(params=["memory", "rabbitmq"])
def broker_url(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return "memory://"
    return str(request.getfixturevalue("amqp_url"))


# ---- a running evidence stack -------------------------------------------------------------


@dataclass
class RunningStack:
    base: str
    rpc_url: str
    settings: Settings
    stack: Any
    hr: dict[str, str]
    legal: dict[str, str]
    admin: dict[str, str]
    other_tenant: dict[str, str]

    @property
    def db(self) -> Any:
        return self.stack.db

    def url(self, path: str) -> str:
        return self.base + path


def make_settings(tmp_path: Path, database_url: str, rpc_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "database_url": database_url,
        "broker_url": "memory://",
        "rpc_url": rpc_url,
        "signer_key": ANVIL_DEV_KEY,
        "evidence_port": 0,
        "contracts_port": 0,
        "notify_port": 0,
        "web_port": 0,
        "contracts_signer_key": ANVIL_DEV_KEY_2,
        "sweep_interval": 0.5,
        "batch_interval": 0.3,
        "reconcile_interval": 0.5,
        "outbox_interval": 0.05,
        "log_level": "WARNING",
    }
    values.update(overrides)
    return load_settings({}, **values)


def start_stack(settings: Settings) -> RunningStack:
    from offerseal.shared.auth import create_key
    from offerseal.stack import Stack

    if settings.broker_url.startswith("memory://"):
        # kombu's in-process transport is global to the process: messages a previous test's
        # stack published but never consumed would reach this one. Each stack starts empty.
        from kombu.transport.memory import Channel

        for queue in Channel.queues.values():
            with queue.mutex:
                queue.queue.clear()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    prefill_sqlite(settings.effective_database_url)
    stack = Stack(settings).start()
    stack.wait_ready()
    db = stack.db

    def bearer(role: str, tenant: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {create_key(db, role, tenant)[1]}"}

    return RunningStack(
        base=stack.urls["evidence"],
        rpc_url=stack.urls["rpc"],
        settings=settings,
        stack=stack,
        hr=bearer("hr", "acme"),
        legal=bearer("legal", "acme"),
        admin=bearer("admin", "acme"),
        other_tenant=bearer("hr", "globex"),
    )


@pytest.fixture
def evidence(tmp_path: Path, database_url: str, anvil: Any) -> Iterator[RunningStack]:
    running = start_stack(make_settings(tmp_path, database_url, anvil.url))
    yield running
    running.stack.stop()


@pytest.fixture
def evidence_sqlite(tmp_path: Path, sqlite_url: str, anvil: Any) -> Iterator[RunningStack]:
    running = start_stack(make_settings(tmp_path, sqlite_url, anvil.url))
    yield running
    running.stack.stop()


@pytest.fixture(scope="module")
def module_evidence_sqlite(
    tmp_path_factory: pytest.TempPathFactory, anvil: Any
) -> Iterator[RunningStack]:
    """`evidence_sqlite` kept for the whole module: for tests that only read, or are refused,
    or write under a tenant or candidate_ref of their own (see tests/README.md)."""
    tmp = tmp_path_factory.mktemp("module-stack")
    running = start_stack(make_settings(tmp, f"sqlite:///{tmp / 'offerseal.db'}", anvil.url))
    yield running
    running.stack.stop()


def wait_for_proof(stack: RunningStack, doc_id: str, timeout: float = 60.0) -> dict[str, Any]:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            response = requests.get(
                stack.url(f"/v1/documents/{doc_id}/proof"), headers=stack.hr, timeout=10
            )
        except requests.Timeout:  # a busy machine: ask again
            continue
        if response.status_code == 200:
            body: dict[str, Any] = response.json()
            return body
        assert response.status_code == 409, response.text
        time.sleep(0.1)
    raise AssertionError(f"no proof for {doc_id} within {timeout}s")


def upload(
    stack: RunningStack,
    content: bytes,
    kind: str = "resignation_application",
    candidate_ref: str = "cand-1",
    headers: dict[str, str] | None = None,
    **fields: str,
) -> requests.Response:
    return requests.post(
        stack.url("/v1/documents"),
        headers=headers or stack.hr,
        data={"kind": kind, "candidate_ref": candidate_ref, **fields},
        files={"file": ("doc.pdf", content, "application/pdf")},
        timeout=30,
    )


def api_link(link: str, suffix: str = "") -> str:
    """The API path behind a candidate's link: a portal link `/portal/{id}[/amendments/{aid}]
    ?token=T` (or an API link `.../typed-data?token=T`) as `/v1/agreements/{id}[/amendments/
    {aid}]{suffix}?token=T` on the same origin."""
    import urllib.parse

    parts = urllib.parse.urlsplit(link)
    path = parts.path.removesuffix("/typed-data")
    if "/portal/" in path:
        path = path.replace("/portal/", "/v1/agreements/", 1)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path + suffix, parts.query, ""))

"""Database plumbing: engine, sessions, the declarative base and schema migrations."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from importlib import resources
from typing import Any

from sqlalchemy import JSON, MetaData, create_engine, event, insert
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from .workers import ACTIVITY

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


# PostgreSQL: how long to wait for a connection, a statement and a lock.
PG_CONNECT_TIMEOUT = 10
PG_STATEMENT_TIMEOUT_MS = 120_000
PG_LOCK_TIMEOUT_MS = 30_000
PG_IDLE_IN_TRANSACTION_MS = 300_000


_WRITES = ("INSERT", "UPDATE", "DELETE")


def _ring_after_writes(engine: Engine) -> None:
    """Ring `workers.ACTIVITY` when a transaction that wrote commits, so this process's idle
    loops look for the work it may have made (an outbox row, a document, a transaction)."""

    @event.listens_for(engine, "after_cursor_execute")
    def _wrote(
        conn: Any, _cursor: Any, statement: str, _params: Any, context: Any, _many: bool
    ) -> None:
        if (context is not None and (context.isinsert or context.isupdate or context.isdelete)) or (
            statement.lstrip()[:6].upper() in _WRITES
        ):
            conn.info["offerseal_wrote"] = True

    @event.listens_for(engine, "commit")
    def _committed(conn: Any) -> None:
        if conn.info.pop("offerseal_wrote", False):
            ACTIVITY.ring()  # the loop waits its interval before it looks: the commit lands

    @event.listens_for(engine, "rollback")
    def _rolled_back(conn: Any) -> None:
        conn.info.pop("offerseal_wrote", None)


def make_engine(url: str, **kwargs: Any) -> Engine:
    engine = _make_engine(url, **kwargs)
    _ring_after_writes(engine)
    return engine


def _make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # WAL lets readers work while the single writer commits; FULL sync makes a
            # commit durable before we answer 201.
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        # pysqlite's own transaction handling defers BEGIN; take the write lock up front so
        # that concurrent writers queue on busy_timeout instead of failing on upgrade.
        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(
        url,
        pool_size=20,
        max_overflow=10,
        pool_pre_ping=True,
        pool_timeout=PG_CONNECT_TIMEOUT,
        connect_args={
            "connect_timeout": PG_CONNECT_TIMEOUT,
            # A statement, a lock wait or an abandoned transaction never holds a thread forever.
            "options": f"-c statement_timeout={PG_STATEMENT_TIMEOUT_MS}"
            f" -c lock_timeout={PG_LOCK_TIMEOUT_MS}"
            f" -c idle_in_transaction_session_timeout={PG_IDLE_IN_TRANSACTION_MS}",
        },
        **kwargs,
    )


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


# Below this many rows a plain INSERT is cheaper than COPY's extra protocol round trips.
COPY_FROM = 50


def insert_rows(session: Session, model: type[Base], rows: list[dict[str, Any]]) -> None:
    """Bulk insert in the session's transaction: COPY on PostgreSQL (an order of magnitude
    faster for thousands of rows), executemany elsewhere."""
    if not rows:
        return
    connection = session.connection()
    if connection.dialect.name != "postgresql" or len(rows) < COPY_FROM:
        session.execute(insert(model), rows)
        return
    table: Any = model.__table__
    columns = list(rows[0])
    types = [table.c[name].type for name in columns]
    json_columns = {i for i, t in enumerate(types) if isinstance(t, JSON)}
    raw: Any = connection.connection.driver_connection
    quoted = ", ".join(f'"{name}"' for name in columns)
    with raw.cursor() as cursor, cursor.copy(f'COPY "{table.name}" ({quoted}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row(
                [
                    json.dumps(row[name])
                    if i in json_columns and row[name] is not None
                    else row[name]
                    for i, name in enumerate(columns)
                ]
            )


def copy_text(session: Session, table: str, columns: Sequence[str], text: str) -> None:
    """PostgreSQL: rows already written in COPY's text format (a line each, values separated
    by tabs, escaped by the caller) into `table` in the session's transaction: one COPY, no
    row objects and no adapter a value."""
    raw: Any = session.connection().connection.driver_connection
    quoted = ", ".join(f'"{name}"' for name in columns)
    with raw.cursor() as cursor, cursor.copy(f'COPY "{table}" ({quoted}) FROM STDIN') as copy:
        copy.write(text)


class Database:
    """An engine and its session factory."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work is committed on success and rolled back on any error."""
        with self.sessions() as session, session.begin():
            yield session

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision."""
        from alembic import command
        from alembic.config import Config

        location = resources.files("offerseal.migrations")
        cfg = Config()
        cfg.set_main_option("script_location", str(location))
        with self.engine.begin() as connection:
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, "head")

    def dispose(self) -> None:
        self.engine.dispose()

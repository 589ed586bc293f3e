"""Alembic environment: runs on the connection handed over by `Database.migrate()`."""

from __future__ import annotations

from alembic import context

from offerseal.contracts import models as _contracts_models  # noqa: F401  (registers tables)
from offerseal.evidence import models as _evidence_models  # noqa: F401
from offerseal.notify import models as _notify_models  # noqa: F401
from offerseal.shared import models as _shared_models  # noqa: F401
from offerseal.shared import users as _users  # noqa: F401
from offerseal.shared.db import Base

config = context.config
target_metadata = Base.metadata

connection = config.attributes.get("connection")
if connection is None:
    from sqlalchemy import create_engine

    engine = create_engine(config.get_main_option("sqlalchemy.url") or "sqlite://")
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()

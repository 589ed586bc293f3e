"""The Alembic revisions build exactly the schema the models describe, on SQLite and PostgreSQL:
a model changed without a migration (or the reverse) fails here, not on a user's database."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import offerseal.contracts.models
import offerseal.evidence.models
import offerseal.notify.models
import offerseal.shared.users  # noqa: F401  (register every table)
from offerseal.shared.db import Base


def test_migrations_match_the_models(database: Any) -> None:
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    # Alembic's own version table is not a model.
    differences = [d for d in differences if "alembic_version" not in repr(d)]
    assert differences == []

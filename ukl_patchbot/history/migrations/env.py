"""Alembic environment: migrate the connection `store.migrate` hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from ukl_patchbot.history.schema import metadata

connection = context.config.attributes["connection"]
if connection.dialect.name == "postgresql":
    # Workers on several machines may open the history at once: one migrates,
    # the others wait here and then find it at head.
    connection.execute(text("SELECT pg_advisory_xact_lock(1414)"))
context.configure(connection=connection, target_metadata=metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()

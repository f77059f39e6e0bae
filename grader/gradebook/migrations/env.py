"""Alembic's entry point: migrations run on the connection `grader.gradebook.migrations`
passes in (``config.attributes["connection"]``); there is no ini file and no offline mode."""

from __future__ import annotations

from alembic import context

from grader.gradebook.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("the gradebook's migrations run through grader.gradebook.migrations."
                       "upgrade(connection), which opens the database; not from the alembic "
                       "command line")
# render_as_batch: SQLite alters a table by copying it, which batch mode does for us.
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()

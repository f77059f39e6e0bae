"""The gradebook's schema migrations (Alembic), shipped inside the package.

`upgrade` runs when a gradebook is opened, so users never need an ``alembic.ini``: a new
database gets every table, and a gradebook of an earlier release (with or without an
``alembic_version`` table) is brought to the current schema, its rows intact. Revision
0001 is the schema of the last release without migrations and adopts such a gradebook
as it is; later revisions change it step by step.

Writing a migration (developers): change `grader.gradebook.models`, then add a file to
``versions/`` (copy the newest; ``down_revision`` names it). ``tests/test_migrations.py``
fails while the migrated schema and the models differ.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

FOLDER = Path(__file__).parent


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration for this folder, without any ini file."""
    config = Config()
    config.set_main_option("script_location", str(FOLDER))
    config.attributes["connection"] = connection
    return config


def head() -> str:
    """The newest revision."""
    found = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert found is not None
    return found


def current(connection: Connection) -> str | None:
    """The revision a database is at; None for a new one or one from before migrations."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(connection: Connection, revision: str = "head") -> None:
    """Brings the database to `revision` (default: the newest), inside the caller's transaction."""
    if revision == "head" and current(connection) == head():
        return  # the common case: nothing to do, no migration scripts run
    command.upgrade(alembic_config(connection), revision)

"""A real PostgreSQL server for the gradebook tests, started once per test session.

The server is grader.testing.postgres's throwaway one (shared with bench/serve_load.py), one
database per test. The tests that need it are skipped, with the reason, only where the
binaries are missing.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from grader.testing.postgres import NOT_INSTALLED, postgres_bindir, throwaway_postgres

_databases = itertools.count()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URL prefix (``postgresql+psycopg://postgres@127.0.0.1:PORT``) of a running server."""
    if postgres_bindir() is None:
        pytest.skip(NOT_INSTALLED)
    with throwaway_postgres(fsync=False) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    """A fresh, empty database: a SQLite file, or a new database on the session's server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'gradebook.db'}"
    import psycopg

    server = request.getfixturevalue("postgres_server")
    name = f"gradebook_{os.getpid()}_{next(_databases)}"
    with psycopg.connect(server.replace("+psycopg", "") + "/postgres",
                         autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return f"{server}/{name}"


@pytest.fixture(autouse=True)
def _each_test_starts_in_english(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test starts in the source language and leaves no language behind.

    A `grader` verb called in-process sets the course's language (zh_CN for this lecture)
    for its process and, through ``GRADER_LANG``, its children; without this, one CLI test
    would turn every later test's messages Chinese. A suite under tests/files graded
    in-process also finds this conftest: there the language is the grader's, left alone.
    """
    from grader import i18n

    if request.config.rootpath.resolve() != Path(__file__).resolve().parents[1]:
        yield
        return
    saved = os.environ.pop(i18n.ENV_VAR, None)
    i18n._current.set(None)
    yield
    i18n._current.set(None)
    os.environ.pop(i18n.ENV_VAR, None)
    if saved is not None:
        os.environ[i18n.ENV_VAR] = saved

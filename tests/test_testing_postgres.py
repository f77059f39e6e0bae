"""grader.testing.postgres: the throwaway server the tests and bench/serve_load.py share."""

from __future__ import annotations

import psycopg
import pytest

from grader.testing import postgres


def test_a_missing_installation_says_how_to_get_one(monkeypatch):
    monkeypatch.setattr(postgres, "BIN_GLOB", "/nonexistent/postgresql/*/bin")
    monkeypatch.setenv("PATH", "/nonexistent")
    assert postgres.postgres_bindir() is None
    with pytest.raises(postgres.PostgresNotInstalled, match="apt-get install postgresql"):
        with postgres.throwaway_postgres():
            pass


def test_the_server_answers_with_the_fsync_asked_for_and_stops_on_leaving(postgres_server):
    with postgres.throwaway_postgres(fsync=True) as url:
        with psycopg.connect(url.replace("+psycopg", "") + "/postgres") as connection:
            assert connection.execute("SHOW fsync").fetchone() == ("on",)
        port = url.rsplit(":", 1)[1]
    with psycopg.connect(postgres_server.replace("+psycopg", "") + "/postgres") as connection:
        assert connection.execute("SHOW fsync").fetchone() == ("off",)
    with pytest.raises(psycopg.OperationalError):  # stopped on leaving the block
        psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", connect_timeout=5)

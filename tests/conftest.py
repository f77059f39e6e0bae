"""A real PostgreSQL server for the gradebook tests, started once per test session.

Debian's `postgresql` package is used from /usr/lib/postgresql/<version>/bin: `initdb` into
a temporary folder, `pg_ctl start` on a free loopback port (the socket in that folder too),
one database per test. As root the server runs as the `postgres` user (PostgreSQL refuses
to run as root). The tests that need it are skipped, with the reason, only where the
binaries are missing.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_BIN_GLOB = "/usr/lib/postgresql/*/bin"
_databases = itertools.count()


def _postgres_bin() -> Path | None:
    found = sorted(Path("/").glob(_BIN_GLOB.lstrip("/")), key=lambda p: p.parent.name)
    found = [p for p in found if (p / "initdb").exists() and (p / "pg_ctl").exists()]
    if found:
        return found[-1]
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb and shutil.which("pg_ctl") else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URL prefix (``postgresql+psycopg://postgres@127.0.0.1:PORT``) of a running server."""
    bindir = _postgres_bin()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (no initdb/pg_ctl in /usr/lib/postgresql/*/bin "
                    "or on PATH); install it with: apt-get install postgresql")
    # Not under pytest's tmp folder: that one is private to root, and the server runs as
    # the `postgres` user, who must reach its data folder.
    root = Path(tempfile.mkdtemp(prefix="nn-grader-postgres-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(root, user.pw_uid, user.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", _free_port()

    def run(*args: str) -> None:
        done = subprocess.run([*as_user, *args], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed:\n{done.stdout}{done.stderr}")

    run(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
        "--encoding=UTF8", "--no-sync")
    run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-w",
        "-o", f"-k {root} -c listen_addresses=127.0.0.1 -p {port} -c fsync=off", "start")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}"
    finally:
        run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


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

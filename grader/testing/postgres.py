"""A throwaway PostgreSQL server in a temporary folder, for tests and benchmarks.

Debian's `postgresql` package is used from /usr/lib/postgresql/<version>/bin (or `initdb`
and `pg_ctl` on PATH): `initdb` into a temporary folder, `pg_ctl start` on a free loopback
port with its socket in that folder, `pg_ctl stop -m immediate` and the folder removed on
exit. As root the server runs as the `postgres` user (PostgreSQL refuses to run as root).

Decisions:
- Shipped inside `grader` (grader.testing) rather than beside tests/ or bench/: both import
  the installed `grader` package and neither is a package itself; the module holds no
  course material, so the wheel stays the tool only.
- Not under pytest's tmp folder: that one is private to root, and the server's user must
  reach its data folder.
- `fsync` is a choice: the tests turn it off for speed, a benchmark keeps the real thing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from grader.testing.net import free_port

BIN_GLOB = "/usr/lib/postgresql/*/bin"
NOT_INSTALLED = ("PostgreSQL is not installed (no initdb/pg_ctl in /usr/lib/postgresql/*/bin "
                 "or on PATH); install it with: apt-get install postgresql")


class PostgresNotInstalled(RuntimeError):
    """Neither /usr/lib/postgresql/*/bin nor PATH has both `initdb` and `pg_ctl`."""


def postgres_bindir() -> Path | None:
    """The folder of the newest installed `initdb` and `pg_ctl`, or None when there is none."""
    found = sorted(Path("/").glob(BIN_GLOB.lstrip("/")), key=lambda p: p.parent.name)
    found = [p for p in found if (p / "initdb").exists() and (p / "pg_ctl").exists()]
    if found:
        return found[-1]
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb and shutil.which("pg_ctl") else None


@contextlib.contextmanager
def throwaway_postgres(*, fsync: bool = True) -> Iterator[str]:
    """Start a server for the duration of the `with` block.

    Args:
        fsync: PostgreSQL's `fsync` setting; off only where losing the data is fine (tests).

    Yields:
        The server's URL prefix, ``postgresql+psycopg://postgres@127.0.0.1:PORT``; append
        ``/DBNAME`` (``/postgres`` always exists).

    Raises:
        PostgresNotInstalled: the binaries are missing (the message says how to get them).
        RuntimeError: `initdb` or `pg_ctl` failed; the message holds their output.
    """
    bindir = postgres_bindir()
    if bindir is None:
        raise PostgresNotInstalled(NOT_INSTALLED)
    root = Path(tempfile.mkdtemp(prefix="nn-grader-postgres-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        import pwd

        user = pwd.getpwnam("postgres")
        os.chown(root, user.pw_uid, user.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", free_port()

    def run(*args: str) -> None:
        done = subprocess.run([*as_user, *args], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed:\n{done.stdout}{done.stderr}")

    try:
        run(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
            "--encoding=UTF8", "--no-sync")
        run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-w",
            "-o", f"-k {root} -c listen_addresses=127.0.0.1 -p {port} "
                  f"-c fsync={'on' if fsync else 'off'}", "start")
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}"
    finally:
        run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)

"""Fixtures shared by the project's tests.

- A real PostgreSQL server for the gradebook tests, started once per test session:
  grader.testing.postgres's throwaway one (shared with bench/serve_load.py), one database per
  test. The tests that need it are skipped, with the reason, only where the binaries are
  missing.
- A Playwright browser on Debian's Chromium and ASGI apps served under uvicorn in a thread,
  for the service's browser tests.
- Every test starts in English.
"""

from __future__ import annotations

import itertools
import os
import shutil
import threading
import time
from collections.abc import Iterator

import pytest

from grader.testing.net import free_port
from grader.testing.postgres import NOT_INSTALLED, postgres_bindir, throwaway_postgres

_databases = itertools.count()
SERVER_START_TIMEOUT_S = 20


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


@pytest.fixture()
def browser() -> Iterator[object]:
    """A Playwright ``Browser`` on Debian's Chromium (no browser downloaded), closed afterwards.

    Skipped, with how to install it, where Chromium or Playwright is missing.
    """
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        # --no-sandbox: the tests run as root in a container, where Chromium's sandbox fails
        launched = playwright.chromium.launch(executable_path=chromium,
                                              args=["--no-sandbox", "--disable-gpu"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture()
def open_page(browser) -> object:
    """Opens a page in a new browser context: call it with ``(timeout_ms,
    **context_options)``; it returns ``(page, errors)``, `errors` the text of every console
    error the page logs (a CSP violation is one)."""

    def open_(timeout_ms: int, **context_options: object) -> tuple[object, list[str]]:
        page = browser.new_context(**context_options).new_page()
        page.set_default_timeout(timeout_ms)
        errors: list[str] = []
        page.on("console", lambda message: errors.append(message.text)
                if message.type == "error" else None)
        return page, errors

    return open_


@pytest.fixture()
def serve_in_thread() -> Iterator[object]:
    """Serves ASGI apps under uvicorn on the loopback interface, each in a thread.

    Call it with ``(app, port=None, **uvicorn_config)``; it returns the base URL
    (``http://127.0.0.1:PORT``) once the server is up. Every server is stopped afterwards.
    """
    uvicorn = pytest.importorskip("uvicorn")
    servers: list[tuple[object, threading.Thread]] = []

    def serve(app: object, port: int | None = None, **config: object) -> str:
        port = port or free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                               log_level="warning", lifespan="off", **config))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        servers.append((server, thread))
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        return f"http://127.0.0.1:{port}"

    yield serve
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=SERVER_START_TIMEOUT_S)


@pytest.fixture(autouse=True)
def _each_test_starts_in_english() -> Iterator[None]:
    """Every test starts in the source language and leaves no language behind.

    A `grader` verb called in-process sets the course's language (zh_CN for this lecture)
    for its process and, through ``GRADER_LANG``, its children; without this, one CLI test
    would turn every later test's messages Chinese. (A suite under tests/files graded
    in-process never loads this file: the grader confines pytest to the suite's folder.)
    """
    from grader import i18n

    saved = os.environ.pop(i18n.ENV_VAR, None)
    i18n._current.set(None)
    yield
    i18n._current.set(None)
    os.environ.pop(i18n.ENV_VAR, None)
    if saved is not None:
        os.environ[i18n.ENV_VAR] = saved

"""Stopping `grader serve` (and `grader worker`) the ways a server is stopped: SIGTERM to
the service alone (docker stop, kill), to its whole process group (systemd's default), or
SIGKILL. No worker outlives its service, and none hangs on the signal.

The real service runs as a child process on a scaffolded course (`bench/serve_load.py`'s
helpers, as tests/test_bench_serve.py uses them).
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grader.runtime.process import _running, process_tree  # _running: a zombie is gone
from grader.runtime.process import _wait_gone as wait_gone

BENCH = Path(__file__).resolve().parents[1] / "bench"
GONE_WITHIN_S = 20.0  # a worker finishes its poll (2 s) and its orphan check (1 s) first


def _load():
    spec = importlib.util.spec_from_file_location("bench_serve_load_stop",
                                                  BENCH / "serve_load.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_serve_load_stop"] = module
    spec.loader.exec_module(module)
    return module


serve_load = _load()


def _wait_gone(pids: list[int], timeout_s: float = GONE_WITHIN_S) -> list[int]:
    """The processes of `pids` still running after up to `timeout_s` seconds."""
    wait_gone(set(pids), timeout_s)
    return [pid for pid in pids if _running(pid)]


def _catches_sigterm(pid: int, within_s: float) -> bool:
    """Whether `pid` installs a SIGTERM handler within `within_s` (its SigCgt mask: a worker
    still importing would die of the signal's default action instead)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            caught = next(line for line in status if line.startswith("SigCgt:"))
        if int(caught.split()[1], 16) & (1 << (signal.SIGTERM - 1)):
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def service(tmp_path):
    """A running `grader serve --workers 2` in its own process group; killed at the end."""
    course = serve_load.make_course(tmp_path / "course")
    url = f"sqlite:///{course / 'gradebook.db'}"
    serve_load.add_students(url, 1)
    port = serve_load.free_port()
    log = tmp_path / "serve.log"
    process = serve_load.start_service(course, url, port, 2, log)
    try:
        serve_load.wait_until_up(f"http://127.0.0.1:{port}", process, log)
        yield process, log
    finally:
        leftovers = process_tree(process.pid) if process.poll() is None else []
        for pid in leftovers:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        process.wait(10)


def _workers(process: subprocess.Popen) -> list[int]:
    """The service's descendants: its worker processes (and multiprocessing's tracker)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        children = process_tree(process.pid)[1:]
        if len(children) >= 2:
            return children
        time.sleep(0.2)
    raise AssertionError("grader serve started no worker processes")


@pytest.mark.parametrize("target", ["service", "group"])
def test_sigterm_stops_the_service_and_every_worker(service, target):
    process, log = service
    workers = _workers(process)
    if target == "group":  # systemd's KillMode=control-group: every process gets it
        os.killpg(process.pid, signal.SIGTERM)
    else:  # docker stop, kill PID: only the service gets it
        process.send_signal(signal.SIGTERM)
    assert process.wait(60) == 0, log.read_text(errors="replace")[-2000:]
    assert _wait_gone(workers) == [], "worker processes outlived grader serve"


def test_workers_stop_when_their_service_is_killed(service):
    process, _log = service
    workers = _workers(process)
    process.send_signal(signal.SIGKILL)  # no clean-up runs in the service
    process.wait(10)
    assert _wait_gone(workers) == [], "worker processes outlived a killed grader serve"


def test_a_local_worker_stops_on_sigterm_while_it_waits_for_jobs(tmp_path):
    """The signal arrives while the worker waits on its stop event: setting that event from
    inside the handler would wait on the waiter itself (the hang this guards)."""
    from grader.service.worker import start_local_workers

    course = serve_load.make_course(tmp_path / "course")
    url = f"sqlite:///{course / 'gradebook.db'}"
    serve_load.add_students(url, 1)
    workers = start_local_workers(url, course, 1)
    try:
        (process,) = workers.processes
        assert _catches_sigterm(process.pid, within_s=90), "the worker never set its handler"
        time.sleep(1)  # idle in its wait between polls
        os.kill(process.pid, signal.SIGTERM)
        process.join(20)
        assert not process.is_alive() and process.exitcode == 0
    finally:
        workers.stop(timeout=5)


@pytest.mark.parametrize("target", ["command", "group"])
def test_sigterm_stops_grader_worker_and_its_processes(tmp_path, target):
    """`grader worker` on a GPU machine under systemd: SIGTERM ends it and its processes."""
    course = serve_load.make_course(tmp_path / "course")
    url = f"sqlite:///{course / 'gradebook.db'}"
    serve_load.add_students(url, 1)
    env = dict(os.environ, GRADER_COURSE=str(course), GRADER_LANG="en")
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "grader", "worker", "--db", url, "--concurrency", "2"],
        cwd=course, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True)
    try:
        workers = _workers(process)
        assert _catches_sigterm(process.pid, within_s=60)
        for pid in workers:  # the worker processes, past their imports, waiting for jobs
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                assert _catches_sigterm(pid, within_s=60)
        if target == "group":
            os.killpg(process.pid, signal.SIGTERM)
        else:
            process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=60)[0].decode(errors="replace")
        assert process.returncode == 0, output
        assert "stopping after the current jobs" in output
        assert _wait_gone(workers) == [], "worker processes outlived grader worker"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)

"""Red team: from inside the real sandbox, the split secret, the grader's environment and
the host's processes are out of reach, and nothing a submission starts outlives it.

The submission here is written inline (a module of probes); each probe returns plain
data, so the test reads what the runtime could see.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from grader.checks.splits import SECRET_ENV, secret_path
from grader.runtime import SandboxLimits, StudentRuntime
from grader.runtime.sandbox import bwrap_usable, fallback_usable

LIMITS = SandboxLimits(call_timeout_s=20, import_timeout_s=20, memory_mb=1024,
                       max_processes=48, file_size_mb=8, workspace_mb=16, workspace_files=500,
                       tmp_size_mb=16, cpu_seconds=60, watchdog_interval_s=0.05)
requires_bwrap = pytest.mark.skipif(not bwrap_usable(), reason="bubblewrap cannot run here")
MARK = "31337.25"  # a sleep no other process on the machine runs: finds the daemon's pid
PROBES = f'''
import os
import subprocess


def readable(paths):
    """Each path: what reading it gave (bytes read, or the error's name)."""
    found = {{}}
    for path in paths:
        try:
            with open(path, "rb") as handle:
                found[path] = len(handle.read(1 << 20))
        except OSError as exc:
            found[path] = type(exc).__name__
    return found


def environments():
    """Every environment the runtime can read: its own and each visible process's."""
    texts = [repr(dict(os.environ))]
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{{pid}}/environ", "rb") as handle:
                    texts.append(handle.read().decode("latin-1"))
            except OSError:
                pass
    return texts


def visible_pids():
    return sorted(int(pid) for pid in os.listdir("/proc") if pid.isdigit())


def escape():
    """A daemon in its own session, its parent gone: the classic way out of a job."""
    child = subprocess.Popen(["/bin/sh", "-c", "sleep {MARK}; true"], start_new_session=True,
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    for _ in range(200):  # until the shell has started its sleep
        for pid in os.listdir("/proc"):
            try:
                if pid.isdigit() and int(pid) != child.pid and b"{MARK}" in open(
                        f"/proc/{{pid}}/cmdline", "rb").read():
                    return "started"
            except OSError:
                pass
        os.sched_yield()
    return "not started"
'''


def _runtime(tmp_path: Path, use_bwrap: bool = True) -> StudentRuntime:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "probes.py").write_text(PROBES)
    return StudentRuntime(workspace, ["probes"], limits=LIMITS, use_bwrap=use_bwrap)


def _daemons() -> list[int]:
    """Host pids of processes running the probe's sleep."""
    found = []
    for pid in os.listdir("/proc"):
        try:
            if pid.isdigit() and MARK.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(int(pid))
        except OSError:
            pass
    return found


@requires_bwrap
def test_the_split_secret_and_the_keras_cache_cannot_be_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "red-team-secret-" + os.urandom(8).hex()
    monkeypatch.setenv(SECRET_ENV, secret)  # the grader's environment holds it
    paths = [str(secret_path()), str(Path.home() / ".keras" / "datasets"),
             "/proc/1/environ", f"/proc/{os.getpid()}/environ", "/proc/self/environ",
             f"/proc/{os.getpid()}/mem"]
    with _runtime(tmp_path) as runtime:
        probes = runtime.student.probes
        seen = probes.readable(paths)
        environments = probes.environments()
        pids = probes.visible_pids()
    assert seen[str(secret_path())] in ("FileNotFoundError", "PermissionError"), seen
    assert not any(secret in text for text in environments), "the split secret leaked"
    assert SECRET_ENV not in " ".join(environments)
    assert len(pids) < 10, f"host processes visible from the runtime: {pids[:20]}"


@pytest.mark.parametrize("use_bwrap", [
    pytest.param(True, marks=requires_bwrap, id="bubblewrap"),
    pytest.param(False, marks=pytest.mark.skipif(not fallback_usable(),
                                                 reason="no fallback sandbox here"),
                 id="fallback")])
def test_a_daemon_in_its_own_session_dies_with_the_runtime(tmp_path: Path,
                                                           use_bwrap: bool) -> None:
    assert not _daemons(), "a sleep with the probe's mark already runs on this machine"
    with _runtime(tmp_path, use_bwrap) as runtime:
        assert runtime.student.probes.escape() == "started"
    deadline = time.monotonic() + 10  # the kernel reaps a killed namespace asynchronously
    while _daemons() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _daemons(), "a process started by the submission outlived its runtime"

"""Ctrl-C during a real `grader autograde` batch (issue 11, item 5).

A class of mlp_numpy submissions is graded by one worker; one submission's forward pass
sleeps for longer than the test would wait. Once the submissions before it are reported
graded, SIGINT goes to the batch's whole process group, as a terminal's Ctrl-C does.
The batch must stop promptly with exit status 130 and one line, leave no process of its
tree behind (workers, sandboxes, student runtimes), and keep in the gradebook and on disk
what was graded before the signal.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grader.gradebook import open_gradebook
from grader.runtime.process import process_tree

REPO = Path(__file__).parents[1]
REFERENCE = (REPO / "reference" / "mlp_numpy.py").read_text(encoding="utf-8")
FOREVER_S = 3000  # the slow submission's sleep, and its budgets: never reached
STOP_WITHIN_S = 30  # far below what finishing the batch would take (FOREVER_S)
HONEST = ("a_first",)  # graded before the signal
AFTER = ("c_third", "d_fourth")  # queued behind the slow one: never graded


def _course(root: Path) -> Path:
    """A copy of the lecture's mlp_numpy assignment whose budgets outlast the test."""
    course = root / "course"
    for part in ("assignments/mlp_numpy", "autograde_tests/mlp_numpy", "reference"):
        shutil.copytree(REPO / part, course / part,
                        ignore=shutil.ignore_patterns("__pycache__"))
    toml = course / "assignments" / "mlp_numpy" / "assignment.toml"
    text = toml.read_text(encoding="utf-8")
    text = text.replace("call_timeout_s = 60", f"call_timeout_s = {FOREVER_S}")
    text = text.replace("total_time_s = 30", f"total_time_s = {FOREVER_S}")
    assert f"total_time_s = {FOREVER_S}" in text and f"call_timeout_s = {FOREVER_S}" in text
    toml.write_text(text, encoding="utf-8")
    return course / "assignments" / "mlp_numpy"


def _class(root: Path) -> Path:
    klass = root / "class"
    slow = REFERENCE.replace("    def forward(self, X, W):\n",
                             "    def forward(self, X, W):\n"
                             f"        time.sleep({FOREVER_S})\n", 1)
    assert slow != REFERENCE
    for name in (*HONEST, "b_slow", *AFTER):
        (klass / name).mkdir(parents=True)
        (klass / name / "mlp_numpy.py").write_text(slow if name == "b_slow" else REFERENCE,
                                                   encoding="utf-8")
    return klass


def _started(pid: int) -> str | None:
    """A process's start time (field 22 of /proc/<pid>/stat): tells a pid reused apart."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == b"Z" else fields[19].decode()  # a zombie is not running


def _below_children(tree: list[int], root: int) -> list[int]:
    """The processes of `tree` that are not `root`'s own children (a worker's runtime)."""
    deep = []
    for pid in tree:
        try:
            with open(f"/proc/{pid}/stat", "rb") as stat:
                parent = int(stat.read().rsplit(b")", 1)[1].split()[1])
        except OSError:
            continue
        if pid != root and parent != root:
            deep.append(pid)
    return deep


def _commands(pids: list[int]) -> list[str]:
    """Each pid with its command line, for a failure message."""
    shown = []
    for pid in pids:
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            argv = b"(gone)"
        shown.append(f"{pid}: {argv.decode(errors='replace')[:200]}")
    return shown


@pytest.mark.slow
def test_ctrl_c_stops_a_real_batch_and_keeps_what_was_graded(tmp_path):
    assignment = _course(tmp_path)
    klass = _class(tmp_path)
    db, out = tmp_path / "gradebook.db", tmp_path / "graded"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    log = (tmp_path / "stderr.txt").open("w+", encoding="utf-8")
    batch = subprocess.Popen(
        [sys.executable, "-m", "grader", "autograde", str(assignment), str(klass),
         "--workers", "1", "--db", str(db), "--out", str(out), "--dataset", "fashion_mnist"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=log, text=True,
        start_new_session=True)  # its own process group, like a terminal's foreground job
    try:
        deadline = time.monotonic() + 300
        while f"[{len(HONEST)}/" not in Path(log.name).read_text(encoding="utf-8"):
            assert batch.poll() is None, Path(log.name).read_text(encoding="utf-8")
            assert time.monotonic() < deadline, "the honest submissions were never graded"
            time.sleep(0.2)
        # Wait for the slow submission's runtime: a process below a worker (bwrap or not).
        tree: list[int] = []
        while not _below_children(tree, batch.pid) and time.monotonic() < deadline:
            time.sleep(0.5)
            tree = process_tree(batch.pid)
        assert _below_children(tree, batch.pid), f"no student runtime under the batch: {tree}"
        seen = {pid: _started(pid) for pid in tree[1:]}
        os.killpg(batch.pid, signal.SIGINT)
        signalled = time.monotonic()
        stdout, _ = batch.communicate(timeout=STOP_WITHIN_S)
    finally:
        if batch.poll() is None:
            os.killpg(batch.pid, signal.SIGKILL)
            batch.wait()
    stopped_after = time.monotonic() - signalled
    stderr = Path(log.name).read_text(encoding="utf-8")

    assert batch.returncode == 130, (stdout, stderr)
    assert stopped_after < STOP_WITHIN_S
    for text in (stdout, stderr):
        assert "INTERNALERROR" not in text and "Traceback" not in text, text
    after_signal = stderr.split(f"[{len(HONEST)}/4]", 1)[1].splitlines()[1:]
    assert len(after_signal) == 1, after_signal  # one line, and it says what was kept
    assert "stopped by Ctrl-C: 1 of 4 submissions graded" in after_signal[0]
    assert "run the same command again" in after_signal[0]
    # No worker, sandbox or runtime of the batch is left (a reused pid has another start).
    gone_by = time.monotonic() + 10  # a SIGKILLed process takes a moment to exit
    left = list(seen)
    while left and time.monotonic() < gone_by:
        time.sleep(0.2)
        left = [pid for pid, started in seen.items() if _started(pid) == started]
    assert not left, f"processes of the batch still running: {_commands(left)}"

    with open_gradebook(db, create=False) as gradebook:
        recorded = {row.student_id for row in gradebook.latest("mlp_numpy")}
    assert set(HONEST) <= recorded, recorded
    assert "b_slow" not in recorded and not recorded & set(AFTER), recorded
    for name in HONEST:
        assert (out / name / "results.json").is_file()

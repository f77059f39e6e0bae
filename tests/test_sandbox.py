"""The sandbox holds against issue 9's attacks: plants, privileges, a full disk, endless time.

Every case runs a hostile submission from tests/hostile/ in the real sandbox, with small
limits so the file runs in seconds.
"""

from __future__ import annotations

import errno
import os
import platform
import shutil
import struct
from pathlib import Path

import pytest

from grader.runtime import (
    SandboxError,
    SandboxLimits,
    StudentCrashed,
    StudentError,
    StudentRuntime,
    TimeBudgetExhausted,
)
from grader.runtime.errors import TIME_BUDGET_EXHAUSTED
from grader.runtime.process import process_tree
from grader.runtime.sandbox import bwrap_usable, fallback_usable
from grader.runtime.seccomp import DENIED_SYSCALLS, filter_bpf

HOSTILE = Path(__file__).parent / "hostile"
LIMITS = SandboxLimits(call_timeout_s=20, import_timeout_s=20, memory_mb=1024,
                       max_processes=48, file_size_mb=8, workspace_mb=16, workspace_files=500,
                       tmp_size_mb=16, cpu_seconds=60, watchdog_interval_s=0.05)
requires_bwrap = pytest.mark.skipif(not bwrap_usable(), reason="bubblewrap cannot run here")
PLANTS = ("json", "resource", "site", "sitecustomize", "usercustomize", "shutil", "csv")


def runtime_over(tmp_path: Path, *names: str, limits: SandboxLimits = LIMITS,
                 extra: dict[str, str] | None = None, use_bwrap: bool = True) -> StudentRuntime:
    """A runtime over copies of hostile modules and ``extra`` files (name -> text)."""
    workspace = tmp_path / "ws"
    workspace.mkdir(exist_ok=True)
    for name in names:
        shutil.copy(HOSTILE / f"{name}.py", workspace / f"{name}.py")
    for name, text in (extra or {}).items():
        (workspace / name).parent.mkdir(parents=True, exist_ok=True)
        (workspace / name).write_text(text)
    (workspace / "good.py").write_text("def ok():\n    return 1\n")
    return StudentRuntime(workspace, [*names, "good"], limits=limits, use_bwrap=use_bwrap)


@requires_bwrap
def test_planted_standard_library_modules_are_never_imported(tmp_path: Path) -> None:
    """Issue 9, item 1: plants shipped in the submission, and plants written before a crash."""
    plant = 'print("PLANTED " + __name__, flush=True)\nopen("/tmp/PLANTED", "w").close()\n'
    shipped = {f"{name}.py": plant for name in PLANTS} | {"encodings/__init__.py": plant}
    with runtime_over(tmp_path, "planter", extra=shipped) as runtime:
        planter = runtime.student.planter
        first = planter.view()
        assert "json.py" in first["workspace"] and "PLANTED" not in first["tmp"]
        with pytest.raises(StudentCrashed, match="exited with code 3"):
            planter.plant_and_crash()
        view = planter.view()  # a fresh runtime: the boot ran again
        for name in ("json", "csv", "shutil", "codecs", "decimal", "traceback"):
            assert not planter.where(name).startswith("/submission"), name
        assert "PLANTED" not in view["tmp"] and view["cwd"] == "/submission"
        assert not any(path in ("", ".", "/submission") for path in view["path"])
        assert runtime.ping()["uid"] != 0
        assert "PLANTED" not in runtime.output()


def _host_uids(runtime: StudentRuntime) -> list[int]:
    """Real, effective and saved uids (host view) of the runtime's Python processes."""
    uids = []
    for pid in process_tree(runtime._process.popen.pid):
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        if b"boot.py" in cmdline and not cmdline.startswith(b"/usr/bin/bwrap"):
            line = next(text for text in Path(f"/proc/{pid}/status").read_text().splitlines()
                        if text.startswith("Uid:"))
            uids += [int(uid) for uid in line.split()[1:]]
    return uids


@requires_bwrap
def test_the_runtime_has_no_privileges(tmp_path: Path) -> None:
    with runtime_over(tmp_path, "privileges") as runtime:
        privileges = runtime.student.privileges
        status = privileges.status()
        assert int(status["CapEff"], 16) == 0 and int(status["CapPrm"], 16) == 0, status
        assert int(status["CapAmb"], 16) == 0 and status["NoNewPrivs"] == "1"
        assert status["Seccomp"] == "2"  # a filter is installed
        assert "0" not in status["Uid"].split(), status
        host = _host_uids(runtime)
        assert host and 0 not in host, f"the host sees the runtime as uids {host}"
        for name in ("name_to_handle_at", "open_by_handle_at", "ptrace", "mount", "keyctl",
                     "bpf", "userfaultfd", "perf_event_open"):
            assert privileges.errno_of(name) == errno.EPERM, name
        isolation = runtime._process.command.isolation
        assert isolation in ("userns", "setuid")
        assert (isolation == "setuid") == any("no user namespace" in n for n in runtime.notes)


def test_fallback_never_runs_student_code_as_root(tmp_path: Path) -> None:
    runtime = runtime_over(tmp_path, use_bwrap=False)
    if fallback_usable():
        with runtime:
            assert runtime.ping()["uid"] != 0
            assert any("no bubblewrap" in note for note in runtime.notes)
    else:
        with pytest.raises(SandboxError, match="student code would run as root"):
            runtime.start()
        runtime.close()


@requires_bwrap
def test_a_full_workspace_fails_with_a_clear_message(tmp_path: Path) -> None:
    with runtime_over(tmp_path, "disk") as runtime:
        with pytest.raises(StudentError, match=r"No space left on device.*the workspace is "
                                               r"full: limit 16 MB / 500 files"):
            runtime.student.disk.fill(64)
        with pytest.raises(StudentCrashed, match=r"the workspace is full: limit 16 MB / 500 "
                                                 r"files .*created more than 500 files"):
            runtime.student.disk.many_files(200_000)
        assert runtime.student.good.ok() == 1  # a fresh, empty workspace
    assert sorted(p.name for p in (tmp_path / "ws").iterdir()) == ["disk.py", "good.py"]


@requires_bwrap
def test_the_time_budget_bounds_a_whole_submission(tmp_path: Path) -> None:
    limits = SandboxLimits(call_timeout_s=3, import_timeout_s=20, total_time_s=5,
                           memory_mb=1024, cpu_seconds=60)
    with runtime_over(tmp_path, "spin", limits=limits) as runtime:
        runtime.start()
        with pytest.raises(Exception) as first:
            runtime.student.spin.spin()
        assert type(first.value).__name__ == "StudentTimeout"  # the call's own limit
        with pytest.raises(TimeBudgetExhausted) as second:
            runtime.student.spin.spin()  # cut short by the time left
        assert "was stopped when the budget ran out" in str(second.value)
        with pytest.raises(TimeBudgetExhausted) as third:
            runtime.student.good.ok()
        assert str(third.value).startswith(TIME_BUDGET_EXHAUSTED)
        assert "total time budget of 5 s" in str(third.value) and "was not run" in str(third.value)
        assert third.value.kind == "time_budget"
        assert runtime.time_left_s <= 0 and runtime._spent_s < limits.total_time_s + 2


def _instructions(program: bytes) -> list[tuple[int, int, int, int]]:
    """A classic BPF program as (code, jt, jf, k) tuples."""
    assert len(program) % 8 == 0
    return [struct.unpack("<HBBI", program[i:i + 8]) for i in range(0, len(program), 8)]


def test_the_seccomp_filter_checks_the_architecture_and_denies_the_listed_calls() -> None:
    pytest.importorskip("pyseccomp")
    program = _instructions(filter_bpf())
    bpf_ld_w_abs, bpf_jeq_k, bpf_ret_k = 0x20, 0x15, 0x06
    assert program[0] == (bpf_ld_w_abs, 0, 0, 4)  # first: load seccomp_data.arch
    arch = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}[platform.machine()]
    compared = {k for code, _jt, _jf, k in program if code == bpf_jeq_k}
    assert arch in compared
    returns = {k for code, _jt, _jf, k in program if code == bpf_ret_k}
    seccomp_ret_errno, seccomp_ret_allow = 0x00050000, 0x7FFF0000
    assert seccomp_ret_errno | errno.EPERM in returns and seccomp_ret_allow in returns
    numbers = {"x86_64": {"open_by_handle_at": 304, "name_to_handle_at": 303, "ptrace": 101,
                          "mount": 165, "keyctl": 250, "bpf": 321, "userfaultfd": 323,
                          "perf_event_open": 298},
               "aarch64": {"open_by_handle_at": 265, "name_to_handle_at": 264, "ptrace": 117,
                           "mount": 40, "keyctl": 219, "bpf": 280, "userfaultfd": 282,
                           "perf_event_open": 241}}[platform.machine()]
    for name, number in numbers.items():
        assert name in DENIED_SYSCALLS and number in compared, name


def test_the_boot_script_imports_nothing_before_it_drops(tmp_path: Path) -> None:
    """Its only imports before the drop are os and sys, which the interpreter loaded."""
    source = (Path(__file__).parents[1] / "grader" / "runtime" / "boot.py").read_text()
    head = source[:source.index("def main(")]
    imports = [line.strip() for line in head.splitlines()
               if line.startswith(("import ", "from "))]
    assert imports == ["import os", "import sys"]
    main = source[source.index("def main("):]
    assert main.index("drop_privileges(") < main.index("import json")
    assert os.path.basename(__file__) == "test_sandbox.py"


GRADING_REPO = Path(__file__).parent / "files" / "grading" / "repo"
ENDLESS_ACT = ("def relu(x):\n    while True:\n        pass\n\n\n"
               "def sigmoid(x):\n    while True:\n        pass\n")


@requires_bwrap
def test_grading_an_endless_loop_costs_the_budget_and_names_it(tmp_path: Path) -> None:
    """Through grade_path: the first call that loops times out at its own limit, the next is
    cut at the time left, and every later one fails at once: the submission costs its
    budget (4 s), not a call timeout per test."""
    from grader.config import load_assignment
    from grader.grading.run import grade_path

    course = tmp_path / "course"
    shutil.copytree(GRADING_REPO, course)
    toml = course / "assignments" / "act" / "assignment.toml"
    toml.write_text(toml.read_text().replace("call_timeout_s = 5",
                                             "call_timeout_s = 3\ntotal_time_s = 4"))
    submission = tmp_path / "act.py"
    submission.write_text(ENDLESS_ACT)
    graded = grade_path(load_assignment(toml), submission)
    outcomes = {o.case: o for part in graded.grade.parts for o in part.tests}
    messages = [o.message for o in outcomes.values()]
    assert graded.grade.score == 0 and len(outcomes) >= 4
    assert sum("did not finish within 3 s" in m for m in messages) == 1
    budget = [m for m in messages if TIME_BUDGET_EXHAUSTED in m]
    assert len(budget) == len(messages) - 1, messages
    assert all("TimeBudgetExhausted" in m and "total time budget of 4 s" in m for m in budget)


@requires_bwrap
def test_a_missing_protection_is_said_once_per_process(tmp_path: Path, monkeypatch,
                                                       recwarn) -> None:
    """Two runtimes missing the seccomp filter: one line on stderr, a note in each."""
    import grader.runtime.sandbox as sandbox
    import grader.runtime.student as student
    from grader.runtime.seccomp import SeccompUnavailable

    def no_libseccomp() -> int:
        raise SeccompUnavailable("libseccomp is not installed")

    monkeypatch.setattr(student, "filter_fd", no_libseccomp)
    monkeypatch.setattr(sandbox, "_WARNED", set())  # as in a fresh grader process
    notes = []
    for name in ("first", "second"):
        (tmp_path / name).mkdir()
        with runtime_over(tmp_path / name) as runtime:
            assert runtime.student.good.ok() == 1
            notes.append([note for note in runtime.notes if "no seccomp filter" in note])
    assert all(len(found) == 1 for found in notes), notes
    said = [w for w in recwarn.list if "no seccomp filter" in str(w.message)]
    assert len(said) == 1 and said[0].category is RuntimeWarning, [str(w.message) for w in said]

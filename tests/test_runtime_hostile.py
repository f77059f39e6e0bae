"""Hostile submissions are contained with a clear reason; the grader is unaffected.

Each case uses small limits so the whole file runs in seconds. After every
crash, the same StudentRuntime answers the next call from a fresh process.
"""

from __future__ import annotations

import os
import resource
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from grader.runtime import (
    HandleProxy,
    ImportFailed,
    ProtocolViolation,
    SandboxLimits,
    StudentCrashed,
    StudentError,
    StudentRuntime,
    StudentTimeout,
)
from grader.runtime.process import process_tree
from grader.runtime.sandbox import bwrap_usable, fallback_usable

HOSTILE = Path(__file__).parent / "hostile"
REPO = Path(__file__).resolve().parents[1]
LABELS = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"
LIMITS = SandboxLimits(call_timeout_s=1.5, import_timeout_s=3, memory_mb=1024,
                       max_processes=48, file_size_mb=8, output_limit_mb=4,
                       output_keep_kb=4, cpu_seconds=60, watchdog_interval_s=0.05)
requires_bwrap = pytest.mark.skipif(not bwrap_usable(), reason="bubblewrap cannot run here")


@pytest.fixture(params=["bwrap", "fallback"])
def sandbox_kind(request: pytest.FixtureRequest) -> str:
    if request.param == "bwrap" and not bwrap_usable():
        pytest.skip("bubblewrap cannot run here")
    if request.param == "fallback" and not fallback_usable():
        pytest.skip("the grader is root and no other uid reaches the interpreter: the "
                    "fallback refuses to run student code "
                    "(test_sandbox.py::test_fallback_never_runs_student_code_as_root)")
    return request.param


def open_runtime(tmp_path: Path, *names: str, kind: str = "bwrap",
                 limits: SandboxLimits = LIMITS) -> StudentRuntime:
    """A runtime over copies of hostile modules plus a well-behaved ``good`` module."""
    workspace = tmp_path / "ws"
    workspace.mkdir(exist_ok=True)
    for name in names:
        shutil.copy(HOSTILE / f"{name}.py", workspace / f"{name}.py")
    (workspace / "good.py").write_text("def ok():\n    return 1\n")
    return StudentRuntime(workspace, [*names, "good"], limits=limits,
                          use_bwrap=kind == "bwrap")


def _peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM) since the last reset."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.fixture
def grader_memory() -> Iterator[None]:
    """Fails the test if the grader's own peak memory grows by more than 500 MB in it.

    The peak is reset first (Linux: writing 5 to clear_refs), so memory that earlier
    tests in the same session used (TensorFlow, the dataset) does not count.
    """
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    current = _peak_rss_mb()
    yield
    grown = _peak_rss_mb() - current
    assert grown < 500, (f"the grader's own peak memory grew by {grown:.0f} MB "
                         f"(peak before the test: {before:.0f} MB)")


def test_sys_exit_and_os_exit_inside_calls(tmp_path: Path, sandbox_kind: str) -> None:
    with open_runtime(tmp_path, "exits", kind=sandbox_kind) as runtime:
        student = runtime.student.exits
        with pytest.raises(StudentCrashed, match=r"called sys.exit\(0\)"):
            student.quit_politely()
        assert student.ok() == 1
        with pytest.raises(StudentCrashed, match="exited with code 3") as info:
            student.quit_hard()
        assert info.value.exit_code == 3
        assert student.ok() == 1 and runtime.student.good.ok() == 1


@pytest.mark.parametrize(("module", "reason"), [
    ("exit_at_import", r"called sys.exit\(0\) while being imported"),
    ("os_exit_at_import", "exited with code 3"),
    ("loop_at_import", "did not finish within 3 s"),
])
def test_leaving_or_hanging_at_import_fails_only_that_module(
        tmp_path: Path, module: str, reason: str) -> None:
    with open_runtime(tmp_path, module) as runtime:
        with pytest.raises(ImportFailed, match=reason):
            getattr(runtime.student, module)
        assert runtime.student.good.ok() == 1


def test_endless_loop_times_out_even_when_sigterm_is_ignored(
        tmp_path: Path, sandbox_kind: str) -> None:
    with open_runtime(tmp_path, "spin", kind=sandbox_kind) as runtime:
        with pytest.raises(StudentTimeout, match="within 1.5 s") as info:
            runtime.student.spin.spin_ignoring_sigterm()
        assert info.value.limit_s == 1.5
        with pytest.raises(StudentTimeout):
            runtime.student.spin.spin()
        assert runtime.student.good.ok() == 1
        assert len(runtime.crashes) == 2


def test_cpu_time_limit_kills_even_if_sigxcpu_is_ignored(tmp_path: Path) -> None:
    limits = SandboxLimits(cpu_seconds=1, call_timeout_s=20)
    with open_runtime(tmp_path, "cpu_burner", limits=limits) as runtime:
        with pytest.raises(StudentCrashed, match="CPU time limit of 1 s"):
            runtime.student.cpu_burner.burn()


def test_memory_bomb_is_killed_by_the_watchdog(
        tmp_path: Path, sandbox_kind: str, grader_memory: None) -> None:
    # Page faults run at a few hundred MB/s here: a low limit keeps the test quick.
    limits = SandboxLimits(memory_mb=256, call_timeout_s=8, watchdog_interval_s=0.05)
    with open_runtime(tmp_path, "memory_bomb", kind=sandbox_kind, limits=limits) as runtime:
        with pytest.raises(StudentCrashed, match="memory limit 256 MB exceeded"):
            runtime.student.memory_bomb.allocate(8)
        assert runtime.student.memory_bomb.allocate(0.01) > 0


def test_memory_bomb_fails_at_once_under_an_address_space_limit(tmp_path: Path) -> None:
    limits = SandboxLimits(address_space_mb=1536, memory_mb=1024, call_timeout_s=5)
    with open_runtime(tmp_path, "memory_bomb", limits=limits) as runtime:
        with pytest.raises(StudentError, match=r"memory limit 1536 MB") as info:
            runtime.student.memory_bomb.allocate(8)
        assert info.value.type_name.endswith("MemoryError")  # numpy's _ArrayMemoryError
        assert runtime.student.memory_bomb.allocate(0.01) > 0  # the same process survived


def _processes_of(uid: int) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


@requires_bwrap
@pytest.mark.skipif(os.geteuid() != 0, reason="a per-runtime uid needs a root grader")
def test_fork_bomb_is_capped_and_every_process_dies(tmp_path: Path) -> None:
    limits = SandboxLimits(max_processes=24, call_timeout_s=2, memory_mb=1024)
    with open_runtime(tmp_path, "fork_bomb", limits=limits) as runtime:
        uid = runtime.sandbox_uid[0]
        result = runtime.student.fork_bomb.fork_bomb()
        assert result["error"] == "BlockingIOError" and result["made"] < 24
        # In a user namespace bubblewrap's own two processes run as the sandbox uid too.
        monitors = 2 if runtime._process.command.isolation == "userns" else 0
        assert 0 < len(_processes_of(uid)) <= 24 + monitors
    assert [pid for pid in _processes_of(uid) if not _dead(pid)] == []


def test_huge_file_hits_the_file_size_limit(tmp_path: Path, sandbox_kind: str) -> None:
    with open_runtime(tmp_path, "big_file", kind=sandbox_kind) as runtime:
        with pytest.raises(StudentError, match="File too large.*file size limit 8 MB"):
            runtime.student.big_file.write_big(64)
    assert not (tmp_path / "ws" / "big.bin").exists()  # the runtime writes to its own copy


@requires_bwrap
@pytest.mark.parametrize("path", [
    LABELS, str(REPO / "pyproject.toml"), str(REPO / "reference" / "mlp_numpy.py"),
    str(REPO / "grader" / "runtime" / "student.py"), "/etc/shadow",
])
def test_grader_files_are_invisible(tmp_path: Path, path: str) -> None:
    with open_runtime(tmp_path, "snoop") as runtime:
        with pytest.raises(StudentError) as info:
            runtime.student.snoop.read_head(path)
        assert info.value.type_name in ("FileNotFoundError", "PermissionError")


@requires_bwrap
def test_repository_and_datasets_directories_are_not_there(tmp_path: Path) -> None:
    with open_runtime(tmp_path, "snoop") as runtime:
        for path in (REPO / "autograde_tests", REPO / "reference", REPO / "grader"):
            with pytest.raises(StudentError, match="FileNotFoundError"):
                runtime.student.snoop.listdir(str(path))
        if os.path.isdir("/usr/share/datasets"):  # covered by an empty tmpfs
            assert runtime.student.snoop.listdir("/usr/share/datasets") == []
        assert runtime.student.snoop.listdir("/opt/nn-grader-runtime/grader/runtime") == \
            ["__init__.py", "boot.py", "callables.py", "gpu_memory.py", "protocol.py",
             "server.py"]


@requires_bwrap
def test_network_is_unreachable(tmp_path: Path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    try:
        with open_runtime(tmp_path, "snoop") as runtime:
            with pytest.raises(StudentError) as info:
                runtime.student.snoop.connect(listener.getsockname()[1])
            assert info.value.type_name in ("ConnectionRefusedError", "OSError")
    finally:
        listener.close()


def test_monkeypatching_numpy_stays_in_the_runtime(tmp_path: Path) -> None:
    with open_runtime(tmp_path, "liar") as runtime:
        assert runtime.student.liar.patch_numpy() == 42
    assert np.sum([1, 2]) == 3 and not np.allclose(1.0, 2.0)


def test_lying_objects_never_become_grader_values(tmp_path: Path) -> None:
    with open_runtime(tmp_path, "liar") as runtime:
        liar = runtime.student.liar
        equal = liar.always_equal()
        assert isinstance(equal, HandleProxy) and (equal == True) is False  # noqa: E712
        assert (equal == 1) is False and equal != object()
        assert isinstance(liar.list_like(), HandleProxy)
        with pytest.raises(ProtocolViolation, match="dtype object"):
            np.asarray(liar.lying_array())
        fake = np.asarray(liar.fake_array())
        assert type(fake) is np.ndarray and fake.tolist() == [1.0, 2.0]
        assert liar.list_like() is not None and runtime.student.good.ok() == 1


@pytest.mark.parametrize(("function", "message"), [
    ("object_array", "dtype object"), ("structured_array", "dtype"),
    ("string_array", "dtype <U1"), ("deep", "deeper than"),
])
def test_values_that_may_not_cross_are_refused(
        tmp_path: Path, function: str, message: str) -> None:
    with open_runtime(tmp_path, "liar") as runtime:
        with pytest.raises(ProtocolViolation, match=message):
            getattr(runtime.student.liar, function)()
        assert runtime.student.good.ok() == 1


def test_oversized_answer_is_refused(tmp_path: Path, grader_memory: None) -> None:
    limits = SandboxLimits(max_message_mb=1, call_timeout_s=10)
    with open_runtime(tmp_path, "liar", limits=limits) as runtime:
        with pytest.raises(ProtocolViolation, match="over the limit|exceeds"):
            runtime.student.liar.huge_list(400_000)
        assert len(runtime.student.liar.huge_list(10)) == 10


def test_output_flood_is_capped_and_killed(
        tmp_path: Path, sandbox_kind: str, grader_memory: None) -> None:
    limits = SandboxLimits(output_limit_mb=4, output_keep_kb=4, call_timeout_s=30)
    with open_runtime(tmp_path, "flood", kind=sandbox_kind, limits=limits) as runtime:
        with pytest.raises(StudentCrashed, match="output limit exceeded"):
            runtime.student.flood.flood(100)
        output = runtime.output()
        assert len(output) < 20_000 and "bytes of output omitted" in output
        assert runtime.student.flood.chatty(3) == 3
        assert runtime.output().endswith("line 2\n")


def test_moderate_output_is_kept_head_and_tail(tmp_path: Path) -> None:
    with open_runtime(tmp_path, "flood") as runtime:
        assert runtime.student.flood.chatty(5000) == 5000
        output = runtime.output()
    assert output.startswith("line 0\n") and output.endswith("line 4999\n")
    assert "omitted" in output and len(output) < 10_000


def test_no_runtime_process_outlives_close(tmp_path: Path) -> None:
    runtime = open_runtime(tmp_path, "spin")
    runtime.start()
    root = runtime._process.popen.pid
    tree = process_tree(root)
    runtime.close()
    assert all(_dead(pid) for pid in tree)


def _dead(pid: int) -> bool:
    """Gone, or a zombie waiting for init to reap it (it holds no memory and runs nothing)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


@requires_bwrap
@pytest.mark.parametrize(("call", "args", "message"), [
    ("forge_header", (64,), "message header of 67108864 bytes exceeds the limit of 1048576"),
    ("forge_frames", (3, 60), "exceeds the limit of 67108864 bytes"),
])
def test_forged_replies_are_refused_before_they_are_read(
        tmp_path: Path, grader_memory: None, call: str, args: tuple, message: str) -> None:
    """Issue 9, item 7: a forged 64 MB header grew the grader to 2.3 GB."""
    limits = SandboxLimits(max_message_mb=64, call_timeout_s=20)
    with open_runtime(tmp_path, "forger", limits=limits) as runtime:
        with pytest.raises(ProtocolViolation, match=message) as info:
            getattr(runtime.student.forger, call)(*args)
        assert "the runtime was stopped" in str(info.value)
        assert "max_message_mb = 64" in str(info.value)
        assert runtime.student.good.ok() == 1  # a fresh runtime answers the next call

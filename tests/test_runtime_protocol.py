"""The wire format and the sandbox command line (pure: no runtime is started)."""

from __future__ import annotations

import io
import os
import threading

import numpy as np
import pytest

from grader.runtime import protocol
from grader.runtime.sandbox import (
    GpuAssignment,
    SandboxLimits,
    SandboxPaths,
    build_command,
    interpreter_flags,
)


def _refuse(value: object) -> dict:
    raise AssertionError(f"not plain: {value!r}")


def _roundtrip(value: object) -> object:
    frames: list[bytes] = []
    tree = protocol.encode_value(value, frames, _refuse)
    return protocol.decode_value(tree, frames, _refuse)


@pytest.mark.parametrize("dtype", ["float64", "float32", "int8", "uint16", "int64", "bool",
                                   "complex64", "float16"])
@pytest.mark.parametrize("shape", [(), (0,), (3,), (2, 3, 4)])
def test_arrays_round_trip(dtype: str, shape: tuple[int, ...]) -> None:
    array = (np.arange(int(np.prod(shape))) % 3).reshape(shape).astype(dtype)
    back = _roundtrip(array)
    assert type(back) is np.ndarray and back.dtype == array.dtype and back.shape == shape
    np.testing.assert_array_equal(back, array)


def test_nested_plain_data_round_trips() -> None:
    value = {"a": [1, 2.5, None, True, "s", (3, [4])], "b": {"c": np.float32(1.5)},
             "z": complex(1, -2), "nan": float("inf")}
    back = _roundtrip(value)
    assert back == {"a": [1, 2.5, None, True, "s", (3, [4])], "b": {"c": 1.5},
                    "z": complex(1, -2), "nan": float("inf")}
    assert type(back["a"][5]) is tuple and type(back["b"]["c"]) is float


def test_subclasses_of_plain_types_are_not_plain() -> None:
    class Sneaky(list):
        pass

    seen: list[object] = []
    protocol.encode_value([Sneaky([1])], [], lambda v: seen.append(v) or {"t": "h", "id": 1})
    assert len(seen) == 1 and type(seen[0]) is Sneaky


@pytest.mark.parametrize("array", [
    np.array([1, "a"], dtype=object),
    np.zeros(2, dtype=[("a", "i4"), ("b", "f8")]),
    np.array(["a", "b"]),
    np.array([b"x"]),
    np.array(["2020-01-01"], dtype="datetime64[D]"),
])
def test_non_numeric_arrays_are_refused_on_encode(array: np.ndarray) -> None:
    with pytest.raises(protocol.ProtocolError, match="dtype"):
        protocol.array_to_npy(array)


def test_crafted_object_npy_is_refused_before_loading() -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(protocol.ProtocolError, match="dtype object"):
        protocol.npy_to_array(buffer.getvalue())


def test_non_str_dict_keys_and_deep_nesting_are_refused() -> None:
    with pytest.raises(protocol.ProtocolError, match="not a str"):
        protocol.encode_value({1: 2}, [], _refuse)
    deep: list = []
    for _ in range(200):
        deep = [deep]
    with pytest.raises(protocol.ProtocolError, match="deeper"):
        protocol.encode_value(deep, [], _refuse)


def test_unknown_tags_are_refused() -> None:
    with pytest.raises(protocol.ProtocolError):
        protocol.decode_value({"t": "pickle", "v": "..."}, [], _refuse)
    with pytest.raises(protocol.ProtocolError):
        protocol.decode_value([1, 2], [], _refuse)


def test_message_round_trip_over_a_pipe() -> None:
    read_fd, write_fd = os.pipe()
    frames: list[bytes] = []
    tree = protocol.encode_value({"x": np.ones((300, 300))}, frames, _refuse)
    writer = threading.Thread(target=protocol.write_message,
                              args=(write_fd, {"ok": True, "v": tree}, frames))
    writer.start()
    header, got = protocol.read_message(read_fd, max_bytes=10 << 20)
    writer.join()
    value = protocol.decode_value(header["v"], got, _refuse)
    np.testing.assert_array_equal(value["x"], np.ones((300, 300)))
    os.close(read_fd)
    os.close(write_fd)


def test_oversized_message_is_refused_before_reading_it() -> None:
    read_fd, write_fd = os.pipe()
    pieces = protocol.pack_message({"ok": True}, [b"\0" * 10])
    header = pieces[1].replace(b"[10]", b"[99999999999]")
    os.write(write_fd, protocol._PREFIX.pack(protocol.MAGIC, len(header)) + header)
    with pytest.raises(protocol.ProtocolError, match="exceeds the limit"):
        protocol.read_message(read_fd, max_bytes=1 << 20)
    os.close(read_fd)
    os.close(write_fd)


def test_read_times_out() -> None:
    import time

    read_fd, write_fd = os.pipe()
    with pytest.raises(protocol.ChannelTimeout):
        protocol.read_message(read_fd, max_bytes=100, deadline=time.monotonic() + 0.05)
    os.close(read_fd)
    os.close(write_fd)


PATHS = SandboxPaths(python="/venv/bin/python", python_roots=("/venv", "/opt/py"),
                     runtime_code="/tmp/staged", workspace="/work/ws1", bwrap="/usr/bin/bwrap")


def _pairs(argv: tuple[str, ...], flag: str) -> list[tuple[str, str]]:
    return [(argv[i + 1], argv[i + 2]) for i, a in enumerate(argv) if a == flag]


def _server(argv: tuple[str, ...]) -> tuple[str, ...]:
    return argv[argv.index("--") + 1:] if "--" in argv else argv


def test_bwrap_command_shape_as_root_without_a_user_namespace() -> None:
    command = build_command(SandboxLimits(), PATHS, request_fd=5, response_fd=8, use_bwrap=True,
                            sandbox_uid=(200001, 200001), userns=False, seccomp_fd=11)
    argv = command.argv
    assert argv[0] == "/usr/bin/bwrap" and "--unshare-net" in argv and "--die-with-parent" in argv
    assert "--new-session" in argv and _pairs(argv, "--bind") == []  # nothing host-writable
    assert argv[argv.index("--cap-drop") + 1] == "ALL"
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--cap-add"] == [
        "CAP_SETUID", "CAP_SETGID"]
    assert argv[argv.index("--seccomp") + 1] == "11" and command.pass_fds == (11,)
    ro = _pairs(argv, "--ro-bind")
    assert ("/venv", "/venv") in ro and ("/tmp/staged", "/opt/nn-grader-runtime") in ro
    assert ("/work/ws1", "/opt/nn-grader-input") in ro
    assert not any("/work/main" in a or "datasets" in a for a in argv)
    tmpfs = [argv[i + 1] for i, a in enumerate(argv) if a == "--tmpfs"]
    assert tmpfs == ["/tmp", "/submission"] and "/dev/nvidiactl" not in argv
    sizes = [int(argv[i + 1]) for i, a in enumerate(argv) if a == "--size"]
    assert sizes == [512 << 20, 256 << 20]
    assert argv[argv.index("--chdir") + 1] == "/opt/nn-grader-runtime"
    assert command.env["CUDA_VISIBLE_DEVICES"] == ""
    assert not any(key.startswith("PYTHON") for key in command.env)  # -I ignores them anyway
    server = _server(argv)
    assert server[:5] == ("/venv/bin/python", *interpreter_flags(),
                          "/opt/nn-grader-runtime/grader/runtime/boot.py")[:5]
    assert "-I" in server and server[server.index("-I") + 1:].count("-m") == 0
    boot = server.index("/opt/nn-grader-runtime/grader/runtime/boot.py")
    assert server[boot + 1:boot + 4] == ("/opt/nn-grader-runtime", "200001", "200001")
    config = protocol.json.loads(argv[-1])
    assert config["workspace"] == "/submission" and "drop_to" not in config
    assert config["workspace_source"] == "/opt/nn-grader-input"
    assert config["rlimits"]["RLIMIT_NPROC"] == [256, 256] and "RLIMIT_AS" not in config["rlimits"]
    assert (config["request_fd"], config["response_fd"]) == (5, 8)
    assert command.isolation == "setuid" and command.run_as is None
    assert any("no user namespace" in note for note in command.notes)


def test_bwrap_command_shape_as_root_in_a_user_namespace() -> None:
    """bwrap itself runs as the sandbox uid: nothing in the sandbox is ever root."""
    command = build_command(SandboxLimits(), PATHS, request_fd=5, response_fd=8, use_bwrap=True,
                            sandbox_uid=(200001, 200001), userns=True, seccomp_fd=11)
    argv = command.argv
    assert "--unshare-user" in argv and "--disable-userns" in argv and "--cap-add" not in argv
    assert argv[argv.index("--cap-drop") + 1] == "ALL" and "--new-session" in argv
    assert command.run_as == (200001, 200001) and command.isolation == "userns"
    server = _server(argv)
    boot = server.index("/opt/nn-grader-runtime/grader/runtime/boot.py")
    assert server[boot + 2:boot + 4] == ("-", "-")  # nothing to drop
    assert config_notes(command) == []


def config_notes(command) -> list[str]:
    return [note for note in command.notes if "RLIMIT_NPROC" not in note]


def test_missing_protections_are_noted() -> None:
    command = build_command(SandboxLimits(), PATHS, request_fd=5, response_fd=8, use_bwrap=True,
                            sandbox_uid=None, seccomp_fd=None)
    assert "--seccomp" not in command.argv and "--unshare-user" in command.argv
    assert any("no seccomp filter" in note for note in command.notes)
    assert any("RLIMIT_NPROC" in note for note in command.notes)


def test_gpu_assignment_binds_devices_and_sets_growth() -> None:
    gpu = GpuAssignment("1", ("/dev/nvidia1", "/dev/nvidiactl"))
    command = build_command(SandboxLimits(address_space_mb=900), PATHS, request_fd=5,
                            response_fd=8, use_bwrap=True, sandbox_uid=None, gpu=gpu)
    assert ("/dev/nvidia1", "/dev/nvidia1") in _pairs(command.argv, "--dev-bind-try")
    assert ("/sys", "/sys") in _pairs(command.argv, "--ro-bind")
    assert command.env["CUDA_VISIBLE_DEVICES"] == "1"
    assert command.env["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"
    config = protocol.json.loads(command.argv[-1])
    assert config["rlimits"]["RLIMIT_AS"] == [900 << 20] * 2
    assert "RLIMIT_NPROC" not in config["rlimits"] and "--unshare-all" in command.argv


def test_fallback_command_runs_the_server_directly() -> None:
    command = build_command(SandboxLimits(), PATHS, request_fd=5, response_fd=8,
                            use_bwrap=False, sandbox_uid=(200001, 200001))
    assert command.argv[:2] == ("/venv/bin/python", "-I")
    assert command.argv[len(interpreter_flags()) + 1] == "/tmp/staged/grader/runtime/boot.py"
    assert command.cwd == "/tmp/staged" and "PYTHONPATH" not in command.env
    assert not command.uses_bwrap and command.run_as == (200001, 200001)  # Popen's user
    assert any("no bubblewrap" in note for note in command.notes)


def test_a_python_under_tmp_is_bound_over_the_private_tmp() -> None:
    """A checkout in /tmp (as CI's) has its venv there: the tmpfs must not hide it."""
    paths = SandboxPaths(python="/tmp/ci/.venv/bin/python", python_roots=("/tmp/ci/.venv",),
                         runtime_code="/tmp/staged", workspace="/work/ws1",
                         bwrap="/usr/bin/bwrap")
    argv = build_command(SandboxLimits(), paths, request_fd=5, response_fd=8, use_bwrap=True,
                         sandbox_uid=(200001, 200001)).argv
    tmpfs = argv.index("--tmpfs")
    assert argv[tmpfs + 1] == "/tmp"
    bind = next(i for i, a in enumerate(argv)
                if a == "--ro-bind" and argv[i + 1] == "/tmp/ci/.venv")
    assert tmpfs < bind

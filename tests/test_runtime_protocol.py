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


# -- fuzzing the grader's decoder ------------------------------------------------------------

FUZZ_MAX_BYTES = 1 << 20  # the message cap in the fuzz; the header cap is MAX_HEADER_BYTES


def _grader_resolve(node: dict) -> object:
    """What the grader does with a reference tag: only handles, with an int id."""
    if node.get("t") != "h":
        raise protocol.ProtocolError(f"the runtime may not send {node.get('t')!r} references")
    return (int(node["id"]), str(node.get("type"))[:100])


def _message(header: dict | bytes, frames: list[bytes] = (), declared: int | None = None,
             frame_sizes: list | None = None) -> bytes:
    """A message's bytes; header JSON and the declared sizes may lie."""
    if isinstance(header, dict):
        header = dict(header, frames=frame_sizes if frame_sizes is not None else
                      [len(frame) for frame in frames])
        header = protocol.json.dumps(header).encode()
    size = len(header) if declared is None else declared
    return protocol._PREFIX.pack(protocol.MAGIC, size) + header + b"".join(frames)


def _npy_header(descr: str, shape: str, fortran: bool = False) -> bytes:
    text = f"{{'descr': {descr!r}, 'fortran_order': {fortran}, 'shape': {shape}, }}"
    text += " " * (63 - (10 + len(text)) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text.encode()


def _fuzz_cases(rng: np.random.Generator) -> list[bytes]:
    """Random, truncated, oversized, deep and lying messages."""
    good_frames: list[bytes] = []
    tree = protocol.encode_value({"a": [1, 2.5, "x", None, (3, 4j)],
                                  "w": np.arange(60.0).reshape(6, 10)}, good_frames, _refuse)
    good = _message({"ok": True, "v": tree}, good_frames)
    cases = [good]
    cases += [bytes(rng.integers(0, 256, rng.integers(0, 4096), dtype=np.uint8))
              for _ in range(150)]
    cases += [good[:cut] for cut in rng.integers(0, len(good), 60)]
    flips = []
    for _ in range(150):
        damaged = bytearray(good)
        for position in rng.integers(0, len(good), rng.integers(1, 8)):
            damaged[position] = int(rng.integers(0, 256))
        flips.append(bytes(damaged))
    cases += flips
    cases += [
        protocol._PREFIX.pack(protocol.MAGIC, 64 << 20) + b"{" * 1000,   # the forged 64 MB header
        protocol._PREFIX.pack(protocol.MAGIC, 2**32 - 1),                # the largest declarable
        _message({"ok": True}, frame_sizes=[2**62, 2**62]),              # huge declared frames
        _message({"ok": True}, frame_sizes=[0] * (protocol.MAX_FRAMES + 1)),
        _message({"ok": True}, frame_sizes=[FUZZ_MAX_BYTES // 2] * 3),
        _message({"ok": True}, frame_sizes=[-1]),
        _message({"ok": True}, frame_sizes="nope"),
        _message(b"[" * 200_000 + b"]" * 200_000),                       # deep JSON
        _message(b"[" * 900_000),
        _message(b'{"ok": true, "v": ' + b'{"t":"l","v":[' * 5000 + b"1" + b"]}" * 5000
                 + b', "frames": []}'),                                   # deep tagged value
        _message(b"[" + b"{}," * 300_000 + b"{}]"),                       # many small objects
        _message(b'{"ok": true, "v": [' + b"1.5," * 200_000 + b'1], "frames": []}'),
        _message(b'{"ok": true, "v": "' + b"x" * 900_000 + b'", "frames": []}'),
        _message(b"\xff\xfe not json"),
        _message({"ok": True, "v": {"t": "c", "re": 10**400, "im": 0}}),
        _message({"ok": True, "v": {"t": "h", "id": "abc"}}),
        _message({"ok": True, "v": {"t": "h"}}),
        _message({"ok": True, "v": {"t": "f", "name": "x"}}),
        _message({"ok": True, "v": {"t": "nd", "i": 5}}),
        _message({"ok": True, "v": {"t": "nd", "i": True}}),
        _message({"ok": True, "v": {"t": "d", "k": [1], "v": [2]}}),
        _message({"ok": True, "v": {"t": "d", "k": 5, "v": 5}}),
        _message({"ok": True, "v": {"t": "zz"}}),
        _message({"ok": True, "v": [1, 2]}),
    ]
    npy_frames = [
        _npy_header("<f8", "(1000000000, 1000000000)") + b"\0" * 64,  # shape far beyond data
        _npy_header("<f8", "(4,)") + b"\0" * 8,                         # too little data
        _npy_header("<f8", "(-4,)") + b"\0" * 32,
        _npy_header("|O", "(2,)") + b"\0" * 16,                          # objects: pickles
        _npy_header("<U3", "(2,)") + b"\0" * 24,
        _npy_header("[('a', '<f8')]", "(1,)") + b"\0" * 8,
        _npy_header("<f8", "'x'") + b"\0" * 8,
        _npy_header("<f8", "(" + "1," * 10_000 + ")") + b"\0" * 8,
        b"\x93NUMPY\x02\x00" + (2**31).to_bytes(4, "little") + b"{",     # v2 header length lie
        b"\x93NUMPY\x03\x00\x10\x00\x00\x00{'descr': '<f8'}",
        b"PK\x03\x04" + b"\0" * 60,                                      # a zip (np.load: npz)
        _npy_header("<f8", "(2, 3)", fortran=True) + b"\0" * 47,
    ]
    cases += [_message({"ok": True, "v": {"t": "nd", "i": 0}}, [frame]) for frame in npy_frames]
    return cases


def _decode_from_bytes(data: bytes, tmp: str) -> None:
    with open(tmp, "wb") as handle:
        handle.write(data)
    fd = os.open(tmp, os.O_RDONLY)
    try:
        header, frames = protocol.read_message(fd, max_bytes=FUZZ_MAX_BYTES)
        protocol.decode_value(header.get("v"), frames, _grader_resolve)
    finally:
        os.close(fd)


def test_fuzzed_messages_raise_only_protocol_errors_in_bounded_memory(tmp_path) -> None:
    """Random, truncated, oversized and deep frames: ProtocolError or a value, nothing else.

    The grader's extra memory for any one message stays below 16 MB (tracemalloc's peak;
    measured worst: 7.7 MB, a 0.8 MB header of 200,000 floats;
    the message cap here is 1 MiB and the header cap MAX_HEADER_BYTES = 1 MiB).
    """
    import tracemalloc

    rng = np.random.default_rng(20261201)
    target = str(tmp_path / "message")
    worst = 0
    tracemalloc.start()
    try:
        for index, data in enumerate(_fuzz_cases(rng)):
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            try:
                _decode_from_bytes(data, target)
            except protocol.ProtocolError:
                pass
            except Exception as exc:  # noqa: BLE001 - the point: nothing else may escape
                pytest.fail(f"case {index} ({data[:60]!r}...) raised {type(exc).__name__}: "
                            f"{exc}")
            worst = max(worst, tracemalloc.get_traced_memory()[1] - base)
    finally:
        tracemalloc.stop()
    assert worst < 16 << 20, f"a message cost the decoder {worst / 2**20:.1f} MB"


def test_the_header_cap_refuses_before_reading() -> None:
    read_fd, write_fd = os.pipe()
    os.write(write_fd, protocol._PREFIX.pack(protocol.MAGIC, 64 << 20))
    with pytest.raises(protocol.ProtocolError, match="exceeds the limit of 1048576 bytes"):
        protocol.read_message(read_fd, max_bytes=512 << 20)
    os.close(read_fd)
    os.close(write_fd)


def test_an_array_is_a_view_of_its_frame() -> None:
    frame = bytearray(protocol.array_to_npy(np.arange(1000.0)))
    array = protocol.npy_to_array(frame)
    assert array.base is not None and not array.flags.owndata
    np.testing.assert_array_equal(array, np.arange(1000.0))

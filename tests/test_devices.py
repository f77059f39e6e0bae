"""grader.devices and the sandbox's device arguments for CPU and GPU slots (no GPU needed)."""

from __future__ import annotations

import pytest

from grader import devices
from grader.runtime.sandbox import (
    GPU_MEMORY_ENV,
    GpuAssignment,
    SandboxLimits,
    SandboxPaths,
    build_command,
)

PATHS = SandboxPaths(python="/venv/bin/python", python_roots=("/venv",),
                     runtime_code="/tmp/stage", workspace="/work/ws")


def command(gpu: GpuAssignment | None, *, use_bwrap: bool = True):
    return build_command(SandboxLimits(), PATHS, request_fd=3, response_fd=4,
                         use_bwrap=use_bwrap, sandbox_uid=None, gpu=gpu)


def binds(argv: tuple[str, ...], flag: str) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == flag]


def test_detect_device_env_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(devices.DEVICE_ENV, "GPU")
    assert devices.detect_device() == "gpu"
    monkeypatch.setenv(devices.DEVICE_ENV, "cpu")
    assert devices.detect_device() == "cpu"
    monkeypatch.setenv(devices.DEVICE_ENV, "tpu")
    with pytest.raises(ValueError, match="GRADER_DEVICE='tpu'; expected one of cpu, gpu"):
        devices.detect_device()


def test_detect_device_follows_the_gpus_found(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(devices.DEVICE_ENV, raising=False)
    monkeypatch.setattr(devices, "detect_gpu_ids", lambda: ())
    assert devices.detect_device() == "cpu"
    monkeypatch.setattr(devices, "detect_gpu_ids", lambda: ("0", "1"))
    assert devices.detect_device() == "gpu"


def test_gpu_assignments_round_robin() -> None:
    slots = devices.gpu_assignments(2, ["0", "1"])
    assert [slot.visible_devices for slot in slots] == ["0", "1", "0", "1"]
    assert slots[1].device_files[0] == "/dev/nvidia1"
    assert "/dev/nvidiactl" in slots[1].device_files and "/dev/nvidia-uvm" in slots[1].device_files
    assert "/dev/nvidia0" not in slots[1].device_files  # a runtime sees its own GPU only
    assert devices.gpu_assignments(3, [0])[2].visible_devices == "0"
    with pytest.raises(ValueError, match="at least 1"):
        devices.gpu_assignments(0, ["0"])


def test_default_gpu_on_a_machine_without_one(monkeypatch: pytest.MonkeyPatch) -> None:
    assert devices.default_gpu("cpu") is None
    monkeypatch.setattr(devices, "detect_gpu_ids", lambda: ())
    with pytest.raises(RuntimeError, match="has no NVIDIA GPU"):
        devices.default_gpu("gpu")
    monkeypatch.setattr(devices, "detect_gpu_ids", lambda: ("3",))
    assert devices.default_gpu("gpu").visible_devices == "3"


def test_runtime_env_cpu_growth_and_cap() -> None:
    assert devices.runtime_env(None) == {"CUDA_VISIBLE_DEVICES": ""}
    growth = devices.gpu_assignments(1, ["1"])[0]
    assert devices.runtime_env(growth) == {"CUDA_VISIBLE_DEVICES": "1",
                                           "TF_FORCE_GPU_ALLOW_GROWTH": "true"}
    capped = devices.gpu_assignments(1, ["0"], memory_limit_mb=4096)[0]
    assert devices.runtime_env(capped) == {"CUDA_VISIBLE_DEVICES": "0", GPU_MEMORY_ENV: "4096"}


def test_cpu_runtime_sees_no_gpu_under_bwrap() -> None:
    cmd = command(None)
    assert cmd.env["CUDA_VISIBLE_DEVICES"] == ""
    assert "TF_FORCE_GPU_ALLOW_GROWTH" not in cmd.env
    assert not any("nvidia" in arg for arg in cmd.argv)
    assert "/sys" not in binds(cmd.argv, "--ro-bind")
    assert binds(cmd.argv, "--dev") == ["/dev"]  # a fresh, bare /dev


def test_gpu_runtime_gets_its_device_files_and_sys() -> None:
    gpu = devices.gpu_assignments(2, ["0", "1"])[1]
    cmd = command(gpu)
    assert cmd.env["CUDA_VISIBLE_DEVICES"] == "1"
    assert cmd.env["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"
    bound = binds(cmd.argv, "--dev-bind-try")
    assert bound == list(gpu.device_files)
    assert "/dev/nvidia0" not in bound
    assert "/sys" in binds(cmd.argv, "--ro-bind")
    # The device binds come after the fresh /dev, or they would be hidden by it.
    assert cmd.argv.index("--dev-bind-try") > cmd.argv.index("--dev")
    assert cmd.argv.index("--") > cmd.argv.index("--dev-bind-try")


def test_gpu_env_without_bwrap() -> None:
    cmd = command(devices.gpu_assignments(1, ["0"], memory_limit_mb=2048)[0], use_bwrap=False)
    assert not cmd.uses_bwrap
    assert cmd.env["CUDA_VISIBLE_DEVICES"] == "0" and cmd.env[GPU_MEMORY_ENV] == "2048"
    assert "TF_FORCE_GPU_ALLOW_GROWTH" not in cmd.env

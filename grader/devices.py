"""Which device a submission is graded on, and how GPUs are shared between runtimes.

Budgets (epochs, training images, time limits) depend on the device, so grading
first settles on one: `detect_device` returns ``"gpu"`` when an NVIDIA GPU is
present and ``"cpu"`` otherwise; ``GRADER_DEVICE=cpu|gpu`` overrides it (e.g. to
grade on the CPU of a GPU machine, or to reproduce a GPU grade's budget).

Several runtimes share one GPU. `gpu_assignments` hands out slots round-robin over
the GPUs; each slot's runtime sees only its GPU (``CUDA_VISIBLE_DEVICES``) and grows
its memory as needed (``TF_FORCE_GPU_ALLOW_GROWTH``), or is held to a fixed cap
(``GRADER_GPU_MEMORY_MB``, applied in the runtime with
``tf.config.set_logical_device_configuration`` before any student code runs). Under
bubblewrap only a runtime lent a GPU sees ``/dev/nvidia*`` and ``/sys``
(`grader.runtime.sandbox.build_command`).
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from functools import cache

from grader.config import DEVICES
from grader.runtime.sandbox import GpuAssignment, gpu_env

__all__ = [
    "DEVICES",
    "DEVICE_ENV",
    "NVIDIA_SHARED_FILES",
    "default_gpu",
    "detect_device",
    "detect_gpu_ids",
    "gpu_assignments",
    "runtime_env",
]

DEVICE_ENV = "GRADER_DEVICE"
"""Set to "cpu" or "gpu" to override `detect_device`."""
NVIDIA_SHARED_FILES = ("/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools",
                       "/dev/nvidia-modeset", "/dev/nvidia-caps")
"""Device files every CUDA process needs besides its own ``/dev/nvidia<N>``."""
_NVIDIA_SMI_TIMEOUT_S = 10


def detect_device() -> str:
    """The device to grade on: ``$GRADER_DEVICE`` if set, else "gpu" if one is present.

    Returns:
        "cpu" or "gpu".

    Raises:
        ValueError: If ``GRADER_DEVICE`` holds anything but "cpu" or "gpu".
    """
    chosen = os.environ.get(DEVICE_ENV, "").strip().lower()
    if chosen:
        if chosen not in DEVICES:
            raise ValueError(f"{DEVICE_ENV}={os.environ[DEVICE_ENV]!r}; expected one of "
                             f"{', '.join(DEVICES)}")
        return chosen
    return "gpu" if detect_gpu_ids() else "cpu"


@cache
def detect_gpu_ids() -> tuple[str, ...]:
    """The indices of the NVIDIA GPUs on this machine (checked once per process).

    ``nvidia-smi --query-gpu=index`` when it is installed, else the ``/dev/nvidia<N>``
    files; an empty tuple when neither shows a GPU.
    """
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            result = subprocess.run([smi, "--query-gpu=index", "--format=csv,noheader"],
                                    capture_output=True, text=True, check=False,
                                    timeout=_NVIDIA_SMI_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired):
            result = None
        if result is not None and result.returncode == 0:
            ids = tuple(line.strip() for line in result.stdout.splitlines() if line.strip())
            if ids:
                return ids
    files = [path for path in glob.glob("/dev/nvidia*") if re.fullmatch(r"/dev/nvidia\d+", path)]
    return tuple(sorted((path[len("/dev/nvidia"):] for path in files), key=int))


def gpu_device_files(gpu_id: str) -> tuple[str, ...]:
    """The device files a runtime using GPU ``gpu_id`` needs (missing ones are skipped
    by bwrap's ``--dev-bind-try``)."""
    return (f"/dev/nvidia{gpu_id}", *NVIDIA_SHARED_FILES)


def gpu_assignments(n_slots_per_gpu: int, gpu_ids: Sequence[str | int], *,
                    memory_limit_mb: int | None = None) -> list[GpuAssignment]:
    """Runtime slots over the GPUs, round-robin: GPU 0, GPU 1, ..., GPU 0, GPU 1, ...

    A batch that uses only its first k slots therefore spreads over the GPUs.

    Args:
        n_slots_per_gpu: How many runtimes share one GPU (>= 1).
        gpu_ids: The GPUs' indices (as `detect_gpu_ids` returns them).
        memory_limit_mb: A per-runtime GPU memory cap, or None for memory growth.

    Returns:
        ``n_slots_per_gpu * len(gpu_ids)`` assignments; slot ``i`` uses
        ``gpu_ids[i % len(gpu_ids)]``.

    Raises:
        ValueError: If ``n_slots_per_gpu`` < 1.
    """
    if n_slots_per_gpu < 1:
        raise ValueError(f"n_slots_per_gpu must be at least 1; received {n_slots_per_gpu}")
    ids = [str(gpu_id) for gpu_id in gpu_ids]
    return [GpuAssignment(visible_devices=gpu_id, device_files=gpu_device_files(gpu_id),
                          memory_limit_mb=memory_limit_mb)
            for _ in range(n_slots_per_gpu) for gpu_id in ids]


def default_gpu(device: str) -> GpuAssignment | None:
    """The GPU one runtime grades on: the first GPU when ``device`` is "gpu", else None.

    Raises:
        RuntimeError: If ``device`` is "gpu" but this machine has no GPU.
    """
    if device != "gpu":
        return None
    ids = detect_gpu_ids()
    if not ids:
        raise RuntimeError("grading on the GPU was asked for (device 'gpu'), but this machine "
                           "has no NVIDIA GPU (no nvidia-smi, no /dev/nvidia<N>); grade with "
                           f"device 'cpu' or unset {DEVICE_ENV}")
    return gpu_assignments(1, ids[:1])[0]


def runtime_env(gpu: GpuAssignment | None) -> dict[str, str]:
    """The device variables of a runtime's environment (see `grader.runtime.sandbox.gpu_env`).

    CPU: ``CUDA_VISIBLE_DEVICES=""``. GPU: ``CUDA_VISIBLE_DEVICES=<id>`` plus
    ``TF_FORCE_GPU_ALLOW_GROWTH=true``, or ``GRADER_GPU_MEMORY_MB=<cap>``.
    """
    return gpu_env(gpu)

"""The GPU memory cap of a runtime, applied before any student code runs.

Staged into the sandbox (`grader.runtime.sandbox.RUNTIME_FILES`); the server calls
`apply_gpu_memory_cap` only when ``$GRADER_GPU_MEMORY_MB`` is set. It computes no
verdict: it only limits what TensorFlow may take.
"""

from __future__ import annotations

import os

GPU_MEMORY_ENV = "GRADER_GPU_MEMORY_MB"  # same name as grader.runtime.sandbox.GPU_MEMORY_ENV


def apply_gpu_memory_cap() -> None:
    """Cap TensorFlow's GPU memory at ``$GRADER_GPU_MEMORY_MB`` megabytes (unset: no cap)."""
    limit = os.environ.get(GPU_MEMORY_ENV)
    if not limit:
        return
    import tensorflow as tf

    for gpu in tf.config.list_physical_devices("GPU"):
        tf.config.set_logical_device_configuration(
            gpu, [tf.config.LogicalDeviceConfiguration(memory_limit=int(limit))])

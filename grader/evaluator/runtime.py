"""The evaluator's process: a sandboxed runtime with an empty workspace and trusted code.

`EvaluatorRuntime` is a `grader.runtime.student.StudentRuntime` (the same sandbox,
limits, watchdog, timeouts and protocol) whose workspace is a fresh empty folder and
whose one module is `grader.evaluator.keras_eval`, read by the grader from its own
package and sent over the protocol: nothing the student wrote is in that process or
in its view. `evaluator_for(student)` starts one per submission, on first use, with
the submission's limits, threads and GPU; it is closed with the submission's runtime.
"""

from __future__ import annotations

import atexit
import dataclasses
import shutil
import tempfile
import threading
import weakref
from pathlib import Path
from typing import Any

from grader.runtime.sandbox import SandboxLimits
from grader.runtime.student import StudentRuntime

__all__ = ["MODULE", "EvaluatorRuntime", "evaluator_for"]

MODULE = "nn_grader_keras_evaluator"
"""The name the evaluator's code is imported under in its process."""
SOURCE = Path(__file__).with_name("keras_eval.py")
MIN_MESSAGE_MB = 256
"""The evaluator receives a model's weights in one request (AlexNet: 111 MB)."""
MIN_TOTAL_TIME_S = 900.0
"""The evaluator's own time budget per submission: only grader work runs there, each call
under its own limit (training: the accuracy budget), so the submission's budget, sized
for its own code, does not apply."""


class EvaluatorRuntime(StudentRuntime):
    """A sandboxed process holding only the evaluator's code.

    Args:
        limits: Resource limits (the submission's; messages may be larger and the total
            time budget longer, see `MIN_MESSAGE_MB` and `MIN_TOTAL_TIME_S`).
        env: Extra environment (the submission's thread caps).
        gpu: The GPU lent to the submission, or None.
    """

    def __init__(self, *, limits: SandboxLimits | None = None,
                 env: dict[str, str] | None = None, gpu: Any = None) -> None:
        self._scratch = tempfile.mkdtemp(prefix="nn-grader-evaluator-")
        limits = limits or SandboxLimits()
        if getattr(limits, "max_message_mb", MIN_MESSAGE_MB) < MIN_MESSAGE_MB:
            limits = dataclasses.replace(limits, max_message_mb=MIN_MESSAGE_MB)
        if getattr(limits, "total_time_s", MIN_TOTAL_TIME_S) < MIN_TOTAL_TIME_S:
            limits = dataclasses.replace(limits, total_time_s=MIN_TOTAL_TIME_S)
        super().__init__(self._scratch, [MODULE], limits=limits, env=env, gpu=gpu)

    def _prepare_sources(self) -> list[dict[str, str]]:
        """The evaluator's trusted source instead of anything from the (empty) workspace."""
        return [{"name": MODULE, "source": SOURCE.read_text(encoding="utf-8")}]

    @property
    def evaluator(self) -> Any:
        """The proxy of the evaluator module: ``evaluator.fit_and_predict(...)``."""
        return self.module(MODULE)

    def close(self) -> None:
        super().close()
        shutil.rmtree(self._scratch, ignore_errors=True)


_open: dict[int, tuple[weakref.ref[StudentRuntime], EvaluatorRuntime]] = {}
_lock = threading.Lock()


def evaluator_for(student: Any) -> EvaluatorRuntime:
    """The evaluator of the submission behind ``student`` (started on first use).

    The evaluator closes with the submission's runtime (its ``close``), when that
    runtime is garbage-collected, or at exit.

    Args:
        student: The ``student`` proxy of a hidden test, or a `StudentRuntime`.
    """
    runtime = student if isinstance(student, StudentRuntime) else student._runtime
    own = getattr(runtime, "local_evaluator", None)
    if own is not None:  # `grader check` on a student's machine: no sandbox there
        return own()
    with _lock:
        for key, (ref, evaluator) in list(_open.items()):
            owner = ref()
            if owner is None or owner._closed:
                evaluator.close()
                del _open[key]
        entry = _open.get(id(runtime))
        if entry is not None and entry[0]() is runtime:
            return entry[1]
        evaluator = EvaluatorRuntime(limits=runtime.limits, env=runtime.env, gpu=runtime.gpu)
        _open[id(runtime)] = (weakref.ref(runtime), evaluator)
        weakref.finalize(runtime, evaluator.close)
        original = runtime.close

        def close() -> None:  # the submission's runtime closes: its evaluator goes too
            try:
                original()
            finally:
                evaluator.close()

        runtime.close = close  # type: ignore[method-assign]
        return evaluator


@atexit.register
def _close_all() -> None:
    for _, evaluator in list(_open.values()):
        evaluator.close()
    _open.clear()

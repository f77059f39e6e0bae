"""The student runtime: a sandboxed process that holds a submission, and the grader's proxy.

Hidden tests use :class:`StudentRuntime` and its ``student`` proxy, and catch
:class:`StudentFailure`. Names are loaded lazily so that the copy of this
package inside the sandbox (which has only ``protocol``, ``server`` and
``callables``) never imports the grader-side modules.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "StudentRuntime": "student", "StudentProxy": "proxy", "ModuleProxy": "proxy",
    "HandleProxy": "proxy", "Callable": "protocol", "Handle": "protocol",
    "SandboxLimits": "sandbox", "GpuAssignment": "sandbox", "SandboxError": "process",
    "StudentFailure": "errors", "StudentError": "errors", "StudentAttributeError": "errors",
    "StudentTimeout": "errors", "StudentCrashed": "errors", "ImportFailed": "errors",
    "ProtocolViolation": "errors", "TimeBudgetExhausted": "errors",
    "definitions_only": "definitions",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)

"""What hidden tests see when student code fails. All derive from StudentFailure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from grader.i18n import Domain

_, _n = Domain("cli").functions()


@dataclass(frozen=True)
class TracebackLine:
    """One frame of a student's traceback.

    Attributes:
        filename: Relative to the submission, e.g. ``mlp_numpy.py`` (``mlp_numpy.ipynb``
            for a frame in a converted notebook, see `in_notebook_cells`).
        line: 1-based line number (in the cell when `cell` is set).
        function: The function's name (``<module>`` at import).
        source: The line's text, stripped.
        cell: The notebook cell the line is in, or None for a Python file.
    """

    filename: str
    line: int
    function: str
    source: str
    cell: int | None = None

    def __str__(self) -> str:
        where = f"cell {self.cell}, line {self.line}" if self.cell is not None else (
            f"line {self.line}")
        text = f'  File "{self.filename}", {where}, in {self.function}'
        return text + (f"\n    {self.source}" if self.source else "")


def in_notebook_cells(frames: tuple[TracebackLine, ...],
                      notebooks: Mapping[str, Any]) -> tuple[TracebackLine, ...]:
    """Frames in converted notebooks told as the student knows them: notebook, cell, line.

    Args:
        frames: Traceback lines as the runtime reported them (lines of the converted module).
        notebooks: Module file name (``mlp_numpy.py``) -> its
            `grader.intake.notebooks.NotebookLines`, for modules converted from notebooks.

    Returns:
        The frames, those of converted modules with ``filename`` the notebook's name and
        ``cell``/``line`` the position in it; a line with no cell keeps its module line.
    """
    shown = []
    for frame in frames:
        lines = notebooks.get(frame.filename)
        where = lines.position(frame.line) if lines is not None else None
        if where is None:
            shown.append(frame)
        else:
            shown.append(replace(frame, filename=lines.notebook, cell=where[0], line=where[1]))
    return tuple(shown)


def format_traceback(frames: tuple[TracebackLine, ...]) -> str:
    """Render frames the way Python does, most recent call last."""
    if not frames:
        return ""
    return "Traceback (most recent call last):\n" + "\n".join(str(frame) for frame in frames)


class StudentFailure(Exception):
    """Base class: student code did not produce a usable answer.

    Attributes:
        kind: The failure's kind, set where it is known (a report may group by it):
            "exception", "memory", "time_limit", "time_budget", "crash", "import",
            "protocol" (`grader.results.records.STUDENT_FAILURE_KINDS` maps them to
            outcome kinds).
    """

    kind = "failure"


class StudentError(StudentFailure):
    """Student code raised an exception.

    Attributes:
        type_name: The exception's type, e.g. ``ValueError``.
        message: ``str()`` of the exception.
        student_traceback: Frames in the student's files only.
    """

    kind = "exception"

    def __init__(self, type_name: str, message: str,
                 student_traceback: tuple[TracebackLine, ...] = ()) -> None:
        self.type_name = type_name
        self.message = message
        self.student_traceback = student_traceback
        if type_name == "MemoryError":  # the address-space limit surfaces as MemoryError
            self.kind = "memory"
        super().__init__(type_name, message)

    def __str__(self) -> str:
        head = format_traceback(self.student_traceback)
        last = f"{self.type_name}: {self.message}" if self.message else self.type_name
        return f"{head}\n{last}" if head else last


class StudentAttributeError(StudentError, AttributeError):
    """The student's object has no such attribute (so ``hasattr`` works on proxies)."""


class StudentTimeout(StudentFailure):
    """A call ran past its wall-clock limit; the runtime was killed.

    Attributes:
        limit_s: The limit in seconds.
        what: What was running, e.g. ``mlp_numpy.train(...)``.
    """

    kind = "time_limit"

    def __init__(self, limit_s: float, what: str) -> None:
        self.limit_s = limit_s
        self.what = what
        super().__init__(_("{what} did not finish within {limit} s; the runtime was stopped",
                           what=what, limit=f"{limit_s:g}"))


TIME_BUDGET_EXHAUSTED = "time budget exhausted"
"""How every message about the per-submission time budget begins."""


class TimeBudgetExhausted(StudentFailure):
    """The submission used up its total time budget; this call did not (or did not fully) run.

    Attributes:
        budget_s: The submission's total budget (``SandboxLimits.total_time_s``).
        what: The call that was refused or stopped.
    """

    kind = "time_budget"

    def __init__(self, budget_s: float, what: str, *, stopped: bool = False) -> None:
        self.budget_s = budget_s
        self.what = what
        budget = f"{budget_s:g}"
        super().__init__(
            _("time budget exhausted: the submission's code has used its total time budget "
              "of {budget} s (all calls together); {what} was stopped when the budget ran out",
              budget=budget, what=what) if stopped else
            _("time budget exhausted: the submission's code has used its total time budget "
              "of {budget} s (all calls together); {what} was not run",
              budget=budget, what=what))


MEMORY_KILL = "killed: memory limit"
"""How `grader.runtime.process`'s reason for a kill above ``memory_mb`` begins."""


class StudentCrashed(StudentFailure):
    """The runtime died or the submission tried to leave it.

    Attributes:
        reason: A sentence a student can act on.
        exit_code: The process's exit code, or None.
        signal: The signal that killed it, or None.
    """

    kind = "crash"

    def __init__(self, reason: str, exit_code: int | None = None,
                 signal: int | None = None, *, memory: bool = False) -> None:
        self.reason = reason
        self.exit_code = exit_code
        self.signal = signal
        # The watcher says so (`memory`); an English reason is recognised by its words.
        if memory or reason.startswith(MEMORY_KILL):
            self.kind = "memory"
        super().__init__(reason)


class ImportFailed(StudentFailure):
    """A module of the submission could not be imported.

    Attributes:
        module: The module's name.
        reason: Missing file, syntax error, or the exception raised at import.
        student_traceback: Frames in the student's files, if any.
    """

    kind = "import"

    def __init__(self, module: str, reason: str,
                 student_traceback: tuple[TracebackLine, ...] = ()) -> None:
        self.module = module
        self.reason = reason
        self.student_traceback = student_traceback
        super().__init__(module, reason)

    def __str__(self) -> str:
        head = format_traceback(self.student_traceback)
        text = _("could not import {module}: {reason}", module=self.module, reason=self.reason)
        return f"{text}\n{head}" if head else text


class ProtocolViolation(StudentFailure):
    """Something that may not cross the boundary was sent back (bad dtype, too large, ...)."""

    kind = "protocol"

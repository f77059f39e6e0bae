"""The student's own files, imported in this process: the runtime of `grader check`.

On a student's laptop the public tests run the student's own code on the student's own
machine, so they need no sandbox, and nothing here is POSIX-only (no ``resource``,
``fcntl``, process groups or bubblewrap): `grader check` runs on Linux, macOS and Windows.
Grading never uses this module: `grader autograde` runs every submission in the sandboxed
`grader.runtime` student runtime.

`LocalRuntime` offers what a public suite uses of a runtime, with the same contract as the
sandboxed one so that a check passes here exactly when it passes when graded:

- the modules are imported for their definitions only (`grader.runtime.definitions`):
  top-level training runs are skipped and listed;
- only plain data (numbers, strings, numeric arrays, lists, tuples, dicts, None) comes
  back as itself, always as a copy; every other object comes back wrapped (`LocalHandle`),
  and arguments are copied before the student's code sees them, so a function that
  changes its input in place behaves as it will when graded;
- an exception raised by the student's code becomes a `StudentError` whose traceback
  lists the student's files only;
- a grader-side function passed by name (`grader.runtime.protocol.Callable`) is looked up
  in `grader.runtime.callables.REGISTRY`, as the sandboxed runtime does.
"""

from __future__ import annotations

import copy
import random
import sys
import traceback
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from grader.i18n import Domain
from grader.runtime import callables, protocol
from grader.runtime.definitions import DefinitionsResult, SkippedStatement, definitions_only
from grader.runtime.errors import (
    ImportFailed,
    StudentAttributeError,
    StudentError,
    TracebackLine,
)

_, _n = Domain("cli").functions()

PLAIN_SCALARS = (bool, int, float, complex, str, bytes, type(None), np.generic)


class LocalRuntime:
    """The submission's modules, imported here for a public check (no sandbox).

    Args:
        workspace: The folder holding the student's files (the intake's workspace).
        modules: Module names, e.g. ``["mlp_numpy"]`` for ``mlp_numpy.py``.
    """

    def __init__(self, workspace: Path, modules: Sequence[str]) -> None:
        self.workspace = Path(workspace)
        self.modules = tuple(modules)
        self.notes: list[str] = []
        self._loaded: dict[str, types.ModuleType] = {}
        self._skipped: dict[str, tuple[SkippedStatement, ...]] = {}
        self._failed: dict[str, ImportFailed] = {}
        self.definitions: dict[str, DefinitionsResult] = {}  # read by Keras 2 spelling hints
        self._evaluator: LocalEvaluator | None = None

    def __enter__(self) -> LocalRuntime:
        for name in self.modules:
            self._import(name)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for name in self.modules:
            sys.modules.pop(_module_key(name), None)

    @property
    def student(self) -> LocalStudent:
        """``student.<module>.<name>``, as hidden and public tests write it."""
        return LocalStudent(self)

    @property
    def skipped(self) -> dict[str, tuple[SkippedStatement, ...]]:
        """Top-level statements not run at import, per module."""
        return dict(self._skipped)

    def seed(self, seed: int) -> None:
        """Seeds Python and numpy (and TensorFlow when the student's code loaded it)."""
        random.seed(seed)
        np.random.seed(seed)
        tensorflow = sys.modules.get("tensorflow")
        if tensorflow is not None:
            tensorflow.random.set_seed(seed)

    def local_evaluator(self) -> LocalEvaluator:
        """The grader's Keras evaluator (`grader.evaluator.keras_eval`), in this process.

        When grading, it runs in a sandbox of its own; here it is the grader's own code on
        the student's machine. `grader.evaluator.runtime.evaluator_for` asks for it.
        """
        if self._evaluator is None:
            self._evaluator = LocalEvaluator()
        return self._evaluator

    def module(self, name: str) -> LocalHandle:
        if name in self._failed:
            raise self._failed[name]
        return LocalHandle(self._loaded[name], name)

    def _import(self, name: str) -> None:
        path = self.workspace / f"{name}.py"
        filename = path.name
        if not path.is_file():
            self._failed[name] = ImportFailed(name, _("{file} does not exist in the folder",
                                                      file=filename))
            return
        result = definitions_only(path.read_bytes(), filename)
        self.definitions[name] = result
        self._skipped[name] = result.skipped
        if result.source is None:  # a syntax error, or a file Python cannot read
            reason = (str(result.error) if result.error is not None
                      else _("{file}: unreadable", file=filename))
            self._failed[name] = ImportFailed(name, reason)
            return
        module = types.ModuleType(name)
        module.__file__ = str(path)
        # The student's file may import its neighbours (a helper module of their own).
        sys.path.insert(0, str(self.workspace))
        sys.modules[_module_key(name)] = module
        try:
            exec(compile(result.source, str(path), "exec"), module.__dict__)  # noqa: S102
        except BaseException as exc:  # noqa: BLE001 - any failure at import is the student's
            if isinstance(exc, KeyboardInterrupt):
                raise
            frames = student_frames(exc, self.workspace)
            self._failed[name] = ImportFailed(name, f"{type(exc).__name__}: {exc}", frames)
        finally:
            sys.path.remove(str(self.workspace))
        self._loaded[name] = module


class LocalEvaluator:
    """`evaluator.<function>(...)` of `grader.evaluator.keras_eval`, imported here."""

    @property
    def evaluator(self) -> LocalHandle:
        import importlib

        return LocalHandle(importlib.import_module("grader.evaluator.keras_eval"),
                           "the grader's evaluator")

    def close(self) -> None:
        pass


class LocalStudent:
    """The ``student`` fixture of a local check: ``student.mlp_numpy``."""

    def __init__(self, runtime: LocalRuntime) -> None:
        self._runtime = runtime

    def seed(self, seed: int) -> None:
        self._runtime.seed(seed)

    def time_limit(self, seconds: float) -> Any:
        """No limit on the student's own machine (Ctrl-C stops a check)."""
        import contextlib

        return contextlib.nullcontext()

    def __getattr__(self, name: str) -> LocalHandle:
        if name.startswith("__"):
            raise AttributeError(name)
        if name not in self._runtime.modules:
            raise AttributeError(f"the submission has no module {name!r}; modules: "
                                 f"{', '.join(self._runtime.modules)}")
        return self._runtime.module(name)


class LocalHandle:
    """An object of the student's code: call it, read and set attributes, index it."""

    def __init__(self, target: Any, label: str) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_label", label)
        object.__setattr__(self, "_workspace", None)

    @property
    def type_name(self) -> str:
        return type(self._target).__name__

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            value = getattr(self._target, name)
        except AttributeError:
            raise StudentAttributeError(
                "AttributeError", f"{self._label} has no attribute {name!r}") from None
        except Exception as exc:  # noqa: BLE001 - a property of the student's raised
            raise as_student_error(exc) from None
        return wrap(value, f"{self._label}.{name}")

    def __setattr__(self, name: str, value: Any) -> None:
        _guarded(setattr, self._target, name, unwrap(value))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        result = _guarded(self._target, *map(unwrap, args),
                          **{key: unwrap(value) for key, value in kwargs.items()})
        return wrap(result, f"{self._label}(...)")

    def __len__(self) -> int:
        return _guarded(len, self._target)

    def __getitem__(self, key: Any) -> Any:
        return wrap(_guarded(lambda: self._target[unwrap(key)]), f"{self._label}[...]")

    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        array = np.array(_guarded(np.asarray, self._target))
        return array if dtype is None else array.astype(dtype)

    def __repr__(self) -> str:
        return f"<student {self.type_name}>"


def _guarded(function: Any, *args: Any, **kwargs: Any) -> Any:
    """Calls student code; its exception becomes a `StudentError` (tests expect that kind)."""
    try:
        return function(*args, **kwargs)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # noqa: BLE001 - the student's code raised
        raise as_student_error(exc) from None


def as_student_error(exc: BaseException) -> StudentError:
    return StudentError(type(exc).__name__, str(exc), student_frames(exc, None))


def student_frames(exc: BaseException, workspace: Path | None) -> tuple[TracebackLine, ...]:
    """The frames of `exc`'s traceback that are in the student's files (not the grader's)."""
    grader_root = str(Path(__file__).resolve().parents[1])
    frames = []
    for frame in traceback.extract_tb(exc.__traceback__):
        path = Path(frame.filename)
        if frame.filename.startswith(grader_root) or "site-packages" in path.parts:
            continue
        if workspace is not None and not str(path).startswith(str(workspace)):
            continue
        frames.append(TracebackLine(path.name, frame.lineno or 0, frame.name,
                                    frame.line or ""))
    return tuple(frames)


def is_plain(value: Any) -> bool:
    """Plain data: what the sandboxed runtime sends back as itself."""
    if isinstance(value, PLAIN_SCALARS):
        return True
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "biufc"
    if isinstance(value, (list, tuple)):
        return all(is_plain(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(key, str) and is_plain(item) for key, item in value.items())
    return False


def wrap(value: Any, label: str) -> Any:
    """Plain data as a copy (as it crosses the sandbox's pipe); anything else as a handle."""
    if isinstance(value, (list, tuple)) and not is_plain(value):
        items = [wrap(item, f"{label}[{index}]") for index, item in enumerate(value)]
        return tuple(items) if isinstance(value, tuple) else items
    if is_plain(value):
        return copy.deepcopy(value)
    return LocalHandle(value, label)


def unwrap(value: Any) -> Any:
    """An argument for the student's code: handles become their objects, data a copy."""
    if isinstance(value, LocalHandle):
        return object.__getattribute__(value, "_target")
    if isinstance(value, protocol.Callable):  # a grader-side function, passed by name
        if value.name not in callables.REGISTRY:
            raise ValueError(f"no grader function named {value.name!r}; known: "
                             f"{', '.join(sorted(callables.REGISTRY))}")
        return callables.REGISTRY[value.name]
    if isinstance(value, (list, tuple)):
        items = [unwrap(item) for item in value]
        return tuple(items) if isinstance(value, tuple) else items
    if isinstance(value, dict):
        return {key: unwrap(item) for key, item in value.items()}
    return copy.deepcopy(value) if is_plain(value) else value


def _module_key(name: str) -> str:
    # The student's module is registered under its own name so that pickling and
    # `from mlp_numpy import X` inside it work; it is removed when the check ends.
    return name

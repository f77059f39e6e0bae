"""Run one hidden-suite test inside a notebook, for the nbgrader side of `bench/batch.py`.

An nbgrader grade cell of the benchmark's notebooks is one line::

    run_test("test_fc_forward_matches_reference", globals())

It runs that test function of ``autograde_tests/<id>/`` (hidden or public file) in the
notebook's own kernel, with the fixtures a hidden suite is written against built from
plain objects, as nn-grader's in-process baseline (`bench/grading.py`) does:

- ``student``: ``student.<module>`` is a view of the notebook's globals (its definitions);
- ``assignment``, ``device``, ``budgets`` (the device's), ``thresholds``, ``parameters``:
  from ``assignment.toml`` and `grader.devices.detect_device`;
- ``dataset``: `grader.grading.fixtures.load_dataset` (``$GRADER_DATASET`` or the default);
- ``private_split``: the test split in a secret order, keyed by the test's name;
- ``credit``: records partial credit; ``figure``: ignored.

Every parametrised case runs, each after seeding ``random`` and ``numpy`` as nn-grader
seeds the student runtime. The cell's points are the test function's share of its part
(nn-grader's scoring: a part's points split evenly between its test functions, a
function's share evenly between its cases), and nbgrader is told the outcome in its own
terms: full marks print nothing; partial marks return the points earned (nbgrader's
numeric cell output); nothing earned raises `AssertionError`. Warnings and stderr are
captured during the test, because nbgrader zeroes any grade cell that writes to stderr
and pytest does not fail a test for a warning.

The kernel needs this folder on ``sys.path`` (``PYTHONPATH``); the repository root is
added here.
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import io
import itertools
import os
import random
import sys
import warnings
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from grader.checks.splits import PrivateSplit, private_split  # noqa: E402
from grader.config import AssignmentConfig, load_assignment  # noqa: E402
from grader.devices import detect_device  # noqa: E402
from grader.grading.fixtures import SEED, load_dataset  # noqa: E402
from grader.results.plugin import describe_exception  # noqa: E402

DEFAULT_ASSIGNMENT = "mlp_numpy"
DATASET_ENV = "GRADER_DATASET"  # the dataset the data-driven tests use, as for nn-grader


class NamespaceView:
    """Attribute access to a dict that may still grow (a notebook's globals), seen as the
    grader's proxy sees a runtime's module: plain data by value, objects as `ByValue`."""

    def __init__(self, names: dict[str, Any]) -> None:
        self._names = names

    def __getattr__(self, name: str) -> Any:
        try:
            return _crossed(self._names[name])
        except KeyError:
            raise AttributeError(f"the notebook defines no `{name}`") from None


class ByValue:
    """An object of the notebook as a test sees it through nn-grader's proxy: what crosses
    (arguments, results, attributes) is a copy when it is plain data, so a student's layer
    that changes an array in place after returning it cannot change what the test kept."""

    def __init__(self, target: Any) -> None:
        object.__setattr__(self, "_target", target)

    def __getattr__(self, name: str) -> Any:
        return _crossed(getattr(self._target, name))

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._target, name, _sent(value))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _crossed(self._target(*_sent(args), **_sent(kwargs)))


def _plain(value: Any) -> bool:
    """Whether the proxy sends `value` by value (numbers, text, None, arrays, containers)."""
    import numpy as np

    if value is None or isinstance(value, (bool, int, float, complex, str, bytes, np.ndarray,
                                           np.generic)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(key, str) and _plain(item) for key, item in value.items())
    return False


def _crossed(value: Any) -> Any:
    """A value coming back from the notebook: a deep copy of plain data, else a `ByValue`."""
    import copy

    return copy.deepcopy(value) if _plain(value) else ByValue(value)


def _sent(value: Any) -> Any:
    """A value sent to the notebook: `ByValue` handles unwrapped, plain data copied."""
    import copy

    if isinstance(value, ByValue):
        return object.__getattribute__(value, "_target")
    if isinstance(value, tuple):
        return tuple(_sent(item) for item in value)
    if isinstance(value, list):
        return [_sent(item) for item in value]
    if isinstance(value, dict):
        return {key: _sent(item) for key, item in value.items()}
    return copy.deepcopy(value) if _plain(value) else value


class Credit:
    """The `credit` fixture: the last `set` wins, as in nn-grader's results plugin."""

    def __init__(self) -> None:
        self.fraction: float | None = None
        self.messages: list[str] = []

    def set(self, fraction: float, message: str) -> None:
        self.fraction = float(fraction)
        self.messages.append(message)

    def note(self, message: str) -> None:
        self.messages.append(message)


def _private_split(size: int, name: str) -> PrivateSplit:
    """The `private_split` fixture: the test split in the secret order of key ``nbgrader:name``."""
    test = load_dataset(os.environ.get(DATASET_ENV) or None)
    return private_split(test.x_test, test.y_test, size, key=f"nbgrader:{name}")


def _no_figure(name: str, value: Any) -> None:
    """The `figure` fixture: reports' plain data is not needed here."""


@dataclass(frozen=True)
class CaseResult:
    case: str
    fraction: float
    message: str


@cache
def assignment_config(assignment: str = DEFAULT_ASSIGNMENT) -> AssignmentConfig:
    return load_assignment(REPO / "assignments" / assignment / "assignment.toml",
                           repo_root=REPO)


@cache
def _suite_modules(assignment: str) -> tuple[Any, ...]:
    modules = []
    for path in sorted((REPO / "autograde_tests" / assignment).glob("test_*.py")):
        spec = importlib.util.spec_from_file_location(f"nbgrader_shim_{assignment}_{path.stem}",
                                                      path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        modules.append(module)
    return tuple(modules)


def suite_function(name: str, assignment: str = DEFAULT_ASSIGNMENT):
    """The hidden (or public) suite's function called `name`."""
    for module in _suite_modules(assignment):
        if callable(getattr(module, name, None)):
            return getattr(module, name)
    raise LookupError(f"no test `{name}` in autograde_tests/{assignment}/")





def points_of(name: str, assignment: str = DEFAULT_ASSIGNMENT) -> float:
    """A test function's points: its part's points split evenly between the part's tests."""
    for part in assignment_config(assignment).parts:
        if name in part.tests:
            return float(part.points) / len(part.tests)
    raise LookupError(f"no part of {assignment}/assignment.toml lists `{name}`")


def _cases(function) -> list[tuple[str, dict[str, Any]]]:
    """(case id, parameters) for each parametrised case, as pytest would generate them."""
    axes = []
    for mark in reversed(getattr(function, "pytestmark", [])):  # pytest: closest first
        if mark.name != "parametrize":
            continue
        names, values = mark.args[0], mark.args[1]
        names = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
        axis = []
        for value in values:
            explicit_id = None
            if _is_param(value):  # pytest.param(..., id=...)
                value, explicit_id = value.values, value.id
                row = tuple(value)
            else:
                row = value if len(names) > 1 else (value,)
            axis.append(({n: v for n, v in zip(names, row, strict=True)},
                         explicit_id or "-".join(_case_id(v) for v in row)))
        axes.append(axis)
    cases = []
    for combo in itertools.product(*axes):
        params = {k: v for values, _ in combo for k, v in values.items()}
        case = "-".join(ident for _, ident in combo)
        cases.append((f"{function.__name__}[{case}]" if combo else function.__name__, params))
    return cases


def _is_param(value: Any) -> bool:
    """Whether `value` is a `pytest.param(...)` (pytest's ParameterSet, a named tuple)."""
    return isinstance(value, tuple) and all(hasattr(value, f) for f in ("values", "marks", "id"))


def _case_id(value: Any) -> str:
    return str(value) if isinstance(value, (int, float, str, bool)) else repr(value)


def _seed() -> None:
    import numpy as np

    random.seed(SEED)
    np.random.seed(SEED)


def run_cases(name: str, namespace: dict[str, Any], *,
              assignment: str = DEFAULT_ASSIGNMENT) -> list[CaseResult]:
    """Runs every case of test `name` against the definitions in `namespace`.

    Returns:
        One `CaseResult` per case: fraction 1 passed, 0 failed, between: partial credit.
    """
    config = assignment_config(assignment)
    function = suite_function(name, assignment)
    module = Path(config.student_files[0]).stem
    device = detect_device()
    fixtures = {  # the fixtures `grader.grading.fixtures.GradingFixtures` gives, by name
        "student": type("Student", (), {module: NamespaceView(namespace)})(),
        "assignment": config,
        "device": device,
        "budgets": config.budgets_for(device),
        "thresholds": config.thresholds,
        "parameters": config.parameters,
        "figure": _no_figure,
    }
    wanted = inspect.signature(function).parameters
    if "dataset" in wanted:
        fixtures["dataset"] = load_dataset(os.environ.get(DATASET_ENV) or None)
    if "private_split" in wanted:
        fixtures["private_split"] = _private_split
    results = []
    for case, params in _cases(function):
        credit = Credit()
        kwargs = {**{k: v for k, v in fixtures.items() if k in wanted}, **params}
        if "credit" in wanted:
            kwargs["credit"] = credit
        _seed()
        try:
            # Only KeyboardInterrupt gets out: nbgrader interrupts a cell past its timeout.
            function(**kwargs)
        except Exception as error:  # noqa: BLE001 - a student's failure is a result
            results.append(CaseResult(case, 0.0, describe_exception(error)))
        except SystemExit as error:
            results.append(CaseResult(case, 0.0, f"SystemExit: {error.code}"))
        else:
            fraction = 1.0 if credit.fraction is None else min(max(credit.fraction, 0.0), 1.0)
            results.append(CaseResult(case, fraction, "\n".join(credit.messages)))
    return results


def run_test(name: str, namespace: dict[str, Any], *,
             assignment: str = DEFAULT_ASSIGNMENT) -> float | None:
    """One nbgrader grade cell: runs test `name` and reports in nbgrader's terms.

    Args:
        name: a test function of ``autograde_tests/<assignment>/``.
        namespace: the notebook's ``globals()``.
        assignment: the assignment id.

    Returns:
        None for full marks; the points earned (``0 < points < max``) for partial marks.

    Raises:
        AssertionError: no case earned anything; the message lists each failure.
    """
    stderr = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stderr(stderr):
        warnings.simplefilter("ignore")
        results = run_cases(name, namespace, assignment=assignment)
    fraction = sum(r.fraction for r in results) / len(results)
    failures = [f"{r.case}: {r.message}" for r in results if r.fraction < 1.0]
    if fraction <= 0.0:
        raise AssertionError("\n".join(failures))
    if failures:
        print("\n".join(failures))  # stdout: nbgrader zeroes a cell that writes to stderr
    if fraction >= 1.0:
        return None
    return round(points_of(name, assignment) * fraction, 6)

"""A pytest plugin that collects hidden-test results as plain `TestOutcome`s.

Its methods are named after the pytest hooks they implement, as in pytest's own
``stepwise.py``. Messages are built from the exception alone, never from the
test's source, so hidden test code cannot reach a student's report; run suites
with ``--assert=plain`` so pytest does not rewrite asserts into source excerpts.
"""

from __future__ import annotations

from typing import Any

import pytest

from grader.checks.diagnose import Diagnosed
from grader.results.records import (
    CREDIT_KEY,
    DIAGNOSIS_KEY,
    ERROR,
    FIGURE_KEY,
    KIND_EXCEPTION,
    KIND_GRADER_ERROR,
    KIND_KEY,
    KIND_NOT_RUN,
    KIND_SKIPPED,
    KIND_WRONG,
    MESSAGE_KEY,
    STUDENT_FAILURE_KINDS,
    TestOutcome,
    outcome_from_phases,
)
from grader.runtime.errors import StudentFailure

MAX_MESSAGE_CHARS = 4_000  # a report shows a message, not a log


def describe_exception(error: BaseException) -> str:
    """A student-facing message: the exception's own text, no hidden test source."""
    text = str(error).strip()
    if isinstance(error, AssertionError):
        # Where pytest rewrote the assert, its explanation (source excerpts) starts at a
        # line beginning "assert "; keep only the test author's message before it.
        lines = text.splitlines()
        cut = next((i for i, line in enumerate(lines) if line.startswith("assert ")), len(lines))
        return "\n".join(lines[:cut]).strip() or "a check failed"
    if isinstance(error, pytest.skip.Exception):
        return text
    kind = type(error).__name__
    text = f"{kind}: {text}" if text else kind
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[: MAX_MESSAGE_CHARS // 2] + "\n[...]\n" + text[-MAX_MESSAGE_CHARS // 2:]
    return text


def exception_kind(error: BaseException) -> str:
    """The outcome kind of a test phase that raised `error`, from its class alone.

    A check's AssertionError (or ``pytest.fail``) is a wrong result; a `StudentFailure`
    carries its own kind; a skip is a skip; anything else was raised by grader code (a
    check, a fixture, the plugin) and is a grader error, never charged to the student.
    """
    if isinstance(error, pytest.skip.Exception):
        return KIND_SKIPPED
    if isinstance(error, StudentFailure):
        return STUDENT_FAILURE_KINDS.get(getattr(error, "kind", ""), KIND_EXCEPTION)
    if isinstance(error, (AssertionError, pytest.fail.Exception)):
        return KIND_WRONG
    return KIND_GRADER_ERROR


def _diagnosis(error: BaseException) -> str:
    """The matched mistake's id of a `Diagnosed` failure (read as data), else ""."""
    mistake = getattr(error, "mistake", "") if isinstance(error, Diagnosed) else ""
    return mistake if isinstance(mistake, str) else ""


class ResultsCollector:
    """Collects one `TestOutcome` per test case of a pytest run."""

    def __init__(self) -> None:
        self.outcomes: list[TestOutcome] = []
        self.collection_errors: list[str] = []
        self._phases: dict[str, dict[str, tuple[str, str]]] = {}
        self._durations: dict[str, float] = {}
        self._found: dict[str, list[tuple[str, Any]]] = {}  # kinds and diagnoses per case

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo) -> Any:
        report = (yield).get_result()
        message = describe_exception(call.excinfo.value) if call.excinfo is not None else ""
        report.user_properties.append((MESSAGE_KEY + "." + call.when, message))
        if call.excinfo is not None:
            error = call.excinfo.value
            report.user_properties.append((KIND_KEY, (call.when, exception_kind(error))))
            diagnosis = _diagnosis(error)
            if diagnosis:
                report.user_properties.append((DIAGNOSIS_KEY, diagnosis))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        case = report.nodeid.split("::")[-1]
        phase_message = ""
        for key, value in report.user_properties:
            if key == MESSAGE_KEY + "." + report.when:
                phase_message = value
            elif key in (KIND_KEY, DIAGNOSIS_KEY):  # set on this phase's report only
                self._found.setdefault(case, []).append((key, value))
        self._phases.setdefault(case, {})[report.when] = (report.outcome, phase_message)
        self._durations[case] = self._durations.get(case, 0.0) + report.duration
        if report.when == "teardown":
            properties = [(k, v) for k, v in report.user_properties
                          if k in (CREDIT_KEY, FIGURE_KEY, MESSAGE_KEY)]
            self.outcomes.append(outcome_from_phases(
                case, self._phases.pop(case), self._durations.pop(case),
                properties + self._found.pop(case, [])))

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            error = report.longrepr
            text = getattr(error, "longrepr", None) or str(error)
            self.collection_errors.append(f"{report.nodeid}: {str(text).splitlines()[-1]}")

    def missing_as_errors(self, names: list[str]) -> list[TestOutcome]:
        """Outcomes for tests that never ran, e.g. because their module failed to collect."""
        ran = {outcome.name for outcome in self.outcomes}
        reason = "; ".join(self.collection_errors) or "the test did not run"
        kind = KIND_GRADER_ERROR if self.collection_errors else KIND_NOT_RUN
        return [TestOutcome(name, name, ERROR, 0.0, reason, kind=kind)
                for name in names if name not in ran]


class Credit:
    """The `credit` fixture: partial credit for the current test.

    ``credit.set(0.6, "accuracy 0.81 is below 0.84: partial credit band")`` makes a
    passing test worth 60% of its share, with the message shown in the report.
    """

    def __init__(self, item: pytest.Item) -> None:
        self._item = item

    def set(self, fraction: float, message: str) -> None:
        self._item.user_properties.append((CREDIT_KEY, (float(fraction), message)))

    def note(self, message: str) -> None:
        """A line shown with the test whatever its outcome (e.g. which calibration was used)."""
        self._item.user_properties.append((MESSAGE_KEY, message))


class Figures:
    """The `figure` fixture: attach plain data (a gradient error table, a curve) to the test.

    A name attached more than once keeps every value, in order, as a list: a layer's check
    attaches ``gradient_error`` for grad_X and again for grad_W, and the report shows both.
    """

    def __init__(self, item: pytest.Item) -> None:
        self._item = item
        self._several: set[str] = set()  # names already holding a list of their values

    def __call__(self, name: str, value: Any) -> None:
        properties = self._item.user_properties
        for index, (key, attached) in enumerate(properties):
            if key == FIGURE_KEY and attached[0] == name:
                earlier = attached[1]
                values = [*earlier, value] if name in self._several else [earlier, value]
                self._several.add(name)
                properties[index] = (FIGURE_KEY, (name, values))
                return
        properties.append((FIGURE_KEY, (name, value)))


@pytest.fixture
def credit(request: pytest.FixtureRequest) -> Credit:
    return Credit(request.node)


@pytest.fixture
def figure(request: pytest.FixtureRequest) -> Figures:
    return Figures(request.node)

"""The results plugin, run on real pytest sessions with pytester, and scoring on top of it."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from grader import scoring
from grader.results import records
from grader.results.plugin import ResultsCollector

pytest_plugins = ["pytester"]

HIDDEN_SUITE = '''
import pytest

SECRET = "hidden expected value 1234"

@pytest.fixture
def broken():
    raise RuntimeError("could not start")

def test_pass():
    assert 1 + 1 == 2

def test_fail():
    value = 3
    assert value == 4, "`forward` returned 3; expected 4"

def test_fail_without_message():
    assert SECRET == "x"

def test_error(broken):
    pass

def test_partial(credit):
    credit.set(0.25, "accuracy 0.70 is below 0.80: partial credit")

def test_note_and_figure(credit, figure):
    credit.note("threshold from calibration fashion_mnist-cpu")
    figure("gradient_errors", {"W1": 1e-9, "W2": 2e-9})

@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_param(seed):
    assert seed % 2 == 0, f"seed {seed} is odd"

def test_skipped():
    pytest.skip("no calibration for this dataset")
'''


@pytest.fixture
def outcomes(pytester) -> dict[str, records.TestOutcome]:
    pytester.makepyfile(test_hidden=HIDDEN_SUITE)
    collector = ResultsCollector()
    pytester.inline_run("--assert=plain", "-p", "grader.results.plugin", plugins=[collector])
    return {outcome.case: outcome for outcome in collector.outcomes}


def test_each_case_gets_one_outcome(outcomes):
    assert sorted(outcomes) == sorted([
        "test_pass", "test_fail", "test_fail_without_message", "test_error", "test_partial",
        "test_note_and_figure", "test_param[0]", "test_param[1]", "test_param[2]",
        "test_param[3]", "test_skipped"])
    assert outcomes["test_param[1]"].name == "test_param"


def test_statuses_and_credit(outcomes):
    assert outcomes["test_pass"].status == records.PASSED
    assert outcomes["test_pass"].fraction == 1.0
    assert outcomes["test_fail"].status == records.FAILED
    assert outcomes["test_error"].status == records.ERROR
    assert outcomes["test_skipped"].status == records.SKIPPED
    assert outcomes["test_skipped"].fraction == 0.0
    assert outcomes["test_partial"].fraction == 0.25
    assert outcomes["test_partial"].status == records.FAILED


def test_messages_come_from_the_exception_only(outcomes):
    assert outcomes["test_fail"].message == "`forward` returned 3; expected 4"
    assert outcomes["test_error"].message == "RuntimeError: could not start"
    assert outcomes["test_partial"].message == "accuracy 0.70 is below 0.80: partial credit"
    assert outcomes["test_skipped"].message == "no calibration for this dataset"
    # A bare assert must not show the hidden test's source or its constants.
    assert "SECRET" not in outcomes["test_fail_without_message"].message
    assert "1234" not in outcomes["test_fail_without_message"].message


def test_notes_and_figures_are_kept(outcomes):
    kept = outcomes["test_note_and_figure"]
    assert kept.status == records.PASSED
    assert "calibration fashion_mnist-cpu" in kept.message
    assert kept.figures == {"gradient_errors": {"W1": 1e-9, "W2": 2e-9}}


@dataclass(frozen=True)
class Part:
    name: str
    points: float
    tests: tuple[str, ...]


def test_scoring_splits_points_by_function_then_case(outcomes):
    parts = [
        Part("basics", 10, ("test_pass", "test_fail")),
        Part("params", 8, ("test_param",)),
        Part("credit", 4, ("test_partial", "test_note_and_figure")),
        Part("absent", 3, ("test_never_written",)),
    ]
    grade = scoring.score(parts, list(outcomes.values()), student_id="s1",
                          assignment="demo", execution_time_s=1.5)
    points = {part.name: part.points for part in grade.parts}
    assert points == {"basics": 5.0, "params": 4.0, "credit": 2.5, "absent": 0.0}
    assert grade.score == 11.5 and grade.max_score == 25.0
    absent = grade.parts[3].tests[0]
    assert absent.status == records.ERROR and "did not run" in absent.message
    assert {o.name for o in grade.unassigned} == {
        "test_fail_without_message", "test_error", "test_skipped"}


def test_results_json_has_gradescopes_shape(outcomes):
    parts = [Part("params", 8, ("test_param",)), Part("basics", 2, ("test_pass",))]
    grade = scoring.score(parts, list(outcomes.values()), student_id="s1",
                          assignment="demo", execution_time_s=2.0)
    results = records.to_results_json(grade)
    assert results["score"] == 6.0
    assert results["execution_time"] == 2.0
    assert len(results["tests"]) == 5
    for test in results["tests"]:
        assert set(test) >= {"name", "score", "max_score", "status", "output", "visibility"}
        assert test["status"] in ("passed", "failed")
    assert sum(t["max_score"] for t in results["tests"]) == pytest.approx(10.0)
    assert sum(t["score"] for t in results["tests"]) == pytest.approx(results["score"])
    assert results["extra_data"]["student_id"] == "s1"

"""The kind of every outcome is data: set by the plugin from the exception's class, kept in
results.json and the gradebook, and what reports choose hints from; a grader error is never
charged to the student."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np  # imported before pytester's module snapshot: numpy loads only once
import pytest

import grader.checks.diagnose  # noqa: F401 - the same, for the suite's imports
from grader import scoring
from grader.config import load_assignment
from grader.gradebook import open_gradebook
from grader.intake import Submission
from grader.results import records
from grader.results.plugin import ResultsCollector

pytest_plugins = ["pytester"]

ACT = load_assignment(Path(__file__).parent / "files" / "grading" / "repo" / "assignments"
                      / "act" / "assignment.toml")

KIND_SUITE = '''
import numpy as np
import pytest

from grader.checks.diagnose import Mistake, fail
from grader.runtime.errors import (
    ImportFailed, ProtocolViolation, StudentCrashed, StudentError, StudentTimeout,
    TimeBudgetExhausted,
)

TRANSPOSED = Mistake("grad_transposed", "your gradient is transposed: dW = X.T @ dY",
                     lambda: np.arange(6.0).reshape(3, 2))

def test_passed():
    pass

def test_wrong():
    assert 1 == 2, "forward returned 1; expected 2"

def test_diagnosed():
    fail("grad_W returned other values; expected the reference", np.arange(6.0).reshape(3, 2),
         [TRANSPOSED])

def test_raised():
    raise StudentError("ValueError", "bad shape")

def test_memory():
    raise StudentError("MemoryError", "")

def test_killed_for_memory():
    raise StudentCrashed("killed: memory limit 2048 MB exceeded")

def test_timeout():
    raise StudentTimeout(2.0, "train(...)")

def test_budget():
    raise TimeBudgetExhausted(30.0, "train(...)")

def test_crash():
    raise StudentCrashed("the submission called sys.exit(1) during forward")

def test_unreadable():
    raise ImportFailed("mlp_numpy", "SyntaxError: invalid syntax")

def test_refused():
    raise ProtocolViolation("forward returned a generator")

def test_grader_bug():
    expected = {"W": 1.0}
    assert expected["b"] == 1.0

@pytest.fixture
def broken_fixture():
    raise TypeError("the fixture has a bug")

def test_fixture_bug(broken_fixture):
    pass

def test_partial(credit):
    credit.set(0.5, "accuracy 0.80 is below 0.85")

def test_skipped():
    pytest.skip("no calibration")
'''

EXPECTED_KINDS = {
    "test_passed": records.KIND_PASSED, "test_wrong": records.KIND_WRONG,
    "test_diagnosed": records.KIND_WRONG, "test_raised": records.KIND_EXCEPTION,
    "test_memory": records.KIND_MEMORY, "test_killed_for_memory": records.KIND_MEMORY,
    "test_timeout": records.KIND_TIME_LIMIT, "test_budget": records.KIND_TIME_BUDGET,
    "test_crash": records.KIND_CRASH, "test_unreadable": records.KIND_UNREADABLE,
    "test_refused": records.KIND_REFUSED, "test_grader_bug": records.KIND_GRADER_ERROR,
    "test_fixture_bug": records.KIND_GRADER_ERROR, "test_partial": records.KIND_PARTIAL,
    "test_skipped": records.KIND_SKIPPED,
}


@dataclass(frozen=True)
class Part:
    name: str
    points: float
    tests: tuple[str, ...]


@pytest.fixture
def outcomes(pytester) -> dict[str, records.TestOutcome]:
    pytester.makepyfile(test_kinds=KIND_SUITE)
    collector = ResultsCollector()
    pytester.inline_run("--assert=plain", "-p", "grader.results.plugin", plugins=[collector])
    return {outcome.case: outcome for outcome in collector.outcomes}


def test_each_outcome_has_the_kind_of_what_it_raised(outcomes):
    assert {case: outcome.kind for case, outcome in outcomes.items()} == EXPECTED_KINDS


def test_a_diagnosis_is_recorded_as_data(outcomes):
    assert outcomes["test_diagnosed"].diagnosis == "grad_transposed"
    assert "your gradient is transposed" in outcomes["test_diagnosed"].message
    assert all(outcome.diagnosis == "" for case, outcome in outcomes.items()
               if case != "test_diagnosed")


def _grade(outcomes):
    parts = [Part("grads", 4, ("test_passed", "test_diagnosed")),
             Part("buggy", 6, ("test_grader_bug", "test_wrong"))]
    return scoring.score(parts, list(outcomes.values()), student_id="s1", assignment="demo",
                         execution_time_s=1.0)


def test_kind_and_diagnosis_travel_in_results_json(outcomes):
    results = records.to_results_json(_grade(outcomes))
    extra = {test["name"]: test["extra_data"] for test in results["tests"]}
    assert extra["grads: test_diagnosed"]["diagnosis"] == "grad_transposed"
    assert extra["grads: test_diagnosed"]["kind"] == records.KIND_WRONG
    assert extra["buggy: test_grader_bug"]["kind"] == records.KIND_GRADER_ERROR
    from grader.reports.inputs import from_results_json

    back = from_results_json(json.loads(records.json_text(results)))
    by_case = {test.case: test for part in back.grade.parts for test in part.tests}
    assert by_case["test_diagnosed"].diagnosis == "grad_transposed"
    assert by_case["test_grader_bug"].kind == records.KIND_GRADER_ERROR


def test_kind_and_diagnosis_are_stored_in_the_gradebook(db_url):
    cases = [records.TestOutcome(test, test, records.FAILED, 0.0, "wrong",
                                 kind=records.KIND_WRONG, diagnosis="grad_transposed")
             for part in ACT.parts for test in part.tests]
    grade = scoring.score(ACT.parts, cases, student_id="s1", assignment="act",
                          execution_time_s=1.0)
    submission = Submission(student_id="s1", source=Path("/class/s1"),
                            workspace=Path("/nonexistent"), files={"act.py": "v1" * 8},
                            problems=(), submitted_at=ACT.due, expected=("act.py",))
    with open_gradebook(db_url) as gradebook:
        gradebook.record(ACT, submission, grade)
        [row] = gradebook.latest("act")
    stored = [test for part in row.grade.parts for test in part.tests]
    assert {(t.kind, t.diagnosis) for t in stored} == {(records.KIND_WRONG, "grad_transposed")}


def test_an_older_gradebook_gets_the_new_columns(tmp_path):
    path = tmp_path / "old.db"
    with open_gradebook(f"sqlite:///{path}"):
        pass
    with sqlite3.connect(path) as connection:  # as a gradebook made before outcome kinds
        connection.execute("DROP TABLE alembic_version")  # and before migrations
        connection.execute("ALTER TABLE test_results DROP COLUMN kind")
        connection.execute("ALTER TABLE test_results DROP COLUMN diagnosis")
    with open_gradebook(f"sqlite:///{path}"):
        pass
    with sqlite3.connect(path) as connection:
        columns = {row[1] for row in connection.execute("PRAGMA table_info(test_results)")}
    assert {"kind", "diagnosis"} <= columns


# -- a grader error is never the student's fault ---------------------------------------------

REPO = Path(__file__).parent / "files" / "grading" / "repo"
SUBMISSIONS = Path(__file__).parent / "files" / "grading" / "submissions"

# A check with a real bug: it looks up a key its own table does not have.
BUGGY_CHECK = '''

def test_sigmoid_large(student):
    x = np.array([-1000.0, 0.0, 1000.0])
    expected = {"small": np.array([0.0, 0.5, 1.0])}
    assert_close(student.act.sigmoid(x), expected["large"], "`sigmoid` on ±1000")
'''


@pytest.fixture(scope="module")
def buggy_class(tmp_path_factory):
    """`grader autograde` on two students with a hidden suite whose check raises KeyError."""
    from grader import autograde

    root = tmp_path_factory.mktemp("buggy")
    course = root / "course"
    shutil.copytree(REPO, course)
    hidden = course / "autograde_tests" / "act" / "test_hidden.py"
    source = hidden.read_text(encoding="utf-8")
    hidden.write_text(source[:source.index("\ndef test_sigmoid_large")] + BUGGY_CHECK,
                      encoding="utf-8")
    klass = root / "class"
    for name in ("wrong_relu", "train_at_top"):
        shutil.copytree(SUBMISSIONS / name, klass / name)
    db = f"sqlite:///{root / 'gb.db'}"
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        status = autograde.main(assignment=str(course / "assignments" / "act"),
                                submissions=klass, out=root / "graded", db=db)
    with open_gradebook(db) as gradebook:
        rows = {row.student_id: row for row in gradebook.latest("act")}
    return status, stderr.getvalue(), rows, root / "graded"


def test_a_bug_in_a_check_is_a_grader_error_that_costs_nothing(buggy_class):
    status, _, rows, graded = buggy_class
    # Without the bug: train_at_top 10, wrong_relu 7 (test_gradebook); the buggy case
    # (test_sigmoid_large, 2 of the sigmoid part's 4 points) is credited, not charged.
    assert {k: r.final_score for k, r in rows.items()} == {"train_at_top": 10, "wrong_relu": 7}
    for row in rows.values():
        [case] = [t for p in row.grade.parts for t in p.tests if t.name == "test_sigmoid_large"]
        assert case.kind == records.KIND_GRADER_ERROR
        assert "KeyError" in case.message and scoring.PROVISIONAL in case.message
        [problem] = row.grade.problems
        assert records.is_grader_problem(problem) and "test_sigmoid_large" in problem
    results = json.loads((graded / "wrong_relu" / "results.json").read_text())
    kinds = {t["name"]: t["extra_data"]["kind"] for t in results["tests"]}
    assert kinds["sigmoid: test_sigmoid_large"] == records.KIND_GRADER_ERROR
    assert kinds["relu: test_relu_values"] == records.KIND_WRONG


def test_a_grader_error_makes_autograde_exit_3_and_is_listed(buggy_class):
    from grader import autograde

    status, stderr, _, _ = buggy_class
    assert status == autograde.PROBLEMS_EXIT
    listed = [line for line in stderr.splitlines() if "test_sigmoid_large" in line]
    assert len(listed) == 2 and all(autograde.GRADER_TODO in line for line in listed)


def test_a_grader_error_is_listed_first_in_the_class_summary(buggy_class):
    from grader.reports import class_summary
    from grader.reports.inputs import from_results_json

    _, _, _, graded = buggy_class
    rows = [from_results_json(graded / name / "results.json", config=ACT)
            for name in ("wrong_relu", "train_at_top")]
    context = class_summary.summary_context(rows, config=ACT)
    assert context["reasons"][0]["reason"] == records.KIND_GRADER_ERROR
    assert context["reasons"][0]["students"] == 2
    assert [item["student"] for item in context["grader_errors"]] == ["train_at_top",
                                                                      "wrong_relu"]
    html = class_summary.render_class_summary(rows, config=ACT)
    assert html.index("Grader errors") < html.index("Score distribution")


# -- strange student values are wrong results, not grader errors ---------------------------------

STRANGE = {
    "none": "None",
    "text": "'0.5'",
    "mapping": "{'values': x}",
    "nested": "[[1.0, [2.0]], 3.0]",
    "handle": "object()",  # stays in the runtime: the grader receives a handle
    "function": "sigmoid",
}


@pytest.mark.parametrize("name", sorted(STRANGE))
def test_strange_returned_values_are_wrong_results(name, tmp_path):
    from grader.grading.run import grade_path

    folder = tmp_path / name
    folder.mkdir()
    (folder / "act.py").write_text(
        f"def relu(x):\n    return {STRANGE[name]}\n\n\n"
        f"def sigmoid(x):\n    return {STRANGE[name]}\n", encoding="utf-8")
    grade = grade_path(ACT, folder).grade
    cases = [case for part in grade.parts for case in part.tests]
    assert {case.kind for case in cases} <= {records.KIND_WRONG, records.KIND_REFUSED}, [
        (case.case, case.kind, case.message) for case in cases]
    assert grade.score == 0 and not grade.problems


@pytest.mark.parametrize("value", [None, "0.5", {"a": 1}, [[1.0, [2.0]], 3.0], object(),
                                   [1, "x"], b"\x00"])
def test_the_array_checks_refuse_strange_values_with_an_assertion(value):
    from grader.checks.arrays import as_number, assert_close, assert_number, assert_shape

    for check in (lambda: assert_close(value, np.zeros(2), "`f(x)`"),
                  lambda: assert_shape(value, (2,), "`f(x)`"),
                  lambda: as_number(value, "`loss(x)`"),
                  lambda: assert_number(value, 1.0, "`loss(x)`", tolerance=1e-6)):
        with pytest.raises(AssertionError):
            check()

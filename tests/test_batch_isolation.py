"""One bad submission never stops the others (issue 9, item 5): faults injected per step.

Each per-submission step is made to raise RecursionError, MemoryError or ValueError for
one submission: in the worker (intake, parsing for definitions, the runtime, the suite)
through `grader.batch.grade_one`, and in the calling process (results.json, the
gradebook) through `grader.autograde.main`. The fault becomes that submission's recorded
problem; the others are graded and recorded as usual.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from grader import autograde, batch
from grader.batch import Job, grade_one
from grader.gradebook import Gradebook, open_gradebook
from grader.results.records import ERROR, is_grader_problem

FILES = Path(__file__).parent / "files" / "grading"
REPO = FILES / "repo"
TOML = REPO / "assignments" / "act" / "assignment.toml"
ERRORS = [RecursionError("maximum recursion depth exceeded while calling a Python object"),
          MemoryError(), ValueError("could not convert")]


def _raise(error: BaseException):
    def raiser(*args, **kwargs):
        raise error
    return raiser


def _assert_not_graded(graded, step: str, error: BaseException, student: str) -> None:
    grade = graded.grade
    assert grade.student_id == student and grade.score == 0
    [problem] = [p for p in grade.problems if is_grader_problem(p)]
    assert problem.startswith(f"the grader could not {step}: {type(error).__name__}")
    tests = [t for part in grade.parts for t in part.tests]
    assert len(tests) == 4 and {t.status for t in tests} == {ERROR}
    assert all(problem in t.message for t in tests)


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
def test_a_fault_in_intake_is_that_submissions_problem(monkeypatch, error):
    monkeypatch.setattr(batch, "intake", _raise(error))
    graded = grade_one(Job(TOML, REPO, FILES / "submissions" / "wrong_relu"))
    _assert_not_graded(graded, "read the submission", error, "wrong_relu")


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
def test_a_fault_in_the_suite_is_that_submissions_problem(monkeypatch, error):
    monkeypatch.setattr(batch, "run_suite", _raise(error))
    graded = grade_one(Job(TOML, REPO, FILES / "submissions" / "wrong_relu"))
    _assert_not_graded(graded, "run the hidden suite", error, "wrong_relu")
    assert graded.submission.files  # intake got that far: its hashes are kept


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
def test_a_fault_starting_the_runtime_is_that_submissions_problem(monkeypatch, error):
    from grader.grading import run

    monkeypatch.setattr(run, "StudentRuntime", _raise(error))
    graded = grade_one(Job(TOML, REPO, FILES / "submissions" / "wrong_relu"))
    _assert_not_graded(graded, "run the hidden suite", error, "wrong_relu")


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
def test_a_fault_parsing_for_definitions_costs_that_submission_only(monkeypatch, error):
    from grader.runtime import student

    monkeypatch.setattr(student, "definitions_only", _raise(error))
    graded = grade_one(Job(TOML, REPO, FILES / "submissions" / "wrong_relu"))
    assert graded.grade.score == 0  # returned, not raised
    recorded = [*graded.grade.problems, *(t.message for p in graded.grade.parts
                                          for t in p.tests)]
    assert any(type(error).__name__ in text for text in recorded), recorded


def test_the_graders_own_ctrl_c_still_stops_it(monkeypatch):
    monkeypatch.setattr(batch, "intake", _raise(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        grade_one(Job(TOML, REPO, FILES / "submissions" / "wrong_relu"))


@pytest.fixture
def klass(tmp_path) -> Path:
    folder = tmp_path / "class"
    for name in ("wrong_relu", "exits", "train_at_top"):
        shutil.copytree(FILES / "submissions" / name, folder / name)
    return folder


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
def test_faults_writing_and_recording_cost_their_submission_only(tmp_path, klass, monkeypatch,
                                                                 capsys, error):
    real_write, real_record = autograde.write_results, Gradebook.record

    def write(result, out, *context):  # context: the config and gradebook for the record
        if result.grade.student_id == "exits":
            raise error
        return real_write(result, out, *context)

    def record(self, config, submission, grade, **kwargs):
        if submission.student_id == "train_at_top" and not grade.problems:
            raise error  # the real grade fails; its problem alone is then recorded
        return real_record(self, config, submission, grade, **kwargs)

    monkeypatch.setattr(autograde, "write_results", write)
    monkeypatch.setattr(Gradebook, "record", record)
    db, out = f"sqlite:///{tmp_path / 'gb.db'}", tmp_path / "graded"
    status = autograde.main(assignment=str(TOML.parent), submissions=klass, out=out, db=db,
                            workers=2)
    err = capsys.readouterr().err
    assert status == autograde.PROBLEMS_EXIT
    assert "2 submissions had problems:" in err
    name = type(error).__name__
    assert f"  exits (exits): the grader could not write its results.json: {name}" in err
    assert (f"  train_at_top (train_at_top): the grader could not record it in the "
            f"gradebook: {name}") in err
    assert "graded again on the next `grader autograde` run" in err
    with open_gradebook(db) as gradebook:
        rows = {row.student_id: row for row in gradebook.latest("act")}
    assert rows["wrong_relu"].final_score == 7 and not rows["wrong_relu"].grade.problems
    assert rows["exits"].final_score == 6  # graded; only its results.json is missing
    assert any("write its results.json" in p for p in rows["exits"].grade.problems)
    assert rows["train_at_top"].final_score == 0
    assert any("record it in the gradebook" in p for p in rows["train_at_top"].grade.problems)
    assert sorted(p.name for p in out.iterdir()) == ["train_at_top", "wrong_relu"]
    written = json.loads((out / "train_at_top" / "results.json").read_text())
    assert written["score"] == 0 and "record it in the gradebook" in written["output"]

    monkeypatch.undo()  # the next run: the grader's failures are graded again, nothing else
    status = autograde.main(assignment=str(TOML.parent), submissions=klass, out=out, db=db,
                            workers=2)
    err = capsys.readouterr().err
    assert status == 0, err
    assert "1 submission already graded with the same files: skipped" in err
    with open_gradebook(db) as gradebook:
        rows = {row.student_id: row for row in gradebook.latest("act")}
    assert {k: r.final_score for k, r in rows.items()} == {"wrong_relu": 7, "exits": 6,
                                                           "train_at_top": 10}
    assert not any(r.grade.problems for r in rows.values())


def test_a_submission_whose_worker_always_dies_is_recorded_as_a_problem(tmp_path, monkeypatch,
                                                                         capsys):
    klass = tmp_path / "class"
    shutil.copytree(FILES / "submissions" / "wrong_relu", klass / "wrong_relu")
    monkeypatch.setenv("NN_GRADER_TEST_KILL_ALWAYS", "1")  # the suite's conftest kills it
    db = f"sqlite:///{tmp_path / 'gb.db'}"
    status = autograde.main(assignment=str(TOML.parent), submissions=klass,
                            out=tmp_path / "graded", db=db, workers=1)
    assert status == autograde.PROBLEMS_EXIT
    assert ("  wrong_relu (wrong_relu): the grader could not grade it: the grader's worker "
            "died 3 times while grading it") in capsys.readouterr().err
    with open_gradebook(db) as gradebook:
        [row] = gradebook.latest("act")
    assert row.student_id == "wrong_relu" and row.final_score == 0
    assert any(is_grader_problem(p) for p in row.grade.problems)
    results = json.loads((tmp_path / "graded" / "wrong_relu" / "results.json").read_text())
    assert "worker died 3 times" in results["output"]

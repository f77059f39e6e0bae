"""`grader export`: CSV for the LMS, Gradescope results.json, the Gradescope autograder bundle.

Two submissions of the golden `act` assignment are graded once for the module (wrong_relu:
7/10, train_at_top: 10/10) and recorded into a fresh gradebook per test.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from datetime import timedelta
from pathlib import Path

import jsonschema
import pytest

from grader import export
from grader.config import LatePolicy, load_assignment
from grader.gradebook import open_gradebook
from grader.grading.run import grade_path

FILES = Path(__file__).parent / "files" / "grading"
SCHEMA = json.loads(export.SCHEMA_PATH.read_text())


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """A copy of the course folder and its two graded submissions."""
    course = tmp_path_factory.mktemp("export") / "course"
    shutil.copytree(FILES / "repo", course)
    config = load_assignment(course / "assignments" / "act")
    return course, config, [grade_path(config, FILES / "submissions" / name)
                            for name in ("wrong_relu", "train_at_top")]


@pytest.fixture
def course(graded, db_url, monkeypatch):
    """The course folder as the current folder, its gradebook at `db_url`: wrong_relu two
    days late under 10 % a day, train_at_top on time, `absent` on the roster only."""
    folder, config, results = graded
    monkeypatch.chdir(folder)
    late = dataclasses.replace(config, late=LatePolicy("percent_per_day", percent=10))
    with open_gradebook(db_url) as gradebook:
        gradebook.add_students([("absent", "Absent Student"), ("wrong_relu", "Wendy Relu")])
        for result in results:
            when = config.due + (timedelta(hours=30) if result.submission.student_id ==
                                 "wrong_relu" else -timedelta(days=1))
            submission = dataclasses.replace(result.submission, submitted_at=when)
            gradebook.record(late, submission, result.grade)
    return folder, db_url


def _export(course, capsys, **kwargs) -> tuple[int, str, str]:
    folder, db = course
    kwargs.setdefault("out", "-")
    code = export.main(assignment="act", db=db, **kwargs)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _table(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_csv_has_a_row_per_student_with_parts_lateness_and_final_score(course, capsys):
    code, out, err = _export(course, capsys, format="csv")
    assert code == 0, err
    rows = {row["student_id"]: row for row in _table(out)}
    assert list(rows) == ["absent", "train_at_top", "wrong_relu"]
    assert rows["wrong_relu"] | {"submitted_at": ""} == {
        "student_id": "wrong_relu", "name": "Wendy Relu", "relu": "3", "sigmoid": "4",
        "score": "7", "max_score": "10", "submitted_at": "", "late_days": "2",
        "late_multiplier": "0.8", "override": "", "final_score": "5.6", "status": "graded"}
    assert rows["wrong_relu"]["submitted_at"] == "2026-12-23T22:00:00+00:00"  # due + 30 h
    assert rows["train_at_top"]["final_score"] == "10"
    assert rows["absent"] == {
        "student_id": "absent", "name": "Absent Student", "relu": "", "sigmoid": "",
        "score": "", "max_score": "10", "submitted_at": "", "late_days": "",
        "late_multiplier": "", "override": "", "final_score": "0", "status": "missing"}


def test_csv_presets_and_columns(course, capsys, tmp_path):
    folder, db = course
    with open_gradebook(db) as gradebook:
        gradebook.set_override("act", "absent", 8, "paper submission")
    _, out, _ = _export(course, capsys, format="csv", preset="canvas")
    assert out.splitlines()[0] == "Student,ID,SIS User ID,SIS Login ID,Section,Two activations"
    assert "Absent Student,absent,,,,8" in out.splitlines()
    _, out, _ = _export(course, capsys, format="csv", preset="moodle")
    assert out.splitlines()[:2] == ["ID number,Full name,Two activations",
                                    "absent,Absent Student,8"]
    _, out, _ = _export(course, capsys, format="csv",
                        columns="student_id=Matrikel, part:relu=ReLU (6), final_score={id}")
    assert out.splitlines() == ["Matrikel,ReLU (6),act", "absent,,8", "train_at_top,6,10",
                                "wrong_relu,3,5.6"]
    code, out, _ = _export(course, capsys, format="csv", out=tmp_path)
    assert code == 0 and "3 students written to" in out
    # utf-8-sig by default: the byte order mark makes Excel read the file as UTF-8
    assert (tmp_path / "act-grades.csv").read_bytes().startswith(
        b"\xef\xbb\xbfstudent_id,name,relu,")
    code, _, _ = _export(course, capsys, format="csv", student="wrong_relu",
                         out=tmp_path / "one.csv")
    assert len((tmp_path / "one.csv").read_text().splitlines()) == 2


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"format": "xlsx"}, "unknown format `xlsx`; formats: csv, gradescope, "
                         "gradescope-autograder"),
    ({"format": "csv", "preset": "blackboard"}, "unknown preset `blackboard`; presets: "
                                                "canvas, moodle"),
    ({"format": "csv", "columns": "student_id,grade"}, "unknown column `grade`; columns: "
                                                       "student_id, name, parts"),
    ({"format": "csv", "columns": "part:tanh"}, "unknown part `tanh` in column `part:tanh`; "
                                                "parts: relu, sigmoid"),
    ({"format": "csv", "student": "s404"}, "unknown student `s404` for `act`; students: "
                                           "absent, train_at_top, wrong_relu"),
    ({"format": "csv", "assignment": "mlp"}, "unknown assignment `mlp`; the gradebook has: "
                                             "act; assignments/ has: act"),
])
def test_bad_input_names_it_and_lists_what_exists(course, capsys, kwargs, message):
    folder, db = course
    kwargs = {"assignment": "act", "out": "-", "db": db, **kwargs}
    assert export.main(**kwargs) == 2
    err = capsys.readouterr().err
    assert err.startswith("grader: ") and message in err, err


def test_gradescope_results_are_valid_and_hide_hidden_tests(course, capsys, tmp_path):
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    code, out, err = _export(course, capsys, format="gradescope", out=tmp_path / "gs")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "gs").iterdir()) == ["train_at_top",
                                                                   "wrong_relu"]
    results = json.loads((tmp_path / "gs" / "wrong_relu" / "results.json").read_text())
    jsonschema.validate(results, SCHEMA)
    assert results["score"] == 5.6 and "Late by 2 day(s)" in results["output"]
    assert sum(t["score"] for t in results["tests"]) == 7
    visibility = {t["name"]: (t["visibility"], t["status"]) for t in results["tests"]}
    assert visibility["relu: test_relu_values"] == ("visible", "failed")
    assert visibility["sigmoid: test_sigmoid_large"] == ("after_due_date", "passed")
    assert {t["number"] for t in results["tests"]} >= {"1.1", "2.3"}
    bad = {**results, "tests": [{**results["tests"][0], "visibility": "sometimes"}]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, SCHEMA)
    with pytest.raises(jsonschema.ValidationError):  # only documented keys at the top
        jsonschema.validate({**results, "extra": {}}, SCHEMA)


def test_the_autograder_bundle_grades_a_submission_like_gradescope(graded, tmp_path):
    folder, config, _ = graded
    code = export.main(assignment=str(folder / "assignments" / "act"),
                       format="gradescope-autograder", out=tmp_path)
    assert code == 0
    bundle = tmp_path / "act-gradescope-autograder.zip"
    root = tmp_path / "autograder"
    with zipfile.ZipFile(bundle) as opened:
        names = set(opened.namelist())
        assert opened.getinfo("run_autograder").external_attr >> 16 == 0o100755
        opened.extractall(root / "source")
    assert {"setup.sh", "run_autograder", "nn-grader/pyproject.toml",
            "nn-grader/grader/export/autograder.py", "course/assignments/act/assignment.toml",
            "course/autograde_tests/act/test_hidden.py", "course/solutions/act.py"} <= names
    assert not any("__pycache__" in name for name in names)
    for script in ("setup.sh", "run_autograder"):
        assert subprocess.run(["bash", "-n", root / "source" / script]).returncode == 0
    shutil.copytree(FILES / "submissions" / "wrong_relu", root / "submission")
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "GRADER_PYTHON": sys.executable}
    done = subprocess.run(["bash", root / "source" / "run_autograder"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    results = json.loads((root / "results" / "results.json").read_text())
    jsonschema.validate(results, SCHEMA)
    assert results["score"] == 7
    assert {t["visibility"] for t in results["tests"]} == {"visible", "after_due_date"}


def test_a_grader_failure_in_gradescope_still_writes_results(tmp_path, capsys):
    (tmp_path / "submission").mkdir()
    assert export.run_gradescope_autograder(tmp_path, tmp_path / "course", "act") == 0
    results = json.loads((tmp_path / "results" / "results.json").read_text())
    jsonschema.validate(results, SCHEMA)
    assert results["score"] == 0 and "could not grade this submission" in results["output"]
    assert "ConfigError" in capsys.readouterr().err

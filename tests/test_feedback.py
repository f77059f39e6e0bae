"""`grader feedback`: the gradebook and the results.json files `grader autograde` wrote give
identical reports (one grade record, one results.json serializer), and a forged results.json
can neither inflate a grade nor break the report.

One class (wrong_relu, train_at_top of the golden `act` assignment, late under 10 % a day,
a roster with Chinese names, an extension for one student) is graded once for the module.
"""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

import jsonschema
import pytest

from grader import autograde, feedback
from grader.config import load_assignment
from grader.gradebook import open_gradebook
from grader.reports.inputs import from_results_json
from grader.results.records import read_results_json

FILES = Path(__file__).parent / "files" / "grading"
SCHEMA = json.loads((Path(feedback.__file__).parent / "schemas" /
                     "gradescope_results.schema.json").read_text(encoding="utf-8"))
STUDENTS = ("train_at_top", "wrong_relu")


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """(course toml, gradebook path, results folder) after `grader autograde`."""
    root = tmp_path_factory.mktemp("feedback")
    shutil.copytree(FILES / "repo", root / "course")
    toml = root / "course" / "assignments" / "act" / "assignment.toml"
    toml.write_text(toml.read_text(encoding="utf-8") +
                    '\n[late]\npolicy = "percent_per_day"\npercent = 10\n', encoding="utf-8")
    config = load_assignment(toml)
    for name in STUDENTS:
        shutil.copytree(FILES / "submissions" / name, root / "class" / name)
    db, results = root / "gradebook.db", root / "graded"
    with open_gradebook(db) as gradebook:
        gradebook.add_students([("wrong_relu", "王小明"), ("train_at_top", "Ada <b>L</b>")])
        gradebook.extend(config, "train_at_top", 1, "医院证明", by="prof")
    status = autograde.main(assignment=str(toml), submissions=root / "class", out=results,
                            db=str(db), workers=1,
                            submitted_at=config.due + timedelta(hours=30))
    assert status == 0
    return toml, db, results


def test_results_json_follows_the_gradescope_schema_and_carries_the_record(graded):
    _, _, results = graded
    for name in STUDENTS:
        data = json.loads((results / name / "results.json").read_text(encoding="utf-8"))
        jsonschema.validate(data, SCHEMA)
        extra = data["extra_data"]
        assert {t["visibility"] for t in data["tests"]} == {"visible", "after_due_date"}
        if name == "wrong_relu":  # 30 hours late: 2 started days, x 0.8
            assert (extra["late_days"], extra["late_multiplier"]) == (2, 0.8)
            assert data["score"] == pytest.approx(extra["tests_score"] * 0.8)
            assert extra["display_name"] == "王小明"
        else:  # one day's extension: 6 hours late, 1 day
            assert (extra["late_days"], extra["extension_days"]) == (1, 1)
            assert extra["extension_reason"] == "医院证明"


def test_the_gradebook_and_the_results_json_give_identical_reports(graded, tmp_path):
    toml, db, results = graded
    from_book, from_files = tmp_path / "book", tmp_path / "files"
    assert feedback.main(assignment=str(toml), db=db, out=from_book) == 0
    assert feedback.main(assignment=str(toml), results=results, out=from_files) == 0
    for name in STUDENTS:
        for report in ("report.html", "report.md"):
            book = (from_book / name / report).read_text(encoding="utf-8")
            files = (from_files / name / report).read_text(encoding="utf-8")
            assert book == files, f"{name}/{report} differs"
    wrong = (from_files / "wrong_relu" / "report.md").read_text(encoding="utf-8")
    assert "王小明" in wrong and "Late submission" in wrong  # the names and the penalty
    extended = (from_files / "train_at_top" / "report.html").read_text(encoding="utf-8")
    assert "Extension of 1 day(s) granted (医院证明)" in extended
    assert "Ada <b>L</b>" not in extended  # escaped in HTML


def _forged(results: Path) -> dict:
    data = json.loads((results / "wrong_relu" / "results.json").read_text(encoding="utf-8"))
    data["score"] = 1e308
    for test in data["tests"]:
        test["score"] = test["max_score"] = 1e9
        test["extra_data"]["fraction"] = 7
        test["extra_data"]["duration_s"] = "slow"
        test["extra_data"]["figures"] = ["not", "a", "mapping"]
    data["tests"].append("not a test")
    data["tests"].append({"name": "bonus: test_free_points", "score": 100, "max_score": 100,
                          "status": "passed", "extra_data": {"part": "bonus", "fraction": 1}})
    extra = data["extra_data"]
    extra.update(parts=[{"name": "relu", "points": 1e9, "max_points": 1e9}],
                 late_multiplier=7, late_days=-3, extension_days=1e9, override=1000,
                 override_reason="forged", final_score=1e9,
                 submitted_at=(load_assignment(results.parent / "course" / "assignments" /
                                               "act").due - timedelta(days=9)).replace(
                     tzinfo=None).isoformat(),  # naive: unknown, never "on time"
                 display_name="<script>alert(1)</script>",
                 notes=["<img src=x onerror=alert(1)>", 42], problems="not a list")
    return data


def test_a_forged_results_json_cannot_inflate_the_grade(graded):
    toml, _, results = graded
    config = load_assignment(toml)
    read = read_results_json(_forged(results), config=config)
    assert [p.max_points for p in read.grade.parts] == [6.0, 4.0]  # from assignment.toml
    assert read.grade.score <= 10 and read.record.final <= 10
    assert read.record.override_points is None  # overrides live in the gradebook
    assert read.record.extension_days == 365  # clamped to what `grader extend` allows
    assert read.record.submitted_at is None  # a naive time is unknown
    assert [t.name for t in read.grade.unassigned] == ["test_free_points"]  # earns nothing
    assert read.grade.problems == ()


@pytest.mark.parametrize("payload", [[], "text", 3, None])
def test_a_results_json_that_is_not_an_object_is_that_students_problem(graded, tmp_path,
                                                                       payload, capsys):
    toml, _, results = graded
    copy = tmp_path / "graded"
    shutil.copytree(results, copy)
    (copy / "wrong_relu" / "results.json").write_text(json.dumps(payload), encoding="utf-8")
    assert feedback.main(assignment=str(toml), results=copy, out=tmp_path / "out") == 3
    assert "wrong_relu/results.json: the grader could not read results.json" in (
        capsys.readouterr().err)
    assert (tmp_path / "out" / "train_at_top" / "report.html").is_file()


def test_a_forged_results_json_renders_escaped_and_within_bounds(graded, tmp_path):
    toml, _, results = graded
    copy = tmp_path / "graded"
    shutil.copytree(results, copy)
    (copy / "wrong_relu" / "results.json").write_text(json.dumps(_forged(results)),
                                                      encoding="utf-8")
    assert feedback.main(assignment=str(toml), results=copy, out=tmp_path / "out") == 0
    html = (tmp_path / "out" / "wrong_relu" / "report.html").read_text(encoding="utf-8")
    assert "<script>alert(1)</script>" not in html and "<img src=x" not in html
    report = from_results_json(copy / "wrong_relu" / "results.json", config=load_assignment(toml))
    assert report.final <= 10 and report.override_points is None

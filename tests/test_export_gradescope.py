"""`grader export --format gradescope` and `gradescope-autograder` (grader/export/gradescope.py,
grader/export/autograder.py): results.json through the one serializer, the bundle.

The class: tests/export_class.py (two graded submissions of the golden `act` assignment,
recorded into a fresh gradebook per test).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile

import export_class
import jsonschema
import pytest
from export_class import FILES, course_late_config, run_export

from grader import export
from grader.gradebook import open_gradebook

SCHEMA = json.loads(export.SCHEMA_PATH.read_text())

# the shared class's fixtures, used by name
graded, course = export_class.graded, export_class.course


def test_gradescope_results_are_valid_and_hide_hidden_tests(course, capsys, tmp_path):
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    code, out, err = run_export(course, capsys, format="gradescope", out=tmp_path / "gs")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "gs").iterdir()) == ["train_at_top",
                                                                   "wrong_relu"]
    results = json.loads((tmp_path / "gs" / "wrong_relu" / "results.json").read_text())
    jsonschema.validate(results, SCHEMA)
    assert results["score"] == 5.6 and "Late by 2 days" in results["output"]
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


def test_gradescope_results_carry_the_one_grade_record(course, capsys, tmp_path):
    folder, db = course
    with open_gradebook(db) as gradebook:
        gradebook.extend(course_late_config(course), "wrong_relu", 1, "ill", by="prof")
        gradebook.set_override("act", "train_at_top", 9.5, "copied the sigmoid")
    code, _, err = run_export(course, capsys, format="gradescope", out=tmp_path / "gs")
    assert code == 0, err
    wrong = json.loads((tmp_path / "gs" / "wrong_relu" / "results.json").read_text())
    top = json.loads((tmp_path / "gs" / "train_at_top" / "results.json").read_text())
    for results in (wrong, top):
        jsonschema.validate(results, SCHEMA)
    assert wrong["score"] == pytest.approx(6.3)
    assert (wrong["extra_data"]["late_days"], wrong["extra_data"]["extension_days"]) == (1, 1)
    assert "Extension of 1 day(s) granted (ill)" in wrong["output"]
    assert top["score"] == 9.5 and top["extra_data"]["override_reason"] == "copied the sigmoid"
    assert "Instructor override: 9.5 points. copied the sigmoid" in top["output"]


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

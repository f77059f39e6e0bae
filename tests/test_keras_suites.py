"""The hidden suites of `keras_mlp`, `keras_cnn` and `alexnet` grade what they should.

Every submission goes through the real pipeline (intake, sandboxed runtime with
TensorFlow, pytest, scoring) on the CPU budget of each assignment. Golden cases live
in assignments/<assignment>/samples/ (see tests/test_hidden_suites.py for the rules):

- the reference scores full marks and the released skeleton scores zero on every part;
- each planted bug loses points in exactly the parts `bugs.toml` lists for it;
- each correct variant in another style scores full marks;
- each hostile submission in tests/files/keras_hostile/ is contained: it earns no points
  where it should not, and the failure says why.

Each grading starts a runtime that imports TensorFlow and trains a model (3 to 20 s on
2 cores), so every test here is slow. By default (about 4 minutes on 2 cores) every
keras_mlp and keras_cnn sample is graded, AlexNet (the slowest) only for the reference,
the skeleton and the planted bugs in `ALEXNET_QUICK`, and the two quick hostile cases;
`NN_GRADER_ALL_KERAS_SAMPLES=1` grades everything (about 7 minutes), including the
submission that trains into its 30 s time budget and the multi-gigabyte model.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from grader import data
from grader.config import AssignmentConfig, load_assignment
from grader.grading.run import grade_path
from grader.release.strip import strip_file
from grader.results.records import Grade
from grader.samples import PlantedBug, load_bugs, variants, write_bug

REPO = Path(__file__).resolve().parents[1]
HOSTILE = Path(__file__).resolve().parent / "files" / "keras_hostile"
ASSIGNMENTS = ("keras_mlp", "keras_cnn", "alexnet")
ALL_SAMPLES = os.environ.get("NN_GRADER_ALL_KERAS_SAMPLES") == "1"
ALEXNET_QUICK = {"save_weights_ckpt", "dropout_missing"}  # AlexNet: 15 to 20 s a grading
SLOW_HOSTILE = pytest.mark.skipif(not ALL_SAMPLES, reason="30 to 60 s; "
                                  "NN_GRADER_ALL_KERAS_SAMPLES=1 runs it")
DEVICE = "cpu"  # budgets and calibrations of the CPU, also on a machine with a GPU

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(data.FASHION_MNIST not in data.available(), reason="Fashion-MNIST is "
                       "not installed (apt-get install dataset-fashion-mnist); the committed "
                       "calibrations are for it"),
]


@pytest.fixture(autouse=True)
def _cpu_budgets(monkeypatch):
    monkeypatch.setenv("GRADER_DEVICE", DEVICE)


def _config(assignment: str) -> AssignmentConfig:
    return load_assignment(REPO / "assignments" / assignment / "assignment.toml")


def _samples(assignment: str) -> Path:
    return REPO / "assignments" / assignment / "samples"


def _bugs(assignment: str) -> dict[str, PlantedBug]:
    return {bug.name: bug for bug in load_bugs(_config(assignment))}


def _selected(assignment: str, names) -> list:
    return [pytest.param(assignment, name, id=f"{assignment}-{name}") for name in sorted(names)
            if ALL_SAMPLES or assignment != "alexnet" or name in ALEXNET_QUICK]


def _bug_cases() -> list:
    return [case for assignment in ASSIGNMENTS
            for case in _selected(assignment, _bugs(assignment))]


def _variant_cases() -> list:
    return [case for assignment in ASSIGNMENTS for case in _selected(
        assignment, (p.name for p in variants(_config(assignment))))]


def _by_part(grade: Grade) -> dict[str, tuple[float, float]]:
    return {part.name: (part.points, part.max_points) for part in grade.parts}


def _failures(grade: Grade) -> str:
    return "\n".join(f"{part.name}: {test.case}: {test.message.strip()[-300:]}"
                     for part in grade.parts for test in part.tests
                     if test.fraction < 1 and test.message)


def _messages(grade: Grade, part: str) -> str:
    return "\n".join(test.message for p in grade.parts if p.name == part for test in p.tests)


def _grade(assignment: str, path: Path) -> Grade:
    return grade_path(_config(assignment), path, dataset_name="fashion_mnist").grade


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_reference_scores_full_marks(assignment, tmp_path):
    config = _config(assignment)
    student = tmp_path / config.student_files[0]
    student.write_bytes((REPO / "reference" / student.name).read_bytes())
    grade = _grade(assignment, student)
    assert grade.score == config.total_points, _failures(grade)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_skeleton_scores_zero_on_every_part(assignment, tmp_path):
    config = _config(assignment)
    student = tmp_path / config.student_files[0]
    student.write_text(strip_file(REPO / "reference" / student.name).text, encoding="utf-8")
    grade = _grade(assignment, student)
    earning = {name: points for name, (points, _) in _by_part(grade).items() if points > 0}
    assert not earning, f"the skeleton earns points: {earning}"


@pytest.mark.parametrize("assignment, case", _bug_cases())
def test_planted_bug_loses_only_its_parts(assignment, case, tmp_path):
    config = _config(assignment)
    bug = _bugs(assignment)[case]
    expected = set(bug.parts)
    unknown = expected - {part.name for part in config.parts}
    assert not unknown, f"bugs.toml names parts that do not exist: {sorted(unknown)}"
    grade = _grade(assignment, write_bug(config, bug, tmp_path / case))
    lost = {name for name, (points, maximum) in _by_part(grade).items() if points < maximum}
    assert lost == expected, (
        f"{assignment}/{case}: lost points in {sorted(lost)}; expected {sorted(expected)}\n"
        + _failures(grade))


@pytest.mark.parametrize("assignment, variant", _variant_cases())
def test_correct_variant_scores_full_marks(assignment, variant):
    config = _config(assignment)
    grade = _grade(assignment, _samples(assignment) / "variants" / variant)
    assert grade.score == config.total_points, _failures(grade)


# -- hostile submissions --------------------------------------------------------------------

def test_constant_predictions_earn_no_accuracy_points():
    grade = _grade("keras_cnn", HOSTILE / "constant_predict")
    points, _ = _by_part(grade)["accuracy"]
    assert points == 0, _failures(grade)
    assert "reached test accuracy 0." in _messages(grade, "accuracy"), _failures(grade)


def test_reading_the_test_labels_fails_in_the_sandbox():
    grade = _grade("keras_cnn", HOSTILE / "reads_test_labels")
    points, _ = _by_part(grade)["accuracy"]
    assert points == 0, _failures(grade)
    message = _messages(grade, "accuracy")
    assert "t10k-labels-idx1-ubyte.gz" in message and "FileNotFoundError" in message, message


@SLOW_HOSTILE
def test_training_past_its_time_budget_says_how_far_it_got():
    config = _config("keras_cnn")
    grade = _grade("keras_cnn", HOSTILE / "sleeps_in_call")
    budget = config.accuracy_test("test_accuracy").budget_for(DEVICE)
    message = _messages(grade, "accuracy")
    assert f"training stopped at its time budget of {budget['time_budget_s']:g} s" in message, (
        message)
    assert "batches" in message, message


@SLOW_HOSTILE
def test_a_multi_gigabyte_model_fails_only_its_own_parts():
    config = _config("keras_mlp")
    grade = _grade("keras_mlp", HOSTILE / "huge_model")
    parts = _by_part(grade)
    functional = {name for name in parts if name.startswith("functional_")}
    lost = {name for name, (points, maximum) in parts.items() if points < maximum}
    assert lost == functional, _failures(grade)
    assert all(parts[name][0] == 0 for name in functional), _failures(grade)
    message = _messages(grade, "functional_parameters")
    assert "memory" in message.lower(), message
    assert grade.score == config.total_points - sum(parts[name][1] for name in functional)

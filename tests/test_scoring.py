"""Scoring rules: accuracy credit in one helper, and grader errors credited provisionally."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from grader import scoring
from grader.checks.accuracy import accuracy_credit, score_accuracy
from grader.results import records


class Recorder:
    """Stands in for the `credit` and `figure` fixtures: keeps what a test gave them."""

    def __init__(self) -> None:
        self.credits: list[tuple[float, str]] = []
        self.figures: dict[str, object] = {}

    def set(self, fraction: float, message: str) -> None:
        self.credits.append((fraction, message))

    def __call__(self, name: str, value: object) -> None:
        self.figures[name] = value


@pytest.mark.parametrize("accuracy, fraction", [
    (0.90, 1.0), (0.85, 1.0), (0.80, 0.5), (0.75, 0.0), (0.10, 0.0), (float("nan"), 0.0),
    (float("inf"), 0.0),
])
def test_accuracy_credit_is_linear_between_floor_and_threshold(accuracy, fraction):
    assert accuracy_credit(accuracy, 0.85, 0.75) == pytest.approx(fraction)


def test_a_threshold_at_the_floor_gives_all_or_nothing():
    assert accuracy_credit(0.80, 0.80, 0.80) == 1.0
    assert accuracy_credit(0.79, 0.80, 0.80) == 0.0


def test_full_accuracy_sets_no_partial_credit_and_records_the_figure():
    recorder = Recorder()
    fraction = score_accuracy(0.9, threshold=0.85, floor=0.75, what="`train` for 2 epochs",
                              credit=recorder, figure=recorder, images=512,
                              dataset="fashion_mnist")
    assert fraction == 1.0 and recorder.credits == []
    assert recorder.figures["accuracy"] == {"accuracy": 0.9, "threshold": 0.85,
                                            "floor": 0.75, "dataset": "fashion_mnist",
                                            "images": 512, "trained": "`train` for 2 epochs"}


def test_partial_credit_message_names_accuracy_threshold_floor_and_budget():
    recorder = Recorder()
    fraction = score_accuracy(0.8, threshold=0.85, floor=0.75,
                              what="`build_cnn()` trained for 1 epoch on 6,000 images",
                              credit=recorder, images=5000, stopped="time budget of 30 s")
    assert fraction == pytest.approx(0.5)
    [(given, message)] = recorder.credits
    assert given == pytest.approx(0.5)
    for needle in ("`build_cnn()` trained for 1 epoch on 6,000 images", "0.8000",
                   "5,000 test images", "0.8500", "0.7500", "time budget of 30 s", "50%"):
        assert needle in message


def test_at_or_below_the_floor_is_a_wrong_result_that_says_so():
    with pytest.raises(AssertionError, match=r"reached test accuracy 0\.7000.*expected at "
                                             r"least 0\.8500.*above 0\.7500"):
        score_accuracy(0.7, threshold=0.85, floor=0.75, what="`train`", credit=Recorder())


@dataclass(frozen=True)
class Part:
    name: str
    points: float
    tests: tuple[str, ...]


def test_a_grader_error_is_credited_provisionally_and_recorded_as_a_problem():
    outcomes = [
        records.TestOutcome("test_a", "test_a", records.PASSED, 1.0, kind=records.KIND_PASSED),
        records.TestOutcome("test_b", "test_b", records.FAILED, 0.0, "KeyError: 'large'",
                            kind=records.KIND_GRADER_ERROR),
        records.TestOutcome("test_c", "test_c", records.FAILED, 0.0, "got 1, expected 2",
                            kind=records.KIND_WRONG),
    ]
    grade = scoring.score([Part("p", 9, ("test_a", "test_b", "test_c"))], outcomes,
                          student_id="s1", assignment="demo", execution_time_s=1.0)
    assert grade.score == 6.0  # test_b's 3 points withheld from the deduction, test_c's lost
    [problem] = grade.problems
    assert records.is_grader_problem(problem)
    assert "test_b" in problem and "KeyError" in problem and scoring.PROVISIONAL in problem
    again = scoring.score([Part("p", 9, ("test_a", "test_b", "test_c"))],
                          list(grade.parts[0].tests), student_id="s1", assignment="demo",
                          execution_time_s=1.0)
    assert again.parts == grade.parts  # scoring a scored grade again changes nothing


def test_a_wrong_result_is_never_credited():
    outcome = records.TestOutcome("t", "t", records.FAILED, 0.0, "TypeError: looks like a bug",
                                  kind=records.KIND_WRONG)
    assert scoring.provisional(outcome) is outcome


@dataclass(frozen=True)
class _Part:
    name: str
    points: float
    tests: tuple[str, ...]


def test_part_points_survive_a_results_json_round_trip_through_the_one_rule():
    """scoring and the results.json reader share `records.earned`: the same credits give
    the same part points, whatever the split (a third of a point per case here)."""
    parts = [_Part("a", 1.0, ("test_x", "test_y")), _Part("b", 2.0, ("test_z",))]
    outcomes = [records.TestOutcome("test_x", f"test_x[{i}]", "failed", f, "wrong")
                for i, f in enumerate((1.0, 0.5, 0.0))]
    outcomes += [records.TestOutcome("test_y", "test_y", "passed", 1.0),
                 records.TestOutcome("test_z", "test_z", "failed", 0.25, "partly")]
    grade = scoring.score(parts, outcomes, student_id="s1", assignment="demo",
                          execution_time_s=1.0)
    text = records.json_text(records.to_results_json(grade))
    back = records.read_results_json(json.loads(text)).grade
    assert [(p.name, p.points, p.max_points) for p in back.parts] == [
        (p.name, p.points, p.max_points) for p in grade.parts]
    assert back.score == grade.score and 0 < grade.score < grade.max_score

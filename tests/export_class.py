"""The class both export test modules read (tests/test_export.py, test_export_gradescope.py).

Two submissions of the golden `act` assignment are graded once per importing module
(wrong_relu: 7/10, train_at_top: 10/10) and recorded into a fresh gradebook per test.
Import the fixtures into a test module: ``from export_class import course, graded``.
"""

from __future__ import annotations

import dataclasses
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from grader import export
from grader.config import AssignmentConfig, LatePolicy, load_assignment
from grader.gradebook import open_gradebook
from grader.grading.run import grade_path

FILES = Path(__file__).parent / "files" / "grading"


def late_config(config: AssignmentConfig) -> AssignmentConfig:
    """`config` with the class's late policy: 10 % off per day late."""
    return dataclasses.replace(config, late=LatePolicy("percent_per_day", percent=10))


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """(a copy of the course folder, the `act` config, its two graded submissions)."""
    course = tmp_path_factory.mktemp("export") / "course"
    shutil.copytree(FILES / "repo", course)
    config = load_assignment(course / "assignments" / "act")
    return course, config, [grade_path(config, FILES / "submissions" / name)
                            for name in ("wrong_relu", "train_at_top")]


@pytest.fixture
def course(graded, db_url, monkeypatch):
    """(folder, db URL): the course folder as the current folder, its gradebook at `db_url`:
    wrong_relu two days late under 10 % a day, train_at_top on time, `absent` on the roster
    only."""
    folder, config, results = graded
    monkeypatch.chdir(folder)
    late = late_config(config)
    with open_gradebook(db_url) as gradebook:
        gradebook.add_students([("absent", "Absent Student"), ("wrong_relu", "Wendy Relu")])
        for result in results:
            when = config.due + (timedelta(hours=30) if result.submission.student_id ==
                                 "wrong_relu" else -timedelta(days=1))
            submission = dataclasses.replace(result.submission, submitted_at=when)
            gradebook.record(late, submission, result.grade)
    return folder, db_url


def course_late_config(course) -> AssignmentConfig:
    """The `act` config of the `course` fixture's folder, with the class's late policy."""
    folder, _ = course
    return late_config(load_assignment(folder / "assignments" / "act"))


def run_export(course, capsys, **kwargs) -> tuple[int, str, str]:
    """`export.main` of `act` on the `course` fixture's gradebook: (exit code, stdout,
    stderr); ``out`` defaults to ``-`` (stdout)."""
    _, db = course
    kwargs.setdefault("out", "-")
    code = export.main(assignment="act", db=db, **kwargs)
    captured = capsys.readouterr()
    return code, captured.out, captured.err

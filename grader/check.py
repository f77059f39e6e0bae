"""`grader check`: the public tests on a student's folder, with a short, friendly table."""

from __future__ import annotations

import tempfile
from pathlib import Path

from grader.config import AssignmentConfig, load_assignment
from grader.grading.run import run_suite
from grader.intake import intake
from grader.release.build import PUBLIC_SUITE
from grader.results.records import PASSED, Grade

MARKS = {"passed": "ok", "failed": "FAIL", "error": "ERROR", "skipped": "skip"}


def load_released(folder: Path) -> AssignmentConfig:
    """The assignment.toml that `grader release` put in a student folder."""
    toml = folder / "assignment.toml"
    if not toml.is_file():
        raise FileNotFoundError(
            f"{toml} does not exist: run `grader check` inside the folder that "
            "`grader release` made for the assignment (it holds assignment.toml)")
    return load_assignment(toml, repo_root=folder)


def check_folder(folder: Path, *, dataset: str | None = None) -> Grade:
    """Runs the public suite of a released assignment on the files in `folder`."""
    config = load_released(folder)
    with tempfile.TemporaryDirectory(prefix="nn-grader-check-") as scratch:
        submission = intake(folder, Path(scratch), expected_files=config.student_files,
                            assignment=config.id)
        return run_suite(config, submission, suite=folder / "tests",
                         test_files=[folder / "tests" / PUBLIC_SUITE], dataset_name=dataset)


def format_check(grade: Grade) -> str:
    lines = []
    for problem in grade.problems:
        lines.append(f"problem: {problem}")
    for part in grade.parts:
        lines.append(f"{part.name}: {part.points:g}/{part.max_points:g}")
        for test in part.tests:
            lines.append(f"  [{MARKS.get(test.status, test.status)}] {test.case}")
            if test.status != PASSED and test.message:
                lines += [f"      {line}" for line in test.message.splitlines()[:12]]
    passed = sum(t.status == PASSED for p in grade.parts for t in p.tests)
    total = sum(len(p.tests) for p in grade.parts)
    lines.append(f"\n{passed} of {total} public checks passed. Hidden tests check more when "
                 "you submit.")
    return "\n".join(lines)


def main(*, folder: Path, dataset: str | None = None) -> int:
    grade = check_folder(folder.resolve(), dataset=dataset)
    print(format_check(grade))
    return 0 if all(t.status == PASSED for p in grade.parts for t in p.tests) else 1

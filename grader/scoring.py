"""Test outcomes -> a grade, with points per part from assignment.toml."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Protocol

from grader.ids import printable
from grader.results.records import (
    ERROR,
    GRADER_PROBLEM,
    KIND_GRADER_ERROR,
    KIND_NOT_RUN,
    Grade,
    PartGrade,
    TestOutcome,
    earned,
)

PROVISIONAL = ("not charged: its points are credited provisionally until the instructor "
               "resolves it")
"""How a grader error's problem ends (`grader_error_problem`)."""


class PartSpec(Protocol):
    name: str
    points: float
    tests: Sequence[str]


def score(
    parts: Iterable[PartSpec],
    outcomes: Sequence[TestOutcome],
    *,
    student_id: str,
    assignment: str,
    execution_time_s: float,
    problems: Sequence[str] = (),
    skipped_statements: Sequence[str] = (),
    sandbox_notes: Sequence[str] = (),
) -> Grade:
    """Adds up a submission's test outcomes into part points.

    A part's points are split evenly between its test functions; a parametrised
    function's share evenly between its cases. A listed test that did not run at
    all (its module failed to import, say) counts as an error worth nothing. A case whose
    kind is a grader error is credited provisionally and adds a grader problem
    (`provisional`).

    Args:
        parts: the assignment's parts, each naming its test functions.
        outcomes: every test case that ran.
        student_id: whose submission this is.
        assignment: the assignment id.
        execution_time_s: wall time of the whole hidden suite.
        problems: intake problems to show with the grade.
        skipped_statements: top-level statements that were not run at import.
        sandbox_notes: protections the machine could not give the student runtime (no user
            namespace, no seccomp, no bubblewrap), recorded with the grade.

    Returns:
        The `Grade`.
    """
    outcomes = [provisional(outcome) for outcome in outcomes]
    by_name: dict[str, list[TestOutcome]] = {}
    for outcome in outcomes:
        by_name.setdefault(outcome.name, []).append(outcome)
    claimed: set[str] = set()
    part_grades = []
    for part in parts:
        cases: list[TestOutcome] = []
        for test in part.tests:
            claimed.add(test)
            cases.extend(by_name.get(test) or [TestOutcome(
                test, test, ERROR, 0.0, "this test did not run (the test module could not load)",
                kind=KIND_NOT_RUN)])
        part_grades.append(PartGrade(part.name, earned(part.points, cases), float(part.points),
                                     tuple(cases)))
    unassigned = tuple(o for o in outcomes if o.name not in claimed)
    errors = [grader_error_problem(case) for part in part_grades for case in part.tests
              if case.kind == KIND_GRADER_ERROR]
    return Grade(student_id, assignment, tuple(part_grades), execution_time_s,
                 (*problems, *errors), tuple(skipped_statements), unassigned,
                 tuple(sandbox_notes))


def provisional(outcome: TestOutcome) -> TestOutcome:
    """A grader error's outcome, credited in full until the instructor resolves it.

    The rule: an exception raised by grader code (a check, a fixture, the plugin) is never
    the student's fault, so the case costs nothing; the grade is provisional (it carries a
    grader problem, see `grader_error_problem`), listed for the instructor, graded again by
    the next ``grader autograde`` run, and makes that run exit 3. Checks validate student
    values before computing with them, so a strange returned value is a wrong result, not a
    grader error.
    """
    if outcome.kind != KIND_GRADER_ERROR or PROVISIONAL in outcome.message:
        return outcome  # not a grader error, or already credited
    return replace(outcome, fraction=1.0, message=f"{outcome.message}\n(grader error: "
                   f"{PROVISIONAL})".lstrip())


def grader_error_problem(outcome: TestOutcome) -> str:
    """The grade's problem for a grader error: which case, what was raised, the rule."""
    first = (outcome.message.strip().splitlines() or ["no message"])[0]
    return (f"{GRADER_PROBLEM} judge {printable(outcome.case, limit=200)}: "
            f"{printable(first, limit=300)} (grader error; {PROVISIONAL})")

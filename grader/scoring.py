"""Test outcomes -> a grade, with points per part from assignment.toml."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from grader.results.records import ERROR, Grade, PartGrade, TestOutcome, case_shares


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
) -> Grade:
    """Adds up a submission's test outcomes into part points.

    A part's points are split evenly between its test functions; a parametrised
    function's share evenly between its cases. A listed test that did not run at
    all (its module failed to import, say) counts as an error worth nothing.

    Args:
        parts: the assignment's parts, each naming its test functions.
        outcomes: every test case that ran.
        student_id: whose submission this is.
        assignment: the assignment id.
        execution_time_s: wall time of the whole hidden suite.
        problems: intake problems to show with the grade.
        skipped_statements: top-level statements that were not run at import.

    Returns:
        The `Grade`.
    """
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
                test, test, ERROR, 0.0, "this test did not run (the test module could not load)")])
        earned = _earned(part.points, cases)
        part_grades.append(PartGrade(part.name, earned, float(part.points), tuple(cases)))
    unassigned = tuple(o for o in outcomes if o.name not in claimed)
    return Grade(student_id, assignment, tuple(part_grades), execution_time_s,
                 tuple(problems), tuple(skipped_statements), unassigned)


def _earned(points: float, cases: Sequence[TestOutcome]) -> float:
    shares = case_shares(points, cases)
    return round(sum(share * case.fraction for share, case in zip(shares, cases, strict=True)), 6)

"""`grader override` and `grader extend`: an instructor's decisions about one student's grade.

Both belong to (assignment, student), survive re-grading, are stored with who made them
and when, and reach every export and report through the one grade record
(`grader.grade_record`). Neither verb creates a gradebook: a mistyped ``--db`` is an error.
"""

from __future__ import annotations

import getpass
import sys
from datetime import timedelta
from pathlib import Path

from grader.gradebook.store import DEFAULT_DB, GradebookError, open_gradebook
from grader.ids import printable


def default_db(db: str | Path | None) -> str | Path | None:
    """`db`, else the current course's gradebook (`grader.course`), else None (./gradebook.db):
    the gradebook `grader autograde` writes when run in the same course."""
    if db is not None:
        return db
    from grader.course import find_course

    course = find_course(required=False)
    return course.gradebook if course is not None else None


def who() -> str:
    """The instructor recorded with a decision: the login name (or "unknown")."""
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name (a container without a user entry)
        return "unknown"


def main(*, assignment: str, student: str, points: float | None, reason: str = "",
         db: str | Path | None = None) -> int:
    """Sets the override (or clears it when `points` is None) and prints the result.

    The points lie within 0..the assignment's points and need a reason.

    Returns:
        0, or 2 after saying what was wrong (an unknown assignment or student, with the
        known ones listed; points out of bounds; no reason; no gradebook).
    """
    try:
        with open_gradebook(default_db(db), create=False) as gradebook:
            override = gradebook.set_override(assignment, student, points, reason, by=who())
    except GradebookError as error:
        print(f"grader: {printable(str(error), limit=2000)}", file=sys.stderr)
        return 2
    if override is None:
        print(f"override cleared: {printable(student)} on {assignment} gets the computed "
              "grade again")
    else:
        print(f"override set: {printable(student)} on {assignment} gets {override.points:g} "
              f"points ({printable(override.reason)})")
    return 0


def extend_main(*, assignment: str, student: str, days: float, reason: str,
                db: str | Path | None = None) -> int:
    """`grader extend ID STUDENT --days N --reason TEXT`: grants an extension (0 clears it).

    The student's due date (and any cutoff) moves by N days; their stored lateness is
    recomputed at once, and the grant is kept with who and when.

    Returns:
        0, or 2 after saying what was wrong.
    """
    from grader.config import load_assignment

    config = load_assignment(assignment)
    try:
        with open_gradebook(db if db is not None else config.repo_root / DEFAULT_DB,
                            create=False) as gradebook:
            extension = gradebook.extend(config, student, days, reason, by=who())
            rows = [row for row in gradebook.latest(config.id) if row.student_id == student]
    except GradebookError as error:
        print(f"grader: {printable(str(error), limit=2000)}", file=sys.stderr)
        return 2
    if not extension.days:
        print(f"extension cleared: {printable(student)} on {config.id} is due "
              f"{config.due.isoformat()} again")
    else:
        moved = config.due + timedelta(days=extension.days)
        print(f"extension granted: {printable(student)} on {config.id} is due "
              f"{moved.isoformat()} ({extension.days:g} day(s) later; "
              f"{printable(extension.reason)}; by {printable(extension.granted_by)})")
    for row in rows:
        print(f"current grade: {row.final_score:g} of {row.grade.max_score:g} "
              f"({row.late_days} day(s) late, x {row.late_multiplier:g})")
    return 0

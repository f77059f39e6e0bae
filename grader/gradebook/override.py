"""`grader override`: an instructor's final score for one student, kept across re-grading."""

from __future__ import annotations

import sys
from pathlib import Path

from grader.gradebook.store import GradebookError, open_gradebook


def main(*, assignment: str, student: str, points: float | None, reason: str = "",
         db: str | Path | None = None) -> int:
    """Sets the override (or clears it when `points` is None) and prints the result.

    Returns:
        0, or 2 after naming an unknown assignment or student and listing the known ones.
    """
    try:
        with open_gradebook(db) as gradebook:
            override = gradebook.set_override(assignment, student, points, reason)
    except GradebookError as error:
        print(f"grader: {error}", file=sys.stderr)
        return 2
    if override is None:
        print(f"override cleared: {student} on {assignment} gets the computed grade again")
    else:
        print(f"override set: {student} on {assignment} gets {override.points:g} points"
              + (f" ({override.reason})" if override.reason else ""))
    return 0

"""The gradebook: students, assignments, submissions, test results, grades, overrides,
extensions.

SQLite in the course folder by default (`gradebook.db`); any SQLAlchemy URL works
(``postgresql+psycopg://user@host/db``). The schema is Alembic's
(`grader.gradebook.migrations`, run on open); each grade's numbers follow the one grade
record (`grader.grade_record`). See `grader.gradebook.store` for the decisions, `roster`
for class lists, `override` for ``grader override`` and ``grader extend``.
"""

from grader.grade_record import late_days
from grader.gradebook.roster import RosterError, read_roster
from grader.gradebook.store import (
    DEFAULT_DB,
    AssignmentInfo,
    Extension,
    Gradebook,
    GradebookError,
    GradeRow,
    Override,
    StudentInfo,
    SubmissionInfo,
    content_hash,
    database_url,
    open_gradebook,
)

__all__ = [
    "DEFAULT_DB",
    "AssignmentInfo",
    "Extension",
    "GradeRow",
    "Gradebook",
    "GradebookError",
    "Override",
    "RosterError",
    "StudentInfo",
    "SubmissionInfo",
    "content_hash",
    "database_url",
    "late_days",
    "open_gradebook",
    "read_roster",
]

"""When an assignment's hidden results are released: one rule for the student's pages and
for grade passback (`grader.service.lti.passback`).

Released by hand at ``released_at`` (whatever the mode), else at the due date in mode
"due" (the default, also when the assignment has no settings row yet); never in mode
"manual" until the instructor releases.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from grader.config import AssignmentConfig
from grader.gradebook.models import AssignmentSettingModel


def release_moment(session: Session, config: AssignmentConfig) -> datetime | None:
    """When `config`'s hidden results are (or will be) released; None while withheld."""
    row = session.get(AssignmentSettingModel, config.id)
    if row is not None and row.released_at is not None:
        return row.released_at
    if row is None or row.release_mode == "due":
        return config.due
    return None


def released(session: Session, config: AssignmentConfig, now: datetime) -> bool:
    """Whether `config`'s hidden results are out at `now`."""
    moment = release_moment(session, config)
    return moment is not None and moment <= now

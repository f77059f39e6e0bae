"""Grade passback at release: an outbox of scores (`lti_passbacks`) that workers send by AGS.

Who gets what: each student whose latest launch of an assignment carried an AGS line item
(`latest_launches`) gets the gradebook's final score of that assignment (`Gradebook.latest`'s
``final_score``, `grader.grade_record.final_score`: the override's points when there is one),
the number the staff dashboard shows, out of the assignment's points.

Decisions:

- **An outbox table, not a job kind of the grading queue.** A grading job names an upload
  and the jobs table allows the kinds public and hidden only; a grade to send is (assignment,
  student, line item) -> score, and keeping it as such a row makes "sent once" a comparison
  (`score` against `sent_score`) instead of a job per change. `grader worker` calls `tick`
  between jobs (every `TICK_S` while idle), so no request thread waits on an LMS.
- **When: at release, and whenever a released score changes.** `sync` fills the outbox, and
  only for a released assignment (`released`, the rule of the student pages: released by
  hand, or the due date passed in mode "due"). The release route's "now" calls it in its own
  transaction (`schedule_release`), so the rows exist when the release commits; a "due"
  release needs no timer: the workers' `tick` syncs every assignment with linked launches and
  finds it released once the due date passes. The same sync sends an override or a regrade
  made after release: each distinct score is sent once.
- **Never before release.** `sync` refuses an unreleased assignment, and `send_due` checks the
  release again just before each send (an assignment withheld meanwhile sends nothing).
- **Failures are kept and retried.** A send takes its row with a conditional ``UPDATE`` and a
  lease (two workers never send one row; a dead worker's row is taken again when the lease
  expires); a refusal records the error and the attempt, and the row is tried again after
  1, 2, 4, ... minutes (at most an hour), `MAX_TRIES` times, then it stays ``failed``. Every
  failure is an audit row (``lti-passback-failed``: assignment, student, attempt, error) on the
  instructor's audit log, and the LTI page of the assignment lists each row's state. The
  instructor's button (`sync` with ``force``) queues every linked grade again: a manual resend.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from grader.config import AssignmentConfig, ConfigError, load_assignment
from grader.course import Course
from grader.gradebook import Gradebook, GradebookError
from grader.gradebook.models import (
    PASSBACK_STATES,
    AuditModel,
    LtiLaunchModel,
    LtiPassbackModel,
)
from grader.service.lti.ags import AgsClient, AgsError, Score
from grader.service.lti.platforms import (
    LtiConfigError,
    PlatformRegistry,
    ToolKey,
    load_platforms,
    lti_stamp,
)
from grader.service.release import released

PENDING, SENDING, SENT, FAILED = PASSBACK_STATES
TICK_S = 15.0  # how often an idle worker syncs released grades and sends what is due
LEASE_S = 120.0  # a send (token + score, 10 s timeouts each) is long over by then
MAX_TRIES = 8  # 1+2+4+...+60 minutes: about three hours of an LMS being down
FIRST_RETRY_S, LAST_RETRY_S = 60.0, 3600.0
BATCH = 200  # rows one tick sends at most (the next tick takes the rest)
ERROR_CHARS = 1000
SENT_ACTION, FAILED_ACTION = "lti-passback-sent", "lti-passback-failed"


@dataclass(frozen=True)
class Lms:
    """What sending needs: the registered platforms (with their HTTP client) and our key."""

    registry: PlatformRegistry
    key: ToolKey


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def latest_launches(session: Session, assignment_id: str) -> dict[str, LtiLaunchModel]:
    """Student id -> their latest launch of the assignment that carried a line item."""
    rows = session.scalars(select(LtiLaunchModel).where(
        LtiLaunchModel.assignment_id == assignment_id, LtiLaunchModel.lineitem != "",
        LtiLaunchModel.student_id.is_not(None)).order_by(LtiLaunchModel.id))
    return {str(row.student_id): row for row in rows}  # later rows replace earlier ones


def sync(session: Session, gradebook: Gradebook, config: AssignmentConfig, *,
         now: datetime | None = None, force: bool = False) -> int:
    """Puts the released final scores of the linked students into the outbox.

    A row is (re)queued when it is new, when the score differs from the one the LMS
    accepted (an override or a regrade after release), when a failed row's score changed,
    or for every row with `force` (the instructor's resend). Rows being sent are left alone
    (the next sync compares what they sent). Adds to the caller's transaction.

    Returns:
        How many rows were queued; 0 when the assignment is not released.
    """
    now = now or utcnow()
    if not released(session, config, now):
        return 0
    launches = latest_launches(session, config.id)
    if not launches:
        return 0
    rows = {(row.student_id, row.lineitem): row for row in session.scalars(
        select(LtiPassbackModel).where(LtiPassbackModel.assignment_id == config.id))}
    try:
        grades = {row.student_id: row for row in gradebook.latest(config.id)}
    except GradebookError:
        return 0  # nothing graded yet: the gradebook does not know the assignment
    queued = 0
    for student_id, launch in sorted(launches.items()):
        grade = grades.get(student_id)
        if grade is None:
            continue  # no graded submission: the LMS keeps its own "no grade"
        score, maximum = float(grade.final_score), float(grade.max_score)
        row = rows.get((student_id, launch.lineitem))
        if row is None:
            session.add(LtiPassbackModel(
                assignment_id=config.id, student_id=student_id, issuer=launch.issuer,
                client_id=launch.client_id, subject=launch.subject, lineitem=launch.lineitem,
                score=score, max_score=maximum, state=PENDING, attempts=0,
                next_attempt_at=now))
            queued += 1
            continue
        if row.state == SENDING:
            continue
        changed = (score, maximum) != (row.score, row.max_score)
        unsent = (row.sent_score, row.max_score) != (score, maximum)
        if row.state == PENDING:
            queued += changed
        elif not (force or (row.state == SENT and unsent) or (row.state == FAILED and changed)):
            continue
        else:
            queued += 1
            row.state, row.attempts, row.next_attempt_at, row.error = PENDING, 0, now, None
        row.score, row.max_score = score, maximum
        row.issuer, row.client_id, row.subject = launch.issuer, launch.client_id, launch.subject
    session.flush()
    return queued


def send_due(sessions: sessionmaker, lms: Lms, *, worker_id: str,
             is_released: Callable[[Session, str], bool], now: datetime | None = None,
             limit: int = BATCH) -> tuple[int, int]:
    """Sends the pending rows whose time has come (and rows whose sender's lease expired).

    Each row is taken with a conditional UPDATE (one sender per row), the release checked
    again, the score POSTed outside any transaction, then marked sent, or its failure
    recorded (audited) with the next try. Commits its own transactions.

    Args:
        sessions: a sessionmaker on the gradebook's engine.
        lms: the platforms and the tool's key.
        worker_id: the lease owner's name.
        is_released: (session, assignment id) -> whether its grades are released now.
        now: the time (tests pass a later one to reach a retry).
        limit: rows sent at most.

    Returns:
        (sent, failed).
    """
    now = now or utcnow()
    due = or_(and_(LtiPassbackModel.state == PENDING, LtiPassbackModel.next_attempt_at <= now),
              and_(LtiPassbackModel.state == SENDING, LtiPassbackModel.lease_expires < now))
    with sessions() as session:
        ids = list(session.scalars(select(LtiPassbackModel.id).where(due)
                                   .order_by(LtiPassbackModel.next_attempt_at,
                                             LtiPassbackModel.id).limit(limit)))
    clients: dict[tuple[str, str], AgsClient] = {}
    sent = failed = 0
    for row_id in ids:
        with sessions.begin() as session:
            taken = session.execute(
                update(LtiPassbackModel).where(LtiPassbackModel.id == row_id, due)
                .values(state=SENDING, lease_owner=worker_id,
                        lease_expires=now + timedelta(seconds=LEASE_S))
                .execution_options(synchronize_session=False)).rowcount
            row = session.get(LtiPassbackModel, row_id) if taken == 1 else None
            if row is None:
                continue  # another worker took it
            target = (row.assignment_id, row.student_id, row.issuer, row.client_id,
                      row.subject, row.lineitem, row.score, row.max_score, row.attempts)
            still_released = is_released(session, row.assignment_id)
            if not still_released:  # withheld since it was queued: wait for the release
                row.state, row.lease_owner, row.lease_expires = PENDING, None, None
                row.next_attempt_at = now + timedelta(seconds=FIRST_RETRY_S)
        if not still_released:
            continue
        assignment, student, issuer, client_id, subject, lineitem, score, maximum, tries = target
        try:
            platform = lms.registry.find(issuer, client_id)
            if platform is None:
                raise AgsError(f"the LMS {issuer} (client id {client_id}) is no longer "
                               "registered in lti.toml")
            client = clients.setdefault((platform.issuer, platform.client_id),
                                        AgsClient(platform, lms.key, lms.registry.http))
            client.post_score(lineitem, Score(subject, score, maximum))
        except AgsError as error:
            failed += _record(sessions, row_id, worker_id, now, error=str(error),
                              audit={"assignment": assignment, "student": student,
                                     "attempt": tries + 1, "lineitem": lineitem})
        else:
            sent += _record(sessions, row_id, worker_id, now, sent_score=score)
    if sent:
        with sessions.begin() as session:
            session.add(AuditModel(at=now, user_id=None, actor="-", action=SENT_ACTION,
                                   detail={"sent": sent, "failed": failed}))
    return sent, failed


def _record(sessions: sessionmaker, row_id: int, worker_id: str, now: datetime, *,
            sent_score: float | None = None, error: str | None = None,
            audit: dict[str, Any] | None = None) -> int:
    """Ends a send: sent, or the failure and the next try; only while the lease is ours."""
    with sessions.begin() as session:
        row = session.get(LtiPassbackModel, row_id)
        if row is None or row.state != SENDING or row.lease_owner != worker_id:
            return 0  # our lease expired and another worker took the row
        row.lease_owner, row.lease_expires = None, None
        if error is None:
            row.state, row.sent_score, row.sent_at = SENT, sent_score, now
            row.attempts, row.error = 0, None
            return 1
        row.attempts += 1
        row.error = error[:ERROR_CHARS]
        if row.attempts >= MAX_TRIES:
            row.state = FAILED
        else:
            row.state = PENDING
            wait = min(FIRST_RETRY_S * 2 ** (row.attempts - 1), LAST_RETRY_S)
            row.next_attempt_at = now + timedelta(seconds=wait)
        session.add(AuditModel(at=now, user_id=None, actor="-", action=FAILED_ACTION,
                               detail={**(audit or {}), "error": row.error,
                                       "final": row.state == FAILED}))
        return 1


def _config(course: Course, assignment_id: str) -> AssignmentConfig | None:
    if assignment_id not in course.assignment_ids():
        return None  # the LMS's custom parameter names no assignment here (never a path)
    try:
        return load_assignment(course.assignments / assignment_id / "assignment.toml",
                               repo_root=course.root)
    except (ConfigError, OSError):
        return None  # a launch naming no assignment of this course: nothing to send


def tick(sessions: sessionmaker, course: Course, lms: Lms, *, worker_id: str,
         now: datetime | None = None) -> tuple[int, int]:
    """One round of a worker: sync every assignment with linked launches, then send what is due.

    An assignment whose sync fails (its gradebook rows, its config) is skipped with a line on
    stderr; the others go on.

    Returns:
        (sent, failed) of this round.
    """
    now = now or utcnow()
    with sessions() as session:
        linked = sorted(set(session.scalars(select(LtiLaunchModel.assignment_id).where(
            LtiLaunchModel.lineitem != "", LtiLaunchModel.assignment_id != "")).all()))
    configs: dict[str, AssignmentConfig] = {}
    for assignment_id in linked:
        config = _config(course, assignment_id)
        if config is None:
            continue
        configs[assignment_id] = config
        try:
            with sessions.begin() as session:
                sync(session, Gradebook(session.get_bind()), config, now=now)
        except Exception as error:  # noqa: BLE001 - one assignment's problem only
            print(f"grader worker: grade passback of {assignment_id}: cannot read its grades: "
                  f"{type(error).__name__}: {error}", file=sys.stderr)

    def is_released(session: Session, assignment_id: str) -> bool:
        config = configs.get(assignment_id)
        return config is not None and released(session, config, now)

    return send_due(sessions, lms, worker_id=worker_id, is_released=is_released, now=now)


# course folder -> (lti.toml's modification time, its LMS set-up); read again when it changes
_LOADED: dict[str, tuple[int | None, Lms | None]] = {}


def course_lms(course: Course) -> Lms | None:
    """The course's LMS set-up from its ``lti.toml``, read again whenever the file is added,
    edited or removed (a worker runs for weeks; nobody restarts it to link an LMS).

    Raises:
        LtiConfigError: the file is broken (raised once per change of the file).
    """
    key, stamp = str(course.root), lti_stamp(course.root)
    cached = _LOADED.get(key)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    _LOADED[key] = (stamp, None)  # a broken file: said once, until it changes
    loaded = load_platforms(course.root)
    lms = Lms(*loaded) if loaded is not None else None
    _LOADED[key] = (stamp, lms)
    return lms


def worker_tick(sessions: sessionmaker, course: Course, worker_id: str) -> None:
    """`grader worker`'s call between jobs: `tick` when the course has an ``lti.toml``.

    Never raises: a broken ``lti.toml`` or an unreachable database is one line on stderr (the
    worker goes on grading; the next tick tries again, and a fixed file is read at once).
    """
    try:
        lms = course_lms(course)
        if lms is not None:
            tick(sessions, course, lms, worker_id=worker_id)
    except LtiConfigError as error:
        print(f"grader worker: grade passback is off until lti.toml is fixed: {error}",
              file=sys.stderr)
    except Exception as error:  # noqa: BLE001 - passback never stops grading
        print(f"grader worker: grade passback: {type(error).__name__}: {error}",
              file=sys.stderr)


def schedule_release(request: Any, session: Session, config: AssignmentConfig) -> int:
    """The release route's hook: queues the released grades when the course has LTI.

    Returns:
        Rows queued (0 without ``lti.toml`` or before release).
    """
    state = request.app.state
    if getattr(state, "lti", None) is None and not (state.course.root / "lti.toml").is_file():
        return 0  # no LMS connection (`routes.lti_state` reads lti.toml on first use)
    session.flush()
    try:
        with session.begin_nested():  # a savepoint: the release itself must not fail here
            return sync(session, request.app.state.gradebook, config)
    except IntegrityError:
        return 0  # a worker's tick queued the same rows at the same moment

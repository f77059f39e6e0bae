"""The grading queue of `grader serve`: jobs in the gradebook's database, taken with a lease.

A job is one run on one stored upload: ``public`` (the assignment's public tests, for the
student's feedback in seconds) or ``hidden`` (the full autograde, recorded in the
gradebook). Workers (`grader.service.worker`) take jobs with `claim`:

- public jobs before hidden ones (a deadline rush gets feedback first), then higher
  `priority`, then the oldest;
- a claim is one conditional ``UPDATE … WHERE id = (SELECT … LIMIT 1) AND <claimable>
  RETURNING``: PostgreSQL's subquery takes the row ``FOR UPDATE SKIP LOCKED`` (workers never
  wait on each other); SQLite runs the statement under its single write lock, and the
  repeated condition makes a lost race take nothing;
- a lease: the worker calls `heartbeat` while it grades; a job whose lease expired (its
  worker died) is claimable again, up to `MAX_ATTEMPTS` claims, then failed;
- `complete` is conditional on (state running, lease owner, attempt number): a second
  completion of the same job (the dead worker waking up) changes nothing, and a hidden
  job's gradebook record is written in the same transaction as the job's end — once.

`enqueue` adds to the caller's transaction (the service stores the attempt with it);
every other function commits its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import and_, case, or_, select, update
from sqlalchemy.orm import Session

from grader import i18n
from grader.gradebook.models import JOB_KINDS, JobModel, StudentModel
from grader.ids import validate_id

_, _n = i18n.Domain("service").functions()  # QueueError's messages

MAX_ATTEMPTS = 3  # a job whose worker died this many times is failed, not tried forever
DEFAULT_LEASE_S = 60.0  # a worker heartbeats every third of it
PUBLIC, HIDDEN = JOB_KINDS
QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
ERROR_CHARS = 4000  # an error text kept in the job row (a traceback's last lines)


class QueueError(ValueError):
    """A job that cannot be queued; the message says what was wrong."""


@dataclass(frozen=True)
class Job:
    """A claimed job, as the worker holding it knows it (a snapshot, no session needed).

    `lease_owner` and `attempts` together are the worker's fencing token: `heartbeat`,
    `complete` and `fail` act only while both still match the row.
    """

    id: int
    submission: str  # the stored upload, relative to the course folder
    assignment_id: str
    student_id: str
    kind: str
    priority: int
    attempts: int
    lease_owner: str
    lease_expires: datetime
    submitted_at: datetime


# A `Job`'s fields, in order, as an UPDATE ... RETURNING gives them.
_JOB_COLUMNS = (JobModel.id, JobModel.submission, JobModel.assignment_id, JobModel.student_id,
                JobModel.kind, JobModel.priority, JobModel.attempts, JobModel.lease_owner,
                JobModel.lease_expires, JobModel.submitted_at)


def now() -> datetime:
    return datetime.now(timezone.utc)


def enqueue(session: Session, submission_id: str, kind: str, priority: int = 0, *,
            assignment_id: str, student_id: str, submitted_at: datetime | None = None,
            content_hash: str | None = None) -> int:
    """Adds a queued job to the caller's transaction (flushed, not committed).

    Args:
        session: a session on the gradebook's engine; the caller commits.
        submission_id: the stored upload the job grades: a path relative to the course
            folder (a folder, zip, .py or .ipynb the service wrote; never a student's name).
        kind: "public" (public tests) or "hidden" (full autograde, recorded).
        priority: higher runs sooner within a kind (a regrade might use -1).
        assignment_id: the assignment, from the service's side.
        student_id: whose upload it is, from the signed-in user (never the upload's
            manifest).
        submitted_at: the receipt time lateness is charged from; default: now.
        content_hash: the upload's hash, for the service's own bookkeeping.

    Returns:
        The job's id.

    Raises:
        QueueError: an unknown kind, a bad id, an absolute path or one leaving the course.
    """
    if kind not in JOB_KINDS:
        raise QueueError(_("unknown job kind {kind}; expected one of: {kinds}", kind=repr(kind),
                           kinds=", ".join(JOB_KINDS)))
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise QueueError(_("a job's priority is an integer. Received: {priority}",
                           priority=repr(priority)))
    _check_path(submission_id)
    try:
        validate_id(student_id)
        validate_id(assignment_id)
    except ValueError as error:
        raise QueueError(_("cannot queue a job: {error}", error=error)) from None
    created = now()
    row = JobModel(submission=submission_id, content_hash=content_hash,
                   assignment_id=assignment_id, student_id=student_id, kind=kind,
                   priority=priority, state=QUEUED, attempts=0,
                   submitted_at=submitted_at or created, created_at=created)
    session.add(row)
    session.flush()
    return row.id


def claim(session: Session, worker_id: str, lease_s: float = DEFAULT_LEASE_S) -> Job | None:
    """Takes the next job for `worker_id`, leased for `lease_s` seconds; commits.

    Returns:
        The job, or None when nothing is claimable.
    """
    moment = now()
    claimable = _claimable(moment)
    try:  # a plain read first: an idle worker's poll never takes SQLite's write lock
        waiting = session.execute(select(JobModel.id).where(claimable).limit(1)).first()
        session.rollback()
    except BaseException:
        session.rollback()
        raise
    if waiting is None:
        return None
    pick = (select(JobModel.id).where(claimable)
            .order_by(case((JobModel.kind == PUBLIC, 0), else_=1), JobModel.priority.desc(),
                      JobModel.created_at, JobModel.id)
            .limit(1))
    if session.get_bind().dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    statement = (update(JobModel)
                 .where(JobModel.id == pick.scalar_subquery(), claimable)
                 .values(state=RUNNING, lease_owner=worker_id,
                         lease_expires=moment + timedelta(seconds=lease_s),
                         attempts=JobModel.attempts + 1, started_at=moment)
                 .returning(*_JOB_COLUMNS)
                 .execution_options(synchronize_session=False))
    try:
        row = session.execute(statement).first()
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return None if row is None else Job(*row)


def heartbeat(session: Session, job: Job, lease_s: float = DEFAULT_LEASE_S) -> bool:
    """Extends `job`'s lease by `lease_s` from now; commits.

    Returns:
        False when the job is no longer this worker's (its lease expired and another
        worker took it, or it was cancelled): the worker should stop grading it.
    """
    return _held_update(session, job, lease_expires=now() + timedelta(seconds=lease_s))


def complete(session: Session, job: Job, result: Mapping[str, Any], *,
             record: Any = None) -> bool:
    """Ends `job` as done with its `result` summary, exactly once; commits.

    Args:
        session: a session on the gradebook's engine.
        job: the claimed job.
        result: plain data the service shows (`grader.service.worker.summary`).
        record: a hidden job's recorder: called as ``record(session)`` inside the same
            transaction once the job is known to be this worker's; returns the gradebook
            submission id. A failure in it rolls everything back and raises.

    Returns:
        True when this call completed the job; False when it was no longer this worker's
        (already completed, taken again after its lease expired, or cancelled): nothing
        was written.
    """
    return _end(session, job, record, state=DONE, finished_at=now(), lease_expires=None,
                result=dict(result), error=None)


def fail(session: Session, job: Job, error: str, *, record: Any = None) -> bool:
    """Ends `job` as failed with `error` (the grader's fault, not the student's); commits.

    Args:
        record: as `complete`'s: a hidden job's recorder (the worker records the upload as
            not graded, so the gradebook and the dashboard show the grader's failure),
            called inside the same transaction once the job is known to be this worker's.

    Returns:
        As `complete`: False when the job was no longer this worker's.
    """
    return _end(session, job, record, state=FAILED, finished_at=now(), lease_expires=None,
                error=error[-ERROR_CHARS:])


def _end(session: Session, job: Job, record: Any, **values: Any) -> bool:
    """Ends `job` with `values` while it is this worker's, its record in the same
    transaction; commits. False (nothing written) when it was no longer this worker's."""
    try:
        if not _held(session, job, **values):
            session.rollback()
            return False
        _record_into(session, job.id, record)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return True


def requeue_expired(session: Session, *, record: Any = None) -> tuple[int, int]:
    """Puts jobs whose lease expired back in the queue; fails those out of attempts; commits.

    (`claim` takes an expired job by itself; this makes the dashboard's states true and
    ends the jobs no worker may take any more.)

    Args:
        record: called as ``record(session, job)`` for each hidden job failed here, inside
            the same transaction (the worker records the upload as not graded: a hidden job
            never ends without a gradebook record); returns the record's id or None.

    Returns:
        (jobs requeued, jobs failed).
    """
    moment = now()
    expired = and_(JobModel.state == RUNNING, JobModel.lease_expires < moment)
    try:
        failed = session.execute(
            update(JobModel).where(expired, JobModel.attempts >= MAX_ATTEMPTS)
            .values(state=FAILED, finished_at=moment, lease_owner=None, lease_expires=None,
                    error=f"the grader's worker stopped (died or lost its lease) "
                          f"{MAX_ATTEMPTS} times while grading it")
            .returning(*_JOB_COLUMNS)
            .execution_options(synchronize_session=False)).all()
        requeued = session.execute(
            update(JobModel).where(expired)
            .values(state=QUEUED, lease_owner=None, lease_expires=None)
            .execution_options(synchronize_session=False)).rowcount
        if record is not None:
            for row in failed:
                job = Job(*row)
                if job.kind == HIDDEN:
                    _record_into(session, job.id, lambda session, job=job: record(session, job))
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return requeued, len(failed)


def newer_recorded(session: Session, job: Job) -> bool:
    """Whether a later upload of `job`'s student for its assignment already has its hidden
    record (two workers can finish a student's two quick uploads in either order; the later
    upload stays the grade). Call it inside the recording transaction: on PostgreSQL it
    first locks the student's row, so two recordings of one student take turns (SQLite's
    single writer already does).
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(StudentModel.id).where(StudentModel.id == job.student_id)
                        .with_for_update())
    later = or_(JobModel.submitted_at > job.submitted_at,
                and_(JobModel.submitted_at == job.submitted_at, JobModel.id > job.id))
    found = session.execute(select(JobModel.id).where(
        JobModel.assignment_id == job.assignment_id, JobModel.student_id == job.student_id,
        JobModel.kind == HIDDEN, JobModel.state.in_((DONE, FAILED)),
        JobModel.record_id.is_not(None),
        JobModel.id != job.id, later).limit(1)).first()
    return found is not None


def cancel(session: Session, job_id: int) -> bool:
    """Cancels a job that is still queued; commits. Returns whether it was."""
    try:
        done = session.execute(update(JobModel).where(JobModel.id == job_id,
                                                      JobModel.state == QUEUED)
                               .values(state=CANCELLED, finished_at=now())
                               .execution_options(synchronize_session=False)).rowcount
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return done == 1


def _record_into(session: Session, job_id: int, record: Any) -> None:
    """Calls a job's recorder in the caller's transaction and keeps its record id."""
    if record is None:
        return
    record_id = record(session)
    if record_id is not None:
        session.execute(update(JobModel).where(JobModel.id == job_id)
                        .values(record_id=record_id)
                        .execution_options(synchronize_session=False))


def _claimable(moment: datetime) -> Any:
    """Queued, or running under an expired lease with attempts left."""
    return or_(JobModel.state == QUEUED,
               and_(JobModel.state == RUNNING, JobModel.lease_expires < moment,
                    JobModel.attempts < MAX_ATTEMPTS))


def _held(session: Session, job: Job, **values: Any) -> bool:
    """Updates `job`'s row only while it is this worker's claim (fencing); no commit."""
    changed = session.execute(
        update(JobModel).where(JobModel.id == job.id, JobModel.state == RUNNING,
                               JobModel.lease_owner == job.lease_owner,
                               JobModel.attempts == job.attempts)
        .values(**values).execution_options(synchronize_session=False)).rowcount
    return changed == 1


def _held_update(session: Session, job: Job, **values: Any) -> bool:
    try:
        held = _held(session, job, **values)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return held


def _check_path(submission_id: str) -> None:
    """A stored upload's path: relative, inside the course, printable."""
    from pathlib import PurePosixPath

    if not isinstance(submission_id, str) or not submission_id or "\x00" in submission_id:
        raise QueueError(_("a job's submission is a path relative to the course folder. "
                           "Received: {path}", path=repr(submission_id)))
    path = PurePosixPath(submission_id)
    if path.is_absolute() or ".." in path.parts or "\\" in submission_id:
        raise QueueError(_("a job's submission must stay inside the course folder (a "
                           "relative path without `..`). Received: {path}",
                           path=repr(submission_id)))

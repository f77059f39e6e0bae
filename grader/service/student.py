"""The student's side of `grader serve`: sign in, assignments, upload, attempts, reports.

Routes (all but the sign-in form need a signed-in student; every POST `csrf_protect`):

- ``GET/POST /login``, ``POST /logout``: one form for everybody — a student's id and
  access code (`grader roster --issue-codes`), or a staff name and password
  (`grader user add`); rate-limited (`security.sign_in_refused`).
- ``GET /assignments``: the course's assignments, due dates in the course's time zone,
  whether hidden results are out, attempts left this hour.
- ``GET /assignments/{id}``: the upload form and the student's attempts, newest first.
- ``POST /assignments/{id}/upload``: a ``.py``, ``.ipynb`` or ``.zip`` under the size limit;
  read by `grader.intake` first: an upload none of whose expected files can be used, or
  with a syntax error, is refused with the reason and costs no attempt. Otherwise it is
  stored under ``<course>/uploads/`` (a name the service makes, never the student's) and
  queued twice: public tests first, then the hidden suite.
- ``GET /attempts/{n}`` and its ``/status`` fragment (polled by ``static/status.js``):
  the public result as it arrives; the hidden score once released.
- ``GET /attempts/{n}/report``: the full report (the CLI's report template) once released.

A student only ever sees their own attempts: any other attempt id answers 404, the same
as one that does not exist (so ids cannot be probed).
"""

from __future__ import annotations

import ast
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from grader import i18n
from grader.config import AssignmentConfig, ConfigError, load_assignment
from grader.gradebook.models import (
    AssignmentSettingModel,
    AttemptModel,
    JobModel,
    SubmissionModel,
)
from grader.gradebook.store import Gradebook
from grader.ids import file_name, printable
from grader.intake import IntakeLimits, intake
from grader.reports.problems import shown_problem
from grader.service import queue, security
from grader.service.app import render
from grader.service.auth import (
    Db,
    SignedIn,
    User,
    audit,
    find_user,
    normalise_code,
    optional_user,
    require_student,
    sign_in,
    sign_out,
    verify_secret,
)
from grader.service.release import released

_, _n = i18n.Domain("service").functions()
router = APIRouter()
Student = Annotated[User, Depends(require_student)]

UPLOADS = "uploads"  # under the course folder
DEFAULT_ATTEMPTS_PER_HOUR = 10
MAX_UPLOADS_PER_HOUR = 60  # refused ones included: each costs the service a read
PUBLIC_PRIORITY, HIDDEN_PRIORITY = 0, 0
SHOWN_NAME = 120  # characters of an uploaded file's name kept for display


@dataclass(frozen=True)
class Release:
    """Whether an assignment's hidden results are out, and a sentence saying when."""

    released: bool
    text: str


# --- the course's assignments -------------------------------------------------------------

def assignments(request: Request) -> dict[str, AssignmentConfig]:
    """The course's assignments that load, by id (cached for the app's life)."""
    cache = getattr(request.app.state, "configs", None)
    if cache is None:
        course = request.app.state.course
        cache = {}
        for aid in course.assignment_ids():
            try:
                cache[aid] = load_assignment(course.assignments / aid / "assignment.toml",
                                             repo_root=course.root)
            except ConfigError:
                continue  # an assignment the instructor is still writing is not offered
        request.app.state.configs = cache
    return cache


def assignment(request: Request, assignment_id: str) -> AssignmentConfig:
    """The assignment named in the URL (404 for any other string: never a path)."""
    config = assignments(request).get(assignment_id)
    if config is None:
        raise HTTPException(404, _("There is no such assignment in this course. Go back to "
                                   "your assignments and choose one from the list."))
    return config


def settings(session: Session, assignment_id: str) -> AssignmentSettingModel:
    """The assignment's service settings (defaults when none were stored)."""
    row = session.get(AssignmentSettingModel, assignment_id)
    return row or AssignmentSettingModel(assignment_id=assignment_id, release_mode="due",
                                         released_at=None, released_by=None,
                                         attempts_per_hour=DEFAULT_ATTEMPTS_PER_HOUR)


def release_state(session: Session, config: AssignmentConfig, request: Request,
                  now: datetime | None = None) -> Release:
    """Whether hidden results and reports of `config` are out (`grader.service.release`'s
    rule), and the sentence that says so."""
    now = now or datetime.now(timezone.utc)
    row = settings(session, config.id)
    local = request.app.state.templates.filters["local"]
    if released(session, config, now):
        if row.released_at is not None:
            return Release(True, _("Grades released on {when}.", when=local(row.released_at)))
        return Release(True, _("Grades released at the due date, {when}.",
                               when=local(config.due)))
    if row.release_mode == "due":
        return Release(False, _("Hidden results and the full report appear at the due date, "
                                "{when}.", when=local(config.due)))
    return Release(False, _("Hidden results and the full report appear when your instructor "
                            "releases them."))


def attempts_left(session: Session, config: AssignmentConfig, student_id: str,
                  now: datetime | None = None) -> tuple[int | None, datetime | None]:
    """Graded attempts left in the last hour (None: no limit) and when the next frees up."""
    limit = settings(session, config.id).attempts_per_hour
    if limit is None:
        return None, None
    now = now or datetime.now(timezone.utc)
    recent = session.scalars(
        select(AttemptModel.uploaded_at).where(
            AttemptModel.assignment_id == config.id, AttemptModel.student_id == student_id,
            AttemptModel.counted.is_(True), AttemptModel.uploaded_at > now - timedelta(hours=1))
        .order_by(AttemptModel.uploaded_at)).all()
    left = max(0, limit - len(recent))
    return left, (recent[0] + timedelta(hours=1) if not left and recent else None)


def _uploads_last_hour(session: Session, assignment_id: str, student_id: str,
                      now: datetime) -> int:
    """Uploads of any kind (refused ones too) in the last hour."""
    return session.scalar(select(func.count()).select_from(AttemptModel).where(
        AttemptModel.assignment_id == assignment_id, AttemptModel.student_id == student_id,
        AttemptModel.uploaded_at > now - timedelta(hours=1))) or 0


def own_attempt(session: Session, user: User, attempt_id: int) -> AttemptModel:
    """The student's attempt `attempt_id`; 404 when it is missing or someone else's."""
    row = session.get(AttemptModel, attempt_id)
    if row is None or row.student_id != user.student_id:
        raise HTTPException(404, _("There is no such attempt among yours. Go back to your "
                                   "assignments to see your attempts."))
    return row


# --- sign-in ------------------------------------------------------------------------------

@router.get("/", response_class=HTMLResponse)
def home(user: SignedIn) -> Response:
    return RedirectResponse("/assignments" if user.role == "student" else "/staff",
                            status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, user: Annotated[User | None, Depends(optional_user)]) -> Response:
    return render(request, "service/login.html.j2", user=user, error=None, name="")


@router.post("/login", response_class=HTMLResponse,
             dependencies=[Depends(security.csrf_protect)])
def login(request: Request, name: Annotated[str, Form(max_length=200)],
          secret: Annotated[str, Form(max_length=200)],
          session: Db) -> Response:
    name = name.strip()
    client = security.client_address(request)
    refused = security.sign_in_refused(session, name, client)
    if refused:
        return render(request, "service/login.html.j2", status_code=429, error=refused,
                      name=name)
    row = find_user(session, name)
    given = normalise_code(secret) if row is None or row.role == "student" else secret
    stored = None if row is None or not row.active else (
        row.code_hash if row.role == "student" else row.password_hash)
    ok = verify_secret(stored, given)
    security.note_sign_in(session, name, client, ok)
    if not ok or row is None:
        session.commit()  # the failure counts even though this reply is an error
        return render(request, "service/login.html.j2", status_code=401, name=name, error=_(
            "Sign-in failed: that id and access code (or name and password) do not match an "
            "account. Check both and try again; a lost access code is replaced by your "
            "instructor."))
    sign_in(request, row)
    audit(session, User(row.id, row.name, row.role, row.student_id), "sign-in",
          {"client": client})
    return RedirectResponse("/", status_code=303)


@router.post("/logout", dependencies=[Depends(security.csrf_protect)])
def logout(request: Request) -> Response:
    sign_out(request)
    return RedirectResponse("/login", status_code=303)


# --- assignments and uploads --------------------------------------------------------------

@router.get("/assignments", response_class=HTMLResponse)
def assignment_list(request: Request, user: Student,
                    session: Db) -> Response:
    rows = []
    for config in assignments(request).values():
        left, _next = attempts_left(session, config, user.student_id)
        rows.append({"config": config, "release": release_state(session, config, request),
                     "left": left,
                     "count": session.scalar(select(func.count()).select_from(AttemptModel)
                                             .where(AttemptModel.assignment_id == config.id,
                                                    AttemptModel.student_id
                                                    == user.student_id)) or 0})
    return render(request, "service/assignments.html.j2", user=user, rows=rows)


@router.get("/assignments/{assignment_id}", response_class=HTMLResponse)
def assignment_page(request: Request, assignment_id: str,
                    user: Student,
                    session: Db) -> Response:
    return _assignment_page(request, session, user, assignment(request, assignment_id))


def _assignment_page(request: Request, session: Session, user: User, config: AssignmentConfig,
                     *, error: str | None = None, status_code: int = 200) -> Response:
    attempts = session.scalars(select(AttemptModel).where(
        AttemptModel.assignment_id == config.id, AttemptModel.student_id == user.student_id)
        .order_by(AttemptModel.id.desc())).all()
    left, next_at = attempts_left(session, config, user.student_id)
    return render(request, "service/assignment.html.j2", status_code=status_code, user=user,
                  config=config, attempts=attempts, left=left, next_at=next_at, error=error,
                  release=release_state(session, config, request),
                  types=i18n.join_items(security.UPLOAD_TYPES),
                  limit=security.size_text(request.app.state.upload_limit))


@router.post("/assignments/{assignment_id}/upload", response_class=HTMLResponse,
             dependencies=[Depends(security.csrf_protect)])
async def upload(request: Request, assignment_id: str, user: Student, session: Db,
                 file: Annotated[UploadFile | None, File()] = None) -> Response:
    config = assignment(request, assignment_id)
    now = datetime.now(timezone.utc)
    shown = printable(file.filename or "", limit=SHOWN_NAME) if file else ""

    def refuse(reason: str, status_code: int = 422) -> Response:
        # kept (every attempt is), never counted: nothing was graded
        session.add(AttemptModel(assignment_id=config.id, student_id=user.student_id,
                                 uploaded_at=now, file_name=shown or "(no file)", size=0,
                                 stored=None, counted=False, refused=reason))
        session.flush()
        return _assignment_page(request, session, user, config, error=reason,
                                status_code=status_code)

    # The database and the disk are worked off the event loop (a write may wait for SQLite's
    # lock): only reading the upload's bytes is the loop's.
    if file is None or not file.filename:
        return await run_in_threadpool(refuse, _("No file was chosen. Choose your solution "
                                                 "file and upload it."), 400)
    kind = security.upload_type(file.filename)
    if kind is None:
        return await run_in_threadpool(refuse, _(
            "The file {name} is not a {types} file; hand in {files} (the file itself, a "
            "notebook, or a zip holding it).", name=repr(shown),
            types=i18n.join_items(security.UPLOAD_TYPES),
            files=i18n.join_items(config.student_files)), 415)
    try:
        data = await security.read_upload(file, request.app.state.upload_limit)
    except HTTPException as too_big:
        return await run_in_threadpool(refuse, str(too_big.detail), too_big.status_code)
    return await run_in_threadpool(_store_upload, request, session, user, config, now, shown,
                                   kind, data, refuse)


def _store_upload(request: Request, session: Session, user: User, config: AssignmentConfig,
                  now: datetime, shown: str, kind: str, data: bytes,
                  refuse: Callable[..., Response]) -> Response:
    """Checks an upload's bytes and limits, stores it, queues its two jobs and commits
    before answering: "received" means it is in the gradebook."""
    wrong = security.check_content(kind, data)
    if wrong:
        return refuse(_("The file {name} cannot be read: {why}. Upload the file your editor "
                        "saved, unchanged.", name=repr(shown), why=wrong), 415)
    if _uploads_last_hour(session, config.id, user.student_id, now) >= MAX_UPLOADS_PER_HOUR:
        # refused uploads cost no attempt but do cost a read: bounded too, and not recorded
        raise HTTPException(429, _("You uploaded {n} files for {assignment} within the last "
                                   "hour; wait a while, check your work with `grader check`, "
                                   "then upload again.", n=MAX_UPLOADS_PER_HOUR,
                                   assignment=config.id))
    left, next_at = attempts_left(session, config, user.student_id, now)
    if left == 0:
        local = request.app.state.templates.filters["local"]
        return refuse(_("You have used all {n} graded attempts of this hour for {assignment}; "
                        "the next one frees up at {when}. Check your work with `grader check` "
                        "meanwhile.", n=settings(session, config.id).attempts_per_hour,
                        assignment=config.id, when=local(next_at)), 429)
    uploads = request.app.state.course.root / UPLOADS
    uploads.mkdir(exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=uploads))
    try:
        # the service names the stored file: the student's name is only ever displayed
        owner = staging / file_name(user.student_id)
        owner.mkdir()
        stored_name = _stored_name(config, kind)
        (owner / stored_name).write_bytes(data)
        # intake may take seconds (a zip at its limits): read before any database write
        reason = ungradable_reason(owner, config, staging)
        if reason:
            return refuse(reason)
        row = AttemptModel(assignment_id=config.id, student_id=user.student_id,
                           uploaded_at=now, file_name=shown, size=len(data), counted=True)
        session.add(row)
        session.flush()
        final = uploads / file_name(config.id) / str(row.id)
        final.mkdir(parents=True)
        shutil.move(str(owner), str(final / owner.name))
        relative = (final / owner.name / stored_name).relative_to(
            request.app.state.course.root).as_posix()
        row.stored = relative
        common = {"assignment_id": config.id, "student_id": user.student_id,
                  "submitted_at": now}
        row.public_job_id = queue.enqueue(session, relative, queue.PUBLIC, PUBLIC_PRIORITY,
                                          **common)
        row.hidden_job_id = queue.enqueue(session, relative, queue.HIDDEN, HIDDEN_PRIORITY,
                                          **common)
        audit(session, user, "upload", {"assignment": config.id, "attempt": row.id,
                                        "size": len(data)})
        session.commit()
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return RedirectResponse(f"/attempts/{row.id}", status_code=303)


def _stored_name(config: AssignmentConfig, kind: str) -> str:
    """The stored file's name: the expected file's own for one expected file."""
    if kind == ".zip" or len(config.student_files) != 1:
        return f"submission{kind}"
    return Path(config.student_files[0]).stem + kind


def ungradable_reason(owner: Path, config: AssignmentConfig, scratch: Path) -> str | None:
    """Why the upload cannot be graded at all, or None: read by `grader.intake` exactly as
    a worker will read it (its limits: zip bombs, hostile names, sizes), then every
    Python file it yields must parse."""
    try:
        submission = intake(owner, scratch, expected_files=config.student_files,
                            limits=IntakeLimits(), assignment=config.id)
    except OSError:
        return _("The service could not store the upload for reading; try again in a minute.")
    if config.student_files and not submission.files:
        why = i18n.join_clauses(submission.problems) or _("none of the expected files were "
                                                          "in it")
        return _("This upload cannot be graded: {why}. It cost no attempt; fix it and upload "
                 "again.", why=why)
    for name in submission.files:
        if not name.endswith(".py"):
            continue
        source = (submission.workspace / name).read_bytes()
        try:
            ast.parse(source, filename=name)
        except SyntaxError as error:
            return _("This upload cannot be graded: {name} has a syntax error on line {line}: "
                     "{error}. It cost no attempt; run `python {name}` to see it, fix it and "
                     "upload again.", name=name, line=error.lineno,
                     error=printable(str(error.msg), limit=200))
        except (ValueError, RecursionError, MemoryError) as error:
            return _("This upload cannot be graded: {name} cannot be parsed as Python "
                     "({error}). It cost no attempt; fix it and upload again.", name=name,
                     error=type(error).__name__)
    return None


# --- attempts -----------------------------------------------------------------------------

@router.get("/attempts/{attempt_id}", response_class=HTMLResponse)
def attempt_page(request: Request, attempt_id: int, user: Student,
                 session: Db) -> Response:
    row = own_attempt(session, user, attempt_id)
    config = assignment(request, row.assignment_id)
    return render(request, "service/attempt.html.j2", user=user, attempt=row, config=config,
                  **_status(request, session, row, config))


@router.get("/attempts/{attempt_id}/status", response_class=HTMLResponse)
def attempt_status(request: Request, attempt_id: int, user: Student,
                   session: Db) -> Response:
    row = own_attempt(session, user, attempt_id)
    config = assignment(request, row.assignment_id)
    return render(request, "service/_status.html.j2", user=user, attempt=row, config=config,
                  **_status(request, session, row, config))


def _status(request: Request, session: Session, row: AttemptModel,
            config: AssignmentConfig) -> dict[str, Any]:
    public = session.get(JobModel, row.public_job_id) if row.public_job_id else None
    hidden = session.get(JobModel, row.hidden_job_id) if row.hidden_job_id else None
    release = release_state(session, config, request)
    ahead = 0
    if public is not None and public.state == queue.QUEUED:
        ahead = session.scalar(select(func.count()).select_from(JobModel).where(
            JobModel.state == queue.QUEUED, JobModel.kind == queue.PUBLIC,
            JobModel.id < public.id)) or 0
    waiting = {queue.QUEUED, queue.RUNNING}
    final = (public is None or public.state not in waiting) and (
        not release.released or hidden is None or hidden.state not in waiting)
    return {"public": public, "hidden": hidden, "release": release, "ahead": ahead,
            "final": final, "public_result": _result(public), "hidden_result": _result(hidden)}


def _result(job: JobModel | None) -> dict[str, Any] | None:
    """A job's summary as plain, checked values (the worker wrote it; still data)."""
    if job is None or job.state != queue.DONE or not isinstance(job.result, dict):
        return None
    result = job.result
    tests = [{key: str(t.get(key) or "") for key in ("name", "status", "message")}
             for t in result.get("tests", []) if isinstance(t, dict)]
    return {"score": _number(result.get("score")), "max_score": _number(result.get("max_score")),
            "problems": [shown_problem(str(p)) for p in result.get("problems", []) if p],
            "tests": tests, "passed": sum(1 for t in tests if t.get("status") == "passed")}


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and value == value else 0.0


@router.get("/attempts/{attempt_id}/report", response_class=HTMLResponse)
def attempt_report(request: Request, attempt_id: int, user: Student,
                   session: Db) -> Response:
    row = own_attempt(session, user, attempt_id)
    config = assignment(request, row.assignment_id)
    release = release_state(session, config, request)
    if not release.released:
        raise HTTPException(403, _("The full report of this attempt is not released yet. "
                                   "{release} Until then your attempt page shows the public "
                                   "tests' result.", release=release.text))
    hidden = session.get(JobModel, row.hidden_job_id) if row.hidden_job_id else None
    record = session.get(SubmissionModel, hidden.record_id) if hidden and hidden.record_id \
        else None
    if record is None or record.grade is None or record.student_id != user.student_id:
        raise HTTPException(404, _("This attempt has no graded report yet: its hidden suite "
                                   "has not finished. Look again in a few minutes."))
    page = _report_html(request.app.state.gradebook, session, record, config,
                        request.app.state.language)
    request.state.style_hashes = security.style_hashes(page.encode())
    return HTMLResponse(page)


def _report_html(gradebook: Gradebook, session: Session, record: SubmissionModel,
                 config: AssignmentConfig, language: str) -> str:
    """The CLI's HTML report (`grader.reports`) of one recorded submission, read in the
    request's `session`."""
    from grader.reports import inputs
    from grader.reports.student import render_student_report

    report = inputs.from_grade_row(gradebook.grade_row(record.id, session=session))
    return render_student_report(report, config=config, language=language).html

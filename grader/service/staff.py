"""The staff side of `grader serve`: per assignment a dashboard, each student's history,
regrades, release, overrides, extensions and exports, every action audited.

Routes, all under ``/staff`` (pages in ``grader/templates/service/staff_*.html.j2``);
"staff" is a TA or an instructor:

- ``GET /staff`` (staff): the assignments, their release state and queue;
- ``GET /staff/{a}`` (staff): the dashboard: grader errors first, the queue, failures by
  reason, the class summary's numbers, every student; ``GET /staff/{a}/queue``: the queue
  table alone (refreshed live); ``GET /staff/{a}/summary``: the full class summary;
- ``GET /staff/{a}/students/{s}`` (staff): a student's uploads, graded submissions,
  override and extensions; ``.../report``: their current report, hidden tests included;
- ``POST /staff/{a}/students/{s}/regrade`` (staff): their latest upload graded again;
- ``POST /staff/{a}/regrade`` (instructor): every student's latest upload graded again;
- ``POST /staff/{a}/release`` (instructor): hidden results out now, at the due date, or
  withheld;
- ``POST /staff/{a}/students/{s}/override`` and ``.../extension`` (instructor): through the
  gradebook and `grader.grade_record` (`check_override`, `check_extension`);
- ``GET /staff/{a}/export.csv?preset=...`` and ``GET /staff/{a}/export-gradescope.zip``
  (staff): `grader.export` as downloads;
- ``GET /staff/audit`` (instructor): the audit log, newest first.

The roles' rule: a TA reads everything and may regrade one student (a TA who finds a grader
error fixes that student's grade) and export; what changes grades for the whole class or
what a student is told (regrade all, release, overrides, extensions) is the instructor's.
Every POST carries the CSRF token; every action writes one audit row (who, when, what) in
the same transaction as the action itself.

Ids in URLs are hostile: an assignment must be one of the course's, a student one the
gradebook knows; anything else is a 404 that says which ones exist.
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from grader import i18n
from grader.config import AssignmentConfig, ConfigError, load_assignment
from grader.export import ExportError, export
from grader.export.presets import PRESETS
from grader.gradebook import Gradebook, GradebookError
from grader.gradebook.models import (
    AttemptModel,
    AuditModel,
    JobModel,
    StudentModel,
)
from grader.ids import InvalidId, printable, validate_id
from grader.reports import from_grade_row, render_student_report
from grader.reports.class_summary import render_class_summary, summary_context
from grader.service import queue
from grader.service import student as student_side
from grader.service.auth import User, audit, db_session, require_instructor, require_staff
from grader.service.security import csrf_protect, style_hashes

_, _n = i18n.Domain("service").functions()
router = APIRouter(prefix="/staff")
Staff = Annotated[User, Depends(require_staff)]
Instructor = Annotated[User, Depends(require_instructor)]
Db = Annotated[Session, Depends(db_session)]
FormText = Annotated[str, Form()]

REGRADE_PRIORITY = -1  # a regrade waits behind students' own uploads
QUEUE_SHOWN = 200  # jobs listed on the queue table (the counts cover all)
AUDIT_SHOWN = 500  # audit rows on the audit page
RELEASE_ACTIONS = ("now", "due", "withhold")


# --- what every route needs -------------------------------------------------------------

def _course(request: Request) -> Any:
    return request.app.state.course


def _gradebook(request: Request) -> Gradebook:
    return request.app.state.gradebook


def assignment_config(request: Request, assignment: str) -> AssignmentConfig:
    """The course's assignment named in the URL, or a 404 listing the course's ones."""
    configs = student_side.assignments(request)  # the app's cache, shared with students
    if assignment not in configs:
        raise HTTPException(404, _("There is no assignment `{assignment}` in this course; the "
                                   "course has: {known}.",
                                   assignment=printable(assignment, limit=80),
                                   known=i18n.join_items(sorted(configs)) or _("none")))
    return configs[assignment]


def _student(session: Session, student: str) -> StudentModel:
    """The gradebook's student named in the URL, or a 404."""
    try:
        ident = validate_id(student)
    except InvalidId:
        ident = ""
    row = session.get(StudentModel, ident) if ident else None
    if row is None:
        raise HTTPException(404, _("There is no student `{student}` in the gradebook; add the "
                                   "class with `grader roster` first.",
                                   student=printable(student, limit=80)))
    return row


def _render(request: Request, name: str, user: User, status: int = 200, *,
            fragment: bool = False, **context: Any) -> HTMLResponse:
    """A staff page; a `fragment` (polled every 2 s) leaves the pending message for the page."""
    from grader.service.app import render  # the app imports this module when it starts

    flash = None if fragment else request.session.pop("staff_flash", None)
    return render(request, f"service/{name}", status_code=status, user=user, flash=flash,
                  **context)


def flash_redirect(request: Request, where: str, message: str) -> RedirectResponse:
    """After a POST: the sentence shown once on the next page, and a redirect there."""
    request.session["staff_flash"] = message
    return RedirectResponse(where, status_code=303)


# --- reading ----------------------------------------------------------------------------

def queue_view(session: Session, assignment_id: str) -> dict[str, Any]:
    """The assignment's jobs: counts by (kind, state), and the unfinished and failed ones
    (failed first: a grader error is the instructor's to resolve)."""
    counts = Counter({(kind, state): n for kind, state, n in session.execute(
        select(JobModel.kind, JobModel.state, func.count()).where(
            JobModel.assignment_id == assignment_id).group_by(JobModel.kind, JobModel.state))})
    order = {queue.FAILED: 0, queue.RUNNING: 1, queue.QUEUED: 2}
    jobs = list(session.scalars(select(JobModel).where(
        JobModel.assignment_id == assignment_id,
        JobModel.state.in_(list(order))).order_by(JobModel.id).limit(QUEUE_SHOWN)))
    jobs.sort(key=lambda job: (order[job.state], job.id))
    return {"counts": {f"{kind} {state}": counts.get((kind, state), 0)
                       for kind in (queue.PUBLIC, queue.HIDDEN)
                       for state in (queue.QUEUED, queue.RUNNING, queue.DONE, queue.FAILED)},
            "waiting": counts.get((queue.PUBLIC, queue.QUEUED), 0)
            + counts.get((queue.HIDDEN, queue.QUEUED), 0),
            "jobs": [{"id": job.id, "student": job.student_id, "kind": job.kind,
                      "state": job.state, "attempts": job.attempts,
                      "created": job.created_at,
                      "error": (job.error or "").strip().splitlines()[-1:] or [""]}
                     for job in jobs]}


def _summary(request: Request, config: AssignmentConfig) -> dict[str, Any]:
    gradebook = _gradebook(request)
    try:
        rows = gradebook.latest(config.id)
    except GradebookError:
        rows = []  # nothing graded yet: the assignment is not in the gradebook
    return summary_context([from_grade_row(row) for row in rows], config=config,
                           roster=gradebook.students())


@router.get("", response_class=HTMLResponse)
def index(request: Request, user: Staff,
          session: Db) -> HTMLResponse:
    course = _course(request)
    rows = []
    for ident in course.assignment_ids():
        try:
            config = load_assignment(course.assignments / ident, repo_root=course.root)
        except ConfigError as error:
            rows.append({"id": ident, "title": ident, "error": str(error)})
            continue
        rows.append({"id": ident, "title": config.title, "due": config.due,
                     "release": student_side.release_state(session, config, request).text,
                     "waiting": queue_view(session, ident)["waiting"], "error": ""})
    return _render(request, "staff_index.html.j2", user, assignments=rows)


@router.get("/audit", response_class=HTMLResponse)
def audit_log(request: Request, user: Instructor,
              session: Db) -> HTMLResponse:
    rows = session.scalars(select(AuditModel).order_by(AuditModel.id.desc())
                           .limit(AUDIT_SHOWN))
    entries = [{"at": row.at, "actor": row.actor, "action": row.action,
                "detail": ", ".join(f"{k}={v}" for k, v in sorted((row.detail or {}).items()))}
               for row in rows]
    return _render(request, "staff_audit.html.j2", user, entries=entries)


@router.get("/{assignment}", response_class=HTMLResponse)
def dashboard(assignment: str, request: Request, user: Staff,
              session: Db) -> HTMLResponse:
    config = assignment_config(request, assignment)
    return _render(request, "staff_dashboard.html.j2", user, config=config,
                   summary=_summary(request, config), queue=queue_view(session, config.id),
                   release=student_side.release_state(session, config, request),
                   presets=sorted(PRESETS), lti=(_course(request).root / "lti.toml").is_file())


@router.get("/{assignment}/queue", response_class=HTMLResponse)
def queue_table(assignment: str, request: Request, user: Staff,
                session: Db) -> HTMLResponse:
    config = assignment_config(request, assignment)
    return _render(request, "staff_queue.html.j2", user, fragment=True, config=config,
                   queue=queue_view(session, config.id))


@router.get("/{assignment}/summary", response_class=HTMLResponse)
def class_summary(assignment: str, request: Request,
                  user: Staff) -> HTMLResponse:
    config = assignment_config(request, assignment)
    gradebook = _gradebook(request)
    try:
        rows = gradebook.latest(config.id)
    except GradebookError:
        rows = []
    links = {row.student_id: f"students/{_quote(row.student_id)}/report" for row in rows}
    html = render_class_summary([from_grade_row(row) for row in rows], config=config,
                                roster=gradebook.students(), report_links=links)
    return _report_page(request, html)


@router.get("/{assignment}/students/{student}", response_class=HTMLResponse)
def student_page(assignment: str, student: str, request: Request,
                 user: Staff,
                 session: Db) -> HTMLResponse:
    config = assignment_config(request, assignment)
    row = _student(session, student)
    gradebook = _gradebook(request)
    try:
        history = gradebook.history(config.id, row.id)
        overrides = gradebook.overrides(config.id)
    except GradebookError:
        history, overrides = [], {}
    attempts = list(session.scalars(select(AttemptModel).where(
        AttemptModel.assignment_id == config.id, AttemptModel.student_id == row.id)
        .order_by(AttemptModel.id.desc())))
    jobs = {job.id: job for job in session.scalars(select(JobModel).where(
        JobModel.assignment_id == config.id, JobModel.student_id == row.id))}
    return _render(request, "staff_student.html.j2", user, config=config, student=row,
                   history=history, override=overrides.get(row.id),
                   extensions=gradebook.extensions(config.id, row.id),
                   attempts=[{"row": a, "public": jobs.get(a.public_job_id or -1),
                              "hidden": jobs.get(a.hidden_job_id or -1),
                              "uploaded": a.uploaded_at} for a in attempts])


@router.get("/{assignment}/students/{student}/report", response_class=HTMLResponse)
def student_report(assignment: str, student: str, request: Request,
                   user: Staff,
                   session: Db) -> HTMLResponse:
    config = assignment_config(request, assignment)
    row = _student(session, student)
    try:
        current = [r for r in _gradebook(request).latest(config.id) if r.student_id == row.id]
    except GradebookError:
        current = []
    if not current:
        raise HTTPException(404, _("{student} has no graded submission for {assignment} yet.",
                                   student=printable(row.id), assignment=config.id))
    report = render_student_report(from_grade_row(current[0]), config=config,
                                   language=request.app.state.language)
    return _report_page(request, report.html)


def _report_page(request: Request, html: str) -> HTMLResponse:
    """A self-contained report page: its inline CSS allowed by hash, nothing else."""
    request.state.style_hashes = style_hashes(html.encode("utf-8"))
    return HTMLResponse(html)


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


# --- acting -----------------------------------------------------------------------------

def latest_uploads(session: Session, assignment_id: str,
                   student_id: str | None = None) -> list[AttemptModel]:
    """Each student's latest gradable upload (stored, not refused) for the assignment."""
    query = select(AttemptModel).where(AttemptModel.assignment_id == assignment_id,
                                       AttemptModel.stored.is_not(None),
                                       AttemptModel.refused.is_(None))
    if student_id is not None:
        query = query.where(AttemptModel.student_id == student_id)
    latest: dict[str, AttemptModel] = {}
    for attempt in session.scalars(query.order_by(AttemptModel.id)):
        latest[attempt.student_id] = attempt
    return [latest[key] for key in sorted(latest)]


def regrade(session: Session, attempts: list[AttemptModel]
            ) -> tuple[int, int, list[str]]:
    """Queues a hidden job for each upload whose hidden job is not already waiting.

    The attempt then points at the new job (the student's page follows the newest grading).
    An upload that cannot be queued is listed and the others are queued all the same.

    Returns:
        (queued, skipped because a hidden job of that upload was still queued,
        "student: why" for each upload that could not be queued).
    """
    queued, skipped, problems = 0, 0, []
    for attempt in attempts:
        waiting = session.get(JobModel, attempt.hidden_job_id) if attempt.hidden_job_id \
            else None
        if waiting is not None and waiting.state == queue.QUEUED:
            skipped += 1  # it will run with the fixed suite anyway: no second job
            continue
        try:
            with session.begin_nested():  # one bad row rolls back alone
                attempt.hidden_job_id = queue.enqueue(
                    session, str(attempt.stored), queue.HIDDEN, REGRADE_PRIORITY,
                    assignment_id=attempt.assignment_id, student_id=attempt.student_id,
                    submitted_at=attempt.uploaded_at)
        except queue.QueueError as error:
            problems.append(f"{attempt.student_id}: {error}")
            continue
        queued += 1
    return queued, skipped, problems


@router.post("/{assignment}/regrade", dependencies=[Depends(csrf_protect)])
def regrade_all(assignment: str, request: Request, user: Instructor,
                session: Db) -> RedirectResponse:
    config = assignment_config(request, assignment)
    queued, skipped, problems = regrade(session, latest_uploads(session, config.id))
    detail: dict[str, object] = {"assignment": config.id, "queued": queued,
                                 "already queued": skipped}
    if problems:
        detail["not queued"] = problems
    audit(session, user, "regrade all", detail)
    message = _("Regrade of {assignment}: {queued} upload(s) queued for hidden grading, "
                "{skipped} already waiting in the queue.", assignment=config.id, queued=queued,
                skipped=skipped) if skipped else _(
        "Regrade of {assignment}: {queued} upload(s) queued for hidden grading.",
        assignment=config.id, queued=queued)
    if problems:  # a second whole sentence
        message += " " + _("Not queued ({n}): {problems}", n=len(problems),
                           problems=i18n.join_clauses(problems[:5]))
    return flash_redirect(request, f"/staff/{config.id}", message)


@router.post("/{assignment}/students/{student}/regrade", dependencies=[Depends(csrf_protect)])
def regrade_one(assignment: str, student: str, request: Request,
                user: Staff,
                session: Db) -> RedirectResponse:
    config = assignment_config(request, assignment)
    row = _student(session, student)
    uploads = latest_uploads(session, config.id, row.id)
    page = f"/staff/{config.id}/students/{_quote(row.id)}"
    if not uploads:
        return flash_redirect(request, page, _("{student} has no upload of {assignment} that "
                                               "can be graded; nothing was queued.",
                                               student=row.id, assignment=config.id))
    queued, _skipped, problems = regrade(session, uploads)
    if problems:
        return flash_redirect(request, page, _("Nothing was queued: {problem}",
                                               problem=problems[0]))
    audit(session, user, "regrade", {"assignment": config.id, "student": row.id,
                                     "queued": queued})
    return flash_redirect(request, page, _("{student}'s latest upload is queued for hidden "
                                           "grading.", student=row.id) if queued else _(
        "{student}'s latest upload is already waiting in the queue.", student=row.id))


@router.post("/{assignment}/release", dependencies=[Depends(csrf_protect)])
def release(assignment: str, request: Request, action: FormText,
            user: Instructor,
            session: Db) -> RedirectResponse:
    """``action``: "now" (released by hand), "due" (at the due date), "withhold"."""
    config = assignment_config(request, assignment)
    if action not in RELEASE_ACTIONS:
        raise HTTPException(400, _("Unknown release action {action}; expected one of: "
                                   "{actions}.", action=repr(printable(action, limit=40)),
                                   actions=i18n.join_items(RELEASE_ACTIONS)))
    row = student_side.settings(session, config.id)  # the stored row, or the defaults
    session.add(row)  # (a new row keeps the default attempt limit)
    if action == "now":
        row.release_mode, row.released_at = "manual", datetime.now(timezone.utc)
        row.released_by = user.name
    else:
        row.release_mode = "due" if action == "due" else "manual"
        row.released_at, row.released_by = None, None
    session.flush()
    state = student_side.release_state(session, config, request)
    from grader.service.lti.passback import schedule_release  # LTI grade passback's outbox

    audit(session, user, "release", {"assignment": config.id, "action": action,
                                     "state": state.text,
                                     "lti_queued": schedule_release(request, session, config)})
    return flash_redirect(request, f"/staff/{config.id}", _("{assignment}: {state}",
                                                            assignment=config.id,
                                                            state=state.text))


@router.post("/{assignment}/students/{student}/override",
             dependencies=[Depends(csrf_protect)])
def override(assignment: str, student: str, request: Request, user: Instructor, session: Db,
             points: FormText = "", reason: FormText = "", clear: FormText = "") -> Response:
    config = assignment_config(request, assignment)
    row = _student(session, student)
    page = f"/staff/{config.id}/students/{_quote(row.id)}"
    try:
        result = _gradebook(request).set_override(
            config.id, row.id, None if clear else _number(points, _POINTS_NOT_A_NUMBER), reason,
            by=user.name)
    except (GradebookError, ValueError) as error:
        return flash_redirect(request, page, _("The override was not saved: {error}",
                                               error=error))
    audit(session, user, "override", {
        "assignment": config.id, "student": row.id,
        "points": None if result is None else result.points,
        "reason": "" if result is None else result.reason})
    return flash_redirect(
        request, page, _("Override cleared: {student} gets the computed grade again.",
                         student=row.id) if result is None else
        _("Override saved: {student} gets {points} points ({reason}).", student=row.id,
          points=f"{result.points:g}", reason=result.reason))


@router.post("/{assignment}/students/{student}/extension",
             dependencies=[Depends(csrf_protect)])
def extension(assignment: str, student: str, request: Request, user: Instructor, session: Db,
              days: FormText = "", reason: FormText = "") -> Response:
    config = assignment_config(request, assignment)
    row = _student(session, student)
    page = f"/staff/{config.id}/students/{_quote(row.id)}"
    try:
        granted = _gradebook(request).extend(config, row.id, _number(days, _DAYS_NOT_A_NUMBER),
                                             reason,
                                             by=user.name)
    except (GradebookError, ValueError) as error:
        return flash_redirect(request, page, _("The extension was not saved: {error}",
                                               error=error))
    audit(session, user, "extension", {"assignment": config.id, "student": row.id,
                                       "days": granted.days, "reason": granted.reason})
    return flash_redirect(request, page, _("Extension cleared for {student}.", student=row.id)
                          if not granted.days else
                          _("Extension saved: {student} has {days} more day(s) ({reason}).",
                            student=row.id, days=f"{granted.days:g}", reason=granted.reason))


_POINTS_NOT_A_NUMBER = i18n.lazy("points must be a number; received {received}")
_DAYS_NOT_A_NUMBER = i18n.lazy("days must be a number; received {received}")


def _number(text: str, refusal: str) -> float:
    """`text` as a number; else ValueError with `refusal` (a `lazy` sentence, ``{received}``)."""
    try:
        return float(text.strip())
    except (AttributeError, ValueError):
        raise ValueError(_(refusal, received=repr(printable(str(text), limit=40)))) from None


@router.get("/{assignment}/export.csv")
def export_csv(assignment: str, request: Request, user: Staff, session: Db,
               preset: str = "") -> Response:
    config = assignment_config(request, assignment)
    if preset and preset not in PRESETS:
        raise HTTPException(400, _("Unknown preset {preset}; presets: {presets}.",
                                   preset=repr(printable(preset, limit=40)),
                                   presets=i18n.join_items(sorted(PRESETS))))
    with tempfile.TemporaryDirectory(prefix="grader-export-") as folder:
        target = Path(folder) / f"{config.id}.csv"
        _export(request, config, "csv", target, preset=preset or None)
        data = target.read_bytes()
    audit(session, user, "export", {"assignment": config.id, "format": "csv",
                                    "preset": preset or "default"})
    return Response(data, media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{config.id}-grades.csv"'})


@router.get("/{assignment}/export-gradescope.zip")
def export_gradescope(assignment: str, request: Request, user: Staff,
                      session: Db) -> Response:
    config = assignment_config(request, assignment)
    buffer = io.BytesIO()
    with tempfile.TemporaryDirectory(prefix="grader-export-") as folder:
        target = Path(folder) / "results"
        _export(request, config, "gradescope", target)
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
            for path in sorted(target.rglob("*")):
                if path.is_file():
                    bundle.write(path, path.relative_to(target).as_posix())
    audit(session, user, "export", {"assignment": config.id, "format": "gradescope"})
    return Response(buffer.getvalue(), media_type="application/zip", headers={
        "Content-Disposition": f'attachment; filename="{config.id}-gradescope.zip"'})


def _export(request: Request, config: AssignmentConfig, fmt: str, target: Path,
            **options: Any) -> None:
    """`grader.export.export` on the service's gradebook; its errors become a 409 sentence."""
    url = _gradebook(request).engine.url.render_as_string(hide_password=False)
    problems: list[tuple[str, str]] = []
    try:
        export(assignment=str(config.root),
               format=fmt, out=target, db=url, problems=problems, **options)
    except (ExportError, GradebookError) as error:
        raise HTTPException(409, _("Nothing to export for {assignment} yet: {error}",
                                   assignment=config.id, error=error)) from None


"""The LTI routes of `grader serve`, and grade passback from the staff dashboard.

- ``GET|POST /lti/login``: OIDC login initiation (the LMS's first call) -> redirect to the
  platform with a fresh state and nonce;
- ``POST /lti/launch``: the platform's signed id_token; checked (`validate_launch`), then the
  person is signed in: a student by the roster number the LMS sends (LIS
  ``person_sourcedid``), which must be a student of the gradebook; staff only into an existing
  staff account whose name is their LMS e-mail or number (the service's role counts, and
  the LMS must call them staff too). Every launch is audited (``lti-launch``) with what
  passback needs: the platform, the user's LMS id and the activity's line item;
- ``GET /lti/jwks.json``: the tool's public key (the platform checks AGS assertions with it);
- ``POST /staff/{a}/lti-passback`` (instructor): every released grade of the assignment sent
  to the line items of the students' latest launches (AGS).

The course's ``lti.toml`` (`grader.service.lti.platforms`) switches LTI on; without it these
routes answer 404 with a sentence. The launch is a cross-site POST: it carries no CSRF
token; the signature, the nonce and the state protect it, and the state is bound to the
browser that started the login by a short-lived cookie (SameSite=None and Secure behind
HTTPS), so nobody can make another browser sign in as them (login CSRF). The LMS must
open the tool in a new window (the service refuses to be framed: ``frame-ancestors
'none'``).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from grader import i18n
from grader.gradebook import GradebookError
from grader.gradebook.models import AuditModel, StudentModel, UserModel
from grader.ids import printable
from grader.service.auth import (
    STAFF,
    User,
    audit,
    db_session,
    find_user,
    require_instructor,
    sign_in,
)
from grader.service.lti.ags import AgsClient, AgsError, Score
from grader.service.lti.launch import (
    STATE_TTL_S,
    Launch,
    LtiError,
    NonceStore,
    login_redirect,
    validate_launch,
)
from grader.service.lti.platforms import (
    LtiConfigError,
    PlatformRegistry,
    ToolKey,
    load_platforms,
)
from grader.service.security import csrf_protect

_, _n = i18n.Domain("service").functions()
router = APIRouter()
Db = Annotated[Session, Depends(db_session)]
LAUNCH_ACTION = "lti-launch"
STATE_COOKIE = "lti_state_"  # + the login's state: set at login, required at launch


class LtiState:
    """What the app keeps for LTI: the registry, the tool key, the login states."""

    def __init__(self, registry: PlatformRegistry, key: ToolKey) -> None:
        self.registry, self.key, self.store = registry, key, NonceStore()


def lti_state(request: Request) -> LtiState:
    """The course's LTI set-up (read from ``lti.toml`` once), or a 404 when there is none."""
    state = getattr(request.app.state, "lti", None)
    if state is None:
        try:
            loaded = load_platforms(request.app.state.course.root)
        except LtiConfigError as error:
            raise HTTPException(500, _("LTI is not usable: {error}", error=error)) from None
        if loaded is None:
            raise HTTPException(404, _("This course has no LMS connection (no lti.toml); sign "
                                       "in with your access code instead."))
        state = request.app.state.lti = LtiState(*loaded)
    return state


@router.api_route("/lti/login", methods=["GET", "POST"])
async def lti_login(request: Request) -> Response:
    lti = lti_state(request)
    params: dict[str, Any] = dict(request.query_params)
    if request.method == "POST":
        params.update({k: v for k, v in (await request.form()).items() if isinstance(v, str)})
    try:
        target = login_redirect(lti.registry, lti.store, params,
                                launch_url=str(request.url_for("lti_launch")))
    except LtiError as error:
        raise HTTPException(error.status, str(error)) from None
    response = RedirectResponse(target, status_code=302)
    state = parse_qs(urlsplit(target).query)["state"][0]
    secure = request.url.scheme == "https"  # behind the proxy: X-Forwarded-Proto
    # The launch comes back as a cross-site POST: only a SameSite=None (hence Secure) cookie
    # travels with it. It binds the state to this browser (no login CSRF).
    response.set_cookie(STATE_COOKIE + state, "1", max_age=int(STATE_TTL_S), httponly=True,
                        secure=secure, samesite="none" if secure else "lax", path="/lti/")
    return response


@router.post("/lti/launch", name="lti_launch")
def lti_launch(request: Request, session: Db, id_token: Annotated[str, Form()] = "",
               state: Annotated[str, Form()] = "") -> Response:
    lti = lti_state(request)
    if request.cookies.get(STATE_COOKIE + state) != "1":
        raise HTTPException(400, _("The LMS launch was refused: it did not start in this "
                                   "browser (a launch sent from elsewhere, or the browser "
                                   "blocks the tool's cookies). Open the tool from the LMS in "
                                   "a new window."))
    try:
        launch = validate_launch(id_token, state, registry=lti.registry, store=lti.store)
    except LtiError as error:
        raise HTTPException(error.status, _("The LMS launch was refused: {error}",
                                            error=error)) from None
    row = launch_user(session, launch)
    sign_in(request, row)
    audit(session, User(row.id, row.name, row.role, row.student_id), LAUNCH_ACTION,
          {"issuer": launch.issuer, "client_id": launch.client_id, "subject": launch.subject,
           "assignment": launch.assignment, "lineitem": launch.lineitem,
           "student": row.student_id, "lms_role": launch.role})
    target = "/"
    if row.role == "student" and launch.assignment in request.app.state.course.assignment_ids():
        target = f"/assignments/{launch.assignment}"
    response = RedirectResponse(target, status_code=303)
    response.delete_cookie(STATE_COOKIE + state, path="/lti/")
    return response


def launch_user(session: Session, launch: Launch) -> UserModel:
    """The account a checked launch signs in (a student's made on first launch).

    Raises:
        HTTPException: 403 with what to do: no roster number, a number the gradebook does not
            know, or a staff launch without a staff account.
    """
    if launch.role == "student":
        if launch.student_id is None:
            raise HTTPException(403, _("The LMS did not send a student number the grader can "
                                       "use; sign in with your access code, or ask your "
                                       "instructor to check the LMS's roster export."))
        if session.get(StudentModel, launch.student_id) is None:
            raise HTTPException(403, _("Student number {student} is not on this course's "
                                       "roster; ask your instructor to add you (grader "
                                       "roster).", student=printable(launch.student_id)))
        row = session.scalar(select(UserModel).where(UserModel.student_id == launch.student_id))
        if row is None:
            row = UserModel(name=launch.student_id, role="student", student_id=launch.student_id,
                            created_at=datetime.now(timezone.utc), active=True)
            session.add(row)
            session.flush()
        if not row.active or row.role != "student":
            raise HTTPException(403, _("This account is disabled; ask your instructor."))
        return row
    for name in (launch.email, launch.student_id or ""):
        row = find_user(session, name) if name else None
        if row is not None and row.active and row.role in STAFF:
            return row
    raise HTTPException(403, _("Your LMS account is staff, but the grader has no staff "
                               "account named after your e-mail; ask the instructor to create "
                               "one (grader user add), or sign in with your password."))


@router.get("/lti/jwks.json")
def lti_jwks(request: Request) -> JSONResponse:
    return JSONResponse(lti_state(request).key.public_jwks())


def latest_launches(session: Session, assignment_id: str) -> dict[str, dict[str, Any]]:
    """Student id -> the detail of their latest launch of the assignment with a line item."""
    rows = session.scalars(select(AuditModel).where(AuditModel.action == LAUNCH_ACTION)
                           .order_by(AuditModel.id))
    found: dict[str, dict[str, Any]] = {}
    for row in rows:
        detail = row.detail or {}
        if detail.get("assignment") == assignment_id and detail.get("lineitem") \
                and detail.get("student"):
            found[str(detail["student"])] = dict(detail)
    return found


@router.post("/staff/{assignment}/lti-passback", dependencies=[Depends(csrf_protect)])
def lti_passback(assignment: str, request: Request,
                 user: Annotated[User, Depends(require_instructor)], session: Db) -> Response:
    from grader.service import staff, student

    config = staff.assignment_config(request, assignment)
    lti = lti_state(request)
    if not student.release_state(session, config, request).released:
        return staff.flash_redirect(
            request, f"/staff/{config.id}", _("Grades were not sent to the LMS: release them "
                                              "first (students would see them there)."))
    try:
        grades = {row.student_id: row for row in request.app.state.gradebook.latest(config.id)}
    except GradebookError:
        grades = {}
    sent, problems = 0, []
    clients: dict[tuple[str, str], AgsClient] = {}
    for student_id, launch in sorted(latest_launches(session, config.id).items()):
        row = grades.get(student_id)
        platform = lti.registry.find(str(launch["issuer"]), str(launch["client_id"]))
        if row is None or platform is None:
            continue
        client = clients.setdefault((platform.issuer, platform.client_id),
                                    AgsClient(platform, lti.key, lti.registry.http))
        try:
            client.post_score(str(launch["lineitem"]), Score(
                str(launch["subject"]), row.final_score, row.max_score))
            sent += 1
        except AgsError as error:
            problems.append(f"{student_id}: {error}")
    audit(session, user, "lti-passback", {"assignment": config.id, "sent": sent,
                                          "failed": len(problems)})
    message = _("{sent} grade(s) of {assignment} sent to the LMS.", sent=sent,
                assignment=config.id)
    if problems:  # a second whole sentence
        message += " " + _("{n} could not be sent (send again once the LMS answers): "
                           "{problems}", n=len(problems),
                           problems=i18n.join_clauses(problems[:5]))
    return staff.flash_redirect(request, f"/staff/{config.id}", message)

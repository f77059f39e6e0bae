"""The LTI routes of `grader serve`, and grade passback from the staff dashboard.

- ``GET|POST /lti/login``: OIDC login initiation (the LMS's first call) -> redirect to the
  platform with a fresh state and nonce;
- ``POST /lti/launch``: the platform's signed id_token; checked (`validate_launch`), then the
  person is signed in: a student by the roster number the LMS sends (LIS
  ``person_sourcedid``), which must be a student of the gradebook; staff only into an existing
  staff account whose name is their LMS e-mail or number (the service's role counts, and
  the LMS must call them staff too). Every launch is a row of ``lti_launches`` with what
  passback needs (the platform, the user's LMS id, the activity's line item) and is audited
  (``lti-launch``: who, what, when);
- ``GET /lti/jwks.json``: the tool's public key (the platform checks AGS assertions with it);
- ``POST /staff/{a}/lti-passback`` (instructor): every released grade of the assignment
  queued again for the line items of the students' latest launches (a manual resend; the
  release queues them by itself and `grader worker` sends them: `passback`);
- ``GET /staff/{a}/lti`` (staff): each linked student's passback: state, score, the score
  the LMS accepted, failed tries, the next try and the last error.

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
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy import case, select
from sqlalchemy.orm import Session, sessionmaker

from grader import i18n
from grader.gradebook.models import LtiLaunchModel, LtiPassbackModel, StudentModel, UserModel
from grader.ids import printable
from grader.service.auth import (
    STAFF,
    User,
    audit,
    db_session,
    find_user,
    require_instructor,
    require_staff,
    sign_in,
)
from grader.service.lti import passback
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
    lti_stamp,
)
from grader.service.security import csrf_protect

_, _n = i18n.Domain("service").functions()
router = APIRouter()
Db = Annotated[Session, Depends(db_session)]
LAUNCH_ACTION = "lti-launch"
STATE_COOKIE = "lti_state_"  # + the login's state: set at login, required at launch


class LtiState:
    """What the app keeps for LTI: the registry, the tool key, and the login states and nonces
    (in the gradebook's database: every process of the service shares them)."""

    def __init__(self, registry: PlatformRegistry, key: ToolKey,
                 sessions: sessionmaker) -> None:
        self.registry, self.key, self.store = registry, key, NonceStore(sessions)


def lti_state(request: Request) -> LtiState:
    """The course's LTI set-up, read from ``lti.toml`` again whenever the file changes, or a
    404 when there is none (a state set on the app by a test is kept as it is)."""
    app_state = request.app.state
    stamp = lti_stamp(app_state.course.root)
    state = getattr(app_state, "lti", None)
    if state is not None and getattr(app_state, "lti_stamp", stamp) == stamp:
        return state
    app_state.lti = None
    try:
        loaded = load_platforms(app_state.course.root)
    except LtiConfigError as error:
        raise HTTPException(500, _("LTI is not usable: {error}", error=error)) from None
    if loaded is None:
        raise HTTPException(404, _("This course has no LMS connection (no lti.toml); sign "
                                   "in with your access code instead."))
    app_state.lti, app_state.lti_stamp = LtiState(*loaded, app_state.sessions), stamp
    return app_state.lti


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
    record_launch(session, launch, row)
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


def record_launch(session: Session, launch: Launch, user: UserModel) -> LtiLaunchModel:
    """Stores a checked launch (the launch table: what passback needs) and audits it (who,
    what, when); in the request's transaction."""
    row = LtiLaunchModel(
        at=datetime.now(timezone.utc), issuer=launch.issuer, client_id=launch.client_id,
        deployment_id=launch.deployment_id, subject=launch.subject, user_id=user.id,
        student_id=user.student_id, role=launch.role, context_id=launch.context_id,
        resource_link_id=launch.resource_link_id, assignment_id=launch.assignment,
        lineitem=launch.lineitem, ags_scopes=list(launch.ags_scopes))
    session.add(row)
    session.flush()
    audit(session, User(user.id, user.name, user.role, user.student_id), LAUNCH_ACTION,
          {"launch": row.id, "issuer": launch.issuer, "subject": launch.subject,
           "assignment": launch.assignment, "student": user.student_id,
           "lms_role": launch.role, "lineitem": bool(launch.lineitem)})
    return row


@router.post("/staff/{assignment}/lti-passback", dependencies=[Depends(csrf_protect)])
def lti_passback(assignment: str, request: Request,
                 user: Annotated[User, Depends(require_instructor)], session: Db) -> Response:
    """The instructor's resend: every linked student's released grade queued for the LMS
    again (failed and sent ones included); the workers send them (`passback`)."""
    from grader.service import staff, student

    config = staff.assignment_config(request, assignment)
    lti_state(request)  # 404 without lti.toml
    if not student.release_state(session, config, request).released:
        return staff.flash_redirect(
            request, f"/staff/{config.id}", _("Grades were not sent to the LMS: release them "
                                              "first (students would see them there)."))
    queued = passback.sync(session, request.app.state.gradebook, config, force=True)
    audit(session, user, "lti-passback", {"assignment": config.id, "queued": queued})
    return staff.flash_redirect(request, f"/staff/{config.id}/lti", _(
        "{n} grade(s) of {assignment} queued for the LMS; the grader's workers send them "
        "within a minute. This page shows each one's state.", n=queued,
        assignment=config.id))


@router.get("/staff/{assignment}/lti", response_class=HTMLResponse)
def lti_page(assignment: str, request: Request,
             user: Annotated[User, Depends(require_staff)], session: Db) -> HTMLResponse:
    """The assignment's grade passback: each linked student's row (state, score, error)."""
    from grader.service import staff

    config = staff.assignment_config(request, assignment)
    lti_state(request)
    rows = session.scalars(select(LtiPassbackModel).where(
        LtiPassbackModel.assignment_id == config.id).order_by(
        case((LtiPassbackModel.state == passback.FAILED, 0),
             (LtiPassbackModel.state == passback.PENDING, 1), else_=2),
        LtiPassbackModel.student_id))
    states = {passback.PENDING: _("waiting to be sent"), passback.SENDING: _("being sent"),
              passback.SENT: _("sent"), passback.FAILED: _("failed: send again")}
    entries = [{"student": row.student_id, "state": row.state, "shown": states[row.state],
                "score": row.score, "max": row.max_score, "sent": row.sent_score,
                "sent_at": row.sent_at, "attempts": row.attempts,
                "next": row.next_attempt_at if row.state == passback.PENDING else None,
                "error": row.error or ""} for row in rows]
    return staff._render(request, "staff_lti.html.j2", user, config=config, entries=entries)

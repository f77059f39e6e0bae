"""`grader serve`'s web application: `create_app(course, db_url)`.

One FastAPI app: the student router (`grader.service.student`), the staff router
(`grader.service.staff`) and LTI (`grader.service.lti`) when present, static files
(`grader/service/static/`: the few lines of JS for live status, the CSS), and these
layers around every request, outermost first: security headers (`security.SecurityHeaders`),
the signed session cookie (Starlette's SessionMiddleware, secret from the course folder).

Pages are the project's jinja2 templates (`grader/templates/service/`, a course's own
`templates/service/` first), autoescaped, all extending ``service/base.html.j2``;
`render` gives every page ``request``, ``user``, ``course`` and ``csrf_token()``.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import jinja2
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.orm import sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from grader import i18n
from grader.course import Course, load_course, template_loader
from grader.gradebook import open_gradebook
from grader.service import security
from grader.service.auth import SignInRequired

_, _n = i18n.Domain("service").functions()

STATIC = Path(__file__).resolve().parent / "static"
SESSION_COOKIE = "grader_session"
SESSION_MAX_AGE_S = 12 * 3600  # a working day; then sign in again
FORM_OVERHEAD = 64 * 1024  # an upload form's other fields and multipart headers
# FastAPI runs each request's database work in anyio's thread pool (40 threads): with a
# connection for each, a deadline rush never waits for one (SQLAlchemy's default is 5+10).
DB_CONNECTIONS = 40


def create_app(course: Course | str | Path, db_url: str | Path | None = None, *,
               https_only: bool = False, upload_limit: int = security.MAX_UPLOAD_BYTES,
               language: str | None = None) -> FastAPI:
    """The service for `course` on the gradebook at `db_url`.

    Args:
        course: the course (or its folder): assignments, templates, uploads and the
            session secret live in it.
        db_url: the gradebook (SQLAlchemy URL or SQLite path); default: the course's
            ``gradebook.db``. Created and migrated when needed.
        https_only: mark the session cookie Secure (behind an HTTPS reverse proxy).
        upload_limit: the largest upload in bytes.
        language: what the pages speak (``zh_CN`` or ``en``); default: the language in
            effect (`grader serve` sets the course's, or ``--lang``).

    Returns:
        The ASGI application; ``app.state`` holds ``course``, ``gradebook``, ``sessions``
        (a sessionmaker), ``db_url``, ``templates`` (the jinja2 environment) and
        ``language``.
    """
    course = course if isinstance(course, Course) else load_course(course)
    gradebook = open_gradebook(db_url if db_url is not None else course.gradebook, create=True,
                               connections=DB_CONNECTIONS)
    app = FastAPI(title=f"nn-grader: {course.title}", docs_url=None, redoc_url=None,
                  openapi_url=None)  # no API browser: every page is a form
    app.state.course = course
    app.state.gradebook = gradebook
    app.state.db_url = gradebook.engine.url.render_as_string(hide_password=False)
    app.state.sessions = sessionmaker(gradebook.engine, expire_on_commit=False)
    app.state.templates = environment(course)
    app.state.upload_limit = upload_limit
    app.state.language = i18n.normalise(language) if language else i18n.current_language()
    app.add_middleware(SessionMiddleware, secret_key=security.session_secret(course.root),
                       session_cookie=SESSION_COOKIE, max_age=SESSION_MAX_AGE_S,
                       same_site="lax", https_only=https_only)
    # the form around a file: its other fields and multipart headers
    app.add_middleware(security.BodyLimit, max_bytes=upload_limit + FORM_OVERHEAD)
    app.add_middleware(_Speaking, language=app.state.language)
    app.add_middleware(security.SecurityHeaders)  # added last: outermost, on every reply
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    app.add_api_route("/favicon.ico", lambda: Response(status_code=204),
                      include_in_schema=False)  # the reports link none; no 404 per page

    from grader.service import student
    app.include_router(student.router)
    for name in ("staff", "lti"):  # the other engineers' routers, when installed
        try:
            module = __import__(f"grader.service.{name}", fromlist=["router"])
        except ImportError:
            continue
        if hasattr(module, "router"):
            app.include_router(module.router)

    app.add_exception_handler(SignInRequired, _sign_in_required)
    # Starlette's own 404/405 (no route matched) too, not only the handlers' HTTPException
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _bad_request)
    app.router.on_shutdown.append(gradebook.close)
    return app


class _Speaking:
    """ASGI middleware: every request is answered in the service's language (the context
    only: concurrent requests and the process's children are left alone)."""

    def __init__(self, app: Any, language: str) -> None:
        self.app, self.language = app, language

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        with i18n.in_language(self.language):
            await self.app(scope, receive, send)


def environment(course: Course) -> jinja2.Environment:
    """The pages' templates: the course's `templates/` over the tool's, autoescaped, with
    jinja2's i18n extension on the ``service`` catalog (looked up at render time; newstyle:
    the values in a sentence are escaped)."""
    env = jinja2.Environment(loader=template_loader(course), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True, extensions=["jinja2.ext.i18n"])
    env.install_gettext_callables(*i18n.Domain("service").jinja_callables(), newstyle=True)
    env.globals["html_lang"] = lambda: i18n.current_language().replace("_", "-")
    env.filters["local"] = lambda moment: (
        "—" if moment is None else course.local(moment).strftime("%Y-%m-%d %H:%M %Z"))
    return env


def render(request: Request, template: str, status_code: int = 200,
           **context: Any) -> HTMLResponse:
    """A page: `template` with ``request``, ``course``, ``user`` and ``csrf_token()``.

    ``user`` is the one a handler passes, else None (the page shows no account).
    """
    env: jinja2.Environment = request.app.state.templates
    context.setdefault("user", None)
    page = env.get_template(template).render(
        request=request, course=request.app.state.course,
        csrf_token=lambda: security.csrf_token(request), **context)
    return HTMLResponse(page, status_code=status_code)


def _sign_in_required(request: Request, exc: Exception) -> Response:
    if request.method == "GET":  # a page or a polled fragment: to the sign-in form
        return RedirectResponse("/login", status_code=303)
    return HTMLResponse(html.escape(_("Sign in first: your session ended or you never "
                                      "signed in.")), status_code=401)


def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else _("The request was refused.")
    if exc.status_code == 404 and detail == "Not Found":
        detail = _("There is no such page, or it is not yours to see. Go back to your "
                   "assignments.")
    elif exc.status_code == 405 and detail == "Method Not Allowed":
        detail = _("This page cannot be used that way. Go back to your assignments.")
    try:
        return render(request, "service/error.html.j2", status_code=exc.status_code,
                      message=detail)
    except Exception:  # noqa: BLE001 - an error page must never fail itself
        return HTMLResponse(html.escape(detail), status_code=exc.status_code)


def _bad_request(request: Request, exc: Exception) -> Response:
    fields = sorted({".".join(str(p) for p in error.get("loc", ())[1:])
                     for error in getattr(exc, "errors", lambda: [])()})
    message = _("The form was incomplete or malformed (fields: {fields}). Go back, fill in "
                "every field and send it again.", fields=i18n.join_items(fields) or "?")
    return render(request, "service/error.html.j2", status_code=400, message=message)


def serve_main(*, host: str = "127.0.0.1", port: int = 8000, db: str | None = None,
               workers: int = 1, https_only: bool = False, demo: str | None = None) -> int:
    """`grader serve`: the web service on uvicorn, with `workers` local grader workers.

    With `demo` (``""``: a throwaway copy of the course in a temporary folder removed on
    exit, `grader.service.demo.setup_demo`; a folder: the demo class `grader demo` kept
    there), the course is a copy with one instructor and one student, whose sign-ins are
    printed; `db` is then ignored (the copy has its own gradebook).

    Returns:
        0 after Ctrl-C or SIGTERM (its workers stopped, a throwaway demo removed).
    """
    import os
    import shutil
    import signal
    import sys
    import tempfile

    import uvicorn

    from grader.course import current
    from grader.gradebook import database_url

    # SIGTERM (systemd, docker stop, kill) must end like Ctrl-C: workers stopped, the demo's
    # copy removed. uvicorn shuts down gracefully, then raises the signal again with the
    # handler it found, which is this one (the default would end the process on the spot).
    previous = signal.signal(signal.SIGTERM, _terminated)
    scratch, pool = None, None
    try:
        if demo is not None:
            from grader.service.demo import load_demo, setup_demo

            if demo:
                demo_class = load_demo(Path(demo))
            else:
                scratch = Path(tempfile.mkdtemp(prefix="nn-grader-demo-"))
                demo_class = setup_demo(scratch / "course")
            course = demo_class.course
            if i18n.ENV_VAR not in os.environ:  # no --lang, $GRADER_LANG or course chose one
                i18n.set_language(course.language)
            url = database_url(course.gradebook)
        else:
            course = current()
            url = database_url(db if db is not None else course.gradebook)
        app = create_app(course, url, https_only=https_only)
        if workers:
            from grader.service.worker import start_local_workers

            pool = start_local_workers(url, course, workers)
        address = f"http://{host}:{port}/"
        if demo is not None:
            kept = _("kept") if demo else _("removed when the service stops")
            print(_("grader serve --demo: a copy of {title} in {root} ({kept}). Open {url} and "
                    "sign in as\n{sign_ins}", title=course.title, root=course.root, kept=kept,
                    url=address, sign_ins=demo_class.sign_ins()), file=sys.stderr)
        print(_n("grader serve: {title} on {url} with {n} local worker; Ctrl-C stops it",
                 "grader serve: {title} on {url} with {n} local workers; Ctrl-C stops it",
                 workers, title=course.title, url=address), file=sys.stderr)
        # proxy_headers: behind nginx on this machine the client address is the real one
        uvicorn.run(app, host=host, port=port, proxy_headers=True, log_level="info")
    except Terminated:
        pass  # a clean stop, as after Ctrl-C
    finally:
        signal.signal(signal.SIGTERM, previous)
        if pool is not None:
            pool.stop()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


class Terminated(BaseException):
    """SIGTERM arrived: `serve_main` unwinds through its clean-up (BaseException: no
    ``except Exception`` on the way swallows it)."""


def _terminated(signum: int, frame: Any) -> None:
    raise Terminated

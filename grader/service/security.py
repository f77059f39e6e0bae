"""The service's defences: the session secret, security headers, CSRF, sign-in limits,
upload limits.

Decisions:

- **Session secret**: `<course>/.grader-serve-secret`, created on first start with mode
  0600 (`O_EXCL`: two starting processes never write two secrets); the signed cookie
  (Starlette's SessionMiddleware, itsdangerous) is HttpOnly and SameSite=Lax.
- **Headers** on every response: a strict Content-Security-Policy (scripts and styles
  only from this origin; no inline script at all; an inline ``<style>`` only by its
  sha256 — the report pages carry their CSS inline), ``frame-ancestors 'none'`` and
  X-Frame-Options DENY, nosniff, ``Referrer-Policy: same-origin``.
- **CSRF**: one random token per session, in every form (`csrf_token` template global)
  and checked on every POST (`csrf_protect`: form field ``csrf_token`` or header
  ``X-CSRF-Token``, compared in constant time). Missing or wrong: 403 with a sentence.
- **Sign-in limits**: at most `MAX_FAILURES_PER_NAME` failed sign-ins per account and
  `MAX_FAILURES_PER_CLIENT` per client address within `FAILURE_WINDOW`; stored in the
  database (`login_attempts`), so every worker process of the service sees the same count.
- **Uploads**: `.py`, `.ipynb` or `.zip`, at most `MAX_UPLOAD_BYTES`, read in chunks
  (a bigger one is refused before it is all read); the content then goes through
  `grader.intake` (its entry, ratio and time limits: zip bombs, hostile names).
"""

from __future__ import annotations

import base64
import hashlib
import html
import os
import re
import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

from fastapi import HTTPException, Request
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from grader import i18n
from grader.gradebook.models import LoginAttemptModel

_, _n = i18n.Domain("service").functions()

SECRET_FILE = ".grader-serve-secret"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
MAX_FAILURES_PER_NAME = 5
MAX_FAILURES_PER_CLIENT = 30
FAILURE_WINDOW = timedelta(minutes=15)
MAX_UPLOAD_BYTES = 5 * 1024 * 1024  # code and notebooks; datasets and weights do not belong
UPLOAD_TYPES = (".py", ".ipynb", ".zip")
_CHUNK = 64 * 1024
_STYLE_RE = re.compile(rb"<style>(.*?)</style>", re.S)
_STYLE_ATTR_RE = re.compile(rb'\sstyle="([^"]*)"')


def session_secret(course_root: Path) -> str:
    """The course's session-signing secret, created (mode 0600) when there is none.

    Raises:
        OSError: the course folder cannot hold the file.
    """
    path = Path(course_root) / SECRET_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        secret = path.read_text(encoding="ascii").strip()
        if len(secret) < 32:
            raise OSError(f"{path}: the session secret is shorter than 32 characters; delete "
                          "the file and start the service again (everyone signs in again)"
                          ) from None
        return secret
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(secrets.token_urlsafe(48))
    return path.read_text(encoding="ascii").strip()


def content_security_policy(style_hashes: tuple[str, ...] = ()) -> str:
    """The CSP: this origin only, no inline script, inline styles only by hash (with
    ``'unsafe-hashes'``, which admits exactly those style attributes, when there are any)."""
    hashed = [f"'sha256-{h}'" for h in style_hashes]
    styles = " ".join(["'self'", *(["'unsafe-hashes'"] if hashed else []), *hashed])
    return ("default-src 'self'; script-src 'self'; "
            f"style-src {styles}; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
            "form-action 'self'; frame-ancestors 'none'")


def style_hashes(page: bytes) -> tuple[str, ...]:
    """The CSP hashes of a page's inline ``<style>`` blocks and ``style="..."`` attributes
    (the reports' CSS and their score bars), each distinct one once."""
    blocks = _STYLE_RE.findall(page) + [
        html.unescape(value.decode()).encode() for value in _STYLE_ATTR_RE.findall(page)]
    return tuple(dict.fromkeys(base64.b64encode(hashlib.sha256(block).digest()).decode("ascii")
                               for block in blocks))


class SecurityHeaders:
    """ASGI middleware: the security headers on every HTTP response.

    A handler that serves an inline ``<style>`` (a report) sets
    ``request.state.style_hashes``; those hashes, and no others, join `style-src`.
    """

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                state = scope.get("state") or {}
                policy = content_security_policy(tuple(state.get("style_hashes", ())))
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.lower() not in _OURS]
                headers += [(b"content-security-policy", policy.encode()),
                            (b"x-frame-options", b"DENY"),
                            (b"x-content-type-options", b"nosniff"),
                            (b"referrer-policy", b"same-origin"),
                            (b"cache-control", b"no-store")]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


class BodyLimit:
    """ASGI middleware: a request body over `max_bytes` is refused with 413 before it is
    parsed or spooled to disk (by its Content-Length, or as it streams when chunked)."""

    def __init__(self, app: Callable[..., Awaitable[None]], max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.max_bytes:
            await _too_large(send, self.max_bytes)
            return
        seen = 0

        async def counted() -> dict:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise HTTPException(413, _TOO_LARGE.format(size=size_text(self.max_bytes)))
            return message

        await self.app(scope, counted, send)


_TOO_LARGE = i18n.lazy("The request is larger than {size}; hand in only the assignment's "
                       "files (no datasets, model weights or virtual environments).")


async def _too_large(send: Callable, max_bytes: int) -> None:
    body = _(_TOO_LARGE, size=size_text(max_bytes)).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


_OURS = {b"content-security-policy", b"x-frame-options", b"x-content-type-options",
         b"referrer-policy", b"cache-control"}


def csrf_token(request: Request) -> str:
    """The session's CSRF token (made on first use); every form carries it."""
    token = request.session.get(CSRF_FIELD)
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_urlsafe(32)
        request.session[CSRF_FIELD] = token
    return token


async def csrf_protect(request: Request) -> None:
    """FastAPI dependency for every POST: the request must carry the session's token.

    Raises:
        HTTPException: 403 when the token is missing or wrong.
    """
    expected = request.session.get(CSRF_FIELD)
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        form = await request.form()  # Starlette caches it: the handler reads it again
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not isinstance(expected, str) or not sent or not secrets.compare_digest(
            sent.encode(), expected.encode()):
        raise HTTPException(403, _("The form was refused: its security token is missing or "
                                   "out of date (the page was open too long, or came from "
                                   "another site). Reload the page and send the form again."))


def client_address(request: Request) -> str:
    """The client's address as the server sees it (behind a proxy: uvicorn's
    ``--forwarded-allow-ips`` makes it the real client's)."""
    return (request.client.host if request.client else "unknown")[:100]


def sign_in_refused(session: Session, name: str, client: str,
                    now: datetime | None = None) -> str | None:
    """Why a sign-in may not even be tried now, or None when it may.

    Too many failures for the account name or from the client address in the window.
    """
    now = now or datetime.now(timezone.utc)
    since = now - FAILURE_WINDOW
    failures = select(func.count()).select_from(LoginAttemptModel).where(
        LoginAttemptModel.at >= since, LoginAttemptModel.success.is_(False))
    by_name = session.scalar(failures.where(LoginAttemptModel.name == name[:200])) or 0
    by_client = session.scalar(failures.where(LoginAttemptModel.client == client)) or 0
    if by_name >= MAX_FAILURES_PER_NAME or by_client >= MAX_FAILURES_PER_CLIENT:
        minutes = int(FAILURE_WINDOW.total_seconds() // 60)
        return _("Too many failed sign-ins: at most {limit} per account within {minutes} "
                 "minutes. Wait {minutes} minutes and try again, or ask your instructor for "
                 "a new access code.", limit=MAX_FAILURES_PER_NAME, minutes=minutes)
    return None


def note_sign_in(session: Session, name: str, client: str, success: bool) -> None:
    """Records a sign-in attempt (the caller commits)."""
    session.add(LoginAttemptModel(at=datetime.now(timezone.utc), name=name[:200],
                                  client=client, success=success))


async def read_upload(upload: object, limit: int = MAX_UPLOAD_BYTES) -> bytes:
    """An uploaded file's bytes, at most `limit` of them.

    Raises:
        HTTPException: 413 when the file is larger than `limit`.
    """
    data = bytearray()
    while chunk := await upload.read(_CHUNK):  # type: ignore[attr-defined]
        data += chunk
        if len(data) > limit:
            raise HTTPException(413, _("The file is larger than {size}; hand in only the "
                                       "assignment's files (no datasets, model weights or "
                                       "virtual environments).", size=size_text(limit)))
    return bytes(data)


def size_text(size: int) -> str:
    """A byte count for people: "5 MB", "64 KB"."""
    return f"{size / 1048576:g} MB" if size >= 1048576 else f"{size / 1024:g} KB"


def upload_type(file_name: str) -> str | None:
    """The upload's type by its name's ending (".py", ".ipynb", ".zip"), or None."""
    lowered = file_name.lower()
    return next((kind for kind in UPLOAD_TYPES if lowered.endswith(kind)), None)


def check_content(kind: str, data: bytes) -> str | None:
    """Why the bytes cannot be a file of `kind`, or None (the name is a claim too)."""
    if kind == ".zip" and not data.startswith(b"PK\x03\x04") and data != b"PK\x05\x06" + bytes(18):
        return _("the file ends in .zip but is not a zip archive")
    if kind in (".py", ".ipynb"):
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return _("the file ends in {kind} but is not UTF-8 text", kind=kind)
    return None

"""Who is signed in to `grader serve`, and what they may do.

The contract other routers build on (`grader.service.staff`, `grader.service.lti`):

- `db_session`: a SQLAlchemy session on the gradebook for one request; committed when
  the handler returns, rolled back when it raises.
- `current_user` -> `User` (``id``, ``name``, ``role`` in student|ta|instructor,
  ``student_id`` for students); `require_student`, `require_staff` (ta or instructor),
  `require_instructor`. Nobody signed in: `SignInRequired` (the app answers a page with
  a redirect to the sign-in form, anything else with 401); the wrong role: 403.
- `audit(session, user, action, detail)`: one row of the audit log.
- `sign_in(request, session, user)` / `sign_out(request)`.

Secrets: staff passwords and students' access codes are stored only as argon2 hashes
(argon2-cffi's defaults). The cookie carries the user's id and a stamp of the secret's
hash, so issuing a new access code (or a new password) ends every session of the old one.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Depends, HTTPException, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from grader.gradebook.models import ROLES, AuditModel, UserModel

__all__ = [
    "ROLES", "STAFF", "SignInRequired", "User", "audit", "current_user", "db_session",
    "hash_secret", "new_access_code", "optional_user", "require_instructor", "require_staff",
    "require_student", "sign_in", "sign_out", "verify_secret",
]

STAFF = ("ta", "instructor")
CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read off a printed sheet
CODE_GROUPS = 3  # xxxx-xxxx-xxxx: 60 bits
_hasher = PasswordHasher()
# A hash to verify against when the name is unknown: the reply takes as long as for a
# known name, so timing does not tell which student ids have accounts.
_DUMMY = _hasher.hash("no such user")


class SignInRequired(Exception):
    """Nobody is signed in (or the session ended); the app sends the sign-in form."""


@dataclass(frozen=True)
class User:
    """A signed-in person.

    Attributes:
        id: the users row's id.
        name: the sign-in name (a student's: the student id).
        role: "student", "ta" or "instructor".
        student_id: the gradebook's student id for a student; None for staff.
    """

    id: int
    name: str
    role: str
    student_id: str | None = None

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF


def hash_secret(secret: str) -> str:
    """An argon2 hash of a password or access code."""
    return _hasher.hash(secret)


def verify_secret(stored: str | None, secret: str) -> bool:
    """Whether `secret` matches the stored argon2 hash (False for no hash at all)."""
    try:
        return _hasher.verify(stored or _DUMMY, secret) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def new_access_code() -> str:
    """A fresh access code, e.g. ``k7mq-3xza-pe9t`` (lower case, no look-alike characters)."""
    return "-".join("".join(secrets.choice(CODE_ALPHABET) for _ in range(4))
                    for _ in range(CODE_GROUPS))


def normalise_code(code: str) -> str:
    """A typed access code as issued: spaces dropped, lower case (a sheet is read aloud)."""
    return "".join(code.split()).lower()[:100]


def stamp(row: UserModel) -> str:
    """A short digest of the user's current secret hash: a new secret ends old sessions."""
    secret = (row.password_hash or "") + "|" + (row.code_hash or "")
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


def db_session(request: Request) -> Iterator[Session]:
    """FastAPI dependency: one gradebook session per request, committed at the end."""
    session: Session = request.app.state.sessions()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _user(request: Request, session: Session) -> User | None:
    uid, seal = request.session.get("uid"), request.session.get("stamp")
    if not isinstance(uid, int) or not isinstance(seal, str):
        return None
    row = session.get(UserModel, uid)
    if row is None or not row.active or not secrets.compare_digest(stamp(row), seal):
        request.session.pop("uid", None)
        return None
    return User(id=row.id, name=row.name, role=row.role, student_id=row.student_id)


def optional_user(request: Request, session: Session = Depends(db_session)) -> User | None:
    """The signed-in user, or None."""
    return _user(request, session)


def current_user(request: Request, session: Session = Depends(db_session)) -> User:
    """The signed-in user.

    Raises:
        SignInRequired: nobody is signed in, the account was disabled, or its secret changed.
    """
    user = _user(request, session)
    if user is None:
        raise SignInRequired()
    return user


def _role(user: User, allowed: tuple[str, ...], what: str) -> User:
    if user.role not in allowed:
        raise HTTPException(403, f"This page is for {what}; you are signed in as "
                                 f"{user.name} ({user.role}).")
    return user


def require_student(user: User = Depends(current_user)) -> User:
    """The signed-in student (403 for staff: a student's pages show one student's data)."""
    return _role(user, ("student",), "students")


def require_staff(user: User = Depends(current_user)) -> User:
    """The signed-in TA or instructor."""
    return _role(user, STAFF, "teaching assistants and instructors")


def require_instructor(user: User = Depends(current_user)) -> User:
    """The signed-in instructor."""
    return _role(user, ("instructor",), "instructors")


def sign_in(request: Request, row: UserModel) -> None:
    """Starts a session for `row` (a fresh CSRF token too: no token survives a sign-in)."""
    request.session.clear()
    request.session.update({"uid": row.id, "stamp": stamp(row)})


def sign_out(request: Request) -> None:
    request.session.clear()


def find_user(session: Session, name: str) -> UserModel | None:
    return session.scalar(select(UserModel).where(UserModel.name == name[:200]))


def audit(session: Session, user: User | None, action: str,
          detail: Mapping[str, Any] | None = None) -> None:
    """One audit-log row (the caller's transaction commits it).

    Args:
        session: the request's session.
        user: who acted (None: the system or an anonymous sign-in attempt).
        action: a short verb phrase, e.g. "release", "sign-in", "upload".
        detail: plain JSON data: what was acted on.
    """
    session.add(AuditModel(at=datetime.now(timezone.utc), user_id=user.id if user else None,
                           actor=user.name if user else "-", action=action[:100],
                           detail=dict(detail or {})))

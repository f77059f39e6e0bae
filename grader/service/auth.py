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
from typing import Annotated, Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Depends, HTTPException, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from grader import i18n
from grader.gradebook.models import ROLES, AuditModel, UserModel

_, _n = i18n.Domain("service").functions()

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
    return "-".join("".join(secrets.choice(CODE_ALPHABET) for _i in range(4))
                    for _j in range(CODE_GROUPS))


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


Db = Annotated[Session, Depends(db_session)]


def _user(request: Request, session: Session) -> User | None:
    uid, seal = request.session.get("uid"), request.session.get("stamp")
    if not isinstance(uid, int) or not isinstance(seal, str):
        return None
    row = session.get(UserModel, uid)
    if row is None or not row.active or not secrets.compare_digest(stamp(row), seal):
        request.session.pop("uid", None)
        return None
    return User(id=row.id, name=row.name, role=row.role, student_id=row.student_id)


def optional_user(request: Request, session: Db) -> User | None:
    """The signed-in user, or None."""
    return _user(request, session)


def current_user(request: Request, session: Db) -> User:
    """The signed-in user.

    Raises:
        SignInRequired: nobody is signed in, the account was disabled, or its secret changed.
    """
    user = _user(request, session)
    if user is None:
        raise SignInRequired()
    return user


SignedIn = Annotated[User, Depends(current_user)]


def _role(user: User, allowed: tuple[str, ...], refusal: str) -> User:
    """`user` when their role is `allowed`; else 403 with `refusal` (a `lazy` sentence with
    ``{name}`` and ``{role}``) in the language in effect."""
    if user.role not in allowed:
        raise HTTPException(403, _(refusal, name=user.name, role=user.role))
    return user


def require_student(user: SignedIn) -> User:
    """The signed-in student (403 for staff: a student's pages show one student's data)."""
    return _role(user, ("student",), i18n.lazy(
        "This page is for students; you are signed in as {name} ({role})."))


def require_staff(user: SignedIn) -> User:
    """The signed-in TA or instructor."""
    return _role(user, STAFF, i18n.lazy("This page is for teaching assistants and "
                                        "instructors; you are signed in as {name} ({role})."))


def require_instructor(user: SignedIn) -> User:
    """The signed-in instructor."""
    return _role(user, ("instructor",), i18n.lazy(
        "This page is for instructors; you are signed in as {name} ({role})."))


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


# --- accounts: `grader user add`, `grader roster --issue-codes` ----------------------------

MIN_PASSWORD = 10


class AccountError(ValueError):
    """An account that cannot be made; the message says why and what to do."""


def add_staff(session: Session, name: str, role: str, password: str) -> UserModel:
    """Adds (or, for an existing staff name, re-passwords) a TA or instructor account.

    Raises:
        AccountError: a role other than ta/instructor, a bad name, a short password, or a
            name that is a student's account.
    """
    from grader.ids import InvalidId, validate_id

    if role not in STAFF:
        raise AccountError(_("--role must be one of: {roles}. Received: {role}",
                             roles=", ".join(STAFF), role=repr(role)))
    try:
        name = validate_id(name)
    except InvalidId as error:
        raise AccountError(_("a user name follows the rules of ids: {error}",
                             error=error)) from None
    if len(password) < MIN_PASSWORD:
        raise AccountError(_("the password must have at least {minimum} characters; "
                             "received {length}", minimum=MIN_PASSWORD, length=len(password)))
    row = find_user(session, name)
    if row is not None and row.role == "student":
        raise AccountError(_("{name} is a student's sign-in; choose another user name",
                             name=repr(name)))
    if row is None:
        row = UserModel(name=name, role=role, created_at=datetime.now(timezone.utc),
                        active=True)
        session.add(row)
    row.role, row.password_hash = role, hash_secret(password)
    session.flush()
    return row


def issue_codes(session: Session, student_ids: list[str]) -> list[tuple[str, str]]:
    """Fresh access codes for `student_ids` (accounts made when missing); only their
    hashes are stored, and a new code ends the old one and its sessions.

    Returns:
        (student id, access code) pairs, in the given order.
    """
    moment = datetime.now(timezone.utc)
    issued = []
    for student_id in student_ids:
        row = session.scalar(select(UserModel).where(UserModel.student_id == student_id))
        if row is None:
            row = find_user(session, student_id)
            if row is not None:  # a staff account of that name: never turned into a student
                raise AccountError(_("{name} is already a staff user name; rename the staff "
                                     "account (grader user add) before issuing codes",
                                     name=repr(student_id)))
            row = UserModel(name=student_id, role="student", student_id=student_id,
                            created_at=moment, active=True)
            session.add(row)
        code = new_access_code()
        row.code_hash, row.code_issued_at = hash_secret(code), moment
        issued.append((student_id, code))
    session.flush()
    return issued


def user_main(*, name: str, role: str, password_stdin: bool = False,
              db: str | None = None) -> int:
    """`grader user add NAME --role ta|instructor [--password-stdin]`: the password is
    prompted twice (never echoed), or read from standard input's first line."""
    import getpass
    import sys

    from grader.course import current
    from grader.gradebook import open_gradebook
    from grader.ids import printable

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(_("password for {name}: ", name=name))
        if getpass.getpass(_("the same password again: ")) != password:
            print(_("grader: the two passwords differ; nothing was changed"), file=sys.stderr)
            return 2
    with open_gradebook(db if db is not None else current().gradebook, create=True) as book:
        with Session(book.engine) as session:
            try:
                name = add_staff(session, name, role, password).name
                audit(session, None, "user add", {"name": name, "role": role})
                session.commit()
            except AccountError as error:
                print(f"grader: {printable(str(error), limit=400)}", file=sys.stderr)
                return 2
    print(_("{name} can sign in to `grader serve` as {role}", name=name, role=role))
    return 0


def issue_codes_main(*, db: str | None = None, out: str | None = None,
                     students: list[str] | None = None) -> int:
    """`grader roster --issue-codes [--out codes.csv]`: a fresh access code for every
    student in the gradebook (or those named), printed or written to a CSV (mode 0600)."""
    import csv
    import io
    import os
    import sys

    from grader.course import current
    from grader.gradebook import open_gradebook

    with open_gradebook(db if db is not None else current().gradebook, create=False) as book:
        known = {s.id: s.display_name for s in book.students()}
        wanted = students or list(known)
        unknown = [s for s in wanted if s not in known]
        if unknown or not wanted:
            print(_("grader: not in the gradebook: {students}; add them with grader roster "
                    "ROSTER.csv first", students=", ".join(unknown[:20])) if unknown else
                  _("grader: the gradebook has no students; add them with grader roster "
                    "ROSTER.csv first"), file=sys.stderr)
            return 2
        with Session(book.engine) as session:
            issued = issue_codes(session, wanted)
            audit(session, None, "issue codes", {"students": len(issued)})
            session.commit()
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["id", "name", "access_code"])
    for student_id, code in issued:
        # a name starting = + - @ is a formula to a spreadsheet: quote it as text
        name = known[student_id]
        writer.writerow([student_id, "'" + name if name[:1] in "=+-@" else name, code])
    if out is None:
        print(text.getvalue(), end="")
    else:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # codes are secrets
        with os.fdopen(fd, "w", encoding="utf-8-sig", newline="") as handle:
            handle.write(text.getvalue())
        print(_n("{n} access code written to {out}; earlier codes no longer work",
                 "{n} access codes written to {out}; earlier codes no longer work",
                 len(issued), out=out), file=sys.stderr)
    return 0

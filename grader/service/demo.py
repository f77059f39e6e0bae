"""`grader serve --demo`: the service on a copy of the course, with two accounts.

`setup_demo(folder)` copies the course (`grader init`'s copy: assignments, references,
hidden suites, course.toml; none of its gradebook or uploads) into `folder`, makes its
gradebook, and adds one instructor and one student, each with a fresh secret, written to
the copy's ``demo-sign-ins.txt`` (owner-only) so that a later `grader serve --demo DIR` can
print them again. `grader serve --demo` serves a throwaway copy; `grader demo` keeps one in
``demo-out/service``. The real course is never touched.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from grader.course import Course, load_course
from grader.gradebook import open_gradebook
from grader.scaffold import init_course, lecture_course, new_assignment

INSTRUCTOR = "demo-instructor"
STUDENT = "demo-student"
STUDENT_NAME = "Demo Student"
SIGN_INS = "demo-sign-ins.txt"  # in the demo class's folder: what marks it as one
DEMO_ASSIGNMENT = "layer"  # `grader new`'s example, when there is no course to copy


class NotADemo(ValueError):
    """A folder `grader serve --demo DIR` cannot serve; the message says what to do."""


@dataclass(frozen=True)
class DemoClass:
    """The demo's course and its two sign-ins (secrets in clear: printed once, never stored)."""

    course: Course
    instructor: str
    password: str
    student: str
    access_code: str

    def sign_ins(self) -> str:
        """The lines `grader serve --demo` prints: who signs in with what."""
        return (f"  instructor: {self.instructor}   password: {self.password}\n"
                f"  student:    {self.student}   access code: {self.access_code}")


def setup_demo(folder: Path, source: Path | None = None) -> DemoClass:
    """A demo class in `folder`: a copy of `source` with one instructor and one student.

    Args:
        folder: A new or empty folder (`grader init`'s rule: nothing of yours is overwritten).
        source: The course to copy; default: the lecture's course, and without one (a tool
            installed from a wheel) a new course holding `grader new`'s example assignment.

    Returns:
        The course and the two sign-ins.

    Raises:
        ScaffoldRefused: `folder` is not new or empty.
    """
    from grader.service.auth import add_staff, audit, issue_codes  # the `serve` extra

    source = source if source is not None else lecture_course()
    init_course(folder, source=source)
    with (Path(folder) / ".gitignore").open("a", encoding="utf-8") as ignored:
        ignored.write(SIGN_INS + "\n")  # a demo's secrets never go into git either
    course = load_course(folder)
    if not course.assignment_ids():
        new_assignment(DEMO_ASSIGNMENT, course=course)
        course = load_course(folder)
    password = secrets.token_urlsafe(12)
    with open_gradebook(course.gradebook, create=True) as book:
        book.add_students([(STUDENT, STUDENT_NAME)])
        with Session(book.engine) as session:
            add_staff(session, INSTRUCTOR, "instructor", password)
            ((_student, code),) = issue_codes(session, [STUDENT])
            audit(session, None, "demo accounts", {"instructor": INSTRUCTOR,
                                                   "student": STUDENT})
            session.commit()
    demo = DemoClass(course, INSTRUCTOR, password, STUDENT, code)
    sign_ins = Path(course.root) / SIGN_INS
    # owner-only from the first byte: the demo's secrets, even if only a demo's
    with os.fdopen(os.open(sign_ins, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w",
                   encoding="utf-8") as out:
        out.write(f"{password}\n{code}\n")
    return demo


def load_demo(folder: Path) -> DemoClass:
    """The demo class `setup_demo` made in `folder` (e.g. ``demo-out/service``).

    Raises:
        NotADemo: `folder` holds no demo class.
    """
    sign_ins = Path(folder) / SIGN_INS
    lines = sign_ins.read_text(encoding="utf-8").split() if sign_ins.is_file() else []
    if len(lines) != 2:
        raise NotADemo(f"{folder} is not a demo class (no {SIGN_INS} with its two sign-ins); "
                       "run `grader demo` to make demo-out/service, or `grader serve --demo` "
                       "for a throwaway one")
    return DemoClass(load_course(folder), INSTRUCTOR, lines[0], STUDENT, lines[1])

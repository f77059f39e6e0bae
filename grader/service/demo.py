"""`grader serve --demo`: the service on a copy of the course, with a graded sample class.

`setup_demo(folder)` copies the course (`grader init`'s copy: assignments, references,
hidden suites, course.toml; none of its gradebook or uploads) into `folder`, makes its
gradebook, adds one instructor and one student, each with a fresh secret, written to the
copy's ``demo-sign-ins.txt`` (owner-only) so that a later `grader serve --demo DIR` can
print them again, and grades a sample class of `SAMPLE_ASSIGNMENT` the way the service
grades any class: every upload stored and queued as the upload page does, graded by the
service's own local workers (`grader.service.worker`), public tests and hidden suite, into
the gradebook. `grader serve --demo` serves a throwaway copy; `grader demo` keeps one in
``demo-out/service``. The real course is never touched.

Decisions:
- The class is graded through the queue, not copied from `grader demo`'s gradebooks: the
  service's pages read attempts, their public and hidden jobs and the records those jobs
  wrote, which only the workers produce. Eleven `mlp_numpy` uploads take about a minute on
  2 cores, so the class is graded before the service starts and kept: `grader demo` grades
  it once into ``demo-out/service``, which `grader serve --demo DIR` serves at once.
- The uploads are dated hours to days ago: the class has a history, and the demo student
  still has this hour's graded attempts to try the upload page.
- The uploads are the course's own samples (`grader.samples`: planted bugs and correct
  variants), so a fix of the reference or of a bug reaches the demo too.
- Uploads are graded in rounds (every student's first upload, then every second one): a
  student's later upload is recorded after the earlier one and stays their current grade.
- The sample assignment is released by the instructor: the demo student can open the full
  report of each attempt, and the banner says so.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from grader import i18n
from grader.config import AssignmentConfig, load_assignment
from grader.course import Course, load_course
from grader.gradebook import Gradebook, GradebookError, database_url, open_gradebook
from grader.gradebook.models import AssignmentSettingModel, AttemptModel, JobModel
from grader.ids import file_name
from grader.samples import PlantedBug, bug_source, load_bugs, reference_without_markers
from grader.scaffold import init_course, lecture_course, new_assignment

if TYPE_CHECKING:
    from grader.service.worker import Workers

_, _n = i18n.Domain("service").functions()

INSTRUCTOR = "demo-instructor"
STUDENT = "demo-student"
STUDENT_NAME = "Demo Student"
SIGN_INS = "demo-sign-ins.txt"  # in the demo class's folder: what marks it as one
DEMO_ASSIGNMENT = "layer"  # `grader new`'s example, when there is no course to copy
SAMPLE_ASSIGNMENT = "mlp_numpy"  # the cheapest suite to grade on a CPU: the numpy MLP
GRADING_WORKERS = 2
GRADING_LIMIT_S = 900.0  # the whole class; then the demo says what is still waiting
POLL_S = 0.5

# The sample class: (student id, name, uploads oldest first as (sample, hours ago)).
# A sample is "variant:<name>" (a correct solution in another style), "bug:<name>" (a
# planted bug of samples/bugs.toml), "skeleton" (the released skeleton, unchanged) or
# "typo" (the reference with a colon missing: refused at upload, costing no attempt).
SampleStudent = tuple[str, str, tuple[tuple[str, float], ...]]
SAMPLE_CLASS: tuple[SampleStudent, ...] = (
    (STUDENT, STUDENT_NAME, (("bug:cross_entropy_grad_sign", 50),
                             ("variant:lecture_global_rng_dot", 26))),
    ("2026001", "王芳", (("variant:einsum_where_unseeded", 70),)),
    ("2026002", "李强", (("bug:softmax_backward_diagonal_only", 49),)),
    ("2026003", "张伟", (("bug:relu_mask_from_output_grad", 30),
                        ("bug:train_keeps_last_size", 5))),
    ("2026004", "刘洋", (("bug:preprocess_unscaled", 20),)),
    ("2026005", "陈静", (("typo", 9), ("variant:loops_float32_init", 8))),
    ("2026006", "杨磊", (("bug:zero_init", 3),)),
    ("2026007", "赵敏", (("bug:step_ignores_learning_rate", 2),)),
    ("2026008", "黄丽", ()),  # on the roster, nothing handed in yet
    ("2026009", "周杰", (("skeleton", 1),)),  # the released skeleton, unchanged
)


class NotADemo(ValueError):
    """A folder `grader serve --demo DIR` cannot serve; the message says what to do."""


class DemoGradingFailed(RuntimeError):
    """The sample class could not be graded; the message says what is left and why."""


@dataclass(frozen=True)
class DemoClass:
    """The demo's course and its two sign-ins (secrets in clear: printed once, never stored)."""

    course: Course
    instructor: str
    password: str
    student: str
    access_code: str
    sample_assignment: str | None = None  # the assignment with a graded sample class

    def sign_ins(self) -> str:
        """The lines `grader serve --demo` prints: who signs in with what, and what the
        sample class holds (read from the gradebook now: the staff may have changed it)."""
        lines = (f"  instructor: {self.instructor}   password: {self.password}\n"
                 f"  student:    {self.student}   access code: {self.access_code}")
        return lines + "\n  " + class_banner(self)


def class_banner(demo: DemoClass) -> str:
    """One sentence: the sample class, and whether the demo student can read reports."""
    aid = demo.sample_assignment
    if aid is None:
        return _("No sample class: this course has no {assignment} with sample "
                 "submissions; upload as the student to see the service grade.",
                 assignment=SAMPLE_ASSIGNMENT)
    from grader.service.release import released

    with open_gradebook(demo.course.gradebook, create=False) as book, \
            Session(book.engine) as session:
        try:
            graded = len(book.latest(aid))
        except GradebookError:  # every hidden job failed: nothing recorded
            graded = 0
        uploads = session.scalar(select(func.count()).select_from(AttemptModel).where(
            AttemptModel.assignment_id == aid, AttemptModel.stored.is_not(None))) or 0
        config = load_assignment(demo.course.assignments / aid / "assignment.toml",
                                 repo_root=demo.course.root)
        out = released(session, config, datetime.now(timezone.utc))  # the pages' own rule
    if out:
        return _("Sample class: {assignment}, {graded} student(s) graded from {uploads} "
                 "upload(s); grades are released, so {student} can open the full report of "
                 "each attempt.", assignment=aid, graded=graded, uploads=uploads,
                 student=demo.student)
    return _("Sample class: {assignment}, {graded} student(s) graded from {uploads} "
             "upload(s); grades are not released, so {student} sees the public tests only (release "
             "them on the staff dashboard).", assignment=aid, graded=graded, uploads=uploads,
             student=demo.student)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def setup_demo(folder: Path, source: Path | None = None, *,
               sample_class: Sequence[SampleStudent] | None = None,
               workers: int = GRADING_WORKERS,
               say: Callable[[str], None] = _stderr) -> DemoClass:
    """A demo class in `folder`: a copy of `source`, two accounts and a graded sample class.

    Args:
        folder: A new or empty folder (`grader init`'s rule: nothing of yours is overwritten).
        source: The course to copy; default: the lecture's course, and without one (a tool
            installed from a wheel) a new course holding `grader new`'s example assignment.
        sample_class: The students and their uploads; default: `SAMPLE_CLASS`. Graded
            only when the course has `SAMPLE_ASSIGNMENT` with sample submissions.
        workers: The local grader workers that grade the class.
        say: Where progress goes (a line at a time).

    Returns:
        The course, the two sign-ins and the graded assignment (None: none).

    Raises:
        ScaffoldRefused: `folder` is not new or empty.
        SampleError: a sample the class names is not in the course's samples.
        DemoGradingFailed: the workers stopped, or grading ran past `GRADING_LIMIT_S`.
    """
    source = source if source is not None else lecture_course()
    init_course(folder, source=source)
    try:
        return _fill_demo(Path(folder), sample_class, workers, say)
    except BaseException:  # Ctrl-C or a failed grading: no half-made class is left behind
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _fill_demo(folder: Path, sample_class: Sequence[SampleStudent] | None, workers: int,
               say: Callable[[str], None]) -> DemoClass:
    """`setup_demo` once the course is copied into `folder`."""
    from grader.service.auth import add_staff, audit, issue_codes

    with (folder / ".gitignore").open("a", encoding="utf-8") as ignored:
        ignored.write(SIGN_INS + "\n")  # a demo's secrets never go into git either
    course = load_course(folder)
    if not course.assignment_ids():
        new_assignment(DEMO_ASSIGNMENT, course=course)
        course = load_course(folder)
    config = _sample_assignment(course)
    roster = list(SAMPLE_CLASS if sample_class is None else sample_class)
    if config is None:
        roster = []  # nothing to build a class from
    if not any(student == STUDENT for student, _nm, _up in roster):
        roster.insert(0, (STUDENT, STUDENT_NAME, ()))  # the demo student always exists
    password = secrets.token_urlsafe(12)
    with open_gradebook(course.gradebook, create=True) as book:
        book.add_students([(student, name) for student, name, _uploads in roster])
        with Session(book.engine) as session:
            add_staff(session, INSTRUCTOR, "instructor", password)
            ((_student, code),) = issue_codes(session, [STUDENT])
            audit(session, None, "demo accounts", {"instructor": INSTRUCTOR,
                                                   "student": STUDENT})
            session.commit()
    graded = None
    if config is not None and any(uploads for _sid, _nm, uploads in roster):
        grade_sample_class(course, config, roster, workers=workers, say=say)
        graded = config.id
    demo = DemoClass(course, INSTRUCTOR, password, STUDENT, code, graded)
    sign_ins = Path(course.root) / SIGN_INS
    # owner-only from the first byte: the demo's secrets, even if only a demo's
    with os.fdopen(os.open(sign_ins, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w",
                   encoding="utf-8") as out:
        out.write(f"{password}\n{code}\n{graded or '-'}\n")
    return demo


def _sample_assignment(course: Course) -> AssignmentConfig | None:
    """`SAMPLE_ASSIGNMENT` of `course` when it has planted bugs to build a class from."""
    toml = course.assignments / SAMPLE_ASSIGNMENT / "assignment.toml"
    if not toml.is_file():
        return None
    config = load_assignment(toml, repo_root=course.root)
    return config if load_bugs(config) else None


def grade_sample_class(course: Course, config: AssignmentConfig,
                       roster: Sequence[SampleStudent], *, workers: int = GRADING_WORKERS,
                       say: Callable[[str], None] = _stderr) -> None:
    """Stores every sample upload as the upload page would, queues it, grades it with the
    service's local workers, and releases the assignment (the instructor's act, audited).

    Raises:
        SampleError: a sample `roster` names is not among the course's samples.
        DemoGradingFailed: see `setup_demo`.
    """
    from grader.service import queue
    from grader.service.auth import audit
    from grader.service.student import DEFAULT_ATTEMPTS_PER_HOUR
    from grader.service.worker import start_local_workers

    bugs = {bug.name: bug for bug in load_bugs(config)}
    now = datetime.now(timezone.utc)
    # every source first: a wrong sample name fails before anything is graded
    rounds: list[list[tuple[str, str, datetime]]] = []
    refused: list[tuple[str, str, datetime]] = []
    for student, _nm, uploads in roster:
        graded = 0
        for sample, hours_ago in uploads:
            upload = (student, _sample_source(config, bugs, sample),
                      now - timedelta(hours=hours_ago))
            if sample == "typo":
                refused.append(upload)
                continue
            if graded == len(rounds):
                rounds.append([])
            rounds[graded].append(upload)
            graded += 1
    url = database_url(course.gradebook)
    # what is stored as sentences (a refusal, the workers' results) is in the language the
    # service will speak (`serve_main`'s rule); the workers inherit it as GRADER_LANG
    served = os.environ.get(i18n.ENV_VAR) or course.language
    total = sum(len(batch) for batch in rounds)
    say(_("Grading the demo's sample class of {assignment}: {uploads} upload(s) by {n} "
          "student(s), with {workers} local worker(s)...", uploads=total,
          assignment=config.id, n=len(roster), workers=workers))
    started = time.perf_counter()
    with open_gradebook(url) as book:
        with Session(book.engine) as session:
            for student, text, moment in refused:
                with i18n.speaking(served):
                    reason = _refusal(course, config, student, text)
                session.add(AttemptModel(
                    assignment_id=config.id, student_id=student, uploaded_at=moment,
                    file_name=config.student_files[0], size=len(text.encode()), stored=None,
                    counted=False, refused=reason))
            session.commit()
        with i18n.speaking(served):
            pool = start_local_workers(url, course, workers)
        try:
            for batch in rounds:
                with Session(book.engine) as session:
                    jobs = [job for student, text, moment in batch
                            for job in _store_and_queue(session, course, config, student,
                                                        text, moment)]
                    session.commit()
                _wait(book, jobs, pool, started)
        finally:
            pool.stop()
        with Session(book.engine) as session:
            session.merge(AssignmentSettingModel(
                assignment_id=config.id, release_mode="manual", released_at=now,
                released_by=INSTRUCTOR, attempts_per_hour=DEFAULT_ATTEMPTS_PER_HOUR))
            audit(session, None, "demo class", {"assignment": config.id, "uploads": total,
                                                "released by": INSTRUCTOR})
            failed = session.scalar(select(func.count()).select_from(JobModel).where(
                JobModel.state == queue.FAILED)) or 0
            session.commit()
    say(_("Graded in {seconds} s ({failed} job(s) failed: see the staff dashboard's queue).",
          seconds=f"{time.perf_counter() - started:.0f}", failed=failed) if failed else
        _("Graded in {seconds} s.", seconds=f"{time.perf_counter() - started:.0f}"))


def _sample_source(config: AssignmentConfig, bugs: dict[str, PlantedBug], sample: str) -> str:
    """The text of the student file a sample hands in (see `SAMPLE_CLASS`)."""
    from grader.samples import SampleError, variants

    kind, _sep, name = sample.partition(":")
    student_file = config.student_files[0]
    if kind == "typo":  # "forgot the colon" on the first definition
        return reference_without_markers(config, student_file).replace("):\n", ")\n", 1)
    if kind == "skeleton":
        from grader.release.build import skeleton_texts

        return skeleton_texts(config)[student_file]
    if kind == "bug" and name in bugs:
        return bug_source(config, bugs[name])
    folders = {folder.name: folder for folder in variants(config)}
    if kind == "variant" and name in folders:
        return (folders[name] / student_file).read_text(encoding="utf-8")
    raise SampleError(f"the demo's sample class names {sample!r}, which {config.id}'s samples "
                      f"do not have; bugs: {', '.join(sorted(bugs))}; variants: "
                      f"{', '.join(sorted(folders))}")


def _store_and_queue(session: Session, course: Course, config: AssignmentConfig,
                     student: str, text: str, moment: datetime) -> list[int]:
    """One upload stored where the upload page stores it and queued public, then hidden.

    Returns:
        The two job ids.
    """
    from grader.service import queue
    from grader.service.student import UPLOADS

    name = config.student_files[0]
    row = AttemptModel(assignment_id=config.id, student_id=student, uploaded_at=moment,
                       file_name=name, size=len(text.encode()), counted=True)
    session.add(row)
    session.flush()  # the attempt's id names its folder
    folder = course.root / UPLOADS / file_name(config.id) / str(row.id) / file_name(student)
    folder.mkdir(parents=True)
    (folder / name).write_text(text, encoding="utf-8")
    row.stored = (folder / name).relative_to(course.root).as_posix()
    common = {"assignment_id": config.id, "student_id": student, "submitted_at": moment}
    row.public_job_id = queue.enqueue(session, row.stored, queue.PUBLIC, **common)
    row.hidden_job_id = queue.enqueue(session, row.stored, queue.HIDDEN, **common)
    return [row.public_job_id, row.hidden_job_id]


def _refusal(course: Course, config: AssignmentConfig, student: str, text: str) -> str:
    """Why the upload page refuses `text` (its own check, `student.ungradable_reason`)."""
    from grader.service.student import ungradable_reason

    scratch = Path(tempfile.mkdtemp(prefix=".demo-", dir=course.root))
    try:
        owner = scratch / file_name(student)
        owner.mkdir()
        (owner / config.student_files[0]).write_text(text, encoding="utf-8")
        reason = ungradable_reason(owner, config, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if reason is None:
        raise ValueError("the demo's refused upload was accepted by the upload page's check")
    return reason


def _wait(book: Gradebook, jobs: list[int], pool: Workers, started: float) -> None:
    """Until every job in `jobs` ended (done or failed)."""
    from grader.service import queue

    waiting = [queue.QUEUED, queue.RUNNING]
    while True:
        with Session(book.engine) as session:
            left = session.scalar(select(func.count()).select_from(JobModel).where(
                JobModel.id.in_(jobs), JobModel.state.in_(waiting))) or 0
        if not left:
            return
        if not pool.alive():
            raise DemoGradingFailed(_("The demo's grader workers stopped with {n} job(s) "
                                      "left (their errors are above); run it again.", n=left))
        if time.perf_counter() - started > GRADING_LIMIT_S:
            raise DemoGradingFailed(_("The demo's sample class was not graded within {limit} "
                                      "s ({n} job(s) left); the machine may be busy: run it "
                                      "again later.", limit=f"{GRADING_LIMIT_S:.0f}", n=left))
        time.sleep(POLL_S)


def load_demo(folder: Path) -> DemoClass:
    """The demo class `setup_demo` made in `folder` (e.g. ``demo-out/service``).

    Raises:
        NotADemo: `folder` holds no demo class.
    """
    sign_ins = Path(folder) / SIGN_INS
    lines = sign_ins.read_text(encoding="utf-8").split() if sign_ins.is_file() else []
    if len(lines) not in (2, 3):  # 2: a demo made before it had a sample class
        raise NotADemo(f"{folder} is not a demo class (no {SIGN_INS} with its two sign-ins); "
                       "run `grader demo` to make demo-out/service, or `grader serve --demo` "
                       "for a throwaway one")
    graded = lines[2] if len(lines) == 3 and lines[2] != "-" else None
    course = load_course(folder)
    if graded is not None and graded not in course.assignment_ids():  # never a path
        raise NotADemo(f"{sign_ins} names the sample assignment {graded!r}, which {folder} "
                       f"does not have; run `grader demo` again to make a fresh demo class")
    return DemoClass(course, INSTRUCTOR, lines[0], STUDENT, lines[1], graded)

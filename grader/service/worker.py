"""`grader worker`: processes that take jobs from the queue and grade them.

Each job is graded by the batch engine's per-submission function, `grader.batch.grade_one`
(one code path with `grader autograde`): a public job runs the assignment's public tests
(``autograde_tests/<id>/test_public.py``) in the sandbox; a hidden job runs the full
suite and is recorded like `grader autograde` records it (the gradebook, in the same
transaction as the job's end, then ``graded/<id>/<student>/results.json``). The student
and the receipt time come from the job (the service's side), never from the upload.

With ``--engine local`` each worker process grades in itself (a trusted process; the
student's code runs in its sandbox below it), `concurrency` processes side by side; with
``--engine ray`` one process claims up to `concurrency` jobs at a time and grades them as
Ray tasks (`grader.batch.run_ray`). A GPU machine joins a course by running
``grader worker --db postgresql+psycopg://... --course DIR`` against the same database.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sqlalchemy import make_url
from sqlalchemy.orm import Session, sessionmaker

from grader import batch
from grader.autograde import instructor_side, write_results
from grader.config import AssignmentConfig, load_assignment
from grader.course import Course, load_course
from grader.gradebook import Gradebook, open_gradebook
from grader.grading.run import THREADS_ENV, GradedSubmission
from grader.results.records import GRADER_PROBLEM, grader_problem
from grader.runtime.process import process_tree
from grader.service import queue
from grader.service.lti import passback as lti_passback

POLL_S = 0.5  # how often an idle worker looks for a job
SWEEP_S = 10.0  # how often an idle worker ends jobs whose workers died (`requeue_expired`)
MESSAGE_CHARS = 2000  # a test message kept in a public result (the report has the rest)
LISTED_TESTS = 200  # tests kept in a public result
ENGINES = batch.ENGINES
# Local workers (and the sandboxes below them) run at a lower CPU priority than the web
# process beside them: on a busy machine a page, a poll or an upload's "received" comes
# first and grading takes what is left (it is queued work; the page is a person waiting).
WORKER_NICENESS = 10


def summary(graded: GradedSubmission) -> dict[str, Any]:
    """The plain data a job's result keeps for the service's pages.

    Everything in it came from the student's run (messages quote their output): the
    service escapes it when it shows it.

    Returns:
        ``{"score", "max_score", "problems", "parts": [{"name", "points", "max_points"}],
        "tests": [{"part", "name", "status", "kind", "fraction", "message"}]}``
    """
    grade = graded.grade
    tests = [{"part": part.name, "name": test.case, "status": test.status,
              "kind": test.kind, "fraction": test.fraction,
              "message": test.message[:MESSAGE_CHARS]}
             for part in grade.parts for test in part.tests]
    return {"score": grade.score, "max_score": grade.max_score,
            "problems": [problem[:MESSAGE_CHARS] for problem in grade.problems[:LISTED_TESTS]],
            "parts": [{"name": part.name, "points": part.points, "max_points": part.max_points}
                      for part in grade.parts],
            "tests": tests[:LISTED_TESTS]}


def batch_job(course: Course, job: queue.Job) -> tuple[AssignmentConfig, batch.Job]:
    """The batch engine's job for a claimed queue job.

    Raises:
        ValueError: the job's upload is not inside the course folder, or its assignment
            does not exist (the message says which).
    """
    config = load_assignment(course.assignments / job.assignment_id / "assignment.toml",
                             repo_root=course.root)
    path = (course.root / job.submission).resolve()
    if not path.is_relative_to(course.root.resolve()):
        raise ValueError(f"the job's upload {job.submission!r} is not inside the course "
                         f"folder {course.root}")
    return config, batch.Job(config.root / "assignment.toml", config.repo_root, path,
                             public=job.kind == queue.PUBLIC)


def as_served(graded: GradedSubmission, job: queue.Job) -> GradedSubmission:
    """`graded` with the job's student and receipt time (the service knows them)."""
    graded = instructor_side(graded, {}, job.submitted_at)
    return replace(graded, submission=replace(graded.submission, student_id=job.student_id),
                   grade=replace(graded.grade, student_id=job.student_id))


def finish(sessions: sessionmaker, course: Course, job: queue.Job, config: AssignmentConfig,
           graded: GradedSubmission) -> bool:
    """Completes `job` with its graded submission; a hidden one is recorded, once.

    Returns:
        Whether this worker completed it (False: it was no longer this worker's).
    """
    graded = as_served(graded, job)
    record = None
    if job.kind == queue.HIDDEN:
        def record(session: Session) -> int:
            return Gradebook(session.get_bind()).record(
                config, graded.submission, graded.grade, session=session,
                current=not queue.newer_recorded(session, job))
    with sessions() as session:
        won = queue.complete(session, job, summary(graded), record=record)
    if won and job.kind == queue.HIDDEN:  # the file follows the record, as in autograde
        with sessions() as session:
            write_results(graded, course.graded(config.id), config,
                          Gradebook(session.get_bind()))
    return won


def not_graded_recorder(course: Course, problem: str
                        ) -> Callable[[Session, queue.Job], int | None]:
    """What records a hidden job the grader failed on: the upload as not graded (0 points,
    every test an error naming `problem`), like `grader autograde` records a submission
    whose worker kept dying, so the gradebook, the student's report and the dashboard's
    grader errors show it and a regrade replaces it.

    The returned ``record(session, job)`` writes in the caller's transaction and returns
    the record's id; None (and a line on stderr) when the job's assignment is gone.
    """
    def record(session: Session, job: queue.Job) -> int | None:
        try:
            config, bjob = batch_job(course, job)
            graded = as_served(batch.not_graded(config, bjob.path, problem), job)
        except Exception as error:  # noqa: BLE001 - nothing to record it against
            print(f"grader worker: job {job.id} failed and cannot be recorded as not graded: "
                  f"{type(error).__name__}: {error}", file=sys.stderr)
            return None
        return Gradebook(session.get_bind()).record(
            config, graded.submission, graded.grade, session=session,
            current=not queue.newer_recorded(session, job))
    return record


# Stored in English like every grader problem; reports translate it (`shown_problem`).
STOPPED_PROBLEM = (f"{GRADER_PROBLEM} grade it: its worker stopped (died or lost its lease) "
                   f"{queue.MAX_ATTEMPTS} times while grading it")


def sweep(sessions: sessionmaker, course: Course) -> tuple[int, int]:
    """Requeues jobs whose worker died; a hidden one out of attempts is recorded as not
    graded (`not_graded_recorder`). Returns (requeued, failed)."""
    recorder = not_graded_recorder(course, STOPPED_PROBLEM)
    with sessions() as session:
        return queue.requeue_expired(session, record=recorder)


class Heartbeat:
    """Extends the leases of held jobs every third of the lease, in a thread."""

    def __init__(self, sessions: sessionmaker, jobs: list[queue.Job], lease_s: float) -> None:
        self.sessions, self.jobs, self.lease_s = sessions, jobs, lease_s
        self.lost: set[int] = set()  # jobs another worker took meanwhile
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="heartbeat")

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.lease_s / 3):
            for job in self.jobs:
                try:
                    with self.sessions() as session:
                        if not queue.heartbeat(session, job, self.lease_s):
                            self.lost.add(job.id)
                except Exception as error:  # noqa: BLE001 - the database blinked: next beat
                    print(f"grader worker: heartbeat of job {job.id} failed: {error}",
                          file=sys.stderr)


def work(db_url: str, course_root: str | Path, *, worker_id: str | None = None,
         lease_s: float = queue.DEFAULT_LEASE_S, engine: str = "local", concurrency: int = 1,
         address: str | None = None, stop: Any = None, max_jobs: int | None = None) -> int:
    """One worker's loop: claim, grade, complete, until `stop` is set (or `max_jobs`).

    Args:
        db_url: the gradebook's URL (or SQLite path).
        course_root: the course folder (uploads are relative to it).
        worker_id: the lease owner's name; default: ``host:pid:random``.
        lease_s: the lease; a worker silent this long loses its job to another.
        engine: "local" (grade here) or "ray" (claim `concurrency` jobs, grade as tasks).
        concurrency: jobs held at once with Ray.
        address: the Ray cluster to join.
        stop: an event (threading or multiprocessing); None: run until killed.
        max_jobs: stop after handling this many jobs (tests).

    Returns:
        How many jobs this worker completed.
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; expected one of: {', '.join(ENGINES)}")
    course = load_course(course_root)
    worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    gradebook = open_gradebook(db_url)
    sessions = sessionmaker(gradebook.engine, expire_on_commit=False)
    done = handled = 0
    swept = 0.0  # when expired leases were last put back
    passed_back = 0.0  # when LTI grade passback last ran (`lti.passback.worker_tick`)
    ray = _joined_ray(address) if engine == "ray" else None
    try:
        while (stop is None or not stop.is_set()) and (max_jobs is None or handled < max_jobs):
            try:
                held = _claim_some(sessions, worker_id, lease_s,
                                   concurrency if engine == "ray" else 1)
            except Exception as error:  # noqa: BLE001 - the database blinked: try again
                print(f"grader worker {worker_id}: cannot take a job from the queue: "
                      f"{type(error).__name__}: {str(error).strip()[:300]}; trying again",
                      file=sys.stderr)
                held = []
                swept = time.monotonic()  # no sweep either until it answers again
            if not held:
                if time.monotonic() - swept > SWEEP_S:
                    try:
                        sweep(sessions, course)
                    except Exception as error:  # noqa: BLE001 - the database blinked
                        print(f"grader worker {worker_id}: cannot sweep expired jobs: "
                              f"{type(error).__name__}: {str(error).strip()[:300]}",
                              file=sys.stderr)
                    swept = time.monotonic()
                if time.monotonic() - passed_back > lti_passback.TICK_S:  # never raises
                    lti_passback.worker_tick(sessions, course, worker_id)
                    passed_back = time.monotonic()
                if stop is not None:
                    stop.wait(POLL_S)
                else:
                    time.sleep(POLL_S)
                continue
            with Heartbeat(sessions, held, lease_s):
                done += _grade_held(sessions, course, held, engine, address)
            handled += len(held)
    finally:
        gradebook.close()
        if ray is not None:
            ray.shutdown()
    return done


def _joined_ray(address: str | None) -> Any:
    """Ray, started or joined once for this worker's life (`run_ray` then reuses it)."""
    try:
        import ray
    except ImportError:
        raise RuntimeError("the Ray engine needs Ray: pip install 'nn-grader[ray]'") from None
    if ray.is_initialized():
        return None  # someone else's: theirs to shut down
    batch.ray_init(ray, address)
    return ray


def _claim_some(sessions: sessionmaker, worker_id: str, lease_s: float,
                n: int) -> list[queue.Job]:
    held = []
    for _ in range(n):
        with sessions() as session:
            job = queue.claim(session, worker_id, lease_s)
        if job is None:
            break
        held.append(job)
    return held


def _grade_held(sessions: sessionmaker, course: Course, held: list[queue.Job], engine: str,
                address: str | None) -> int:
    """Grades the held jobs and completes each; returns how many this worker completed."""
    ready: list[tuple[queue.Job, AssignmentConfig, batch.Job]] = []
    for job in held:
        try:
            config, bjob = batch_job(course, job)
        except BaseException as error:  # noqa: BLE001 - this job only
            _fail(sessions, course, job, grader_problem("find the job's assignment or upload",
                                                        batch.passing(error)))
            continue
        ready.append((job, config, bjob))
    completed = 0

    def deliver(job: queue.Job, config: AssignmentConfig, graded: GradedSubmission) -> None:
        nonlocal completed
        try:
            completed += finish(sessions, course, job, config, graded)
        except BaseException as error:  # noqa: BLE001 - this job only
            _fail(sessions, course, job, grader_problem("record its results",
                                                        batch.passing(error)))

    if engine == "ray":
        while ready:  # a result names its upload only: one job per upload in each round
            by_path = {}
            for item in ready:
                by_path.setdefault(item[2].path, item)
            ready = [item for item in ready if by_path[item[2].path] is not item]
            report = batch.run_ray([bjob for _, _, bjob in by_path.values()], address=address,
                                   on_result=lambda graded, by_path=by_path: deliver(
                                       *by_path[Path(graded.submission.source)][:2], graded))
            for path, reason in report.failed:
                _fail(sessions, course, by_path[path][0], reason)
        return completed
    for job, config, bjob in ready:
        deliver(job, config, batch.grade_one(bjob))  # grade_one never raises for a submission
    return completed


def _fail(sessions: sessionmaker, course: Course, job: queue.Job, error: str) -> None:
    """Ends `job` as the grader's failure; a hidden one is recorded as not graded."""
    record = None
    if job.kind == queue.HIDDEN:
        problem = error if error.startswith(GRADER_PROBLEM) else \
            f"{GRADER_PROBLEM} grade it: {error}"
        recorder = not_graded_recorder(course, problem)

        def record(session: Session) -> int | None:
            return recorder(session, job)
    try:
        with sessions() as session:
            queue.fail(session, job, error, record=record)
    except Exception as again:  # noqa: BLE001 - the lease expires and the job goes again
        print(f"grader worker: could not mark job {job.id} failed: {again}", file=sys.stderr)


# --- local worker processes -----------------------------------------------------------------


@dataclass
class Workers:
    """Local worker processes (`start_local_workers`); `stop` ends them."""

    processes: list[multiprocessing.process.BaseProcess]
    event: Any

    def alive(self) -> int:
        return sum(process.is_alive() for process in self.processes)

    def stop(self, timeout: float = 30.0) -> None:
        """Asks every worker to stop after its current job; kills those still busy after
        `timeout` seconds (their jobs' leases expire and other workers take them)."""
        self.event.set()
        deadline = time.monotonic() + timeout
        for process in self.processes:
            process.join(max(0.0, deadline - time.monotonic()))
        for process in self.processes:
            if process.is_alive() and process.pid:
                for pid in reversed(process_tree(process.pid)):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
                process.join(5)


def start_local_workers(db_url: str, course: str | Path | Course, n: int, *,
                        lease_s: float = queue.DEFAULT_LEASE_S) -> Workers:
    """Starts `n` worker processes on this machine (what `grader serve` does by default).

    Returns:
        The handle; call its `stop()` when the service ends.
    """
    if n < 1:
        raise ValueError(f"the number of workers is at least 1. Received: {n}")
    root = str(course.root if isinstance(course, Course) else course)
    context = multiprocessing.get_context("spawn")  # no inherited threads or TF state
    event = context.Event()
    threads = os.environ.get(THREADS_ENV) or str(max(1, batch.default_workers() // n))
    # The parent's pid is passed, not read in the child: a child still importing when its
    # parent dies would read init's pid and never notice it was orphaned.
    processes = [context.Process(target=_process_main, name=f"grader-worker-{i}",
                                 args=(db_url, root, lease_s, event, threads, os.getpid()),
                                 daemon=False)
                 for i in range(n)]
    for process in processes:
        process.start()
    return Workers(processes, event)


def stop_on_sigterm(event: Any) -> Any:
    """Sets `event` when SIGTERM arrives; returns the handler it replaced.

    The event is set from a new thread, never inside the handler: the handler runs in the
    main thread, which may be inside ``event.wait()``; a multiprocessing event's ``set``
    waits for that very waiter to wake, and a threading one's takes a lock the waiter may
    hold, so setting it there can hang the process for good.
    """
    def handler(signum: int, frame: Any) -> None:
        threading.Thread(target=event.set, name="sigterm", daemon=True).start()

    return signal.signal(signal.SIGTERM, handler)


def _stop_when_orphaned(event: Any, parent: int, interval_s: float = 1.0) -> None:
    """Sets `event` once this process's parent has died (a `grader serve` killed with
    SIGKILL, or by a signal that skipped its clean-up): no worker outlives its service."""
    def watch() -> None:
        while not event.is_set():
            if os.getppid() != parent:
                event.set()
                return
            time.sleep(interval_s)

    threading.Thread(target=watch, name="orphan-watch", daemon=True).start()


def _process_main(db_url: str, root: str, lease_s: float, event: Any, threads: str,
                  parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when workers stop
    stop_on_sigterm(event)
    _stop_when_orphaned(event, parent)
    os.environ[THREADS_ENV] = threads
    try:
        os.nice(WORKER_NICENESS)
    except OSError:  # not allowed here (some containers): grade at the same priority
        pass
    work(db_url, root, lease_s=lease_s, stop=event)


def main(*, db: str | None = None, course: Path | None = None, engine: str = "local",
         concurrency: int = 1, lease: float = queue.DEFAULT_LEASE_S,
         address: str | None = None, wait: Callable[[], None] | None = None) -> int:
    """`grader worker`: grades queued jobs until Ctrl-C or SIGTERM.

    Returns:
        0 after a clean stop; 1 when every worker process ended by itself.
    """
    from grader.course import current
    from grader.gradebook import database_url

    the_course = load_course(course) if course is not None else current()
    url = database_url(db if db is not None else the_course.gradebook)
    open_gradebook(url).close()  # a bad URL fails here, in one line, before any process
    shown = make_url(url).render_as_string(hide_password=True)
    print(f"grader worker: {concurrency} {engine} worker(s) on {shown} for the course "
          f"{the_course.root}; Ctrl-C stops them after their current job", file=sys.stderr)
    if engine == "ray":
        event = threading.Event()
        previous = stop_on_sigterm(event)
        try:
            work(url, the_course.root, lease_s=lease, engine="ray", concurrency=concurrency,
                 address=address, stop=event)
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
        return 0
    workers = start_local_workers(url, the_course, concurrency, lease_s=lease)
    stopping = threading.Event()
    previous = stop_on_sigterm(stopping)
    try:
        if wait is not None:
            wait()
        else:
            while not stopping.wait(1.0) and workers.alive():
                pass
            if not stopping.is_set():
                print("grader worker: every worker process ended (their errors are above)",
                      file=sys.stderr)
                return 1
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        print("grader worker: stopping after the current jobs", file=sys.stderr)
        workers.stop()
    return 0

"""Grading a class in parallel: worker processes on one machine, or Ray tasks on many.

Each submission is graded by `grade_one` in a grader worker (a trusted process that
runs the hidden suite; the student's code still runs in its own sandbox below it).
Results come back to the calling process one by one, as they finish, and are handed
to ``on_result`` (record in the gradebook, write results.json) there, so a batch that
is stopped keeps everything that finished. A worker that dies mid-submission (killed,
out of memory) costs nothing but time: its submission is graded again, up to
``retries`` times, and is reported once.

One bad submission never stops the others: an exception of any type (MemoryError and
RecursionError included; only the grader's own KeyboardInterrupt and SystemExit pass)
raised while a submission is read or its suite runs becomes that submission's recorded
problem (`not_graded`, "the grader could not <step>: <reason>"), and the batch goes on.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from grader import i18n, scoring
from grader.config import AssignmentConfig, load_assignment
from grader.grading.run import THREADS_ENV, GradedSubmission, run_suite, suite_dir
from grader.ids import validate_id
from grader.intake import Submission, identify, intake
from grader.intake.layouts import placeholder_id
from grader.kit.check import PUBLIC_SUITE
from grader.results.records import (
    ERROR,
    FAILED,
    KIND_UNREADABLE,
    Grade,
    TestOutcome,
    grader_problem,
)
from grader.runtime.process import process_tree

ENGINES = ("local", "ray")
RETRIES = 2  # a submission whose worker died is graded again this many times


@dataclass(frozen=True)
class Job:
    """One submission to grade. The config travels as its file: workers load it themselves."""

    assignment_toml: Path
    repo_root: Path
    path: Path
    dataset_name: str | None = None
    public: bool = False  # only the public tests (`grader worker`'s fast first run)


@dataclass
class BatchReport:
    """What a batch did: graded submissions in finishing order, and what could not be."""

    graded: list[GradedSubmission] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)  # worker died every time
    retried: list[Path] = field(default_factory=list)
    interrupted: bool = False


def grade_one(job: Job) -> GradedSubmission:
    """Grades one submission; runs in a worker process (or a Ray task).

    Each step is isolated: whatever it raises (but the grader's own KeyboardInterrupt or
    SystemExit) becomes the submission's recorded problem, never the batch's end.
    """
    config = load_assignment(job.assignment_toml, repo_root=job.repo_root)
    with tempfile.TemporaryDirectory(prefix="nn-grader-") as scratch:
        try:
            submission = intake(job.path, Path(scratch), expected_files=config.student_files,
                                assignment=config.id)
        except BaseException as error:  # noqa: BLE001 - one submission never stops the batch
            return not_graded(config, job.path, grader_problem("read the submission",
                                                               passing(error)))
        if config.student_files and not submission.files:  # the suite could only fail, slowly
            return portable(GradedSubmission(submission, unreadable(config, submission)))
        try:
            public = [suite_dir(config) / PUBLIC_SUITE] if job.public else None
            grade = run_suite(config, submission, dataset_name=job.dataset_name,
                              test_files=public)
        except BaseException as error:  # noqa: BLE001 - one submission never stops the batch
            return not_graded(config, job.path, grader_problem("run the hidden suite",
                                                               passing(error)), submission)
    return portable(GradedSubmission(submission, grade))


def unreadable(config: AssignmentConfig, submission: Submission) -> Grade:
    """The grade of a submission none of whose files could be used: 0, at once.

    Every test fails as unreadable with the intake's problems (which say what to do),
    instead of a runtime started on an empty workspace failing each test in turn.
    """
    reason = "; ".join(submission.problems) or "none of the expected files could be read"
    message = f"This test was not run: {reason}."
    outcomes = [TestOutcome(test, test, FAILED, 0.0, message, kind=KIND_UNREADABLE)
                for part in config.parts for test in part.tests]
    return scoring.score(config.parts, outcomes, student_id=submission.student_id,
                         assignment=config.id, execution_time_s=0.0,
                         problems=submission.problems)


def passing(error: BaseException) -> BaseException:
    """`error`, unless it is the grader's own stop (Ctrl-C, exit): that one is raised again."""
    if isinstance(error, (KeyboardInterrupt, SystemExit)):
        raise error
    return error


def portable(graded: GradedSubmission) -> GradedSubmission:
    """`graded` with plain dicts: read-only mappings do not pickle back from a worker."""
    return replace(graded, submission=replace(graded.submission,
                                              files=dict(graded.submission.files)))


def not_graded(config: AssignmentConfig, path: Path, problem: str,
               submission: Submission | None = None) -> GradedSubmission:
    """A submission the grader failed on, as a grade of 0 that says so.

    Every test of the assignment is an error carrying `problem`, and `problem` joins the
    submission's problems, so the gradebook, results.json and the report all show it (and
    `grader autograde` grades it again on its next run).

    Args:
        config: The assignment.
        path: The submission as found in the class folder.
        problem: What failed (`records.grader_problem`).
        submission: The intake's result when intake got that far; else one is made with
            the id the path gives (`grader.intake.identify`), or a placeholder.
    """
    if submission is None:
        submission = Submission(student_id=fallback_id(path, config), source=path,
                                workspace=path, files={}, problems=(problem,),
                                submitted_at=None, expected=tuple(config.student_files))
    else:
        submission = replace(submission, problems=(*submission.problems, problem))
    message = f"This test was not run: {problem}. Your instructor will grade it again."
    outcomes = [TestOutcome(test, test, ERROR, 0.0, message)
                for part in config.parts for test in part.tests]
    grade = scoring.score(config.parts, outcomes, student_id=submission.student_id,
                          assignment=config.id, execution_time_s=0.0,
                          problems=submission.problems)
    return portable(GradedSubmission(submission, grade))


def fallback_id(path: Path, config: AssignmentConfig) -> str:
    """The id a path gives (the LMS layout or its name), else a placeholder; always valid."""
    try:
        return validate_id(identify(path, config.id).student_id)
    except Exception:  # noqa: BLE001 - a name we cannot read gets a placeholder
        return placeholder_id(str(path.name))


def default_workers() -> int:
    """One worker per core this process may use."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
               else os.cpu_count() or 1)


def run_local(
    jobs: Sequence[Job],
    *,
    workers: int,
    on_result: Callable[[GradedSubmission], None],
    retries: int = RETRIES,
) -> BatchReport:
    """Grades `jobs` with a pool of `workers` processes, streaming results to `on_result`.

    A dead worker breaks a `ProcessPoolExecutor` for every job in it, so the pool is
    rebuilt and the unfinished jobs go again; only the job whose worker died counts a
    retry (the others were innocent bystanders, but cannot be told apart: each unfinished
    job counts one, which `retries` = 2 absorbs).

    Ctrl-C (SIGINT) stops the batch within `POLL_S`: the workers and every student
    runtime under them are killed, pending jobs are never started, what finished before is
    kept (``on_result`` is never cut short), and the report says ``interrupted``. Workers
    ignore the terminal's SIGINT themselves, so pytest inside them never sees it.
    """
    report = BatchReport()
    pending = list(jobs)
    attempts: dict[Path, int] = {}
    context = multiprocessing.get_context("spawn")  # no inherited threads or TF state
    threads = os.environ.get(THREADS_ENV) or max(1, default_workers() // max(1, workers))
    with ctrl_c_sets_flag() as stop:
        while pending and not stop.is_set():
            pool = ProcessPoolExecutor(max_workers=min(workers, len(pending)),
                                       mp_context=context, initializer=_worker_start,
                                       initargs=(threads,))
            try:
                with sigint_blocked():  # workers are spawned here and inherit the mask
                    futures: dict[Future, Job] = {pool.submit(grade_one, job): job
                                                  for job in pending}
                pending = []
                broken = False
                while futures and not broken and not stop.is_set():
                    done, _ = wait(futures, timeout=POLL_S, return_when=FIRST_COMPLETED)
                    for future in done:
                        broken |= _collect(future, futures.pop(future), on_result, report,
                                           pending)
                if stop.is_set():
                    for future in [f for f in futures if f.done()]:  # finished meanwhile: kept
                        _collect(future, futures.pop(future), on_result, report, [])
                    kill_workers()  # the pool then fails every pending job: none is run
                elif broken:
                    pending += list(futures.values())
            finally:
                pool.shutdown(wait=True)
            if not stop.is_set():
                pending = _count_retries(pending, attempts, retries, report)
    report.interrupted = stop.is_set()
    return report


POLL_S = 0.2  # how often the batch looks at Ctrl-C while it waits for results


def _collect(future: Future, job: Job, on_result: Callable[[GradedSubmission], None],
             report: BatchReport, again: list[Job]) -> bool:
    """Delivers one finished job's result; True when its pool broke (`job` joins `again`)."""
    try:
        result = future.result()
    except BrokenProcessPool:
        again.append(job)
        return True
    except BaseException as error:  # noqa: BLE001 - this job only
        report.failed.append((job.path, grader_problem("grade it", passing(error))))
        return False
    deliver(result, on_result, report)
    return False


@contextmanager
def ctrl_c_sets_flag() -> Iterator[threading.Event]:
    """Within the block, SIGINT sets the yielded event instead of raising anywhere.

    So Ctrl-C never cuts a gradebook write in half: the batch loop looks at the event
    between results. Outside the main thread (where handlers cannot be set) the event
    is never set and Ctrl-C behaves as usual.
    """
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def sigint_blocked() -> Iterator[None]:
    """SIGINT blocked in this thread: processes started inside are born with it blocked.

    A SIGINT that arrives meanwhile is delivered when the block ends.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _ignore_signal(signum: int, frame: object) -> None:
    """A worker's SIGINT handler: the batch in the parent decides what Ctrl-C does."""


def kill_workers() -> None:
    """SIGKILLs this process's multiprocessing children and everything under them.

    The student runtimes are their own sessions (so the terminal's Ctrl-C never reaches
    them); each process group met in the trees is killed too, which catches a student
    process that left its parent's tree.
    """
    own_group = os.getpgrp()
    children = multiprocessing.active_children()
    for _attempt in range(3):  # again: a process may have forked while we killed
        pids = [pid for child in children if child.pid for pid in process_tree(child.pid)]
        groups = set()
        for pid in pids:
            with suppress(OSError):
                groups.add(os.getpgid(pid))
            with suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        for group in groups - {own_group}:
            with suppress(OSError):
                os.killpg(group, signal.SIGKILL)
        if not pids:
            break
    for child in children:
        child.join(timeout=5)


def deliver(result: GradedSubmission, on_result: Callable[[GradedSubmission], None],
            report: BatchReport) -> None:
    """Hands `result` to `on_result`; what that raises is this submission's failure only."""
    try:
        on_result(result)
    except BaseException as error:  # noqa: BLE001 - one submission never stops the batch
        report.failed.append((result.submission.source, grader_problem(
            "record its results", passing(error))))
        return
    report.graded.append(result)


def _worker_start(threads: int | str) -> None:
    """Worker start-up: Ctrl-C is the parent's to handle; each runtime it starts may use
    `threads` math-library threads."""
    # A handler, not SIG_IGN: an ignored signal would stay ignored in the runtimes
    signal.signal(signal.SIGINT, _ignore_signal)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # born blocked, see run_local
    os.environ[THREADS_ENV] = str(threads)


def _count_retries(pending: list[Job], attempts: dict[Path, int], retries: int,
                   report: BatchReport) -> list[Job]:
    again = []
    for job in pending:
        attempts[job.path] = attempts.get(job.path, 0) + 1
        if attempts[job.path] > retries:
            died = attempts[job.path]
            report.failed.append((job.path, f"the grader's worker died {died} "
                                  f"time{'' if died == 1 else 's'} while grading it"))
        else:
            report.retried.append(job.path)
            again.append(job)
    return again


def run_ray(
    jobs: Sequence[Job],
    *,
    on_result: Callable[[GradedSubmission], None],
    address: str | None = None,
    num_cpus: float = 1.0,
    num_gpus: float = 0.0,
    retries: int = RETRIES,
) -> BatchReport:
    """Grades `jobs` as Ray tasks, streaming results to `on_result` as they arrive.

    Args:
        jobs: the submissions.
        on_result: called in this process for each graded submission.
        address: a Ray cluster to join (``ray://...`` or ``host:port``); None starts a
            local Ray instance.
        num_cpus: CPUs each task reserves.
        num_gpus: GPU share each task reserves (0.25: four submissions per GPU).
        retries: Ray re-runs a task whose worker died this many times.
    """
    try:
        import ray
    except ImportError:
        raise RuntimeError("the Ray engine needs Ray: pip install 'nn-grader[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        ray_init(ray, address, num_cpus)
    remote = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus, max_retries=retries)(grade_one)
    report = BatchReport()
    refs = {remote.remote(job): job for job in jobs}
    try:
        with ctrl_c_sets_flag() as stop:
            while refs and not stop.is_set():
                done, _ = ray.wait(list(refs), num_returns=1, timeout=POLL_S)
                for ref in done:
                    job = refs.pop(ref)
                    try:
                        result = ray.get(ref)
                    except ray.exceptions.WorkerCrashedError as error:
                        report.failed.append((job.path, f"the Ray worker died: {error}"))
                        continue
                    except BaseException as error:  # noqa: BLE001 - this task only
                        report.failed.append((job.path, grader_problem("grade it",
                                                                       passing(error))))
                        continue
                    deliver(result, on_result, report)
            if stop.is_set():
                report.interrupted = True
                for ref in refs:  # force: the task's worker is killed, its runtime with it
                    ray.cancel(ref, force=True)
    finally:
        if started_here:
            ray.shutdown()
    return report


def ray_init(ray: Any, address: str | None, num_cpus: float = 1.0) -> None:
    """Starts or joins Ray for grading (`run_ray`; `grader worker --engine ray` once)."""
    ray.init(address=address, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {
                 "PYTHONPATH": os.pathsep.join(_import_roots()),
                 # A task's runtime uses the CPUs the task reserved, no more.
                 THREADS_ENV: str(max(1, int(num_cpus))),
                 # Every node's suites speak the batch's language (GRADER_LANG).
                 i18n.ENV_VAR: i18n.current_language(),
             }})


def _import_roots() -> list[str]:
    """Where `grader` (and the repo's `reference`) import from, for Ray's workers."""
    root = Path(__file__).resolve().parents[1]
    return [str(root)]

"""Grading a class in parallel: worker processes on one machine, or Ray tasks on many.

Each submission is graded by `grade_one` in a grader worker (a trusted process that
runs the hidden suite; the student's code still runs in its own sandbox below it).
Results come back to the calling process one by one, as they finish, and are handed
to ``on_result`` (record in the gradebook, write results.json) there, so a batch that
is stopped keeps everything that finished. A worker that dies mid-submission (killed,
out of memory) costs nothing but time: its submission is graded again, up to
``retries`` times, and is reported once.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from pathlib import Path

from grader.config import load_assignment
from grader.grading.run import THREADS_ENV, GradedSubmission, grade_path

ENGINES = ("local", "ray")
RETRIES = 2  # a submission whose worker died is graded again this many times


@dataclass(frozen=True)
class Job:
    """One submission to grade. The config travels as its file: workers load it themselves."""

    assignment_toml: Path
    repo_root: Path
    path: Path
    dataset_name: str | None = None


@dataclass
class BatchReport:
    """What a batch did: graded submissions in finishing order, and what could not be."""

    graded: list[GradedSubmission] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)  # worker died every time
    retried: list[Path] = field(default_factory=list)
    interrupted: bool = False


def grade_one(job: Job) -> GradedSubmission:
    """Grades one submission; runs in a worker process (or a Ray task)."""
    config = load_assignment(job.assignment_toml, repo_root=job.repo_root)
    graded = grade_path(config, job.path, dataset_name=job.dataset_name)
    # Read-only mappings do not pickle; the copy that crosses back holds a plain dict.
    submission = replace(graded.submission, files=dict(graded.submission.files))
    return replace(graded, submission=submission)


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
    """
    report = BatchReport()
    pending = list(jobs)
    attempts: dict[Path, int] = {}
    context = multiprocessing.get_context("spawn")  # no inherited threads or TF state
    threads = os.environ.get(THREADS_ENV) or max(1, default_workers() // max(1, workers))
    try:
        while pending:
            with ProcessPoolExecutor(max_workers=min(workers, len(pending)), mp_context=context,
                                     initializer=_share_cores, initargs=(threads,)) as pool:
                futures: dict[Future, Job] = {pool.submit(grade_one, job): job for job in pending}
                pending = []
                broken = False
                while futures and not broken:
                    done, _ = wait(futures, return_when=FIRST_COMPLETED)
                    for future in done:
                        job = futures.pop(future)
                        try:
                            result = future.result()
                        except BrokenProcessPool:
                            broken = True
                            pending.append(job)
                            continue
                        on_result(result)
                        report.graded.append(result)
                if broken:
                    pending += list(futures.values())
            pending = _count_retries(pending, attempts, retries, report)
    except KeyboardInterrupt:
        report.interrupted = True
    return report


def _share_cores(threads: int | str) -> None:
    """Worker start-up: each runtime it starts may use `threads` math-library threads."""
    os.environ[THREADS_ENV] = str(threads)


def _count_retries(pending: list[Job], attempts: dict[Path, int], retries: int,
                   report: BatchReport) -> list[Job]:
    again = []
    for job in pending:
        attempts[job.path] = attempts.get(job.path, 0) + 1
        if attempts[job.path] > retries:
            report.failed.append((job.path, f"the grader's worker died {attempts[job.path]} "
                                  "times while grading it"))
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
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {
                     "PYTHONPATH": os.pathsep.join(_import_roots()),
                     # A task's runtime uses the CPUs the task reserved, no more.
                     THREADS_ENV: str(max(1, int(num_cpus))),
                 }})
    remote = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus, max_retries=retries)(grade_one)
    report = BatchReport()
    refs = {remote.remote(job): job for job in jobs}
    try:
        while refs:
            done, _ = ray.wait(list(refs), num_returns=1)
            for ref in done:
                job = refs.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.WorkerCrashedError as error:
                    report.failed.append((job.path, f"the Ray worker died: {error}"))
                    continue
                on_result(result)
                report.graded.append(result)
    except KeyboardInterrupt:
        report.interrupted = True
        for ref in refs:
            ray.cancel(ref, force=True)
    finally:
        if started_here:
            ray.shutdown()
    return report


def _import_roots() -> list[str]:
    """Where `grader` (and the repo's `reference`) import from, for Ray's workers."""
    root = Path(__file__).resolve().parents[1]
    return [str(root)]

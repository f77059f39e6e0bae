"""run -> test results: one submission's suite under pytest, in the grader's process.

The pipeline for one submission is:

1. intake (`grader.intake`): the submission, copied into a private workspace;
2. a student runtime (`grader.runtime`) started on that workspace, in its sandbox;
3. the hidden suite run by pytest in this process, reaching the student's code only
   through the ``student`` proxy; `ResultsCollector` records each test;
4. scoring (`grader.scoring`): test outcomes -> part points -> a `Grade`.

Decisions:
- A suite runs with no ini file and with its own folder as rootdir and confcutdir: only its
  own conftest.py applies, never one of a project the course happens to sit in (nor a
  course-wide autograde_tests/conftest.py: a suite's fixtures live with the suite).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from grader import scoring
from grader.config import AssignmentConfig, load_assignment
from grader.course import course_imports
from grader.devices import default_gpu, detect_device
from grader.grading.fixtures import GradingFixtures
from grader.i18n import Domain
from grader.ids import file_name
from grader.intake import Submission, intake
from grader.intake.notebooks import NotebookLines
from grader.kit.check import PUBLIC_SUITE
from grader.results.plugin import ResultsCollector
from grader.results.records import Grade, json_text, to_results_json
from grader.runtime.sandbox import GpuAssignment, SandboxLimits
from grader.runtime.student import StudentRuntime

# A skipped statement's position is read in the report, like a notebook's "cell 3, line 5".
_, _n = Domain("cli").functions()

PYTEST_ARGS = (
    "-c", os.devnull,           # no ini file: the repo's own pytest settings must not apply
    "-p", "no:cacheprovider",   # write nothing next to the hidden tests
    "-p", "no:terminal",        # the grader prints its own summary
    "-p", "grader.results.plugin",
    "--assert=plain",           # no assert rewriting: messages never quote hidden test code
    "--import-mode=importlib",  # suites of several assignments in one process
)


def suite_files(suite: Path) -> list[Path]:
    """A suite's test files in the order they run: ``test_public.py`` first, then the others
    by name.

    The submission's time budget is shared by every test in run order, so a hang uses it up
    for the tests after it. The public tests are quick checks of the building blocks; the
    hidden file ends with the slow ones (training), so an endless loop in `train` costs the
    training parts, not the shape and gradient checks too.
    """
    return sorted(suite.glob("test_*.py"), key=lambda path: (path.name != PUBLIC_SUITE, path.name))


def suite_args(suite: Path) -> list[str]:
    """pytest's arguments that confine a run to the suite's folder.

    Args:
        suite: the folder of the suite's test files (and its own conftest.py, if any).

    Returns:
        ``--rootdir`` and ``--confcutdir`` both at `suite`: its own conftest.py is loaded,
        none above it. A course kept inside another project (a student's repository, this
        project's tests/files) would otherwise load that project's conftest.py files (with
        ``-c /dev/null`` pytest stops looking only at /dev), whose fixtures and hooks would
        run inside the suite, or break it.
    """
    return ["--rootdir", str(suite), "--confcutdir", str(suite)]


@dataclass(frozen=True)
class GradedSubmission:
    submission: Submission
    grade: Grade

    def results_json(self) -> dict:
        return to_results_json(self.grade)


def suite_dir(config: AssignmentConfig) -> Path:
    return config.repo_root / "autograde_tests" / config.id


def sandbox_limits(config: AssignmentConfig, *, device: str | None = None) -> SandboxLimits:
    """The runtime's limits: `SandboxLimits`' defaults, then the assignment's ``[sandbox]``,
    then its ``[sandbox.<device>]`` when a device is given (keys are the field names)."""
    return SandboxLimits(**config.sandbox_for(device))


def sandboxed_runtime(config: AssignmentConfig, submission: Submission, *,
                      device: str | None = None,
                      gpu: GpuAssignment | None = None) -> StudentRuntime:
    """The student runtime for a submission: its workspace, in the sandbox, with its limits.

    Args:
        config: The assignment.
        submission: The intake's result.
        device: The device whose budgets apply (None: the plain ``[budgets]``).
        gpu: The GPU lent to the runtime, or None for the CPU only.
    """
    modules = [Path(name).stem for name in config.student_files]
    return StudentRuntime(submission.workspace, modules,
                          limits=sandbox_limits(config, device=device), gpu=gpu,
                          env=thread_env(os.environ.get(THREADS_ENV)))


# Set by the batch engine: the math-library threads each runtime may start.
THREADS_ENV = "GRADER_RUNTIME_THREADS"


def thread_env(threads: str | int | None) -> dict[str, str]:
    """Caps the threads of numpy's BLAS, OpenMP and TensorFlow in a runtime.

    Every library starts one thread per core by default; with several runtimes sharing
    the cores that oversubscribes them (measured: training 19x slower with 2 runtimes
    of 2 threads each on 2 cores), so the batch engine gives each runtime its share.
    """
    if not threads:
        return {}
    count = str(max(1, int(threads)))
    return {name: count for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                     "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS")} | {
        "TF_NUM_INTEROP_THREADS": "1"}


def run_suite(
    config: AssignmentConfig,
    submission: Submission,
    *,
    suite: Path | None = None,
    test_files: Sequence[Path] | None = None,
    dataset_name: str | None = None,
    open_runtime: Callable[[AssignmentConfig, Submission], StudentRuntime] | None = None,
    device: str | None = None,
    gpu: GpuAssignment | None = None,
) -> Grade:
    """Runs a suite against one submission and scores it.

    Args:
        config: the assignment.
        submission: the intake's result; its workspace holds the student's files.
        suite: the suite's folder; default: ``autograde_tests/<id>/`` (the hidden suite).
        test_files: the files to run; default: every ``test_*.py`` in `suite`. Only the
            parts whose tests ran are scored when files are chosen (a public check).
        dataset_name: the dataset the suite's data-driven tests use; default: `data.load`'s.
        open_runtime: starts the student runtime; default: `sandboxed_runtime`. (The
            grading benchmark swaps in an in-process one to measure the sandbox's cost.)
        device: "cpu" or "gpu": selects the budgets (`config.budgets_for`) and the
            suite's ``device`` fixture; default: `grader.devices.detect_device()`.
        gpu: the GPU lent to the runtime; default: the first GPU when the device is
            "gpu" (a batch passes each slot's own, see `grader.devices.gpu_assignments`).

    Returns:
        The submission's `Grade`. Failures of the student's code never raise here.
    """
    suite = suite or suite_dir(config)
    files = list(test_files) if test_files is not None else suite_files(suite)
    start = time.perf_counter()
    collector = ResultsCollector()
    device = device or detect_device()
    if open_runtime is None:
        lent = gpu if gpu is not None else default_gpu(device)

        def open_runtime(cfg: AssignmentConfig, sub: Submission) -> StudentRuntime:
            return sandboxed_runtime(cfg, sub, device=device, gpu=lent)

    with open_runtime(config, submission) as runtime:
        fixtures = GradingFixtures(config, runtime, dataset_name=dataset_name, device=device,
                                   submission_key=submission_key(submission))
        with course_imports(config.repo_root):  # `import reference.X`: this course's
            pytest.main([*PYTEST_ARGS, *suite_args(suite), *map(str, files)],
                         plugins=[collector, fixtures])
        _forget_suite_modules(suite)
        sandbox_notes = tuple(getattr(runtime, "notes", ()))
        notebooks = getattr(runtime, "notebooks", {})  # converted notebooks: cell and line
        skipped = tuple(_("{where}: {statement}", where=_position(
                            notebooks, f"{module}.py", statement.line), statement=statement.text)
                        for module, statements in runtime.skipped.items()
                        for statement in statements)
    outcomes = collector.outcomes
    listed = [test for part in config.parts for test in part.tests]
    outcomes += collector.missing_as_errors(
        [test for test in listed if _defined_in(test, files)])
    return scoring.score(
        config.parts if test_files is None else _parts_run(config, outcomes),
        outcomes,
        student_id=submission.student_id,
        assignment=config.id,
        execution_time_s=time.perf_counter() - start,
        problems=submission.problems,
        skipped_statements=skipped,
        sandbox_notes=sandbox_notes,
    )


def submission_key(submission: Submission) -> str:
    """What fixes a submission's private accuracy splits: the hashes of its files."""
    return ",".join(f"{name}={digest}" for name, digest in sorted(submission.files.items()))


def grade_path(
    assignment: str | Path | AssignmentConfig,
    path: Path,
    *,
    workdir: Path | None = None,
    dataset_name: str | None = None,
    device: str | None = None,
    gpu: GpuAssignment | None = None,
) -> GradedSubmission:
    """Intake and grading of one submission (a folder, zip, ``.py`` or ``.ipynb``).

    ``device`` and ``gpu`` are passed to `run_suite` (default: `detect_device()`, and
    the first GPU on a GPU).
    """
    config = assignment if isinstance(assignment, AssignmentConfig) else load_assignment(
        assignment)
    with tempfile.TemporaryDirectory(prefix="nn-grader-", dir=workdir) as scratch:
        submission = intake(Path(path), Path(scratch), expected_files=config.student_files,
                            assignment=config.id)
        grade = run_suite(config, submission, dataset_name=dataset_name, device=device,
                          gpu=gpu)
    return GradedSubmission(submission, grade)


def write_results(graded: GradedSubmission, out_dir: Path) -> Path:
    """Writes ``<out_dir>/<file_name(student_id)>/results.json`` as strict JSON.

    The folder's name comes from `grader.ids.file_name` (one path component, whatever
    the id holds), so nothing is ever written outside `out_dir`; the text is
    `records.json_text` (non-finite numbers as null), which any strict parser reads.
    """
    folder = out_dir / file_name(graded.grade.student_id)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "results.json"
    path.write_text(json_text(graded.results_json()), encoding="utf-8")
    return path


def _position(notebooks: Mapping[str, NotebookLines], file: str, line: int) -> str:
    """``act.py line 15``, or ``act.ipynb cell 3, line 5`` for a converted notebook."""
    lines = notebooks.get(file)
    where = lines.describe(line) if lines is not None else None
    return (f"{lines.notebook} {where}" if where
            else _("{file} line {line}", file=file, line=line))


def _forget_suite_modules(suite: Path) -> None:
    """Drops the suite's test modules from sys.modules after a run.

    pytest's importlib mode registers them under their bare names (``test_hidden``), so
    without this the next assignment graded in the same process would reuse them.
    """
    root = str(suite.resolve())
    for name, module in list(sys.modules.items()):
        if (getattr(module, "__file__", None) or "").startswith(root + os.sep):
            del sys.modules[name]


def _defined_in(test: str, files: Sequence[Path]) -> bool:
    """Whether a test function's name appears in one of the suite files that ran."""
    return any(f"def {test}(" in file.read_text(encoding="utf-8") for file in files)


def _parts_run(config: AssignmentConfig, outcomes) -> list:
    """The parts whose tests ran (a public run grades the public parts only)."""
    ran = {outcome.name for outcome in outcomes}
    return [part for part in config.parts if any(test in ran for test in part.tests)]

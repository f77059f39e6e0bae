"""What grading one submission costs, end to end, and what the grader itself adds.

Usage:
    python bench/grading.py [--assignment mlp_numpy] [--repeats 3]

Grades the reference solution (as a student's submission) with the hidden suite and
breaks the time down: intake, runtime start and import, each part's tests, total.
Then runs the same suite on the same file with the student's module imported in the
grader's own process (no sandbox, no proxy, no intake): the difference is the fixed
cost the grader adds per submission (DESIGN.md: at most 1.5 s). Writes
``bench/results/grading-<assignment>.md``.
"""

from __future__ import annotations

import argparse
import importlib.util
import platform
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

from grader.config import AssignmentConfig, load_assignment
from grader.grading.fixtures import load_dataset
from grader.grading.run import run_suite, sandboxed_runtime
from grader.intake import intake

RESULTS = Path(__file__).parent / "results"


class InProcessRuntime:
    """The student's modules imported straight into this process: the no-sandbox baseline."""

    def __init__(self, workspace: Path, modules: list[str]) -> None:
        loaded = {}
        for name in modules:
            spec = importlib.util.spec_from_file_location(f"bench_student_{name}",
                                                          workspace / f"{name}.py")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            loaded[name] = module
        self.student = SimpleNamespace(**loaded)
        self.skipped: dict = {}

    def seed(self, seed: int) -> None:
        import random

        import numpy as np

        random.seed(seed)
        np.random.seed(seed)

    def __enter__(self) -> InProcessRuntime:
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass


def in_process(config: AssignmentConfig, submission) -> InProcessRuntime:
    return InProcessRuntime(submission.workspace,
                            [Path(name).stem for name in config.student_files])


@contextmanager
def submission_of(config: AssignmentConfig):
    """The reference solution, taken in as a student's submission."""
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as scratch:
        folder = Path(scratch) / "student"
        folder.mkdir()
        for file in config.files:
            shutil.copyfile(file.reference, folder / file.student)
        start = time.perf_counter()
        submission = intake(folder, Path(scratch), expected_files=config.student_files,
                            assignment=config.id)
        yield submission, time.perf_counter() - start


def runtime_start_seconds(config: AssignmentConfig, submission) -> float:
    """Sandboxed runtime start plus the import of the student's module, one ping."""
    start = time.perf_counter()
    with sandboxed_runtime(config, submission) as runtime:
        runtime.ping()
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignment", default="mlp_numpy")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    config = load_assignment(args.assignment)
    load_dataset(None)  # both variants share the grader process's cached dataset
    rows = {"intake": [], "runtime start + import": [], "total (sandboxed)": [],
            "total (in-process)": []}
    parts: dict[str, list[float]] = {}
    score = None
    for _ in range(args.repeats):
        with submission_of(config) as (submission, intake_s):
            rows["intake"].append(intake_s)
            rows["runtime start + import"].append(runtime_start_seconds(config, submission))
            start = time.perf_counter()
            grade = run_suite(config, submission)
            rows["total (sandboxed)"].append(time.perf_counter() - start + intake_s)
            score = f"{grade.score:g}/{grade.max_score:g}"
            if grade.score < grade.max_score:  # a broken run would make every figure meaningless
                raise SystemExit(f"the reference scored {score}; fix the suite before timing it")
            for part in grade.parts:
                parts.setdefault(part.name, []).append(sum(t.duration_s for t in part.tests))
            start = time.perf_counter()
            baseline = run_suite(config, submission, open_runtime=in_process)
            rows["total (in-process)"].append(time.perf_counter() - start)
            assert baseline.score == grade.score, (baseline.score, grade.score)

    median = {name: statistics.median(values) for name, values in rows.items()}
    fixed = median["total (sandboxed)"] - median["total (in-process)"]
    lines = [
        f"# Grading one `{config.id}` submission",
        "",
        f"Measured {datetime.now(timezone.utc):%Y-%m-%d} on {platform.machine()}, "
        f"{sys.platform}, {len(__import__('os').sched_getaffinity(0))} cores, with "
        f"`python bench/grading.py --assignment {config.id} --repeats {args.repeats}`; "
        f"medians of {args.repeats} runs. The submission is the reference (score {score}).",
        "",
        "| stage | seconds |",
        "| --- | ---: |",
        *(f"| {name} | {value:.2f} |" for name, value in median.items()),
        f"| **fixed cost added by the grader** (sandboxed − in-process) | **{fixed:.2f}** |",
        "",
        "Time in each part's tests (sandboxed run):",
        "",
        "| part | seconds |",
        "| --- | ---: |",
        *(f"| {name} | {statistics.median(values):.2f} |" for name, values in parts.items()),
    ]
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"grading-{config.id}.md"
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()

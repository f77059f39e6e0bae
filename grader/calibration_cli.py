"""calibrate: the reference's accuracy under each accuracy test's budget, over N seeds.

The reference is copied into a workspace as the student's file and graded through the
same protocol as a submission: its build function runs in the sandboxed runtime, the
model it declares is trained and run in the evaluator (`measure_accuracy`), on a
private split of the test images (one per seed, drawn like a submission's), so the
threshold reflects exactly what a submission's run measures. The result goes to
``assignments/<id>/calibration/<dataset>-<device>.toml`` (`grader.calibration`).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import TextIO

from grader import data
from grader.calibration import (
    TestCalibration,
    load_calibration,
    summarise,
    write_calibration,
)
from grader.checks.accuracy import AccuracyBudget, measure_accuracy
from grader.checks.splits import private_split
from grader.config import DEVICES, AssignmentConfig, load_assignment
from grader.devices import default_gpu
from grader.grading.run import sandbox_limits
from grader.runtime.student import StudentRuntime

__all__ = ["DEFAULT_SEEDS", "main"]

DEFAULT_SEEDS = 5


def _reference_workspace(config: AssignmentConfig, folder: Path) -> list[str]:
    """Copy each reference file in under the student's file name; return the modules."""
    modules = []
    for file in config.files:
        if file.reference is None:
            raise ValueError(f"{config.id}: files entry `{file.student}` has no reference to "
                             "calibrate with")
        shutil.copyfile(file.reference, folder / Path(file.student).with_suffix(".py").name)
        modules.append(Path(file.student).stem)
    return modules


def main(*, assignment: str | Path | AssignmentConfig, dataset: str | None = None,
         device: str = "cpu", seeds: int = DEFAULT_SEEDS, tests: list[str] | None = None,
         out: TextIO | None = None) -> int:
    """Calibrate an assignment's accuracy tests and write the calibration file.

    Args:
        assignment: An id, a path, or a loaded config.
        dataset: The dataset name; None: `grader.data.load`'s default.
        device: "cpu" or "gpu" (selects the budget and, for "gpu", the first GPU).
        seeds: How many seeds (0 .. seeds-1) to run per test.
        tests: Only these accuracy tests (default: all); the file keeps the other
            tests' entries.
        out: Where the summary goes (default stdout).

    Returns:
        0 on success, 2 when there is nothing to calibrate or the arguments are wrong.
    """
    out = out or sys.stdout
    config = assignment if isinstance(assignment, AssignmentConfig) else load_assignment(
        assignment)
    if device not in DEVICES:
        print(f"unknown device {device!r}; expected one of {', '.join(DEVICES)}", file=out)
        return 2
    if seeds < 1:
        print(f"--seeds must be at least 1; received {seeds}", file=out)
        return 2
    entries = [e for e in config.accuracy if tests is None or e.test in tests]
    if not entries:
        print(f"{config.id} declares no accuracy tests ([[accuracy]] in assignment.toml) "
              f"{'named ' + ', '.join(tests) if tests else ''}; nothing to calibrate", file=out)
        return 2
    loaded = data.load(dataset)
    gpu = default_gpu(device)
    results: list[TestCalibration] = []
    with tempfile.TemporaryDirectory(prefix="nn-grader-calibrate-") as scratch:
        workspace = Path(scratch)
        modules = _reference_workspace(config, workspace)
        for entry in entries:
            budget = AccuracyBudget.from_config(config, entry.test, device)
            print(f"{config.id} {entry.test} on {loaded.name}-{device}: {budget.describe()}, "
                  f"{seeds} seeds", file=out, flush=True)
            accuracies, seconds = [], []
            with StudentRuntime(workspace, modules,
                                limits=sandbox_limits(config, device=device),
                                gpu=gpu) as runtime:
                for seed in range(seeds):
                    start = time.perf_counter()
                    split = private_split(loaded.x_test, loaded.y_test, budget.test_images,
                                          key=f"calibration:{config.id}:{entry.test}:{seed}")
                    run = measure_accuracy(runtime.student, module=entry.module,
                                           build=entry.build, split=split, dataset=loaded,
                                           budget=budget, seed=seed)
                    accuracies.append(run.accuracy)
                    seconds.append(run.seconds)
                    note = f"  ({run.budget_message})" if run.stopped_by_budget else ""
                    print(f"  seed {seed}: accuracy {run.accuracy:.4f}, {run.epochs_done} "
                          f"epochs, train+predict {run.seconds:.1f} s, call "
                          f"{time.perf_counter() - start:.1f} s{note}", file=out, flush=True)
            result = summarise(entry.test, range(seeds), accuracies, seconds,
                               budget.as_dict())
            print(f"  mean {result.mean:.4f}, std {result.std:.4f} -> threshold "
                  f"{result.threshold:.4f}, floor {result.floor:.4f}", file=out, flush=True)
            results.append(result)
    previous = load_calibration(config, loaded.name, device)
    if previous is not None:
        done = {result.test for result in results}
        results = [entry for name, entry in previous.tests.items() if name not in done
                   and name in {e.test for e in config.accuracy}] + results
    command = (f"grader calibrate {config.id} --dataset {loaded.name} --device {device} "
               f"--seeds {seeds}")
    path = write_calibration(config, loaded.name, device, results, command=command)
    print(f"wrote {path}", file=out)
    return 0

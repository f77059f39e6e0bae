"""`grader calibrate <id>`: measure an assignment's accuracy thresholds and write them.

Checks the arguments, runs `grader.calibration.measure` for each accuracy test (the
reference, through the same protocol as a submission's run, once per seed) and writes
``assignments/<id>/calibration/<dataset>-<device>.toml``, keeping the entries of tests
not measured this time. The measurement and the threshold formula live in
`grader.calibration`; this module only drives them.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import TextIO

from grader import data
from grader.calibration import (
    TestCalibration,
    calibrated_tests,
    load_calibration,
    measure,
    write_calibration,
)
from grader.config import DEVICES, AssignmentConfig, load_assignment

__all__ = ["DEFAULT_SEEDS", "main"]

DEFAULT_SEEDS = 5


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
    available = calibrated_tests(config)
    chosen = [test for test in available if tests is None or test in tests]
    if not chosen:
        print(f"{config.id} declares no accuracy tests ([[accuracy]] in assignment.toml, or "
              f"mlp_numpy's test_train_reaches_threshold) "
              f"{'named ' + ', '.join(tests) if tests else ''}; nothing to calibrate", file=out)
        return 2
    loaded = data.load(dataset)
    results: list[TestCalibration] = []
    for test in chosen:
        with tempfile.TemporaryDirectory(prefix="nn-grader-calibrate-") as scratch:
            results.append(measure(config, test, loaded, device, seeds, Path(scratch),
                                   out=out))
    previous = load_calibration(config, loaded.name, device)
    if previous is not None:
        done = {result.test for result in results}
        results = [entry for name, entry in previous.tests.items() if name not in done
                   and name in available] + results
    command = (f"grader calibrate {config.id} --dataset {loaded.name} --device {device} "
               f"--seeds {seeds}")
    path = write_calibration(config, loaded.name, device, results, command=command)
    print(f"wrote {path}", file=out)
    return 0

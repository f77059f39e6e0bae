"""Accuracy thresholds from calibration: the reference's own accuracy, over several seeds.

`grader calibrate <id> --dataset D --device cpu|gpu --seeds N` (`grader.calibrate`) runs
the reference solution, through the same sandboxed runtime as a submission, under each
accuracy test's budget, once per seed, and writes
``assignments/<id>/calibration/<dataset>-<device>.toml``::

    assignment = "keras_cnn"
    dataset = "fashion_mnist"
    device = "cpu"
    created = "2026-05-01T10:00:00+00:00"

    [tests.test_accuracy]
    seeds = [0, 1, 2, 3, 4]
    accuracies = [0.8123, 0.8101, ...]
    seconds = [21.3, 20.9, ...]
    mean = 0.8110
    std = 0.0012                # sample standard deviation (ddof=1); 0 for one seed
    threshold = 0.8060          # mean - max(3 std, 0.005)
    floor = 0.6560              # max(chance, threshold - 0.15)
    budget = { train_images = 5000, test_images = 2000, epochs = 2, batch_size = 128,
               time_budget_s = 30.0 }

Full points at or above ``threshold``; partial credit falls linearly to zero at
``floor`` (`Threshold.credit`). The band is 15 accuracy points wide, but never reaches
below chance (0.1 for ten classes): a model at chance earns nothing.

A threshold is only used for the budget it was measured under: when the assignment's
budget changes, `threshold_for` raises `NoCalibration` asking for a new calibration.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any

from grader.config import AssignmentConfig

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

__all__ = ["CHANCE", "MIN_MARGIN", "PARTIAL_BAND", "SIGMAS", "Calibration", "NoCalibration",
           "TestCalibration", "Threshold", "calibration_path", "load_calibration",
           "summarise", "threshold_for", "write_calibration"]

SIGMAS = 3.0
"""threshold = mean - max(SIGMAS * std, MIN_MARGIN)"""
MIN_MARGIN = 0.005
"""Half an accuracy point: the least margin below the reference's mean."""
PARTIAL_BAND = 0.15
"""Width of the partial-credit band below the threshold."""
CHANCE = 0.1
"""Accuracy of guessing among ten classes: the band never reaches below it."""
_BUDGET_KEYS = ("train_images", "test_images", "epochs", "batch_size", "time_budget_s")


class NoCalibration(LookupError):
    """No usable calibration for an accuracy test; the message says what to run."""


@dataclass(frozen=True)
class TestCalibration:
    """One accuracy test's calibration.

    Attributes:
        test: The hidden test's name.
        seeds: The seeds run.
        accuracies: The reference's accuracy for each seed.
        seconds: Training + prediction wall time for each seed.
        mean: Mean accuracy.
        std: Sample standard deviation (0 for one seed).
        threshold: Full points at or above.
        floor: Zero points at or below.
        budget: The budget it ran under (`AccuracyBudget.as_dict` without the seed).
    """

    __test__ = False  # not a pytest class, despite its name

    test: str
    seeds: tuple[int, ...]
    accuracies: tuple[float, ...]
    seconds: tuple[float, ...]
    mean: float
    std: float
    threshold: float
    floor: float
    budget: Mapping[str, float | int]


@dataclass(frozen=True)
class Calibration:
    """One calibration file.

    Attributes:
        assignment: The assignment id.
        dataset: "mnist" or "fashion_mnist".
        device: "cpu" or "gpu".
        created: When it was measured (ISO 8601).
        tests: Per accuracy test.
        path: The file it was read from.
    """

    assignment: str
    dataset: str
    device: str
    created: str
    tests: Mapping[str, TestCalibration]
    path: Path | None = None


@dataclass(frozen=True)
class Threshold:
    """The accuracy an accuracy test asks for.

    Attributes:
        value: Full points at or above this accuracy.
        floor: No points at or below this; linear in between.
        source: Where it came from, for the report (the file, seeds, mean, std).
    """

    value: float
    floor: float
    source: str

    def credit(self, accuracy: float) -> float:
        """The fraction of the test's points earned by ``accuracy``, in [0, 1]."""
        if accuracy >= self.value:
            return 1.0
        if accuracy <= self.floor or self.value <= self.floor:
            return 0.0
        return (accuracy - self.floor) / (self.value - self.floor)


def summarise(test: str, seeds: Sequence[int], accuracies: Sequence[float],
              seconds: Sequence[float], budget: Mapping[str, float | int]) -> TestCalibration:
    """Mean, standard deviation, threshold and floor of one test's runs.

    Args:
        test: The test's name.
        seeds: The seeds, one per run.
        accuracies: The accuracy of each run.
        seconds: The wall time of each run.
        budget: The budget the runs used (its seed is dropped).

    Raises:
        ValueError: If there are no runs.
    """
    if not accuracies:
        raise ValueError(f"no calibration runs for {test}")
    mean = statistics.fmean(accuracies)
    std = statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
    threshold = mean - max(SIGMAS * std, MIN_MARGIN)
    floor = max(CHANCE, threshold - PARTIAL_BAND)
    return TestCalibration(
        test=test, seeds=tuple(int(s) for s in seeds),
        accuracies=tuple(float(a) for a in accuracies),
        seconds=tuple(float(s) for s in seconds), mean=mean, std=std,
        threshold=threshold, floor=min(floor, threshold),
        budget=MappingProxyType({k: budget[k] for k in _BUDGET_KEYS if k in budget}))


def calibration_path(config: AssignmentConfig, dataset: str, device: str) -> Path:
    """``assignments/<id>/calibration/<dataset>-<device>.toml``."""
    return config.root / "calibration" / f"{dataset}-{device}.toml"


def _command(config: AssignmentConfig, dataset: str, device: str) -> str:
    return f"grader calibrate {config.id} --dataset {dataset} --device {device}"


def load_calibration(config: AssignmentConfig, dataset: str, device: str) -> Calibration | None:
    """Read an assignment's calibration for a dataset and device; None if there is none.

    Raises:
        NoCalibration: If the file exists but cannot be read or parsed.
    """
    path = calibration_path(config, dataset, device)
    if not path.is_file():
        return None
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        tests = {
            name: TestCalibration(
                test=name, seeds=tuple(entry["seeds"]),
                accuracies=tuple(float(a) for a in entry["accuracies"]),
                seconds=tuple(float(s) for s in entry.get("seconds", ())),
                mean=float(entry["mean"]), std=float(entry["std"]),
                threshold=float(entry["threshold"]), floor=float(entry["floor"]),
                budget=MappingProxyType(dict(entry.get("budget", {}))))
            for name, entry in data.get("tests", {}).items()}
        return Calibration(assignment=str(data["assignment"]), dataset=str(data["dataset"]),
                           device=str(data["device"]), created=str(data.get("created", "")),
                           tests=MappingProxyType(tests), path=path)
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
        raise NoCalibration(f"the calibration file {path} cannot be read ({exc}); run "
                            f"`{_command(config, dataset, device)}` to write it again") from None


def threshold_for(config: AssignmentConfig, test_name: str, dataset: str,
                  device: str) -> Threshold:
    """The threshold of an accuracy test, from the calibration for ``dataset`` on ``device``.

    Raises:
        NoCalibration: No calibration file, no entry for the test, or one measured under
            another budget than the assignment's current one; the message says which
            ``grader calibrate`` command to run.
    """
    command = _command(config, dataset, device)
    calibration = load_calibration(config, dataset, device)
    if calibration is None:
        raise NoCalibration(f"no calibration for {config.id} on {dataset}-{device}: run "
                            f"`{command}`")
    entry = calibration.tests.get(test_name)
    if entry is None:
        raise NoCalibration(f"the calibration for {config.id} on {dataset}-{device} has no "
                            f"entry for {test_name}: run `{command}`")
    current = _current_budget(config, test_name, device)
    if current is not None and any(
            not math.isclose(float(entry.budget.get(k, math.nan)), float(v))
            for k, v in current.items()):
        raise NoCalibration(
            f"the calibration for {config.id} on {dataset}-{device} was measured for "
            f"{test_name} under the budget {dict(entry.budget)}, but assignment.toml now "
            f"gives {current}: run `{command}`")
    shown = _shown(calibration.path, config)
    return Threshold(
        value=entry.threshold, floor=entry.floor,
        source=(f"{shown}: the reference over {len(entry.seeds)} seeds, mean "
                f"{entry.mean:.4f}, std {entry.std:.4f}"))


def _current_budget(config: AssignmentConfig, test_name: str,
                    device: str) -> dict[str, float | int] | None:
    try:
        values = config.accuracy_test(test_name).budget_for(device)
    except KeyError:
        return None
    return {k: values[k] for k in _BUDGET_KEYS if k in values}


def _shown(path: Path | None, config: AssignmentConfig) -> str:
    if path is None:
        return "calibration"
    try:
        return str(path.resolve().relative_to(config.repo_root))
    except ValueError:
        return str(path)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(round(value, 6))
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def write_calibration(config: AssignmentConfig, dataset: str, device: str,
                      tests: Sequence[TestCalibration], *, command: str = "") -> Path:
    """Write (replace) the calibration file for a dataset and device.

    Returns:
        The file written.
    """
    path = calibration_path(config, dataset, device)
    path.parent.mkdir(parents=True, exist_ok=True)
    created = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    lines = [f"# written by `{command or _command(config, dataset, device)}`; "
             "threshold = mean - max(3 std, 0.005), floor = max(0.1, threshold - 0.15)",
             f"assignment = {_toml_value(config.id)}", f"dataset = {_toml_value(dataset)}",
             f"device = {_toml_value(device)}", f"created = {_toml_value(created)}", ""]
    for entry in tests:
        lines += [f"[tests.{entry.test}]",
                  f"seeds = {_toml_value(list(entry.seeds))}",
                  f"accuracies = {_toml_value(list(entry.accuracies))}",
                  f"seconds = {_toml_value([round(s, 2) for s in entry.seconds])}",
                  f"mean = {_toml_value(entry.mean)}", f"std = {_toml_value(entry.std)}",
                  f"threshold = {_toml_value(entry.threshold)}",
                  f"floor = {_toml_value(entry.floor)}",
                  f"budget = {_toml_value(dict(entry.budget))}", ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path

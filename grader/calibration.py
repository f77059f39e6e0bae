"""Accuracy thresholds from calibration: the reference's own accuracy, over several seeds.

The measurement, the formula and the file, in one place. `grader calibrate <id> --dataset
D --device cpu|gpu --seeds N` (its main is `grader.calibration_cli`) runs the reference
solution, through the same sandboxed runtime as a submission and by the accuracy test's
own protocol, once per seed (`measure`), and writes
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

Two protocols, each the hidden test's own:

- an ``[[accuracy]]`` entry (the Keras assignments): the reference's build function runs
  in the runtime, the model it declares is trained and run in the evaluator
  (`grader.checks.accuracy.measure_accuracy`);
- mlp_numpy's `test_train_reaches_threshold` (``[budgets]``, ``[parameters]``): the
  reference's ``train`` runs in the runtime, its weights come back as arrays and the
  grader's forward pass classifies the split (`grader.checks.mlp_weights`).

Each seed draws its own private split of the test images, as a submission's run does.
"""

from __future__ import annotations

import math
import shutil
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any, TextIO

import numpy as np

from grader import data
from grader.checks.accuracy import AccuracyBudget, measure_accuracy
from grader.checks.mlp_weights import budget_data, predict, train_under_budget
from grader.checks.splits import private_split
from grader.config import AccuracyTest, AssignmentConfig
from grader.devices import default_gpu
from grader.grading.run import sandbox_limits
from grader.runtime.student import StudentRuntime

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

__all__ = ["CHANCE", "MIN_MARGIN", "MLP_TRAIN_TEST", "PARTIAL_BAND", "SIGMAS", "Calibration",
           "NoCalibration", "TestCalibration", "Threshold", "calibrated_tests",
           "calibration_path", "load_calibration", "measure", "summarise", "threshold_for",
           "write_calibration"]

SIGMAS = 3.0
"""threshold = mean - max(SIGMAS * std, MIN_MARGIN)"""
MIN_MARGIN = 0.005
"""Half an accuracy point: the least margin below the reference's mean."""
PARTIAL_BAND = 0.15
"""Width of the partial-credit band below the threshold."""
CHANCE = 0.1
"""Accuracy of guessing among ten classes: the band never reaches below it."""
_BUDGET_KEYS = ("train_images", "test_images", "epochs", "batch_size", "time_budget_s")
MLP_TRAIN_TEST = "test_train_reaches_threshold"
"""mlp_numpy's accuracy test: `train` under ``[budgets]``, judged from its weights."""


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
              seconds: Sequence[float], budget: Mapping[str, float | int], *,
              keys: Sequence[str] | None = _BUDGET_KEYS) -> TestCalibration:
    """Mean, standard deviation, threshold and floor of one test's runs.

    Args:
        test: The test's name.
        seeds: The seeds, one per run.
        accuracies: The accuracy of each run.
        seconds: The wall time of each run.
        budget: The budget the runs used (its seed is dropped).
        keys: The budget's entries kept with the result (None: all of them).

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
        budget=MappingProxyType({k: budget[k] for k in (budget if keys is None else keys)
                                 if k in budget}))


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
    if test_name == MLP_TRAIN_TEST and not config.accuracy:
        return _mlp_budget(config, device)
    try:
        values = config.accuracy_test(test_name).budget_for(device)
    except KeyError:
        return None
    return {k: values[k] for k in _BUDGET_KEYS if k in values}


def _mlp_budget(config: AssignmentConfig, device: str) -> dict[str, float | int]:
    """mlp_numpy's budget: all of ``[budgets]`` and the hidden size trained."""
    return {**config.budgets_for(device),
            "latent_dims": int(config.parameters["latent_dims"][0])}


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


# -- measurement: the reference, graded as a submission is ------------------------------------

def calibrated_tests(config: AssignmentConfig) -> list[str]:
    """The accuracy tests `measure` can calibrate: the ``[[accuracy]]`` entries, or
    mlp_numpy's training test when the assignment has one and no entries."""
    if config.accuracy:
        return [entry.test for entry in config.accuracy]
    tests = {test for part in config.parts for test in part.tests}
    return [MLP_TRAIN_TEST] if MLP_TRAIN_TEST in tests and config.parameters.get(
        "latent_dims") else []


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


def measure(config: AssignmentConfig, test: str, dataset: data.Dataset, device: str,
            seeds: int, workspace: Path, *, out: TextIO) -> TestCalibration:
    """The reference's accuracy in one test over ``seeds`` seeds, and its threshold.

    Args:
        config: The assignment.
        test: One of `calibrated_tests(config)`.
        dataset: The loaded dataset.
        device: "cpu" or "gpu" (the budget; "gpu" lends the runtime the first GPU).
        seeds: Runs 0 .. seeds-1.
        workspace: An empty folder for the reference's files.
        out: Where each seed's line goes.
    """
    modules = _reference_workspace(config, workspace)
    entry = next((e for e in config.accuracy if e.test == test), None)
    budget: Mapping[str, float | int]
    if entry is not None:
        keras_budget = AccuracyBudget.from_config(config, test, device)
        budget, keys, described = keras_budget.as_dict(), _BUDGET_KEYS, keras_budget.describe()
    else:
        budget, keys = _mlp_budget(config, device), None
        described = ", ".join(f"{k} {v}" for k, v in budget.items())
    print(f"{config.id} {test} on {dataset.name}-{device}: {described}, {seeds} seeds",
          file=out, flush=True)
    accuracies, seconds = [], []
    for seed in range(seeds):
        start = time.perf_counter()
        split = private_split(dataset.x_test, dataset.y_test, int(budget["test_images"]),
                              key=f"calibration:{config.id}:{test}:{seed}")
        # A runtime per seed, as per submission: each run has the submission's time budget.
        with StudentRuntime(workspace, modules, limits=sandbox_limits(config, device=device),
                            gpu=default_gpu(device)) as runtime:
            if entry is not None:
                accuracy, note = _keras_run(runtime, entry, split, dataset, keras_budget, seed)
            else:
                weights = train_under_budget(
                    getattr(runtime.student, modules[0]), budget_data(dataset, budget),
                    budget, latent=int(budget["latent_dims"]), seed=seed)
                accuracy = float(np.mean(predict(weights, split.images) == split.labels))
                note = ""
        accuracies.append(accuracy)
        seconds.append(time.perf_counter() - start)
        print(f"  seed {seed}: accuracy {accuracy:.4f}, {seconds[-1]:.1f} s{note}",
              file=out, flush=True)
    result = summarise(test, range(seeds), accuracies, seconds, budget, keys=keys)
    print(f"  mean {result.mean:.4f}, std {result.std:.4f} -> threshold "
          f"{result.threshold:.4f}, floor {result.floor:.4f}", file=out, flush=True)
    return result


def _keras_run(runtime: StudentRuntime, entry: AccuracyTest, split: Any,
               dataset: data.Dataset, budget: AccuracyBudget, seed: int) -> tuple[float, str]:
    """One seed of an ``[[accuracy]]`` test: (accuracy, a note on the run)."""
    run = measure_accuracy(runtime.student, module=entry.module, build=entry.build,
                           split=split, dataset=dataset, budget=budget, seed=seed)
    note = f", {run.epochs_done} epochs, train+predict {run.seconds:.1f} s"
    return run.accuracy, note + (f" ({run.budget_message})" if run.stopped_by_budget else "")

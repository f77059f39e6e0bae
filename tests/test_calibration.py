"""grader.calibration (measurement, formula, files) and `grader calibrate` on small real runs."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest

from grader import data
from grader.calibration import (
    NoCalibration,
    Threshold,
    calibration_path,
    load_calibration,
    summarise,
    threshold_for,
    write_calibration,
)
from grader.calibration_cli import main as calibrate
from grader.checks.accuracy import AccuracyBudget
from grader.config import load_assignment

REPO = Path(__file__).resolve().parents[1]

TOML = """\
id = "kmlp"
title = "Keras MLP (calibration test)"
due = 2026-12-23T00:00:00+08:00

[[files]]
student = "keras_mlp.py"
reference = "reference/keras_mlp.py"

[[parts]]
name = "accuracy"
points = 10
tests = ["test_accuracy_sequential"]

[[accuracy]]
test = "test_accuracy_sequential"
module = "keras_mlp"
build = "build_sequential_mlp"
preprocess = "preprocess"
train_images = 2048
test_images = 512
epochs = 1
batch_size = 16
time_budget_s = 60

[accuracy.gpu]
train_images = 55000
epochs = 50
"""


@pytest.fixture
def config(tmp_path: Path):
    folder = tmp_path / "assignments" / "kmlp"
    folder.mkdir(parents=True)
    (folder / "assignment.toml").write_text(TOML, encoding="utf-8")
    (tmp_path / "reference").mkdir()
    shutil.copyfile(REPO / "reference" / "keras_mlp.py", tmp_path / "reference" / "keras_mlp.py")
    return load_assignment(folder / "assignment.toml")


def test_summary_threshold_and_floor() -> None:
    wide = summarise("t", [0, 1, 2], [0.80, 0.82, 0.84], [1, 1, 1], {"epochs": 1})
    assert wide.mean == pytest.approx(0.82) and wide.std == pytest.approx(0.02)
    assert wide.threshold == pytest.approx(0.82 - 0.06)  # 3 sigma
    assert wide.floor == pytest.approx(0.76 - 0.15)
    tight = summarise("t", [0, 1], [0.9, 0.9], [1, 1], {})
    assert tight.threshold == pytest.approx(0.895)  # at least half a point below the mean
    weak = summarise("t", [0], [0.2], [1], {})
    assert weak.std == 0 and weak.floor == pytest.approx(0.1)  # never below chance


def test_threshold_credit_band() -> None:
    threshold = Threshold(value=0.8, floor=0.65, source="x")
    assert threshold.credit(0.81) == 1.0 and threshold.credit(0.8) == 1.0
    assert threshold.credit(0.725) == pytest.approx(0.5)
    assert threshold.credit(0.6) == 0.0


def test_round_trip_and_threshold_for(config) -> None:
    budget = AccuracyBudget.from_config(config, "test_accuracy_sequential", "cpu")
    entry = summarise("test_accuracy_sequential", [0, 1, 2], [0.70, 0.71, 0.72],
                      [3.0, 3.1, 2.9], budget.as_dict())
    path = write_calibration(config, "fashion_mnist", "cpu", [entry])
    assert path == config.root / "calibration" / "fashion_mnist-cpu.toml"
    loaded = load_calibration(config, "fashion_mnist", "cpu")
    assert loaded is not None and loaded.assignment == "kmlp" and loaded.device == "cpu"
    back = loaded.tests["test_accuracy_sequential"]
    assert back.accuracies == entry.accuracies and back.seeds == (0, 1, 2)
    assert back.threshold == pytest.approx(entry.threshold, abs=1e-6)
    assert dict(back.budget) == {"train_images": 2048, "test_images": 512, "epochs": 1,
                                 "batch_size": 16, "time_budget_s": 60.0}
    threshold = threshold_for(config, "test_accuracy_sequential", "fashion_mnist", "cpu")
    assert threshold.value == pytest.approx(0.71 - 0.03, abs=1e-6)
    assert threshold.source.startswith("assignments/kmlp/calibration/fashion_mnist-cpu.toml: "
                                       "the reference over 3 seeds, mean 0.7100")


def test_no_calibration_says_what_to_run(config) -> None:
    with pytest.raises(NoCalibration) as info:
        threshold_for(config, "test_accuracy_sequential", "fashion_mnist", "gpu")
    assert str(info.value) == ("no calibration for kmlp on fashion_mnist-gpu: run "
                               "`grader calibrate kmlp --dataset fashion_mnist --device gpu`")
    assert load_calibration(config, "mnist", "cpu") is None


def test_calibration_for_another_budget_is_refused(config) -> None:
    entry = summarise("test_accuracy_sequential", [0], [0.7], [1.0],
                      {"train_images": 1000, "test_images": 512, "epochs": 1,
                       "batch_size": 16, "time_budget_s": 60})
    write_calibration(config, "fashion_mnist", "cpu", [entry])
    with pytest.raises(NoCalibration, match="under the budget .* but assignment.toml now "
                                            "gives .*: run `grader calibrate kmlp"):
        threshold_for(config, "test_accuracy_sequential", "fashion_mnist", "cpu")


def test_damaged_file_is_reported(config) -> None:
    path = calibration_path(config, "fashion_mnist", "cpu")
    path.parent.mkdir(parents=True)
    path.write_text("assignment = [", encoding="utf-8")
    with pytest.raises(NoCalibration, match="cannot be read"):
        load_calibration(config, "fashion_mnist", "cpu")


@pytest.mark.slow
def test_calibrate_runs_the_reference_in_the_sandbox(config) -> None:
    out = io.StringIO()
    assert calibrate(assignment=config, dataset="fashion_mnist", device="cpu", seeds=2,
                     out=out) == 0
    text = out.getvalue()
    assert "seed 0: accuracy" in text and "seed 1: accuracy" in text and "wrote " in text
    threshold = threshold_for(config, "test_accuracy_sequential", "fashion_mnist", "cpu")
    entry = load_calibration(config, "fashion_mnist", "cpu").tests["test_accuracy_sequential"]
    # 128 SGD steps of MSE, each seed on its own private split: well above chance (0.1),
    # far below the full run
    assert len(entry.accuracies) == 2 and all(0.15 < a <= 1 for a in entry.accuracies)
    assert threshold.value < entry.mean and threshold.floor < threshold.value


def test_calibrate_without_accuracy_tests(tmp_path: Path) -> None:
    folder = tmp_path / "assignments" / "kmlp"
    folder.mkdir(parents=True)
    toml = TOML.split("[[accuracy]]")[0].replace('reference = "reference/keras_mlp.py"\n', "")
    (folder / "assignment.toml").write_text(toml, encoding="utf-8")
    out = io.StringIO()
    assert calibrate(assignment=load_assignment(folder), device="cpu", seeds=1, out=out) == 2
    assert "declares no accuracy tests" in out.getvalue()


MLP_TOML = """\
id = "mlp"
title = "numpy MLP (calibration test)"
due = 2026-12-23T00:00:00+08:00

[[files]]
student = "mlp_numpy.py"
reference = "reference/mlp_numpy.py"

[[parts]]
name = "train"
points = 10
tests = ["test_train_reaches_threshold"]

[parameters]
latent_dims = [16, 32]

[budgets]
train_images = 600
validation_images = 100
test_images = 300
train_epochs = 1
batch_size = 50
learning_rate = 0.1
"""


@pytest.fixture
def mlp_config(tmp_path: Path):
    folder = tmp_path / "assignments" / "mlp"
    folder.mkdir(parents=True)
    (folder / "assignment.toml").write_text(MLP_TOML, encoding="utf-8")
    (tmp_path / "reference").mkdir()
    shutil.copyfile(REPO / "reference" / "mlp_numpy.py", tmp_path / "reference" / "mlp_numpy.py")
    return load_assignment(folder / "assignment.toml")


@pytest.mark.skipif(not data.available(), reason="no dataset installed")
def test_calibrate_mlp_numpy_by_its_weights_protocol(mlp_config) -> None:
    """`grader calibrate mlp_numpy`: the reference's `train` in the sandbox, its weights
    classified grader-side; the threshold by the one formula, checked against the budget."""
    out = io.StringIO()
    assert calibrate(assignment=mlp_config, dataset="fashion_mnist", seeds=2, out=out) == 0
    assert "seed 1: accuracy" in out.getvalue(), out.getvalue()
    entry = load_calibration(mlp_config, "fashion_mnist", "cpu").tests[
        "test_train_reaches_threshold"]
    assert len(entry.accuracies) == 2 and all(0.3 < a <= 1 for a in entry.accuracies)
    assert dict(entry.budget)["latent_dims"] == 16 and dict(entry.budget)["train_images"] == 600
    expected = summarise("x", [0, 1], entry.accuracies, [0, 0], {})
    threshold = threshold_for(mlp_config, "test_train_reaches_threshold", "fashion_mnist", "cpu")
    assert threshold.value == pytest.approx(expected.threshold, abs=1e-5)  # 6 decimals kept
    changed = (mlp_config.root / "assignment.toml")
    changed.write_text(MLP_TOML.replace("train_epochs = 1", "train_epochs = 2"), "utf-8")
    with pytest.raises(NoCalibration, match="was measured for test_train_reaches_threshold "
                                            "under the budget"):
        threshold_for(load_assignment(changed), "test_train_reaches_threshold",
                      "fashion_mnist", "cpu")

"""What grading one Keras submission costs on the CPU, stage by stage, next to the reference.

Usage:
    python bench/keras_grading.py [--assignments keras_mlp keras_cnn alexnet]
                                  [--dataset fashion_mnist] [--skip-suite]

For each assignment, with the reference solution as the submission and the CPU budget of
each [[accuracy]] test:

- import: starting the sandboxed runtime and importing the submission (TensorFlow included);
- evaluator: starting the submission's evaluator, the clean sandboxed process that trains
  and runs the model the student's config declares (`grader.evaluator`);
- build: the student's build function plus reading the model as an artifact through the
  proxy (`read_model`: configs; for the subclassed AlexNet also its weights and the
  equivalence check on random inputs, in the evaluator);
- training and prediction: `measure_accuracy` (in the evaluator, on a private split, as a
  hidden test does);
- suite: the whole hidden suite through `grade_path` (device cpu), and per part;
- checks: suite wall time minus import, training and prediction;
- reference: the reference's own preprocess + build + fit + predict under the same
  budget in this process (no sandbox, no proxy), the floor the grader's run compares to.

Writes ``bench/results/keras-grading.md``. Targets (DESIGN.md): one keras_cnn submission
within 45 s, one alexnet submission within 120 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from grader import data  # noqa: E402
from grader.checks.accuracy import AccuracyBudget, measure_accuracy  # noqa: E402
from grader.checks.splits import private_split  # noqa: E402
from grader.config import load_assignment  # noqa: E402
from grader.evaluator.artifact import read_model  # noqa: E402
from grader.evaluator.runtime import evaluator_for  # noqa: E402
from grader.grading.run import grade_path, sandbox_limits  # noqa: E402
from grader.runtime.student import StudentRuntime  # noqa: E402

RESULTS = Path(__file__).parent / "results"
ASSIGNMENTS = ("keras_mlp", "keras_cnn", "alexnet")
INPUT_SHAPES = {"keras_mlp": (784,), "keras_cnn": (28, 28, 1), "alexnet": (28, 28, 1)}


def reference_training(config, entry, budget: AccuracyBudget, dataset) -> float:
    """The reference's own preprocess + build + fit + predict, in this process."""
    import keras
    import numpy as np

    module = importlib.import_module(f"reference.{entry.module}")
    start = time.perf_counter()
    keras.utils.set_random_seed(budget.seed)
    x, y = module.preprocess(dataset.x_train[:budget.train_images],
                             dataset.y_train[:budget.train_images])
    x_test, _ = module.preprocess(dataset.x_test[:budget.test_images],
                                  np.zeros(budget.test_images, dtype=np.uint8))
    model = getattr(module, entry.build)()
    model.fit(x, y, epochs=budget.epochs, batch_size=budget.batch_size, verbose=0, shuffle=True)
    model.predict(x_test, batch_size=budget.batch_size, verbose=0)
    return time.perf_counter() - start


def bench_assignment(name: str, dataset, *, run_suite: bool) -> dict:
    config = load_assignment(name, repo_root=REPO)
    row: dict = {"assignment": name}
    with tempfile.TemporaryDirectory(prefix="nn-grader-bench-") as scratch:
        workspace = Path(scratch)
        modules = []
        for file in config.files:
            shutil.copyfile(file.reference, workspace / file.student)
            modules.append(Path(file.student).stem)
        start = time.perf_counter()
        with StudentRuntime(workspace, modules,
                            limits=sandbox_limits(config, device="cpu")) as runtime:
            row["import"] = time.perf_counter() - start
            student = runtime.student
            start = time.perf_counter()
            evaluator_for(student).start()
            row["evaluator"] = time.perf_counter() - start
            row["accuracy"] = []
            for entry in config.accuracy:
                budget = AccuracyBudget.from_config(config, entry.test, "cpu")
                start = time.perf_counter()
                model = getattr(getattr(student, entry.module), entry.build)()
                read_model(student, model, input_shape=INPUT_SHAPES.get(entry.module))
                build = time.perf_counter() - start
                split = private_split(dataset.x_test, dataset.y_test, budget.test_images,
                                      key=f"bench:{name}:{entry.test}")
                start = time.perf_counter()
                run = measure_accuracy(student, module=entry.module, build=entry.build,
                                       split=split, dataset=dataset, budget=budget,
                                       input_shape=INPUT_SHAPES.get(entry.module))
                call = time.perf_counter() - start
                row["accuracy"].append({
                    "test": entry.test, "budget": budget.describe(), "build": build,
                    "fit": run.fit_seconds, "predict": run.predict_seconds, "call": call,
                    "accuracy": run.accuracy, "stopped": run.stopped_by_budget,
                    "reference": reference_training(config, entry, budget, dataset)})
    if run_suite:
        start = time.perf_counter()
        graded = grade_path(config, workspace_file(config), device="cpu",
                            dataset_name=dataset.name)
        row["suite"] = time.perf_counter() - start
        row["score"] = f"{graded.grade.score:g}/{config.total_points:g}"
        row["parts"] = [(part.name, sum(t.duration_s for t in part.tests))
                        for part in graded.grade.parts]
    return row


def workspace_file(config) -> Path:
    """The reference file, graded as a submission (a single .py)."""
    folder = Path(tempfile.mkdtemp(prefix="nn-grader-bench-sub-"))
    for file in config.files:
        shutil.copyfile(file.reference, folder / file.student)
    return folder


def render(rows: list[dict], dataset: str, seconds: float) -> str:
    lines = ["# Grading one Keras submission on the CPU", "",
             f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC by "
             f"`bench/keras_grading.py` on {platform.node()} ({os.cpu_count()} CPUs, "
             f"Python {platform.python_version()}), dataset {dataset}, device cpu; "
             f"the reference solution graded as a submission. Total bench time "
             f"{seconds:.0f} s.", "",
             "| assignment | accuracy test | budget | import | evaluator start | build + read "
             "| training | prediction | reference's own run | accuracy |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for row in rows:
        for acc in row["accuracy"]:
            lines.append(
                f"| {row['assignment']} | {acc['test']} | {acc['budget']} | "
                f"{row['import']:.1f} s | {row['evaluator']:.1f} s | {acc['build']:.1f} s | "
                f"{acc['fit']:.1f} s"
                f"{' (budget hit)' if acc['stopped'] else ''} | {acc['predict']:.1f} s | "
                f"{acc['reference']:.1f} s | {acc['accuracy']:.4f} |")
    if any("suite" in row for row in rows):
        lines += ["", "| assignment | whole hidden suite | score | checks (suite − import − "
                  "evaluator start − training − prediction) | per part |",
                  "| --- | ---: | --- | ---: | --- |"]
        for row in rows:
            if "suite" not in row:
                continue
            trained = sum(a["fit"] + a["predict"] for a in row["accuracy"])
            parts = ", ".join(f"{name} {sec:.1f} s" for name, sec in row["parts"])
            lines.append(f"| {row['assignment']} | {row['suite']:.1f} s | {row['score']} | "
                         f"{row['suite'] - row['import'] - row['evaluator'] - trained:.1f} s | "
                         f"{parts} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignments", nargs="+", default=list(ASSIGNMENTS))
    parser.add_argument("--dataset", default=None)
    parser.add_argument("--skip-suite", action="store_true",
                        help="measure the stages only, not the whole hidden suite")
    parser.add_argument("--out", type=Path, default=RESULTS / "keras-grading.md")
    args = parser.parse_args(argv)
    os.environ.setdefault("GRADER_DEVICE", "cpu")
    dataset = data.load(args.dataset)
    start = time.perf_counter()
    rows = []
    for name in args.assignments:
        print(f"{name} ...", flush=True)
        rows.append(bench_assignment(name, dataset, run_suite=not args.skip_suite))
    text = render(rows, dataset.name, time.perf_counter() - start)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

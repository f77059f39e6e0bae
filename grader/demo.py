"""`grader demo`: every reference solution trained briefly on the dataset, as a table."""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass

from grader import data

# The lecture's artifacts in teaching order; each reference module has `run_lecture`.
ARTIFACTS = ("tf_basics", "mlp_numpy", "keras_mlp", "keras_cnn", "alexnet")


@dataclass(frozen=True)
class RunRow:
    artifact: str
    dataset: str
    epochs: int
    accuracy: float | None
    seconds: float


def run_reference(artifact: str, dataset: data.Dataset, *, quick: bool) -> RunRow:
    """Runs one reference module's lecture run and times it."""
    module = importlib.import_module(f"reference.{artifact}")
    start = time.perf_counter()
    epochs, accuracy = module.run_lecture(dataset, quick=quick)
    return RunRow(artifact, dataset.name, epochs, accuracy, time.perf_counter() - start)


def format_table(rows: list[RunRow]) -> str:
    lines = [f"{'artifact':<10} {'dataset':<14} {'epochs':>6} {'accuracy':>9} {'seconds':>8}"]
    for row in rows:
        accuracy = "-" if row.accuracy is None else f"{row.accuracy:.4f}"
        lines.append(f"{row.artifact:<10} {row.dataset:<14} {row.epochs:>6} "
                     f"{accuracy:>9} {row.seconds:>8.1f}")
    return "\n".join(lines)


def main(*, dataset: str | None = None, quick: bool = True) -> int:
    loaded = data.load(dataset)
    print(f"Running every reference solution on {loaded.name} "
          f"({'quick runs' if quick else 'the lecture settings'})...", flush=True)
    rows = []
    for artifact in ARTIFACTS:
        rows.append(run_reference(artifact, loaded, quick=quick))
        print(format_table(rows[-1:]).splitlines()[1], flush=True)
    print()
    print(format_table(rows))
    return 0

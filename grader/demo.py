"""`grader demo`: an instructor's day, end to end, on the available dataset.

For each graded assignment: release it (the self-check grades the reference and the
bare skeleton), build a sample class (the reference, the bare skeleton, the planted-bug
and correct-variant samples of ``assignments/<id>/samples/``), grade the class with
the hidden suite, and print the score table. ``--references`` instead trains every
reference solution briefly and prints artifact, dataset, epochs, accuracy, seconds.
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass
from pathlib import Path

from grader import data
from grader.autograde import score_table
from grader.config import AssignmentConfig, load_assignment
from grader.grading.run import GradedSubmission, grade_path, write_results
from grader.release.build import release
from grader.samples import sample_class

# The lecture's artifacts in teaching order; each reference module has `run_lecture`.
ARTIFACTS = ("tf_basics", "mlp_numpy", "keras_mlp", "keras_cnn", "alexnet")
# The assignments with hidden suites, graded by the demo.
GRADED = ("tf_basics", "mlp_numpy")


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


def references_main(*, dataset: str | None, quick: bool) -> int:
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


def grade_class(config: AssignmentConfig, folder: Path, out: Path) -> list[GradedSubmission]:
    graded = []
    for student in sorted(folder.iterdir()):
        result = grade_path(config, student)
        write_results(result, out)
        graded.append(result)
        print(f"  graded {student.name}: {result.grade.score:g}/{result.grade.max_score:g} "
              f"({result.grade.execution_time_s:.1f} s)", flush=True)
    return graded


def main(*, dataset: str | None = None, quick: bool = True, references: bool = False,
         out: Path = Path("demo-out")) -> int:
    if references:
        return references_main(dataset=dataset, quick=quick)
    loaded = data.load(dataset)  # fail early, with the data's own message
    print(f"nn-grader demo on {loaded.name}: release, a sample class, autograde.\n", flush=True)
    tables = []
    for assignment in GRADED:
        config = load_assignment(assignment)
        start = time.perf_counter()
        print(f"[{config.id}] releasing (grading the reference and the bare skeleton)...",
              flush=True)
        report = release(config, out / "release",
                         grade=lambda cfg, folder: grade_path(cfg, folder,
                                                              dataset_name=loaded.name).grade)
        print(f"[{config.id}] released to {report.folder}: reference "
              f"{report.reference_grade.score:g}/{report.reference_grade.max_score:g}, "
              f"bare skeleton {report.skeleton_grade.score:g}", flush=True)
        klass = sample_class(config, out / "class" / config.id, skeleton_folder=report.folder)
        print(f"[{config.id}] grading {len(list(klass.iterdir()))} sample submissions "
              f"from {klass}...", flush=True)
        graded = grade_class(config, klass, out / "graded" / config.id)
        tables.append((config, graded, time.perf_counter() - start))
    for config, graded, seconds in tables:
        print(f"\n{config.id} — {config.title} ({seconds:.0f} s in all)\n")
        print(score_table(graded))
    print(f"\nStudent folders: {out / 'release'}/<id>   results.json: {out / 'graded'}/<id>/"
          "<student>/")
    return 0

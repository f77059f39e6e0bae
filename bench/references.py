"""Runs each reference solution at the lecture's settings and records accuracy and speed.

Usage:
    python bench/references.py [--dataset fashion_mnist] [--only keras_cnn ...]

Writes ``bench/results/reference-<dataset>.md``: test accuracy and seconds per
epoch of every reference, next to the lecture's own MNIST figures and, for
Fashion-MNIST, the closest rows of the benchmark table that ships in Debian's
``dataset-fashion-mnist`` README (read from the installed package).
"""

from __future__ import annotations

import argparse
import gzip
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

from grader import data
from grader.demo import ARTIFACTS, run_reference

RESULTS = Path(__file__).parent / "results"
FASHION_README = Path("/usr/share/doc/dataset-fashion-mnist/README.md.gz")

# The lecture's printed test accuracies (MNIST).
LECTURE_MNIST = {"mlp_numpy": 0.916, "keras_mlp": 0.8705, "keras_cnn": 0.9898, "alexnet": 0.9875}
# Models trained per run: mlp_numpy's latent_dims search trains one model per size.
MODELS_PER_RUN = {"mlp_numpy": 3}
# Rows of the Fashion-MNIST README's benchmark table closest to each artifact.
FASHION_ROWS = {
    "mlp_numpy": ("MLP 256-128-100",),
    "keras_mlp": ("MLP 256-128-100",),
    "keras_cnn": ("2 Conv+pooling", "2 Conv <100K parameters"),
    "alexnet": ("AlexNet with Triplet loss", "VGG16 26M parameters"),
}


def published_fashion_rows() -> dict[str, list[float]]:
    """Classifier name -> the Fashion test accuracies listed for it in the Debian README."""
    if not FASHION_README.is_file():
        return {}
    rows: dict[str, list[float]] = {}
    for line in gzip.open(FASHION_README, "rt", encoding="utf-8"):
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 3:
            try:
                rows.setdefault(cells[0], []).append(float(cells[2]))
            except ValueError:
                continue
    return rows


def compare_with(artifact: str, dataset: str, published: dict[str, list[float]]) -> str:
    if dataset == data.MNIST:
        figure = LECTURE_MNIST.get(artifact)
        return f"lecture: {figure:.4f}" if figure else "-"
    found = [f"{name}: {', '.join(f'{a:.3f}' for a in published[name])}"
             for name in FASHION_ROWS.get(artifact, ()) if name in published]
    return "; ".join(found) or "-"


def previous_rows(path: Path) -> dict[str, str]:
    """Artifact -> its table row from an earlier run, so `--only` updates rows in place."""
    if not path.is_file():
        return {}
    rows = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        cells = line.strip("|").split("|")
        if line.startswith("| ") and cells[0].strip() in ARTIFACTS:
            rows[cells[0].strip()] = line
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=data.NAMES)
    parser.add_argument("--only", nargs="*", choices=ARTIFACTS, default=list(ARTIFACTS))
    args = parser.parse_args()

    dataset = data.load(args.dataset)
    published = published_fashion_rows()
    lines = [
        f"# Reference solutions at the lecture's settings: {dataset.name}",
        "",
        f"Measured {datetime.now(timezone.utc):%Y-%m-%d} on {platform.node() or 'this machine'} "
        f"({platform.processor() or platform.machine()}, CPU only) with "
        f"`python bench/references.py --dataset {dataset.name}`.",
        "",
        "| artifact | epochs | test accuracy | seconds | s/epoch | published |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"reference-{dataset.name}.md"
    rows = previous_rows(out)
    for artifact in args.only:
        print(f"running {artifact} ...", flush=True)
        start = time.perf_counter()
        row = run_reference(artifact, dataset, quick=False)
        seconds = time.perf_counter() - start
        accuracy = "-" if row.accuracy is None else f"{row.accuracy:.4f}"
        models = MODELS_PER_RUN.get(artifact, 1)
        per_epoch = seconds / (row.epochs * models) if row.epochs else 0.0
        epochs = f"{row.epochs} x {models} models" if models > 1 else str(row.epochs)
        rows[artifact] = (f"| {artifact} | {epochs} | {accuracy} | {seconds:.1f} | "
                          f"{per_epoch:.2f} | {compare_with(artifact, dataset.name, published)} |")
        print(rows[artifact], flush=True)
    lines += [rows[artifact] for artifact in ARTIFACTS if artifact in rows]
    lines += ["", "The s/epoch column is per model-epoch, evaluation included. Rows not run "
              "this time are kept from the previous run (see git log)."]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

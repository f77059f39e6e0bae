"""Calibrates `mlp_numpy`'s accuracy threshold by the hidden suite's own protocol.

For each seed the reference's `train` runs under the budget of ``[budgets]`` (seed =
the training seed), its weights go through the grader's forward pass
(`grader.checks.mlp_weights`), and the accuracy is measured on a private split of the
test images keyed by the seed, as `test_train_reaches_threshold` does for a submission.
Prints every seed's accuracy, the mean, sigma and threshold = mean - max(3 sigma, 0.005),
to be copied into ``[thresholds]`` of assignment.toml.

Run from the repository root: ``python assignments/mlp_numpy/calibrate.py --seeds 16``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # the `reference` package lives at the repository's top level

from grader import data  # noqa: E402
from grader.checks.mlp_weights import predict, trained_weights  # noqa: E402
from grader.checks.splits import private_split  # noqa: E402
from grader.config import load_assignment  # noqa: E402
from reference import mlp_numpy as ref  # noqa: E402

MIN_MARGIN = 0.005  # half a point: the threshold sits at least this far below the mean


def calibrate(dataset: data.Dataset, seeds: int) -> list[float]:
    """Accuracies of the reference under the hidden suite's budget, one per seed."""
    config = load_assignment(REPO / "assignments" / "mlp_numpy" / "assignment.toml")
    budgets = config.budgets
    n, nv = int(budgets["train_images"]), int(budgets["validation_images"])
    x, y = ref.preprocess(dataset.x_train[:n], dataset.y_train[:n])
    xv, yv = ref.preprocess(dataset.x_validation[:nv], dataset.y_validation[:nv])
    latent = int(config.parameters["latent_dims"][0])  # as test_train_reaches_threshold
    accuracies = []
    for seed in range(seeds):
        model = ref.train(x, y, xv, yv, latent_dims=(latent,), epochs=int(budgets["train_epochs"]),
                          batch_size=int(budgets["batch_size"]),
                          learning_rate=budgets["learning_rate"], seed=seed, verbose=False)
        weights = trained_weights(model.W1, model.W2, hidden=latent, what="the reference")
        split = private_split(dataset.x_test, dataset.y_test, int(budgets["test_images"]),
                              key=f"calibration-{seed}:test_train_reaches_threshold")
        accuracies.append(float(np.mean(predict(weights, split.images) == split.labels)))
    return accuracies


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=data.NAMES, default=data.FASHION_MNIST)
    parser.add_argument("--seeds", type=int, default=16)
    args = parser.parse_args(argv)
    accuracies = calibrate(data.load(args.dataset), args.seeds)
    mean, sigma = float(np.mean(accuracies)), float(np.std(accuracies))
    print(f"{args.dataset}: " + ", ".join(f"{a:.4f}" for a in accuracies))
    print(f"mean {mean:.4f}, sigma {sigma:.4f}, threshold {mean - max(3 * sigma, MIN_MARGIN):.4f}")


if __name__ == "__main__":
    main()

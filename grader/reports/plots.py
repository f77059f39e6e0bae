"""Pictures for reports, drawn with matplotlib's Agg backend into PNG bytes.

Every function takes plain data (a figure a hidden test attached, a list of scores)
and returns PNG bytes; `data_uri` turns them into an ``<img src>`` a report embeds, so
a report opens with no network and no files beside it. Figures are built with
`matplotlib.figure.Figure`, not pyplot: no global state, no GUI backend.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before anything else of matplotlib's is imported; no display

from matplotlib.figure import Figure  # noqa: E402

DPI = 100
SMOOTH_WINDOW = 10  # mini-batches averaged for the smoothed learning curve
ACCENT = "#1f6feb"
MUTED = "#8c959f"
THRESHOLD_COLOUR = "#cf222e"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Class names shown under a confusion matrix whose labels are the digits 0..9.
CLASS_NAMES = {
    "fashion_mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                      "Shirt", "Sneaker", "Bag", "Ankle boot"),
}


def plural(noun: str) -> str:
    """``mini-batch`` -> ``mini-batches``, ``epoch`` -> ``epochs``."""
    if noun.endswith("s"):
        return noun
    return noun + ("es" if noun.endswith(("ch", "sh", "x")) else "s")


def data_uri(png: bytes) -> str:
    """A ``data:image/png;base64,...`` URI for an ``<img src>``."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    # No software/date metadata: the same data draws the same bytes.
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _numbers(values: Sequence[Any] | None) -> list[float]:
    """Floats, with None and anything unreadable as NaN (a gap in the line)."""
    out = []
    for value in values or ():
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        out.append(number if math.isfinite(number) else math.nan)
    return out


def _moving_average(values: list[float], window: int) -> list[float]:
    smoothed = []
    for i in range(len(values)):
        chunk = [v for v in values[max(0, i - window + 1): i + 1] if not math.isnan(v)]
        smoothed.append(sum(chunk) / len(chunk) if chunk else math.nan)
    return smoothed


def learning_curve_png(curve: Mapping[str, Any], *, threshold: float | None = None) -> bytes:
    """Loss and accuracy of a training run, side by side.

    Args:
        curve: a ``learning_curve`` figure: ``loss`` and ``accuracy`` (one value per step,
            None for a non-finite value), optional ``x`` (what a step is, default
            "epoch"), ``epochs`` (draws epoch boundaries when the steps are mini-batches)
            and ``val_accuracy`` / ``val_loss`` (per epoch).
        threshold: an accuracy the run had to reach, drawn as a dashed line.

    Returns:
        PNG bytes, 760 x 270 pixels.
    """
    step = str(curve.get("x") or "epoch")
    series = [("loss", _numbers(curve.get("loss")), _numbers(curve.get("val_loss"))),
              ("accuracy", _numbers(curve.get("accuracy")), _numbers(curve.get("val_accuracy")))]
    fig = Figure(figsize=(7.6, 2.7))
    axes = fig.subplots(1, 2)
    epochs = int(curve.get("epochs") or 0)
    for ax, (name, values, validation) in zip(axes, series, strict=True):
        steps = list(range(1, len(values) + 1))
        if values:
            if step != "epoch" and len(values) > 2 * SMOOTH_WINDOW:
                ax.plot(steps, values, color=MUTED, linewidth=0.7, alpha=0.6,
                        label=f"each {step}")
                ax.plot(steps, _moving_average(values, SMOOTH_WINDOW), color=ACCENT,
                        linewidth=1.6, label=f"mean of {SMOOTH_WINDOW}")
            else:
                ax.plot(steps, values, color=ACCENT, marker="o" if len(values) < 30 else None,
                        linewidth=1.6, label="training")
            if step != "epoch" and epochs > 1:
                per_epoch = len(values) / epochs
                for k in range(1, epochs):
                    ax.axvline(k * per_epoch + 0.5, color=MUTED, linestyle=":", linewidth=1)
        if validation and step == "epoch":
            ax.plot(range(1, len(validation) + 1), validation, color="#9a6700", marker="s",
                    linewidth=1.4, label="validation")
        if name == "accuracy" and threshold is not None:
            ax.axhline(threshold, color=THRESHOLD_COLOUR, linestyle="--", linewidth=1,
                       label=f"threshold {threshold:.3g}")
        if name == "accuracy":
            ax.set_ylim(0, 1)
        elif values and any(not math.isnan(v) and v > 0 for v in values):
            finite = [v for v in values if not math.isnan(v)]
            if finite and max(finite) / max(min(finite), 1e-12) > 100:
                ax.set_yscale("log")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel(plural(step), fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        if not values:
            ax.text(0.5, 0.5, "no values recorded", ha="center", va="center",
                    transform=ax.transAxes, color=MUTED)
        else:
            ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return _png(fig)


def confusion_matrix_png(matrix: Sequence[Sequence[float]], labels: Sequence[Any] | None = None,
                         *, dataset: str = "") -> bytes:
    """A confusion matrix: rows are the true classes, columns the predicted ones.

    Cells are coloured by the share of their row (so a rare class shows as clearly as a
    common one) and labelled with their count.

    Args:
        matrix: counts, shape (C, C).
        labels: the classes' names, C of them; default 0..C-1.
        dataset: a dataset name; for ``fashion_mnist`` the digits are replaced by the
            classes' names.

    Returns:
        PNG bytes, about 520 x 470 pixels.
    """
    rows = [[float(v) for v in row] for row in matrix]
    size = len(rows)
    names = [str(label) for label in (labels or range(size))]
    known = CLASS_NAMES.get(dataset)
    if known and len(known) == size and names == [str(i) for i in range(size)]:
        names = [f"{i} {name}" for i, name in enumerate(known)]
    shares = []
    for row in rows:
        total = sum(row)
        shares.append([v / total if total else 0.0 for v in row])
    fig = Figure(figsize=(5.2, 4.7))
    ax = fig.subplots()
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    for i, row in enumerate(rows):
        for j, count in enumerate(row):
            if not count:
                continue  # an empty cell stays blank: the mistakes stand out
            ax.text(j, i, f"{count:g}", ha="center", va="center", fontsize=6.5,
                    color="white" if shares[i][j] > 0.55 else "#24292f")
    ax.set_xticks(range(size))
    ax.set_yticks(range(size))
    ax.set_xticklabels([n.split(" ")[0] for n in names], fontsize=8)
    ax.set_yticklabels(names, fontsize=8)
    ax.set_xlabel("predicted class", fontsize=9)
    ax.set_ylabel("true class", fontsize=9)
    colourbar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    colourbar.set_label("share of the true class", fontsize=8)
    colourbar.ax.tick_params(labelsize=7)
    fig.tight_layout()
    return _png(fig)


def score_histogram_png(scores: Sequence[float], max_score: float, *,
                        missing: int = 0) -> bytes:
    """The distribution of final scores.

    Args:
        scores: one final score per student who submitted.
        max_score: the assignment's total points.
        missing: students who did not submit, shown as a note.

    Returns:
        PNG bytes, 700 x 260 pixels.
    """
    fig = Figure(figsize=(7.0, 2.6))
    ax = fig.subplots()
    top = max_score if max_score > 0 else max([*scores, 1.0])
    bins = [top * i / 10 for i in range(11)]
    values = [min(max(float(s), 0.0), top) for s in scores]
    if values:
        ax.hist(values, bins=bins, color=ACCENT, edgecolor="white")
    ax.set_xlim(0, top)
    ax.set_xlabel(f"final score (of {top:g})", fontsize=9)
    ax.set_ylabel("students", fontsize=9)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.tick_params(labelsize=8)
    ax.grid(axis="y", alpha=0.3)
    note = f"{len(values)} submitted" + (f", {missing} did not submit" if missing else "")
    ax.set_title(note, fontsize=9, loc="left", color="#57606a")
    fig.tight_layout()
    return _png(fig)


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) read from a PNG's IHDR chunk.

    Raises:
        ValueError: if `png` is not a PNG.
    """
    if not png.startswith(PNG_SIGNATURE) or png[12:16] != b"IHDR":
        raise ValueError("not a PNG: the signature or the IHDR chunk is missing")
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")

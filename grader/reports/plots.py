"""Pictures for reports, drawn with matplotlib's Agg backend into PNG bytes.

Every function takes plain data (a figure a hidden test attached, a list of scores)
and returns PNG bytes; `data_uri` turns them into an ``<img src>`` a report embeds, so
a report opens with no network and no files beside it. Figures are built with
`matplotlib.figure.Figure`, not pyplot: no global state, no GUI backend.

Figure data comes from what a student's code returned, so every number is checked before
matplotlib sees it: NaN, ±inf and absurd values (beyond `ABSURD`) are dropped (a gap in
a curve, an empty cell), counts such as ``epochs`` are bounded by the data, a threshold
outside [0, 1] is not drawn, and a malformed confusion matrix raises `FigureError`
(one sentence, for the report) instead of reaching matplotlib.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before anything else of matplotlib's is imported; no display

import matplotlib.patches  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

DPI = 100
SMOOTH_WINDOW = 10  # mini-batches averaged for the smoothed learning curve
ACCENT = "#1f6feb"
MUTED = "#8c959f"
THRESHOLD_COLOUR = "#cf222e"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ABSURD = 1e12  # beyond any loss, count or score a run produces; such values are dropped
MAX_POINTS = 20_000  # points drawn per curve; longer curves are thinned evenly
MAX_CLASSES = 100  # the largest confusion matrix drawn


class FigureError(ValueError):
    """Figure data that cannot be drawn; the message says what was expected and found."""

# Class names shown under a confusion matrix whose labels are the digits 0..9.
CLASS_NAMES = {
    "fashion_mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                      "Shirt", "Sneaker", "Bag", "Ankle boot"),
}


# The x axis of a learning curve: the same picture in every language (a figure is data).
_AXIS_LABELS = {"epoch": "epochs", "mini-batch": "mini-batches"}


def axis_label(step: str) -> str:
    """A curve's x-axis label: ``epochs``, ``mini-batches``, else the step as recorded."""
    return _AXIS_LABELS.get(step, step)


def data_uri(png: bytes) -> str:
    """A ``data:image/png;base64,...`` URI for an ``<img src>``."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    # No software/date metadata: the same data draws the same bytes.
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def finite(value: Any, *, low: float = -ABSURD, high: float = ABSURD) -> float | None:
    """`value` as a float when it is a finite number within [low, high], else None."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) and low <= number <= high else None


def numbers(values: Any) -> list[float]:
    """Floats for a curve: None, non-finite, absurd or unreadable values become NaN (a gap).

    Anything but a list or tuple is no curve at all; a curve longer than `MAX_POINTS` is
    thinned evenly.
    """
    if not isinstance(values, (list, tuple)):
        return []
    stride = max(1, math.ceil(len(values) / MAX_POINTS))
    out = []
    for value in values[::stride]:
        number = finite(value)
        out.append(math.nan if number is None else number)
    return out


def _count(value: Any, *, most: int) -> int:
    """A whole count in [0, most]; anything else (NaN, 1e308, text) is 0."""
    number = finite(value, low=0, high=most)
    return int(number) if number is not None else 0


def clean_matrix(matrix: Any) -> list[list[float]]:
    """A confusion matrix as square rows of counts; absurd or non-finite cells become 0.

    Raises:
        FigureError: not a square list of lists of at most `MAX_CLASSES` rows.
    """
    if not isinstance(matrix, (list, tuple)) or not matrix:
        raise FigureError(f"a confusion matrix must be a list of rows; received "
                          f"{type(matrix).__name__}")
    size = len(matrix)
    if size > MAX_CLASSES:
        raise FigureError(f"a confusion matrix has at most {MAX_CLASSES} classes; "
                          f"received {size} rows")
    if any(not isinstance(row, (list, tuple)) or len(row) != size for row in matrix):
        raise FigureError(f"a confusion matrix must be square: {size} rows of {size} "
                          "counts each")
    return [[finite(v, low=0.0) or 0.0 for v in row] for row in matrix]


def clean_difference(rows: Any) -> list[list[float | None]]:
    """A difference matrix (a ``gradient_difference`` figure's rows) as rectangular rows.

    Non-finite or absurd cells become None (drawn hatched, not as a colour).

    Raises:
        FigureError: not a non-empty rectangular list of lists of at most `MAX_CLASSES`
            rows and columns.
    """
    if not isinstance(rows, (list, tuple)) or not rows or len(rows) > MAX_CLASSES:
        raise FigureError(f"a difference matrix must be a list of 1 to {MAX_CLASSES} rows; "
                          f"received {type(rows).__name__}")
    width = len(rows[0]) if isinstance(rows[0], (list, tuple)) else 0
    if not 1 <= width <= MAX_CLASSES or any(
            not isinstance(row, (list, tuple)) or len(row) != width for row in rows):
        raise FigureError(f"a difference matrix must be rectangular: {len(rows)} rows of "
                          f"1 to {MAX_CLASSES} entries each")
    return [[finite(v) for v in row] for row in rows]


def difference_heatmap_png(rows: Sequence[Sequence[float | None]], *, title: str = "") -> bytes:
    """A small heat map of a gradient difference (yours - numerical), zero in white.

    Args:
        rows: the differences, shape (R, C), None where a value is not finite
            (see `clean_difference`).
        title: what was checked, e.g. "`Softmax.backward`".

    Returns:
        PNG bytes, about 360 x 300 pixels.
    """
    cells = np.array([[math.nan if v is None else v for v in row] for row in rows], dtype=float)
    finite_cells = cells[np.isfinite(cells)]
    scale = float(np.max(np.abs(finite_cells))) if finite_cells.size else 0.0
    scale = scale or 1.0  # all zeros (or none finite): any symmetric range shows white
    fig = Figure(figsize=(3.6, 3.0))
    ax = fig.subplots()
    colours = matplotlib.colormaps["RdBu_r"].with_extremes(bad="#eaeef2")
    image = ax.imshow(np.ma.masked_invalid(cells), cmap=colours, vmin=-scale, vmax=scale)
    for i, j in zip(*np.nonzero(~np.isfinite(cells)), strict=True):
        ax.add_patch(matplotlib.patches.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False,
                                                  hatch="xx", edgecolor=MUTED, linewidth=0))
    ax.set_xticks(range(cells.shape[1]))
    ax.set_yticks(range(cells.shape[0]))
    ax.tick_params(labelsize=7)
    ax.set_xlabel("column", fontsize=8)
    ax.set_ylabel("row", fontsize=8)
    if title:
        ax.set_title(title.replace("`", "")[:60], fontsize=8)
    colourbar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    colourbar.set_label("yours − numerical", fontsize=7)
    colourbar.ax.tick_params(labelsize=6)
    fig.tight_layout()
    return _png(fig)


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
    series = [("loss", numbers(curve.get("loss")), numbers(curve.get("val_loss"))),
              ("accuracy", numbers(curve.get("accuracy")), numbers(curve.get("val_accuracy")))]
    fig = Figure(figsize=(7.6, 2.7))
    axes = fig.subplots(1, 2)
    longest = max(len(series[0][1]), len(series[1][1]))
    epochs = _count(curve.get("epochs"), most=longest)  # a boundary needs a step before it
    threshold = finite(threshold, low=0.0, high=1.0)
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
            drawn = [v for v in values if not math.isnan(v)]
            if min(drawn) > 0 and max(drawn) / max(min(drawn), 1e-12) > 100:
                ax.set_yscale("log")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel(axis_label(step), fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        if not values or all(math.isnan(v) for v in values):
            ax.text(0.5, 0.5, "no finite values recorded" if values else "no values recorded",
                    ha="center", va="center", transform=ax.transAxes, color=MUTED)
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

    Raises:
        FigureError: `matrix` is not square (see `clean_matrix`).
    """
    rows = clean_matrix(matrix)
    size = len(rows)
    if not isinstance(labels, (list, tuple)) or len(labels) != size:
        labels = None  # the wrong number of names would label the wrong rows
    names = [str(label)[:40] for label in (labels or range(size))]
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
    values = [v for v in (finite(s) for s in scores) if v is not None]
    top = finite(max_score, low=1e-9) or max([*values, 1.0])
    bins = [top * i / 10 for i in range(11)]
    values = [min(max(v, 0.0), top) for v in values]
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

"""A test case's figure data -> what a report shows: gradient rows, heat maps, curves, accuracy.

Hidden tests attach plain data with the ``figure`` fixture (`grader.results.plugin`); a name
attached more than once in one case (a layer's grad_X and grad_W checks) arrives as a list
of its values, in order. Every number here came from a student's code or from a stored
grade, so it is read with `plots.finite` and drawn by `plots`, which checks it again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from grader.reports import plots

GRADIENT_ERRORS = ("gradient_error", "gradient_errors")
GRADIENT_DIFFERENCE = "gradient_difference"
TEXT_CHARS = 300  # a figure's text (a check's name, what was trained) is a label, not a log
MIN_CURVE_POINTS = 2  # one point is no curve: it is said in words instead


@dataclass(frozen=True)
class GradientRow:
    """One gradient comparison: your backward (analytic) against the numerical gradient."""

    case: str
    check: str
    error: str  # the relative error, or "n/a" (a degenerate check has none)
    tolerance: str
    ok: bool | None


@dataclass(frozen=True)
class HeatMap:
    """The difference analytic - numerical of one failed gradient check, as a picture."""

    case: str
    check: str
    image: str  # data URI
    caption: str


@dataclass(frozen=True)
class Curve:
    """A training run's learning curve: a picture, or a sentence when there is nothing to draw."""

    image: str | None  # data URI, or None
    caption: str  # what the curve is, in the assignment's own terms
    note: str  # how many points, and why training stopped early


def values(figure: Any) -> list[Any]:
    """A figure attached once (its value) or several times (a list of values) as a list."""
    if isinstance(figure, (list, tuple)):
        return list(figure)
    return [figure]


def label(value: Any) -> str:
    """Figure text (a check's name) as a short one-line label."""
    text = " ".join(str(value).split())
    return text if len(text) <= TEXT_CHARS else text[:TEXT_CHARS] + "…"


def sci(value: Any) -> str:
    """A relative error or tolerance as ``1.23e-09``; "n/a" for none or a non-number."""
    number = plots.finite(value, low=0.0, high=float("inf"))
    return "n/a" if number is None else f"{number:.2e}"


def gradient_rows(case: str, figure: Any) -> list[GradientRow]:
    """Rows of the gradient table from a ``gradient_error(s)`` figure, every check kept.

    Accepts one ``{"check", "relative_error", "tolerance"}`` entry, a list of them (one per
    check of the case: grad_X, then grad_W), or ``{check: entry}``.
    """
    entries: list[Mapping[str, Any]] = []
    for value in values(figure):
        if isinstance(value, Mapping) and "relative_error" in value:
            entries.append(value)
        elif isinstance(value, Mapping):
            entries.extend({"check": key, **entry} for key, entry in value.items()
                           if isinstance(entry, Mapping))
    rows = []
    for entry in entries:
        error = plots.finite(entry.get("relative_error"), low=0.0, high=float("inf"))
        tolerance = plots.finite(entry.get("tolerance"), low=0.0, high=float("inf"))
        ok = None if error is None or tolerance is None else error < tolerance
        rows.append(GradientRow(case, label(entry.get("check", "")), sci(error),
                                sci(tolerance), ok))
    return rows


def heat_maps(case: str, figure: Any) -> list[HeatMap]:
    """A heat map per ``gradient_difference`` figure (received - expected, at most 8 x 8)."""
    maps = []
    for value in values(figure):
        if not isinstance(value, Mapping):
            continue
        rows = plots.clean_difference(value.get("rows"))
        check = label(value.get("check", ""))
        shape = _shape(value.get("shape"))
        shown = f"{len(rows)} x {len(rows[0])}"
        whole = "x".join(map(str, shape)) if shape else shown
        missing = sum(cell is None for row in rows for cell in row)
        caption = (f"Where {check or 'the gradient'} differs: your backward minus the "
                   f"numerical gradient of your own forward, entry by entry (red: yours is "
                   f"larger, blue: smaller, white: they agree)")
        if value.get("truncated") is True:
            caption += f"; the first {shown} entries of {whole}"
        if missing:
            caption += (f"; {missing} entr{'y is' if missing == 1 else 'ies are'} NaN or "
                        "infinite (hatched grey)")
        png = plots.difference_heatmap_png(rows, title=check)
        maps.append(HeatMap(case, check, plots.data_uri(png), caption + "."))
    return maps


def _shape(value: Any) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)) or not 1 <= len(value) <= 4:
        return ()
    sizes = [plots.finite(v, low=0, high=plots.ABSURD) for v in value]
    return tuple(int(v) for v in sizes) if all(v is not None for v in sizes) else ()


def accuracy_sentence(figure: Any, *, confusion: Any = None) -> str:
    """The accuracy line in words, or "" when the figure holds no finite accuracy in [0, 1].

    ``"Your model reached 0.812 on 2,000 private test images (fashion_mnist); full marks
    from 0.754, partial credit above 0.7. Trained: `train` ... 3 epochs on 5,000 images."``
    The number of images comes from the figure, else from the confusion matrix's total.
    """
    if not isinstance(figure, Mapping):
        return ""
    accuracy = plots.finite(figure.get("accuracy"), low=0.0, high=1.0)
    if accuracy is None:
        return ""
    images = plots.finite(figure.get("images"), low=1, high=plots.ABSURD)
    if images is None and isinstance(confusion, Mapping):
        try:
            images = sum(map(sum, plots.clean_matrix(confusion.get("matrix")))) or None
        except plots.FigureError:
            images = None
    sentence = f"Your model reached test accuracy {accuracy:.4g}"
    if images is not None:
        sentence += f" on {images:,.0f} private test image{'' if images == 1 else 's'}"
    if figure.get("dataset"):
        sentence += f" ({label(figure['dataset'])[:40]})"
    threshold = plots.finite(figure.get("threshold"), low=0.0, high=1.0)
    floor = plots.finite(figure.get("floor"), low=0.0, high=1.0)
    if threshold is not None:
        sentence += f"; full marks from {threshold:.4g}"
        if floor is not None and floor < threshold:
            sentence += f", partial credit above {floor:.4g}"
    sentence += "."
    if figure.get("trained"):
        sentence += f" Trained: {label(figure['trained'])}."
    return sentence


def learning_curve(curve: Any, *, threshold: float | None, keras_build: str | None) -> Curve | None:
    """The learning curve of a ``learning_curve`` figure, or None when there is none.

    Args:
        curve: ``{"loss": [...], "accuracy": [...], "x": "epoch" | "mini-batch",
            "epochs": n, "stopped": why}``.
        threshold: The accuracy threshold, drawn as a line.
        keras_build: For a Keras assignment, the student's build function whose model the
            grader trained (``build_cnn``); None for a training loop the student wrote.

    Returns:
        A picture when at least `MIN_CURVE_POINTS` finite values were recorded; otherwise
        a sentence with what was recorded (a single epoch is never drawn as a point).
    """
    if not isinstance(curve, Mapping):
        return None
    loss, accuracy = plots.numbers(curve.get("loss")), plots.numbers(curve.get("accuracy"))
    if not loss and not accuracy:
        return None
    step = label(curve.get("x") or "epoch")[:40]
    steps = max(len(loss), len(accuracy))
    if keras_build:
        caption = (f"Loss and accuracy per {step} that Keras recorded while the grader trained "
                   f"the model your `{keras_build}()` returned")
    elif step == "mini-batch":
        caption = "Learning curve of your `train_one_step` on the training budget"
    else:
        caption = "Learning curve of your training run"
    note = f"{steps} {step if steps == 1 else plots.plural(step)}"
    epochs = plots.finite(curve.get("epochs"), low=1, high=plots.ABSURD)
    if epochs is not None and step != "epoch":
        note += f" over {epochs:g} epoch{'' if epochs == 1 else 's'}"
    if curve.get("stopped"):
        note += f"; the run stopped early: {label(curve['stopped'])}"
    drawn = max(sum(v == v for v in loss), sum(v == v for v in accuracy))  # NaN != NaN
    if drawn < MIN_CURVE_POINTS:
        last = [f"training {name} {series[-1]:.4g}" for name, series in (("loss", loss),
                                                                         ("accuracy", accuracy))
                if series and series[-1] == series[-1]]
        recorded = f" ({', '.join(last)})" if last else ""
        note += (f"{recorded}: a curve needs at least {MIN_CURVE_POINTS} {plots.plural(step)}, "
                 "so none is drawn")
        return Curve(None, caption, note)
    png = plots.learning_curve_png(curve, threshold=threshold)
    return Curve(plots.data_uri(png), caption, note)

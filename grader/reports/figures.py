"""A test case's figure data -> what a report shows: gradient rows, heat maps, curves, accuracy.

Hidden tests attach plain data with the ``figure`` fixture (`grader.results.plugin`); a name
attached more than once in one case (a layer's grad_X and grad_W checks) arrives as a list
of its values, in order. Every number here came from a student's code or from a stored
grade, so it is read with `plots.finite` and drawn by `plots`, which checks it again.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from babel.lists import format_list

from grader import i18n
from grader.reports import plots

_, _n = i18n.Domain("reports").functions()

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
        if check:
            caption = _("Where {check} differs: your backward minus the numerical gradient of "
                        "your own forward, entry by entry (red: yours is larger, blue: "
                        "smaller, white: they agree)", check=check)
        else:
            caption = _("Where the gradient differs: your backward minus the numerical "
                        "gradient of your own forward, entry by entry (red: yours is larger, "
                        "blue: smaller, white: they agree)")
        if value.get("truncated") is True:
            caption = _("{caption}; the first {shown} entries of {whole}", caption=caption,
                        shown=shown, whole=whole)
        if missing:
            caption = _n("{caption}; {n} entry is NaN or infinite (hatched grey)",
                         "{caption}; {n} entries are NaN or infinite (hatched grey)", missing,
                         caption=caption)
        png = plots.difference_heatmap_png(rows, title=check)
        maps.append(HeatMap(case, check, plots.data_uri(png),
                            _("{sentence}.", sentence=caption)))
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
    facts = {"accuracy": _decimal(accuracy)}
    dataset = label(figure["dataset"])[:40] if figure.get("dataset") else ""
    if images is not None and dataset:
        sentences = [_n("Your model reached test accuracy {accuracy} on {images} private test "
                        "image ({dataset}).", "Your model reached test accuracy {accuracy} on "
                        "{images} private test images ({dataset}).", int(images),
                        images=i18n.format_number(images, decimals=0), dataset=dataset,
                        **facts)]
    elif images is not None:
        sentences = [_n("Your model reached test accuracy {accuracy} on {images} private test "
                        "image.", "Your model reached test accuracy {accuracy} on {images} "
                        "private test images.", int(images),
                        images=i18n.format_number(images, decimals=0), **facts)]
    elif dataset:
        sentences = [_("Your model reached test accuracy {accuracy} ({dataset}).",
                       dataset=dataset, **facts)]
    else:
        sentences = [_("Your model reached test accuracy {accuracy}.", **facts)]
    threshold = plots.finite(figure.get("threshold"), low=0.0, high=1.0)
    floor = plots.finite(figure.get("floor"), low=0.0, high=1.0)
    if threshold is not None and floor is not None and floor < threshold:
        sentences.append(_("Full marks from {threshold}, partial credit above {floor}.",
                           threshold=_decimal(threshold), floor=_decimal(floor)))
    elif threshold is not None:
        sentences.append(_("Full marks from {threshold}.", threshold=_decimal(threshold)))
    if figure.get("trained"):
        sentences.append(_("Trained: {what}.", what=label(figure["trained"])))
    return functools.reduce(lambda first, second: _("{first} {second}", first=first,
                                                    second=second), sentences)


def _decimal(value: float) -> str:
    """An accuracy or threshold to 4 significant digits, as the reader's language writes it."""
    return i18n.format_number(float(f"{value:.4g}"), max_decimals=6)


def _steps(step: str, count: float) -> str:
    """``3 epochs``, ``50 mini-batches``; a step the suite named otherwise as ``3 × step``."""
    n = int(count)
    if step == "epoch":
        return _n("{n} epoch", "{n} epochs", n)
    if step == "mini-batch":
        return _n("{n} mini-batch", "{n} mini-batches", n)
    return _("{n} × {step}", n=n, step=step)


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
    if keras_build and step == "epoch":
        caption = _("Loss and accuracy per epoch that Keras recorded while the grader trained "
                    "the model your `{build}()` returned", build=keras_build)
    elif keras_build:
        caption = _("Loss and accuracy per step ({step}) that Keras recorded while the grader "
                    "trained the model your `{build}()` returned", build=keras_build, step=step)
    elif step == "mini-batch":
        caption = _("Learning curve of your `train_one_step` on the training budget")
    else:
        caption = _("Learning curve of your training run")
    note = _steps(step, steps)
    epochs = plots.finite(curve.get("epochs"), low=1, high=plots.ABSURD)
    if epochs is not None and step != "epoch":
        note = _("{steps} over {epochs}", steps=note, epochs=_steps("epoch", epochs))
    if curve.get("stopped"):
        note = _("{note}; the run stopped early: {why}", note=note,
                 why=label(curve["stopped"]))
    drawn = max(sum(v == v for v in loss), sum(v == v for v in accuracy))  # NaN != NaN
    if drawn < MIN_CURVE_POINTS:
        last = ([_("training loss {value}", value=_decimal(loss[-1]))]
                if loss and loss[-1] == loss[-1] else [])
        last += ([_("training accuracy {value}", value=_decimal(accuracy[-1]))]
                 if accuracy and accuracy[-1] == accuracy[-1] else [])
        needed = _steps(step, MIN_CURVE_POINTS)
        if last:
            note = _("{note} ({recorded}): a curve needs at least {needed}, so none is drawn",
                     note=note, needed=needed,
                     recorded=format_list(last, locale=i18n.babel_locale()))
        else:
            note = _("{note}: a curve needs at least {needed}, so none is drawn", note=note,
                     needed=needed)
        return Curve(None, caption, note)
    png = plots.learning_curve_png(curve, threshold=threshold)
    return Curve(plots.data_uri(png), caption, note)

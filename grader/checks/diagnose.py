"""Diagnoses: naming the known mistake a wrong answer matches, not just detecting it.

A check that finds a wrong answer computes, grader-side and from the same inputs, what the
answer would be under each known mistake of the chapter (a diagonal-only softmax Jacobian,
a missing 1/N, a transposed gradient, ...). When one matches, it raises `Diagnosed`: an
`AssertionError` whose message says what was checked, expected and received, followed by
the diagnosis sentence, and which carries the mistake's id as data, so reports and
`bench/results/validity.md` count diagnoses without reading message text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from grader.i18n import Domain

_CATALOG = Domain("checks")


@dataclass(frozen=True)
class Mistake:
    """A known mistake and what it would produce.

    Attributes:
        id: A stable name, e.g. ``"softmax_backward_diagonal_only"``.
        sentence: What the student most likely did, with the lecture's formula, addressed to
            the student ("your Softmax.backward keeps only the diagonal of the Jacobian ...").
        predict: Computes, from the check's inputs, what a submission with this mistake
            returns; called grader-side only.
    """

    id: str
    sentence: str
    predict: Callable[[], object]


class Diagnosed(AssertionError):
    """A failed check whose answer matches a known mistake.

    Attributes:
        mistake: The matched `Mistake.id`.
    """

    def __init__(self, message: str, mistake: Mistake) -> None:
        # sentences marked with `lazy` are translated here, in the language of this moment
        super().__init__(f"{message}\n{_CATALOG.gettext(mistake.sentence)}")
        self.mistake = mistake.id


def matching_mistake(received: object, mistakes: Iterable[Mistake], *, rtol: float = 1e-5,
                     atol: float = 1e-8) -> Mistake | None:
    """The first mistake whose prediction matches ``received`` (same shape, allclose).

    A mistake whose prediction cannot be computed for these inputs is passed over.
    """
    try:
        answer = np.asarray(received, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    for mistake in mistakes:
        try:
            predicted = np.asarray(mistake.predict(), dtype=np.float64)
        except Exception:  # noqa: BLE001 - a mistake that does not apply here
            continue
        if predicted.shape == answer.shape and np.allclose(answer, predicted, rtol=rtol,
                                                           atol=atol, equal_nan=False):
            return mistake
    return None


def fail(message: str, received: object, mistakes: Iterable[Mistake]) -> None:
    """Raise `Diagnosed` when ``received`` matches a mistake, else a plain AssertionError."""
    mistake = matching_mistake(received, mistakes)
    if mistake is not None:
        raise Diagnosed(message, mistake)
    raise AssertionError(message)

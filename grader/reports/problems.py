"""A recorded problem as the student reads it: the grader's own failures in their language.

Problems are stored as text. A submission's own problems (intake's: a missing file, a
syntax error) are written in the course's language when it is graded. The grader's own
failures (`grader.results.records.grader_problem`) are written in English: they are the
instructor's log line too, and `is_grader_problem` knows them by their English start. This
module translates those when a report or a page shows them: the step from a closed table,
a reason of a known shape by its pattern, an exception's text kept as it was raised.
"""

from __future__ import annotations

import re

from grader.i18n import Domain, lazy
from grader.results.records import GRADER_PROBLEM
from grader.scoring import PROVISIONAL

_, _n = Domain("reports").functions()

# Every step a grader problem names; tests/test_problems_i18n.py reads the callers'
# literals from the source, so a new step without a translation fails there.
STEPS = frozenset({
    lazy("read the submission"),
    lazy("run the hidden suite"),
    lazy("grade it"),
    lazy("record its results"),
    lazy("record it in the gradebook"),
    lazy("write its results.json"),
    lazy("apply the instructor's time and notes"),
    lazy("look for duplicate submissions"),
    lazy("find the job's assignment or upload"),
    lazy("export its row"),
    lazy("export its results.json"),
    lazy("render the report"),
    lazy("write the report"),
    lazy("render the class summary"),
    lazy("read results.json"),
    lazy("read the grade"),
})

_PROBLEM_RE = re.compile(rf"{re.escape(GRADER_PROBLEM)} (?P<step>[^:]+?): (?P<reason>.*)\Z",
                         re.DOTALL)
_JUDGE_RE = re.compile(r"judge (?P<case>.+)\Z", re.DOTALL)
_PROVISIONAL_SUFFIX = f" (grader error; {PROVISIONAL})"
_WORKER_DIED_RE = re.compile(r"the grader's worker died (?P<count>\d+) times? while grading it\Z")
_WORKER_STOPPED_RE = re.compile(
    r"its worker stopped \(died or lost its lease\) (?P<count>\d+) times? while grading it\Z")
_RAY_DIED_PREFIX = "the Ray worker died: "


def shown_problem(problem: str) -> str:
    """`problem` in the current language: a grader problem translated, any other as stored.

    Args:
        problem: One recorded problem (a grade's ``problems`` entry).

    Returns:
        The sentence to show; an unknown step keeps the stored English, never fails.
    """
    match = _PROBLEM_RE.match(problem)
    if match is None:
        return problem
    step, reason = match["step"], match["reason"]
    judged = _JUDGE_RE.match(step)
    if judged is not None:
        shown_step = _("judge {case}", case=judged["case"])
    elif step in STEPS:
        shown_step = _(step)
    else:
        return problem  # a step this table does not know: English beats a guess
    return _("the grader could not {step}: {reason}", step=shown_step,
             reason=_shown_reason(reason))


def _shown_reason(reason: str) -> str:
    """A grader problem's reason: our own sentences translated, an exception's text kept."""
    if reason.endswith(_PROVISIONAL_SUFFIX):
        return _("{error} (grader error; not charged: its points are credited provisionally "
                 "until the instructor resolves it)",
                 error=reason[: -len(_PROVISIONAL_SUFFIX)])
    if match := _WORKER_DIED_RE.match(reason):
        return _n("the grader's worker died {n} time while grading it",
                  "the grader's worker died {n} times while grading it", int(match["count"]))
    if match := _WORKER_STOPPED_RE.match(reason):
        return _n("its worker stopped (died or lost its lease) {n} time while grading it",
                  "its worker stopped (died or lost its lease) {n} times while grading it",
                  int(match["count"]))
    if reason.startswith(_RAY_DIED_PREFIX):
        return _("the Ray worker died: {error}", error=reason[len(_RAY_DIED_PREFIX):])
    return reason

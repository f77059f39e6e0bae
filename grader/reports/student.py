"""One student's feedback report: a `ReportInput` -> self-contained HTML and Markdown.

`render_student_report` builds plain views of the grade (parts, tests, failures grouped by
message, the figures of `grader.reports.figures`) and renders ``report.html.j2`` (inline CSS,
pictures as ``data:`` URIs) and ``report.md.j2``. It only shows what the grade holds:
messages, figures, points. Hidden test code, hidden data and reference code never reach a
grade, so they cannot reach a report.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from grader.config import AssignmentConfig
from grader.i18n import Domain, format_number
from grader.reports import figures, hints
from grader.reports.inputs import ReportInput
from grader.reports.problems import shown_problem
from grader.reports.templates_env import (
    environment,
    html_language,
    percent,
    rendering_language,
    when,
)
from grader.results.records import PASSED, Grade, PartGrade, TestOutcome

STUDENT_HTML = "report.html.j2"
STUDENT_MD = "report.md.j2"
MESSAGE_CHARS = 2_000  # a report shows a message, not a log

_, _n = Domain("reports").functions()
_MAIN_GUARD_RE = re.compile(r"if __name__ == ['\"]__main__['\"]\s*:")


@dataclass(frozen=True)
class StudentReport:
    """One student's report, in both formats."""

    html: str
    markdown: str


@dataclass
class MessageGroup:
    """Failed cases of one test that share a message."""

    cases: list[str]
    message: str
    hint: str
    reason: str | None
    diagnosis: str = ""  # the known mistake's id (`TestOutcome.diagnosis`), labelled as such


@dataclass
class TestView:
    name: str
    title: str
    status: str  # passed, partial, failed
    points: float
    max_points: float
    cases: list[tuple[str, str]]  # (case label, status)
    messages: list[MessageGroup] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # messages of passed (partial) cases
    gradient_rows: list[figures.GradientRow] = field(default_factory=list)
    heat_maps: list[figures.HeatMap] = field(default_factory=list)
    accuracy: str = ""  # the accuracy line in words
    curve: figures.Curve | None = None
    confusion_matrix: str | None = None  # data URI
    confusion_note: str = ""
    duration_s: float = 0.0


@dataclass
class PartView:
    name: str
    description: str
    points: float
    max_points: float
    status: str
    tests: list[TestView]

    @property
    def percent(self) -> float:
        return 100.0 * self.points / self.max_points if self.max_points else 100.0


def readable(test_name: str) -> str:
    """``test_softmax_forward_huge_logits`` -> ``Softmax forward huge logits`` in English;
    in another language the test's own name (``test_softmax_forward_huge_logits``), which
    stays an identifier rather than half-English words."""
    from grader import i18n

    function = test_name.split("::")[-1]
    if i18n.current_language() != "en":
        return function
    words = function.removeprefix("test_").replace("_", " ").strip()
    return words[:1].upper() + words[1:] if words else test_name


def case_label(outcome: TestOutcome) -> str:
    """The case's parameters (``0.05``, ``shape0``), or "" for an unparametrised test."""
    if "[" in outcome.case and outcome.case.endswith("]"):
        return outcome.case.split("[", 1)[1][:-1]
    return ""


def keras_builds(config: AssignmentConfig) -> dict[str, str]:
    """Test name -> the build function whose model the grader trains with Keras.

    An assignment's ``[[accuracy]]`` entries are its Keras accuracy tests; their curves are
    Keras's per-epoch history and their wording names the build function, not a training
    step the student wrote.
    """
    return {entry.test: entry.build for entry in config.accuracy}


def _cut(message: str) -> str:
    if len(message) <= MESSAGE_CHARS:
        return message
    half = MESSAGE_CHARS // 2
    return message[:half] + "\n[...]\n" + message[-half:]


def _status(fraction_sum: float, total: int) -> str:
    if total == 0 or fraction_sum >= total - 1e-9:
        return "passed"
    return "partial" if fraction_sum > 1e-9 else "failed"


def _test_view(name: str, cases: list[TestOutcome], max_points: float, *,
               keras_build: str | None) -> TestView:
    fractions = sum(c.fraction for c in cases)
    view = TestView(
        name=name, title=readable(name), status=_status(fractions, len(cases)),
        points=max_points * fractions / len(cases) if cases else 0.0, max_points=max_points,
        cases=[(case_label(c) or "", c.status if c.fraction >= 1 or c.status != PASSED
                else "partial") for c in cases],
        duration_s=sum(c.duration_s for c in cases))
    groups: dict[str, MessageGroup] = {}
    for case in cases:
        label = case_label(case)
        reason = hints.failure_reason(case)
        if reason is not None:
            message = _cut(case.message) or _("no message was recorded")
            group = groups.get(message)
            if group is None:
                group = groups[message] = MessageGroup(
                    [], message, hints.hint_for(case, keras=keras_build is not None), reason,
                    case.diagnosis)
            group.cases.append(label)
        elif case.message:
            view.notes.append(case.message)
        for add in (_gradient_figures, _training_figures):
            try:
                add(view, label, case.figures, keras_build)
            except Exception as error:  # noqa: BLE001 - a bad figure costs its picture only
                what = f"{type(error).__name__}: {str(error)[:200]}"
                view.notes.append(_("A figure of this test could not be drawn ({error}).",
                                    error=what))
    view.messages = list(groups.values())
    return view


def _gradient_figures(view: TestView, label: str, data: Mapping[str, Any],
                      keras_build: str | None) -> None:
    """Every gradient check of the case as a table row; a heat map for each mismatch."""
    for key in figures.GRADIENT_ERRORS:
        if key in data:
            view.gradient_rows.extend(figures.gradient_rows(label, data[key]))
    if figures.GRADIENT_DIFFERENCE in data:
        view.heat_maps.extend(figures.heat_maps(label, data[figures.GRADIENT_DIFFERENCE]))


def _training_figures(view: TestView, label: str, data: Mapping[str, Any],
                      keras_build: str | None) -> None:
    """The accuracy line, the learning curve and the confusion matrix of a training test."""
    accuracy = data.get("accuracy")
    sentence = figures.accuracy_sentence(accuracy, confusion=data.get("confusion_matrix"))
    if sentence:
        view.accuracy = sentence
    threshold = (figures.plots.finite(accuracy.get("threshold"), low=0.0, high=1.0)
                 if isinstance(accuracy, Mapping) else None)
    curve = figures.learning_curve(data.get("learning_curve"), threshold=threshold,
                                   keras_build=keras_build)
    if curve is not None:
        view.curve = curve
    matrix = data.get("confusion_matrix")
    if isinstance(matrix, Mapping) and matrix.get("matrix"):
        plots = figures.plots
        rows = plots.clean_matrix(matrix["matrix"])
        view.confusion_matrix = plots.data_uri(plots.confusion_matrix_png(
            rows, matrix.get("labels"), dataset=str(matrix.get("dataset", ""))))
        total = sum(sum(row) for row in rows)
        right = sum(rows[i][i] for i in range(len(rows)))
        view.confusion_note = (_n("{right} of {n} test image classified correctly",
                                  "{right} of {n} test images classified correctly",
                                  int(total), right=format_number(right)) if total else "")


def _part_views(grade: Grade, config: AssignmentConfig) -> list[PartView]:
    descriptions = {part.name: part.description for part in config.parts}
    builds = keras_builds(config)
    views = [_part_view(part, descriptions.get(part.name, ""), builds) for part in grade.parts]
    if grade.unassigned:
        views.append(_part_view(PartGrade(_("other tests"), 0.0, 0.0, grade.unassigned),
                                _("tests that belong to no part (worth no points)"), builds))
    return views


def _part_view(part: PartGrade, description: str, builds: Mapping[str, str]) -> PartView:
    by_function: dict[str, list[TestOutcome]] = {}
    for outcome in part.tests:
        by_function.setdefault(outcome.name, []).append(outcome)
    share = part.max_points / len(by_function) if by_function else 0.0
    tests = [_test_view(name, cases, share, keras_build=builds.get(name))
             for name, cases in by_function.items()]
    status = "passed" if part.points >= part.max_points - 1e-9 and all(
        t.status == "passed" for t in tests) else ("partial" if part.points > 1e-9 else "failed")
    return PartView(part.name, description, part.points, part.max_points, status, tests)


def _limits_hit(parts: Sequence[PartView]) -> list[dict[str, str]]:
    hits = []
    for part in parts:
        for test in part.tests:
            for group in test.messages:
                if group.reason in (hints.TIME_LIMIT, hints.TIME_BUDGET, hints.MEMORY):
                    hits.append({"part": part.name, "test": test.title,
                                 "cases": ", ".join(c for c in group.cases if c),
                                 "reason": group.reason, "message": group.message})
    return hits


def _late_policy_text(config: AssignmentConfig) -> str:
    late = config.late
    if late.policy == "percent_per_day" and late.cutoff is not None:
        return _("{percent} of the grade per started day late; zero after {cutoff}",
                 percent=percent(late.percent), cutoff=when(late.cutoff))
    if late.policy == "percent_per_day":
        return _("{percent} of the grade per started day late", percent=percent(late.percent))
    if late.policy == "zero_after":
        return _("zero after {cutoff}", cutoff=when(late.cutoff or config.due))
    return _("no penalty for late submissions")


def student_context(report: ReportInput, *, config: AssignmentConfig,
                    language: str | None = None) -> dict[str, Any]:
    """Everything the student templates show, as plain values."""
    parts = _part_views(report.grade, config) if report.grade else []
    failed = sum(1 for p in parts for t in p.tests if t.status != "passed")
    return {
        "config": config,
        "lang": html_language(language),
        "r": report,
        "name": report.display_name or report.student_id,
        "submitted": report.submitted,
        "parts": parts,
        "failed_tests": failed,
        "total_tests": sum(len(p.tests) for p in parts),
        "max_score": report.grade.max_score if report.grade else config.total_points,
        "problems": [shown_problem(problem) for problem in report.intake_problems],
        # A main guard is never run at import by design; listing it would only confuse.
        "skipped": [s for s in report.skipped if not _MAIN_GUARD_RE.search(s)],
        "limits_hit": _limits_hit(parts),
        "late": report.late_days > 0 or report.late_multiplier < 1.0,
        "penalty_points": (report.grade.score - report.score_after_penalty)
        if report.grade else 0.0,
        "late_policy": _late_policy_text(config),
        "execution_time_s": report.grade.execution_time_s if report.grade else 0.0,
    }


def render_student_report(report: ReportInput, *, config: AssignmentConfig,
                          language: str | None = None) -> StudentReport:
    """One student's feedback report.

    Args:
        report: the student's grade and its circumstances; ``grade=None`` renders a
            report saying that nothing was submitted.
        config: the assignment (title, due date, parts' descriptions, late policy).
        language: the course's language (course.toml: ``zh_CN`` or ``en``, also as a tag
            ``zh-CN``): the report's words, numbers and dates, declared as ``<html lang>``;
            default: the language in effect (`grader.i18n.current_language`).

    Returns:
        The HTML report (self-contained: inline CSS, pictures as data URIs) and its
        Markdown version (the same text, without pictures).

    Raises:
        ValueError: `language` is not a language tag.
    """
    with rendering_language(language) as tag:
        context = student_context(report, config=config, language=tag)
        return StudentReport(
            html=environment().get_template(STUDENT_HTML).render(**context),
            markdown=environment(markdown=True).get_template(STUDENT_MD).render(**context))

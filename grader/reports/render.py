"""Grades -> feedback reports: pure functions from `ReportInput`s to HTML and Markdown.

`render_student_report` gives one student's report (self-contained HTML: inline CSS,
pictures as ``data:`` URIs; and a Markdown version), `render_class_summary` the
instructor's page. Both only show what the grade holds: messages, figures, points.
Hidden test code, hidden data and reference code never reach a grade, so they cannot
reach a report.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup, escape

from grader.config import AssignmentConfig
from grader.ids import printable
from grader.reports import hints, plots
from grader.reports.inputs import ReportInput
from grader.results.records import PASSED, Grade, PartGrade, TestOutcome

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
STUDENT_HTML = "report.html.j2"
STUDENT_MD = "report.md.j2"
SUMMARY_HTML = "class_summary.html.j2"
MOST_FAILED = 10  # tests listed under "most often failed"
MESSAGES_PER_TEST = 3  # most common messages shown for each of them
SLOWEST = 5  # submissions listed under "slowest"
MESSAGE_CHARS = 2_000  # a report shows a message, not a log

_CODE_RE = re.compile(r"`([^`\n]+)`")
_MAIN_GUARD_RE = re.compile(r"if __name__ == ['\"]__main__['\"]\s*:")
_NUMBER_RE = re.compile(r"-?\d+(\.\d+)?(e[-+]?\d+)?", re.IGNORECASE)


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
    gradient_rows: list[dict[str, Any]] = field(default_factory=list)
    accuracy: dict[str, Any] | None = None
    learning_curve: str | None = None  # data URI
    learning_curve_note: str = ""
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


# -- helpers used by the templates ------------------------------------------------------------

def readable(test_name: str) -> str:
    """``test_softmax_forward_huge_logits`` -> ``Softmax forward huge logits``."""
    words = test_name.split("::")[-1].removeprefix("test_").replace("_", " ").strip()
    return words[:1].upper() + words[1:] if words else test_name


def case_label(outcome: TestOutcome) -> str:
    """The case's parameters (``0.05``, ``shape0``), or "" for an unparametrised test."""
    if "[" in outcome.case and outcome.case.endswith("]"):
        return outcome.case.split("[", 1)[1][:-1]
    return ""


def _codespans(text: str) -> Markup:
    """HTML-escapes a message and shows its `backticked` names as code."""
    escaped = str(escape(text))
    return Markup(_CODE_RE.sub(r"<code>\1</code>", escaped))


def _fence(text: str) -> str:
    """A Markdown code fence longer than any run of backticks in `text`."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def _points(value: float) -> str:
    return f"{round(value, 2):g}"


def _when(value: datetime | None) -> str:
    if value is None:
        return "unknown"
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.strftime("%Y-%m-%d %H:%M %Z").strip()


class Verbatim(str):
    """Markdown the template built on purpose (a code fence, a number): never escaped."""


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-!|<>~&])")


def markdown_text(value: Any) -> str:
    """Any value as inert Markdown text: what ``{{ }}`` prints in a Markdown template.

    Student text (ids, names, messages, file names) must not become HTML, a link, an
    image, a heading or a table cell border in an LMS that renders report.md: every
    Markdown (CommonMark) punctuation character is backslash-escaped, ``&`` included (no
    entities), and line breaks become spaces (no new block). `Verbatim` values pass.
    """
    if isinstance(value, Verbatim):
        return value
    text = printable(" ".join(str(value).splitlines()), limit=1_000_000)
    return _MD_SPECIAL.sub(r"\\\1", text)


def _visible_lines(value: Any) -> Verbatim:
    """A fenced block's contents: literal there, but with terminal escapes shown as ``\\xNN``
    (report.md is also read with ``cat``)."""
    return Verbatim("\n".join(printable(line.expandtabs(4), limit=1_000_000)
                               for line in str(value).split("\n")))


def _markdown_code(value: Any) -> Verbatim:
    """A Markdown code span of any text: a fence longer than its backtick runs, one line."""
    text = printable(" ".join(str(value).splitlines()), limit=1_000_000)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)  # a span closes only on a run of exactly its length
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return Verbatim(f"{fence}{pad}{text}{pad}{fence}")


def _environment(*, markdown: bool = False) -> jinja2.Environment:
    """The HTML environment (autoescaped), or the Markdown one (`markdown_text` on output)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=False if markdown else (lambda name: bool(name) and ".html" in name),
        finalize=markdown_text if markdown else None,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["code"] = _codespans
    env.filters["pts"] = _points
    env.filters["when"] = _when
    env.filters["fence"] = _fence
    env.filters["pct"] = lambda v: f"{v:.0f}%"
    if markdown:  # what these filters print is built here from numbers, never student text
        for name in ("pts", "when", "fence", "pct"):
            env.filters[name] = (lambda f: lambda *a, **k: Verbatim(f(*a, **k)))(env.filters[name])
        env.filters["verbatim"] = _visible_lines  # a fenced block's contents
        env.filters["mdcode"] = _markdown_code
    return env


_ENVS: dict[bool, jinja2.Environment] = {}


def environment(*, markdown: bool = False) -> jinja2.Environment:
    """The templates' environment: HTML (autoescaped) or Markdown (escaped by `markdown_text`)."""
    if markdown not in _ENVS:
        _ENVS[markdown] = _environment(markdown=markdown)
    return _ENVS[markdown]


# -- the student report -------------------------------------------------------------------------

def _cut(message: str) -> str:
    if len(message) <= MESSAGE_CHARS:
        return message
    half = MESSAGE_CHARS // 2
    return message[:half] + "\n[...]\n" + message[-half:]


def _status(fraction_sum: float, total: int) -> str:
    if total == 0 or fraction_sum >= total - 1e-9:
        return "passed"
    return "partial" if fraction_sum > 1e-9 else "failed"


def _gradient_rows(label: str, figure: Any) -> list[dict[str, Any]]:
    """Rows of a gradient error table from a ``gradient_error(s)`` figure."""
    if isinstance(figure, Mapping) and "relative_error" in figure:
        entries = [figure]
    elif isinstance(figure, Mapping):
        entries = [{"check": key, **value} for key, value in figure.items()
                   if isinstance(value, Mapping)]
    elif isinstance(figure, (list, tuple)):
        entries = [entry for entry in figure if isinstance(entry, Mapping)]
    else:
        entries = []
    rows = []
    for entry in entries:
        error, tolerance = entry.get("relative_error"), entry.get("tolerance")
        try:
            ok = float(error) < float(tolerance)
        except (TypeError, ValueError):
            ok = None
        rows.append({"case": label, "check": str(entry.get("check", "")),
                     "error": _sci(error), "tolerance": _sci(tolerance), "ok": ok})
    return rows


def _sci(value: Any) -> str:
    try:
        return f"{float(value):.2e}"
    except (TypeError, ValueError):
        return "n/a" if value is None else str(value)


def _test_view(name: str, cases: list[TestOutcome], max_points: float) -> TestView:
    fractions = sum(c.fraction for c in cases)
    view = TestView(
        name=name, title=readable(name), status=_status(fractions, len(cases)),
        points=max_points * fractions / len(cases) if cases else 0.0, max_points=max_points,
        cases=[(case_label(c) or "", c.status if c.fraction >= 1 or c.status != PASSED
                else "partial") for c in cases],
        duration_s=sum(c.duration_s for c in cases))
    groups: dict[str, MessageGroup] = {}
    threshold = None
    for case in cases:
        label = case_label(case)
        reason = hints.failure_reason(case)
        if reason is not None:
            message = _cut(case.message) or "no message was recorded"
            group = groups.get(message)
            if group is None:
                group = groups[message] = MessageGroup(
                    [], message, hints.hint_for(case), reason, case.diagnosis)
            group.cases.append(label)
        elif case.message:
            view.notes.append(case.message)
        try:
            threshold = _figures(view, label, case.figures, threshold)
        except Exception as error:  # noqa: BLE001 - a bad figure costs its picture, not the report
            view.notes.append(f"A figure of this test could not be drawn "
                              f"({type(error).__name__}: {str(error)[:200]}).")
    view.messages = list(groups.values())
    return view


def _figures(view: TestView, label: str, figures: Mapping[str, Any],
             threshold: float | None) -> float | None:
    """Adds one case's figures to `view`; returns the accuracy threshold seen so far.

    Figure data holds numbers a student's code produced: only finite, plausible values
    reach the tables and `plots` (which checks them again).
    """
    for key, figure in figures.items():
        if key in ("gradient_error", "gradient_errors"):
            view.gradient_rows.extend(_gradient_rows(label, figure))
        elif key == "accuracy" and isinstance(figure, Mapping):
            accuracy = _accuracy(figure)
            if accuracy is not None:
                view.accuracy = accuracy
                threshold = accuracy.get("threshold", threshold)
    curve = figures.get("learning_curve")
    if isinstance(curve, Mapping) and (curve.get("loss") or curve.get("accuracy")):
        view.learning_curve = plots.data_uri(plots.learning_curve_png(curve,
                                                                      threshold=threshold))
        values = curve.get("loss") or curve.get("accuracy")
        steps = len(values) if isinstance(values, (list, tuple)) else 0
        what = str(curve.get("x") or "epoch")[:40]
        epochs = plots.finite(curve.get("epochs"), low=1, high=plots.ABSURD)
        view.learning_curve_note = f"{steps} {plots.plural(what) if steps != 1 else what}"
        if epochs is not None:
            view.learning_curve_note += (f" over {epochs:g} epoch"
                                         f"{'' if epochs == 1 else 's'}")
        if curve.get("stopped"):
            view.learning_curve_note += (f"; the run stopped early: "
                                         f"{str(curve['stopped'])[:MESSAGE_CHARS]}")
    matrix = figures.get("confusion_matrix")
    if isinstance(matrix, Mapping) and matrix.get("matrix"):
        rows = plots.clean_matrix(matrix["matrix"])
        view.confusion_matrix = plots.data_uri(plots.confusion_matrix_png(
            rows, matrix.get("labels"), dataset=str(matrix.get("dataset", ""))))
        total = sum(sum(row) for row in rows)
        right = sum(rows[i][i] for i in range(len(rows)))
        view.confusion_note = (f"{right:g} of {total:g} test images classified correctly"
                               if total else "")
    return threshold


def _accuracy(figure: Mapping[str, Any]) -> dict[str, Any] | None:
    """An ``accuracy`` figure whose accuracy (threshold, floor) are finite and in [0, 1]."""
    accuracy = plots.finite(figure.get("accuracy"), low=0.0, high=1.0)
    if accuracy is None:
        return None
    shown: dict[str, Any] = {"accuracy": accuracy}
    for key in ("threshold", "floor"):
        value = plots.finite(figure.get(key), low=0.0, high=1.0)
        if value is not None:
            shown[key] = value
    if figure.get("dataset"):
        shown["dataset"] = str(figure["dataset"])[:40]
    return shown


def _part_views(grade: Grade, config: AssignmentConfig) -> list[PartView]:
    descriptions = {part.name: part.description for part in config.parts}
    views = []
    for part in grade.parts:
        views.append(_part_view(part, descriptions.get(part.name, "")))
    if grade.unassigned:
        views.append(_part_view(PartGrade("other tests", 0.0, 0.0, grade.unassigned),
                                "tests that belong to no part (worth no points)"))
    return views


def _part_view(part: PartGrade, description: str) -> PartView:
    by_function: dict[str, list[TestOutcome]] = {}
    for outcome in part.tests:
        by_function.setdefault(outcome.name, []).append(outcome)
    share = part.max_points / len(by_function) if by_function else 0.0
    tests = [_test_view(name, cases, share) for name, cases in by_function.items()]
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
    if late.policy == "percent_per_day":
        text = f"{late.percent:g}% of the grade per started day late"
        if late.cutoff is not None:
            text += f"; zero after {_when(late.cutoff)}"
        return text
    if late.policy == "zero_after":
        return f"zero after {_when(late.cutoff or config.due)}"
    return "no penalty for late submissions"


def student_context(report: ReportInput, *, config: AssignmentConfig) -> dict[str, Any]:
    """Everything the student templates show, as plain values."""
    parts = _part_views(report.grade, config) if report.grade else []
    failed = sum(1 for p in parts for t in p.tests if t.status != "passed")
    return {
        "config": config,
        "r": report,
        "name": report.display_name or report.student_id,
        "submitted": report.submitted,
        "parts": parts,
        "failed_tests": failed,
        "total_tests": sum(len(p.tests) for p in parts),
        "max_score": report.grade.max_score if report.grade else config.total_points,
        "problems": list(report.intake_problems),
        # A main guard is never run at import by design; listing it would only confuse.
        "skipped": [s for s in report.skipped if not _MAIN_GUARD_RE.search(s)],
        "limits_hit": _limits_hit(parts),
        "late": report.late_days > 0 or report.late_multiplier < 1.0,
        "penalty_points": (report.grade.score - report.score_after_penalty)
        if report.grade else 0.0,
        "late_policy": _late_policy_text(config),
        "execution_time_s": report.grade.execution_time_s if report.grade else 0.0,
    }


def render_student_report(report: ReportInput, *, config: AssignmentConfig) -> StudentReport:
    """One student's feedback report.

    Args:
        report: the student's grade and its circumstances; ``grade=None`` renders a
            report saying that nothing was submitted.
        config: the assignment (title, due date, parts' descriptions, late policy).

    Returns:
        The HTML report (self-contained: inline CSS, pictures as data URIs) and its
        Markdown version (the same text, without pictures).
    """
    context = student_context(report, config=config)
    return StudentReport(
        html=environment().get_template(STUDENT_HTML).render(**context),
        markdown=environment(markdown=True).get_template(STUDENT_MD).render(**context))


# -- the class summary ----------------------------------------------------------------------------

def _roster_entries(roster: Iterable[Any]) -> list[tuple[str, str]]:
    """(student id, display name) for roster entries: ids, pairs, or objects/dicts."""
    entries = []
    for entry in roster:
        if isinstance(entry, str):
            entries.append((entry, ""))
        elif isinstance(entry, tuple):
            entries.append((str(entry[0]), str(entry[1]) if len(entry) > 1 else ""))
        elif isinstance(entry, Mapping):
            ident = entry.get("student_id", entry.get("id"))
            entries.append((str(ident), str(entry.get("display_name", "") or "")))
        else:
            ident = getattr(entry, "student_id", None) or entry.id
            entries.append((str(ident), str(getattr(entry, "display_name", "") or "")))
    return entries


def normalise_message(message: str) -> str:
    """A message with its numbers replaced, so that failures of one kind count together."""
    first = message.strip().splitlines()[-1] if message.strip() else ""
    if message.startswith(("StudentError", "StudentAttributeError")):
        return _NUMBER_RE.sub("#", first)  # the exception's own line, not the traceback
    return _NUMBER_RE.sub("#", message.strip().splitlines()[0] if message.strip() else "")


def summary_context(rows: Sequence[ReportInput], *, config: AssignmentConfig,
                    roster: Iterable[Any] = (),
                    report_links: Mapping[str, str] | None = None) -> dict[str, Any]:
    links = dict(report_links or {})
    by_id: dict[str, ReportInput] = {}
    for row in rows:
        by_id[row.student_id] = row
    for ident, name in _roster_entries(roster):
        if ident not in by_id:
            by_id[ident] = ReportInput(student_id=ident, display_name=name)
        elif name and not by_id[ident].display_name:
            by_id[ident] = ReportInput(**{**by_id[ident].__dict__, "display_name": name})
    students = sorted(by_id.values(), key=lambda r: r.student_id)
    graded = [r for r in students if r.grade is not None]
    missing = [r for r in students if r.grade is None]
    scores = [r.final for r in graded]
    max_score = config.total_points

    part_stats = []
    for part in config.parts:
        earned = [p.points for r in graded for p in r.grade.parts if p.name == part.name]
        full = sum(1 for v in earned if v >= part.points - 1e-9)
        part_stats.append({"name": part.name, "description": part.description,
                           "max_points": part.points,
                           "mean": sum(earned) / len(earned) if earned else 0.0,
                           "pass_rate": 100.0 * full / len(earned) if earned else 0.0,
                           "n": len(earned)})

    test_stats: dict[str, dict[str, Any]] = {}
    reasons: dict[str, dict[str, Any]] = {
        reason: {"reason": reason, "text": hints.REASON_TEXT[reason], "cases": 0,
                 "students": set()} for reason in hints.REASONS}
    grader_errors: list[dict[str, str]] = []
    for row in graded:
        for part in row.grade.parts:
            functions: dict[str, list[TestOutcome]] = {}
            for outcome in part.tests:
                functions.setdefault(outcome.name, []).append(outcome)
            for name, cases in functions.items():
                stat = test_stats.setdefault(name, {
                    "name": name, "title": readable(name), "part": part.name, "n": 0,
                    "passed": 0, "messages": Counter(), "examples": {}, "students": []})
                stat["n"] += 1
                failing = [c for c in cases if c.status != PASSED or c.fraction < 1.0]
                if not failing:
                    stat["passed"] += 1
                    continue
                stat["students"].append(row.student_id)
                seen = set()
                for case in failing:
                    reason = hints.failure_reason(case)
                    if reason == hints.GRADER_ERROR:  # the instructor's to resolve: listed first
                        grader_errors.append({
                            "student": row.student_id, "test": case.case,
                            "message": (case.message.strip().splitlines() or [""])[0]})
                    if reason:
                        reasons[reason]["cases"] += 1
                        reasons[reason]["students"].add(row.student_id)
                    key = normalise_message(case.message) or "no message"
                    if key not in seen:  # a student counts once per message
                        seen.add(key)
                        stat["messages"][key] += 1
                        stat["examples"].setdefault(key, case.message.strip().splitlines()[-1]
                                                    if case.message.startswith("Student")
                                                    else (case.message.strip().splitlines()
                                                          or [""])[0])
    for row in graded:
        if row.intake_problems:
            reasons[hints.UNREADABLE]["students"].add(row.student_id)
    tests = []
    for stat in test_stats.values():
        stat["pass_rate"] = 100.0 * stat["passed"] / stat["n"] if stat["n"] else 0.0
        stat["failed"] = stat["n"] - stat["passed"]
        stat["top_messages"] = [{"count": count, "message": stat["examples"][key]}
                                for key, count in stat["messages"].most_common(
                                    MESSAGES_PER_TEST)]
        tests.append(stat)
    most_failed = sorted((t for t in tests if t["failed"]), key=lambda t: (-t["failed"],
                                                                           t["name"]))
    reason_rows = [{**r, "students": len(r["students"])} for r in reasons.values()
                   if r["cases"] or r["students"]]
    slowest = sorted(graded, key=lambda r: -r.grade.execution_time_s)[:SLOWEST]
    return {
        "config": config,
        "students": students,
        "graded": graded,
        "missing": missing,
        "scores": scores,
        "max_score": max_score,
        "mean": sum(scores) / len(scores) if scores else 0.0,
        "median": _median(scores),
        "histogram": plots.data_uri(plots.score_histogram_png(scores, max_score,
                                                              missing=len(missing))),
        "parts": part_stats,
        "tests": tests,
        "most_failed": most_failed[:MOST_FAILED],
        "reasons": reason_rows,
        "grader_errors": sorted(grader_errors, key=lambda e: (e["student"], e["test"])),
        "slowest": slowest,
        "links": links,
        "generated": datetime.now(timezone.utc),
    }


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def render_class_summary(rows: Sequence[ReportInput], *, config: AssignmentConfig,
                         roster: Iterable[Any] = (),
                         report_links: Mapping[str, str] | None = None) -> str:
    """The instructor's class summary, as self-contained HTML.

    Args:
        rows: one `ReportInput` per graded student (and any without a grade).
        config: the assignment.
        roster: every student of the class (ids, (id, name) pairs, or objects with
            ``student_id``/``id`` and ``display_name``); those without a row are listed
            as not submitted.
        report_links: student id -> relative link to that student's report.

    Returns:
        The HTML page.
    """
    context = summary_context(rows, config=config, roster=roster, report_links=report_links)
    return environment().get_template(SUMMARY_HTML).render(**context)

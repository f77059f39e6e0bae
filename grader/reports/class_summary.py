"""The instructor's class summary: every student's `ReportInput` -> one self-contained page.

Scores, pass rates per part and per test, the most common failure messages (numbers
replaced, so that failures of one kind count together), failures by reason (grader errors
first: they are the instructor's to resolve), the slowest submissions, and a link to each
student's report. Rendered from ``class_summary.html.j2``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from grader.config import AssignmentConfig
from grader.reports import hints, plots
from grader.reports.inputs import ReportInput
from grader.reports.student import readable
from grader.reports.templates_env import environment, html_language, rendering_language
from grader.results.records import PASSED, TestOutcome

SUMMARY_HTML = "class_summary.html.j2"
MOST_FAILED = 10  # tests listed under "most often failed"
MESSAGES_PER_TEST = 3  # most common messages shown for each of them
SLOWEST = 5  # submissions listed under "slowest"

_NUMBER_RE = re.compile(r"-?\d+(\.\d+)?(e[-+]?\d+)?", re.IGNORECASE)


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
                    report_links: Mapping[str, str] | None = None,
                    language: str | None = None) -> dict[str, Any]:
    """Everything the class summary shows, as plain values."""
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
        reason: {"reason": reason, "text": hints.reason_text(reason), "cases": 0,
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
        "lang": html_language(language),
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
                         report_links: Mapping[str, str] | None = None,
                         language: str | None = None) -> str:
    """The instructor's class summary, as self-contained HTML.

    Args:
        rows: one `ReportInput` per graded student (and any without a grade).
        config: the assignment.
        roster: every student of the class (ids, (id, name) pairs, or objects with
            ``student_id``/``id`` and ``display_name``); those without a row are listed
            as not submitted.
        report_links: student id -> relative link to that student's report.
        language: the course's language (course.toml: ``zh_CN`` or ``en``, also as a tag
            ``zh-CN``), declared as ``<html lang>``; default: the language in effect.

    Returns:
        The HTML page.

    Raises:
        ValueError: `language` is not a language tag.
    """
    with rendering_language(language) as tag:
        context = summary_context(rows, config=config, roster=roster,
                                  report_links=report_links, language=tag)
        return environment().get_template(SUMMARY_HTML).render(**context)

"""`grader feedback <id>`: a report for every student and the class summary, as files.

Reads the latest grades from the gradebook (or, with ``results``, the ``results.json``
files `grader autograde` wrote) and writes::

    <out>/index.html                  the class summary, linking every report
    <out>/<student>/report.html       self-contained: open it from a file, send it by mail
    <out>/<student>/report.md         the same text in Markdown (for an LMS comment)

Every roster student gets a report, those who did not submit one saying so.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from grader.config import AssignmentConfig, load_assignment
from grader.reports import (
    ReportInput,
    from_grade_row,
    from_results_json,
    render_class_summary,
    render_student_report,
)

_UNSAFE = re.compile(r"[^A-Za-z0-9._@-]+")


def folder_name(student_id: str) -> str:
    """A student's folder under `out`: the id with anything unsafe in a path replaced."""
    name = _UNSAFE.sub("_", student_id).strip(".") or "_"
    return name[:120]


def write_reports(inputs: Sequence[ReportInput], *, config: AssignmentConfig, out: Path,
                  roster: Iterable[Any] = ()) -> Path:
    """Writes every student's report and the class summary.

    Args:
        inputs: one per graded student (and any others to report on).
        config: the assignment.
        out: the folder to write into (created).
        roster: the class; students without an input get a "no submission" report.

    Returns:
        The class summary's path, ``out/index.html``.
    """
    roster = list(roster)
    everyone: dict[str, ReportInput] = {row.student_id: row for row in inputs}
    for entry in roster:
        ident = _roster_id(entry)
        if ident not in everyone:
            everyone[ident] = ReportInput(student_id=ident,
                                          display_name=_roster_name(entry))
    out.mkdir(parents=True, exist_ok=True)
    links: dict[str, str] = {}
    used: set[str] = set()
    for ident in sorted(everyone):
        folder = folder_name(ident)
        while folder in used:  # two ids that differ only in unsafe characters
            folder += "_"
        used.add(folder)
        report = render_student_report(everyone[ident], config=config)
        target = out / folder
        target.mkdir(exist_ok=True)
        (target / "report.html").write_text(report.html, encoding="utf-8")
        (target / "report.md").write_text(report.markdown, encoding="utf-8")
        links[ident] = f"{folder}/report.html"
    index = out / "index.html"
    index.write_text(render_class_summary(list(everyone.values()), config=config, roster=roster,
                                          report_links=links), encoding="utf-8")
    return index


def inputs_from_results(folder: Path, config: AssignmentConfig) -> list[ReportInput]:
    """`ReportInput`s from ``<folder>/<student>/results.json`` (`grader autograde --out`)."""
    paths = sorted(folder.glob("*/results.json"))
    if not paths:
        raise FileNotFoundError(f"{folder}: no <student>/results.json files; expected the "
                                f"folder `grader autograde {config.id} ... --out` wrote")
    return [from_results_json(path, config=config) for path in paths]


def main(*, assignment: str, db: str | Path | None = None, out: Path | None = None,
         results: Path | None = None) -> int:
    """Writes the reports of one assignment.

    Args:
        assignment: the assignment id (or its folder or assignment.toml).
        db: the gradebook (a SQLAlchemy URL or a SQLite path; default ./gradebook.db).
        out: where to write; default ``feedback/<id>``.
        results: read ``results.json`` files from this folder instead of the gradebook.

    Returns:
        The exit status: 0 when written, 2 when the gradebook cannot be read.
    """
    config = load_assignment(assignment)
    out = out or Path("feedback") / config.id
    roster: list[Any] = []
    if results is not None:
        inputs = inputs_from_results(results, config)
    else:
        from grader.gradebook import GradebookError, open_gradebook

        try:
            with open_gradebook(db) as gradebook:
                inputs = [from_grade_row(row) for row in gradebook.latest(config.id)]
                roster = list(gradebook.students())
        except GradebookError as error:
            print(f"grader feedback: {error}", file=sys.stderr)
            return 2
    index = write_reports(inputs, config=config, out=out, roster=roster)
    graded = sum(1 for row in inputs if row.grade is not None)
    total = len({*(_roster_id(e) for e in roster), *(row.student_id for row in inputs)})
    print(f"{config.id}: {graded} graded, {total - graded} without a submission")
    print(f"class summary:   {index}")
    print(f"student reports: {out}/<student>/report.html (and report.md)")
    if not inputs and not roster:
        print(f"no grades for `{config.id}` yet: run `grader autograde {config.id} ...` first")
    return 0


def _roster_id(entry: Any) -> str:
    if isinstance(entry, str):
        return entry
    if isinstance(entry, tuple):
        return str(entry[0])
    return str(getattr(entry, "student_id", None) or entry.id)


def _roster_name(entry: Any) -> str:
    if isinstance(entry, tuple) and len(entry) > 1:
        return str(entry[1])
    return str(getattr(entry, "display_name", "") or "")

"""`grader feedback <id>`: a report for every student and the class summary, as files.

Reads the latest grades from the gradebook (or, with ``results``, the ``results.json``
files `grader autograde` wrote) and writes::

    <out>/index.html                  the class summary, linking every report
    <out>/<student>/report.html       self-contained: open it from a file, send it by mail
    <out>/<student>/report.md         the same text in Markdown (for an LMS comment)

Every roster student gets a report, those who did not submit one saying so.

One student never stops the others: a results.json that cannot be read, or a report
that cannot be rendered or written (whatever it raises, but the grader's own Ctrl-C and
exit), gives that student a short fallback report and a line in the summary on stderr,
and the exit status is 3. Folder names come from `grader.ids.file_name`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from markupsafe import escape

from grader import i18n
from grader.config import AssignmentConfig, load_assignment
from grader.ids import file_name, printable
from grader.reports import (
    ReportInput,
    StudentReport,
    from_grade_row,
    from_results_json,
    render_class_summary,
    render_student_report,
)
from grader.reports.problems import shown_problem
from grader.reports.templates_env import html_language, markdown_text, rendering_language
from grader.results.records import grader_problem

_, _n = i18n.Domain("cli").functions()

PROBLEMS_EXIT = 3  # exit status when some reports had problems (listed on stderr)
T = TypeVar("T")


@dataclass
class Written:
    """What `write_feedback` wrote: the class summary, and the students it had trouble with.

    Attributes:
        index: ``out/index.html``.
        problems: (student id or file, "the grader could not ...: reason") pairs.
    """

    index: Path
    problems: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Failed:
    """A step that raised: the grader problem it becomes."""

    problem: str


def _isolated(step: str, action: Callable[[], T]) -> T | Failed:
    """`action()`, or the grader problem it raised (only Ctrl-C and exit pass)."""
    try:
        return action()
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as error:  # noqa: BLE001 - one student never stops the others
        return Failed(grader_problem(step, error))


def fallback_report(report: ReportInput, problem: str,
                    language: str | None = None) -> StudentReport:
    """A short report for a student whose report could not be rendered: it says so, in the
    course's `language` (the grader's own problem translated by `shown_problem`)."""
    try:
        with rendering_language(language) as tag:
            title, sentence = _fallback_sentences(report, problem)
    except ValueError:  # a language nn-grader does not speak may be why rendering failed
        with rendering_language("en") as tag:
            title, sentence = _fallback_sentences(report, problem)
    html = (f"<!DOCTYPE html>\n<html lang=\"{escape(tag)}\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title></head><body><h1>{escape(title)}</h1>"
            f"<p>{escape(sentence)}</p></body></html>\n")
    markdown = f"# {markdown_text(title)}\n\n{markdown_text(sentence)}\n"
    return StudentReport(html=html, markdown=markdown)


def _fallback_sentences(report: ReportInput, problem: str) -> tuple[str, str]:
    title = _("Feedback for {student}", student=report.student_id)
    sentence = _("Your feedback report could not be produced ({problem}). Your grade is "
                 "recorded; your instructor has been told and will send the report.",
                 problem=shown_problem(problem))
    return title, sentence


def write_reports(inputs: Sequence[ReportInput], *, config: AssignmentConfig, out: Path,
                  roster: Iterable[Any] = (), language: str | None = None) -> Path:
    """Writes every student's report and the class summary; returns ``out/index.html``.

    See `write_feedback`, which also returns the students it had trouble with.
    """
    return write_feedback(inputs, config=config, out=out, roster=roster,
                          language=language).index


def write_feedback(inputs: Sequence[ReportInput], *, config: AssignmentConfig, out: Path,
                   roster: Iterable[Any] = (), language: str | None = None) -> Written:
    """Writes every student's report and the class summary.

    Args:
        inputs: one per graded student (and any others to report on).
        config: the assignment.
        out: the folder to write into (created).
        roster: the class; students without an input get a "no submission" report.
        language: the course's language tag (course.toml), e.g. ``zh-CN``; default "en".

    Returns:
        The class summary's path and the problems met: a student whose report could not
        be rendered gets `fallback_report`; one that could not be written is listed.
    """
    html_language(language)  # a bad course language is one error here, not one per report
    roster = list(roster)
    everyone: dict[str, ReportInput] = {row.student_id: row for row in inputs}
    for entry in roster:
        ident = _roster_id(entry)
        if ident not in everyone:
            everyone[ident] = ReportInput(student_id=ident,
                                          display_name=_roster_name(entry))
    out.mkdir(parents=True, exist_ok=True)
    written = Written(out / "index.html")
    links: dict[str, str] = {}
    used: set[str] = set()
    broken: set[str] = set()  # students whose own report could not be rendered
    for ident in sorted(everyone):
        folder = file_name(ident)
        while folder in used:  # file_name keeps ids apart; this only guards the impossible
            folder += "_"
        used.add(folder)
        report = _isolated("render the report", lambda ident=ident: render_student_report(
            everyone[ident], config=config, language=language))
        if isinstance(report, Failed):
            written.problems.append((ident, report.problem))
            broken.add(ident)
            report = fallback_report(everyone[ident], report.problem, language)
        failed = _isolated("write the report", lambda folder=folder, report=report: _write(
            out / folder, report))
        if isinstance(failed, Failed):
            written.problems.append((ident, failed.problem))
            continue
        links[ident] = f"{folder}/report.html"
    summary = _isolated("render the class summary", lambda: render_class_summary(
        list(everyone.values()), config=config, roster=roster, report_links=links,
        language=language))
    if isinstance(summary, Failed) and broken:  # again without the data that broke reports
        summary = _isolated("render the class summary", lambda: render_class_summary(
            [ReportInput(student_id=row.student_id, display_name=row.display_name)
             if row.student_id in broken else row for row in everyone.values()],
            config=config, roster=roster, report_links=links, language=language))
    if isinstance(summary, Failed):
        written.problems.append(("class summary", summary.problem))
        summary = _plain_index(config, links)
    written.index.write_text(summary, encoding="utf-8")
    return written


def _write(folder: Path, report: StudentReport) -> None:
    folder.mkdir(exist_ok=True)
    (folder / "report.html").write_text(report.html, encoding="utf-8")
    (folder / "report.md").write_text(report.markdown, encoding="utf-8")


def _plain_index(config: AssignmentConfig, links: dict[str, str]) -> str:
    """A bare list of the reports, for when the class summary cannot be rendered."""
    items = "".join(f'<li><a href="{escape(link)}">{escape(ident)}</a></li>'
                    for ident, link in sorted(links.items()))
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>"
            f"{escape(config.title)}</title></head><body><h1>{escape(config.title)}</h1>"
            f"<p>The class summary could not be rendered; the reports:</p><ul>{items}</ul>"
            "</body></html>\n")


def inputs_from_results(folder: Path, config: AssignmentConfig,
                        problems: list[tuple[str, str]] | None = None) -> list[ReportInput]:
    """`ReportInput`s from ``<folder>/<student>/results.json`` (`grader autograde --out`).

    A file that cannot be read is skipped and added to `problems` (when given).
    """
    paths = sorted(folder.glob("*/results.json"))
    if not paths:
        raise FileNotFoundError(_("{folder}: no <student>/results.json files; expected the "
                                  "folder `grader autograde {id} ... --out` wrote",
                                  folder=folder, id=config.id))
    inputs = []
    for path in paths:
        read = _isolated("read results.json", lambda path=path: from_results_json(
            path, config=config))
        if isinstance(read, Failed):
            if problems is not None:
                problems.append((f"{path.parent.name}/results.json", read.problem))
            continue
        inputs.append(read)
    return inputs


def _course_language(config: AssignmentConfig) -> str | None:
    """The language of the assignment's course (course.toml), or None outside a course."""
    from grader.course import COURSE_FILE, load_course

    if not (config.repo_root / COURSE_FILE).is_file():
        return None
    return load_course(config.repo_root).language


def main(*, assignment: str, db: str | Path | None = None, out: Path | None = None,
         results: Path | None = None) -> int:
    """Writes the reports of one assignment.

    Args:
        assignment: the assignment id (or its folder or assignment.toml).
        db: the gradebook (a SQLAlchemy URL or a SQLite path; default: gradebook.db in
            the course folder).
        out: where to write; default ``<course>/feedback/<id>``.
        results: read ``results.json`` files from this folder instead of the gradebook.

    Returns:
        The exit status: 0 when written; 3 (`PROBLEMS_EXIT`) when some student's report
        or results.json had a problem (each listed on stderr; the others are written);
        2 when the gradebook cannot be read.
    """
    config = load_assignment(assignment)
    out = out or config.repo_root / "feedback" / config.id  # in the course, never the tool
    roster: list[Any] = []
    problems: list[tuple[str, str]] = []
    if results is not None:
        inputs = inputs_from_results(results, config, problems)
    else:
        from grader.gradebook import DEFAULT_DB, GradebookError, open_gradebook

        db = db if db is not None else config.repo_root / DEFAULT_DB  # the course's
        try:
            with open_gradebook(db, create=False) as gradebook:  # a typo creates nothing
                inputs = []
                for row in gradebook.latest(config.id):
                    read = _isolated("read the grade", lambda row=row: from_grade_row(row))
                    if isinstance(read, Failed):
                        problems.append((row.student_id, read.problem))
                    else:
                        inputs.append(read)
                roster = list(gradebook.students())
        except GradebookError as error:
            print(f"grader feedback: {printable(str(error), limit=2000)}", file=sys.stderr)
            return 2
    # The run's language (--lang, $GRADER_LANG, the course's: set by the CLI), else the course's.
    language = (i18n.current_language() if i18n.ENV_VAR in os.environ
                else _course_language(config))
    written = write_feedback(inputs, config=config, out=out, roster=roster, language=language)
    problems += written.problems
    graded = sum(1 for row in inputs if row.grade is not None)
    total = len({*(_roster_id(e) for e in roster), *(row.student_id for row in inputs)})
    with i18n.speaking(language):  # the summary speaks the reports' language
        return _summary(config, out, written.index, graded=graded, total=total,
                        problems=problems, empty=not inputs and not roster)


def _summary(config: AssignmentConfig, out: Path, index: Path, *, graded: int, total: int,
             problems: list[tuple[str, str]], empty: bool) -> int:
    """Prints what `grader feedback` wrote, and each report's problem; the exit status."""
    print(_n("{id}: {n} graded, {missing} without a submission",
             "{id}: {n} graded, {missing} without a submission", graded, id=config.id,
             missing=total - graded))
    print(_("class summary:   {index}", index=index))
    print(_("student reports: {out}/<student>/report.html (and report.md)", out=out))
    if empty:
        print(_("no grades for `{id}` yet: run `grader autograde {id} ...` first", id=config.id))
    if problems:
        print("\n" + _n("{n} report had problems (the others are written):",
                        "{n} reports had problems (the others are written):", len(problems)),
              file=sys.stderr)
        for who, problem in problems:
            print("  " + _("{who}: {problem}; a short report saying so was written where "
                           "possible: fix the cause and run `grader feedback` again",
                           who=printable(who, limit=80), problem=printable(problem, limit=400)),
                  file=sys.stderr)
        return PROBLEMS_EXIT
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

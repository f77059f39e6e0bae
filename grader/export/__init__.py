"""`grader export`: grades out of the gradebook, one module per format.

- `grader.export.csv`: ``--format csv``, one row per student for an LMS or a
  spreadsheet, ``--encoding`` utf-8-sig (default) / utf-8 / gbk, columns from
  `grader.export.presets` (``--columns``, ``--preset canvas|moodle|generic``), every cell
  neutralised against formula injection (OWASP).
- `grader.export.gradescope`: ``--format gradescope``, ``<out>/<student>/results.json``
  through the one serializer, valid against Gradescope's schema.
- `grader.export.autograder`: ``--format gradescope-autograder``, a zip Gradescope runs.

Every number comes from the one grade record (`grader.grade_record`) stored in the
gradebook; student ids become folder names only through `grader.ids.file_name`; every
results.json is strict JSON. The gradebook must exist (a mistyped ``--db`` creates
nothing).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from grader.config import AssignmentConfig, ConfigError, load_assignment
from grader.export.autograder import run_gradescope_autograder, write_autograder_bundle
from grader.export.common import PROBLEMS_EXIT, ExportError, listing
from grader.export.csv import (
    DEFAULT_ENCODING,
    ENCODINGS,
    FORMULA_STARTS,
    csv_cell,
    csv_rows,
    write_csv,
)
from grader.export.gradescope import SCHEMA_PATH, gradescope_results, write_gradescope
from grader.export.presets import COLUMN_KEYS, DEFAULT_COLUMNS, PRESETS, parse_columns
from grader.gradebook import DEFAULT_DB, GradebookError, database_url, open_gradebook
from grader.ids import printable

FORMATS = ("csv", "gradescope", "gradescope-autograder")


def main(*, assignment: str, format: str, out: Path | str | None, db: str | Path | None = None,
         columns: str | Sequence[str] | None = None, preset: str | None = None,
         student: str | None = None, encoding: str = DEFAULT_ENCODING) -> int:
    """Exports an assignment's grades.

    Args:
        assignment: the assignment id (or its folder).
        format: one of `FORMATS`.
        out: csv: a file, a folder (``<id>-grades.csv`` in it) or "-" for stdout;
            gradescope: a folder; gradescope-autograder: a zip or a folder. Default: the
            current folder.
        db: the gradebook (URL or SQLite path); default: ``gradebook.db`` in the course
            folder.
        columns: csv columns, "key[=Header],..." (see `COLUMN_KEYS`).
        preset: csv column preset, one of `PRESETS`.
        student: export this student only.
        encoding: csv: one of `ENCODINGS` (default utf-8-sig, which Excel reads).

    Returns:
        0; 2 after printing what was wrong (an unknown assignment, student, format,
        column or preset); 3 (`PROBLEMS_EXIT`) when some students' rows or files could
        not be exported (each listed on stderr; the others are written).
    """
    problems: list[tuple[str, str]] = []
    try:
        written = export(assignment=assignment, format=format, out=out, db=db,
                         columns=columns, preset=preset, student=student, problems=problems,
                         encoding=encoding)
    except (ExportError, GradebookError) as error:
        shown = "\n".join(printable(line, limit=2000) for line in str(error).splitlines())
        print(f"grader: {shown}", file=sys.stderr)  # student ids: no terminal escapes
        return 2
    if written:
        print(written)
    if problems:
        print(f"{len(problems)} student(s) could not be exported (the others are):",
              file=sys.stderr)
        for who, problem in problems:
            print(f"  {printable(who, limit=80)}: {printable(problem, limit=400)}; their "
                  "grade cell is left empty: fix the cause and export again", file=sys.stderr)
        return PROBLEMS_EXIT
    return 0


def export(*, assignment: str, format: str, out: Path | str | None,
           db: str | Path | None = None, columns: str | Sequence[str] | None = None,
           preset: str | None = None, student: str | None = None,
           problems: list[tuple[str, str]] | None = None,
           encoding: str = DEFAULT_ENCODING) -> str:
    """`main` without the printing: returns what was written, raises `ExportError`.

    A student whose row or results.json cannot be made is left out (empty grade cells in
    a CSV) and added to `problems` as (student id, "the grader could not ...: reason").
    """
    problems = problems if problems is not None else []
    if format not in FORMATS:
        raise ExportError(f"unknown format `{format}`; formats: {', '.join(FORMATS)}")
    if preset is not None and preset not in PRESETS:
        raise ExportError(f"unknown preset `{preset}`; presets: {', '.join(PRESETS)}")
    if encoding not in ENCODINGS:
        raise ExportError(f"unknown encoding `{encoding}`; encodings: {', '.join(ENCODINGS)}")
    if (preset or columns) and format != "csv":
        raise ExportError(f"--preset and --columns apply to --format csv; received "
                          f"--format {format}")
    config = _config_or_none(assignment)
    if format == "gradescope-autograder":
        if config is None:
            raise _unknown_assignment(assignment, [])
        target = Path(out) if out is not None else Path.cwd()
        if target.is_dir() or target.suffix != ".zip":
            target = target / f"{config.id}-gradescope-autograder.zip"
        return str(write_autograder_bundle(config, target))
    url = database_url(db if db is not None else (
        config.repo_root / DEFAULT_DB if config is not None else Path(DEFAULT_DB)))
    assignment_id = config.id if config is not None else assignment
    with open_gradebook(url, create=False) as gradebook:
        known = [a.id for a in gradebook.assignments()]
        if assignment_id not in known:
            raise _unknown_assignment(assignment_id, known)
        rows = gradebook.latest(assignment_id)
        missing = gradebook.missing(assignment_id)
        overrides = gradebook.overrides(assignment_id)
        info = next(a for a in gradebook.assignments() if a.id == assignment_id)
        if student is not None:
            ids = sorted({*(r.student_id for r in rows), *(s.id for s in missing)})
            if student not in ids:
                raise ExportError(f"unknown student `{student}` for `{assignment_id}`; "
                                  f"students: {listing(ids)}")
            rows = [r for r in rows if r.student_id == student]
            missing = [s for s in missing if s.id == student]
    if format == "csv":
        parts = ([p.name for p in config.parts] if config is not None else
                 list(dict.fromkeys(p.name for r in rows for p in r.grade.parts)))
        chosen = parse_columns(columns if columns is not None else
                               PRESETS.get(preset or "", DEFAULT_COLUMNS),
                               parts=parts, title=info.title or assignment_id,
                               assignment_id=assignment_id)
        table = csv_rows(chosen, rows, [(s.id, s.display_name) for s in missing], overrides,
                         max_points=info.max_points, problems=problems)
        return write_csv(chosen, table, out, f"{assignment_id}-{preset or 'grades'}.csv",
                         encoding=encoding)
    if config is None:
        raise ExportError(f"--format gradescope needs the assignment's assignment.toml "
                          f"(which parts are public); `{assignment}` has none: "
                          f"{_on_disklisting()}")
    folder = Path(out) if out is not None else Path.cwd() / f"{assignment_id}-gradescope"
    return write_gradescope(config, rows, folder, problems)


def _config_or_none(assignment: str) -> AssignmentConfig | None:
    try:
        return load_assignment(assignment)
    except ConfigError as error:
        if "no such file" in str(error):
            return None
        raise ExportError(str(error)) from None


def _on_disk() -> list[str]:
    from grader.course import find_course

    course = find_course(required=False)
    return course.assignment_ids() if course is not None else []


def _on_disklisting() -> str:
    return f"assignments/ has: {listing(_on_disk())}"


def _unknown_assignment(assignment: str, in_gradebook: Sequence[str]) -> ExportError:
    return ExportError(f"unknown assignment `{assignment}`; the gradebook has: "
                       f"{listing(list(in_gradebook))}; {_on_disklisting()}")


__all__ = [
    "COLUMN_KEYS",
    "DEFAULT_ENCODING",
    "ENCODINGS",
    "FORMATS",
    "FORMULA_STARTS",
    "PRESETS",
    "PROBLEMS_EXIT",
    "SCHEMA_PATH",
    "ExportError",
    "csv_cell",
    "csv_rows",
    "export",
    "gradescope_results",
    "main",
    "parse_columns",
    "run_gradescope_autograder",
    "write_autograder_bundle",
    "write_csv",
]

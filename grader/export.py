"""`grader export`: grades out of the gradebook, in the formats LMSs and Gradescope take.

Formats:

- ``csv``: one row per student (roster students without a submission included), with
  per-part points, total, lateness and final score. Columns are chosen and named with
  ``columns`` (``"student_id=Student Number,parts,final_score=Grade"``) or a preset:

  - ``canvas``: ``Student, ID, SIS User ID, SIS Login ID, Section, <assignment title>``,
    the header Canvas's gradebook export has and its import expects. ``ID`` holds the
    student id: the Canvas user id for Canvas bulk downloads (what intake records).
    Canvas matches rows by ID (or SIS ids) and the grade column by assignment name.
  - ``moodle``: ``ID number, Full name, <assignment title>``. Moodle's "Import grades >
    CSV file" asks which column identifies the user ("Map from": ``ID number``, "Map
    to": "ID number") and which grade item each column feeds; a column named like the
    item is matched by name.

  A roster student without a submission gets empty part and total cells and a final
  score of 0 (so an LMS import records the zero, which an empty cell would not), status
  ``missing``; an override still applies to them.
- ``gradescope``: ``<out>/<student>/results.json`` per student, valid against
  `grader/schemas/gradescope_results.schema.json` (Gradescope's documented fields only;
  ours go under ``extra_data``). Tests of public parts are ``visible``, hidden ones
  ``after_due_date``. The top-level score is the final score (late policy and override
  applied), which Gradescope takes over the sum of the tests.
- ``gradescope-autograder``: a zip to upload as a Gradescope autograder: ``setup.sh``
  (installs this grader in Gradescope's Ubuntu image), ``run_autograder`` (grades
  ``/autograder/submission`` and writes ``/autograder/results/results.json``), the
  grader's source and the course files of the assignment. Gradescope applies its own late
  policy there, so the bundle's results carry the score before any late penalty.

Output that cannot attack its reader:

- Every CSV cell (headers included) goes through `csv_cell`, OWASP's rule against CSV
  injection: a cell beginning with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return
  gets a leading single quote, so a spreadsheet or an LMS import reads it as text, never as
  a formula. Decision for numbers: a cell that is a plain decimal number (``-3``, ``7.5``,
  ``1e-05``) is left as it is; it cannot be a formula, and an LMS import needs the number.
  Scores are never negative here; an instructor's override could be.
- Student ids become folder names only through `grader.ids.file_name`.
- Every results.json is strict JSON (`grader.results.records.json_text`: non-finite
  numbers as null).
"""

from __future__ import annotations

import csv
import io
import math
import re
import sys
import traceback
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from grader.config import AssignmentConfig, ConfigError, load_assignment
from grader.gradebook import (
    DEFAULT_DB,
    GradebookError,
    GradeRow,
    Override,
    database_url,
    open_gradebook,
)
from grader.ids import file_name, printable
from grader.results.records import PASSED, Grade, case_shares, grader_problem, json_text

FORMATS = ("csv", "gradescope", "gradescope-autograder")
SCHEMA_PATH = Path(__file__).parent / "schemas" / "gradescope_results.schema.json"
# CSV column keys; "part:<name>" is one part's points and "parts" all of them.
COLUMN_KEYS = {
    "student_id": "the student's id",
    "name": "the student's display name",
    "parts": "one column per part: its points",
    "part:<name>": "one part's points",
    "score": "the points the tests earned (before lateness)",
    "max_score": "the points the assignment is worth",
    "submitted_at": "the submission time (ISO 8601, UTC)",
    "late_days": "started days late",
    "late_multiplier": "the late policy's factor",
    "override": "the instructor's override, if any",
    "override_reason": "why the override was given",
    "final_score": "the grade: override, else score x late multiplier",
    "status": "graded, overridden or missing",
    "blank": "an empty column (for LMS columns we have no data for)",
}
DEFAULT_COLUMNS = ("student_id", "name", "parts", "score", "max_score", "submitted_at",
                   "late_days", "late_multiplier", "override", "final_score", "status")
# Headers may use {title} and {id}: the assignment's.
PRESETS: Mapping[str, tuple[str, ...]] = {
    "canvas": ("name=Student", "student_id=ID", "blank=SIS User ID", "blank=SIS Login ID",
               "blank=Section", "final_score={title}"),
    "moodle": ("student_id=ID number", "name=Full name", "final_score={title}"),
}
# OWASP's CSV injection rule: cells starting with these are read as formulas.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?")
PROBLEMS_EXIT = 3  # exit status when some students could not be exported (listed on stderr)
HIDDEN_VISIBILITY = "after_due_date"
PUBLIC_VISIBILITY = "visible"


class ExportError(ValueError):
    """An export that cannot be made; the message names what was asked and what exists."""


@dataclass(frozen=True)
class _Column:
    key: str
    header: str


# --- entry point ------------------------------------------------------------------------


def main(*, assignment: str, format: str, out: Path | str | None, db: str | Path | None = None,
         columns: str | Sequence[str] | None = None, preset: str | None = None,
         student: str | None = None) -> int:
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

    Returns:
        0; 2 after printing what was wrong (an unknown assignment, student, format,
        column or preset); 3 (`PROBLEMS_EXIT`) when some students' rows or files could
        not be exported (each listed on stderr; the others are written).
    """
    problems: list[tuple[str, str]] = []
    try:
        written = export(assignment=assignment, format=format, out=out, db=db,
                         columns=columns, preset=preset, student=student, problems=problems)
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
           problems: list[tuple[str, str]] | None = None) -> str:
    """`main` without the printing: returns what was written, raises `ExportError`.

    A student whose row or results.json cannot be made is left out (empty grade cells in
    a CSV) and added to `problems` as (student id, "the grader could not ...: reason").
    """
    problems = problems if problems is not None else []
    if format not in FORMATS:
        raise ExportError(f"unknown format `{format}`; formats: {', '.join(FORMATS)}")
    if preset is not None and preset not in PRESETS:
        raise ExportError(f"unknown preset `{preset}`; presets: {', '.join(PRESETS)}")
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
    with open_gradebook(url) as gradebook:
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
                                  f"students: {_listing(ids)}")
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
        return _write_csv(chosen, table, out, f"{assignment_id}-{preset or 'grades'}.csv")
    if config is None:
        raise ExportError(f"--format gradescope needs the assignment's assignment.toml "
                          f"(which parts are public); `{assignment}` has none: "
                          f"{_on_disk_listing()}")
    folder = Path(out) if out is not None else Path.cwd() / f"{assignment_id}-gradescope"
    written = 0
    for row in rows:
        try:
            path = folder / file_name(row.student_id) / "results.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            results = gradescope_results(config, row.grade, score=row.final_score,
                                         late_days=row.late_days,
                                         late_multiplier=row.late_multiplier,
                                         override=row.override)
            path.write_text(json_text(results), encoding="utf-8")
            written += 1
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as error:  # noqa: BLE001 - one student never stops the export
            problems.append((row.student_id, grader_problem("export its results.json", error)))
    return f"{written} results.json written under {folder}/"


# --- csv --------------------------------------------------------------------------------


def parse_columns(spec: str | Sequence[str], *, parts: Sequence[str], title: str = "",
                  assignment_id: str = "") -> list[_Column]:
    """Columns from "key[=Header]" items (a comma-separated string or a sequence).

    Raises:
        ExportError: for an unknown key or part, naming it and listing the keys.
    """
    items = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec)]
    result = []
    for item in filter(None, items):
        key, _, header = item.partition("=")
        key = key.strip()
        header = header.strip().format(title=title, id=assignment_id) if header else ""
        if key == "parts":
            result.extend(_Column(f"part:{p}", p) for p in parts)
        elif key.startswith("part:"):
            if key[5:] not in parts:
                raise ExportError(f"unknown part `{key[5:]}` in column `{item}`; parts: "
                                  f"{', '.join(parts)}")
            result.append(_Column(key, header or key[5:]))
        elif key in COLUMN_KEYS:
            result.append(_Column(key, header or key))
        else:
            keys = ", ".join(k for k in COLUMN_KEYS)
            raise ExportError(f"unknown column `{key}`; columns: {keys} "
                              f"(each may be renamed: key=Header)")
    return result


def csv_rows(columns: Sequence[_Column], rows: Sequence[GradeRow],
             missing: Sequence[tuple[str, str]], overrides: Mapping[str, Override], *,
             max_points: float, problems: list[tuple[str, str]] | None = None
             ) -> list[list[str]]:
    """The table's rows, by student id: graded students and roster students without work.

    A graded row that cannot be made keeps its id and name, empty grade cells (an LMS
    import leaves that grade alone) and the status "not exported"; the reason is added
    to `problems`.
    """
    records: list[tuple[str, dict[str, str]]] = []
    for row in rows:
        try:
            values = _graded_values(row)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as error:  # noqa: BLE001 - one student never stops the export
            if problems is not None:
                problems.append((row.student_id, grader_problem("export its row", error)))
            values = {"student_id": row.student_id, "name": row.display_name,
                      "status": "not exported"}
        records.append((row.student_id, values))
    for student_id, name in missing:
        override = overrides.get(student_id)
        records.append((student_id, {
            "student_id": student_id, "name": name, "max_score": _num(max_points),
            "override": _num(override.points) if override else "",
            "override_reason": override.reason if override else "",
            "final_score": _num(override.points) if override else "0",
            "status": "overridden" if override else "missing",
        }))
    records.sort(key=lambda record: record[0])
    return [[values.get(c.key, "") for c in columns] for _, values in records]


def _graded_values(row: GradeRow) -> dict[str, str]:
    """A graded student's cells, by column key."""
    return {
        "student_id": row.student_id, "name": row.display_name,
        "score": _num(row.score), "max_score": _num(row.max_score),
        "submitted_at": _time(row.submitted_at), "late_days": str(row.late_days),
        "late_multiplier": _num(row.late_multiplier),
        "override": _num(row.override.points) if row.override else "",
        "override_reason": row.override.reason if row.override else "",
        "final_score": _num(row.final_score),
        "status": "overridden" if row.override else "graded",
        **{f"part:{p.name}": _num(p.points) for p in row.grade.parts},
    }


def csv_cell(value: object) -> str:
    """A CSV cell that no spreadsheet or LMS import reads as a formula (OWASP's rule).

    Args:
        value: The cell's value.

    Returns:
        ``str(value)``, with a single quote in front when it starts with one of
        `FORMULA_STARTS` and is not a plain decimal number.

    Examples:
        >>> csv_cell("=1+2")
        "'=1+2"
        >>> csv_cell("-3")
        '-3'
    """
    text = str(value)
    if text.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def _write_csv(columns: Sequence[_Column], table: Sequence[Sequence[str]],
               out: Path | str | None, default_name: str) -> str:
    def write(stream: TextIO) -> None:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow([csv_cell(c.header) for c in columns])
        writer.writerows([csv_cell(cell) for cell in row] for row in table)

    if str(out) == "-":
        buffer = io.StringIO()
        write(buffer)
        return buffer.getvalue().rstrip("\n")
    target = Path(out) if out is not None else Path.cwd()
    if target.is_dir():
        target = target / default_name
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", encoding="utf-8", newline="") as stream:
        write(stream)
    return f"{len(table)} students written to {target}"


# --- gradescope results.json ----------------------------------------------------------


def gradescope_results(config: AssignmentConfig, grade: Grade, *, score: float | None = None,
                       late_days: int = 0, late_multiplier: float = 1.0,
                       override: Override | None = None) -> dict[str, Any]:
    """Gradescope's results.json for a grade, with documented fields only.

    Args:
        config: the assignment: which parts are public.
        grade: the grade.
        score: the top-level score; default: the tests' total.
        late_days, late_multiplier, override: shown in the output and in extra_data.

    Returns:
        A dict valid against `SCHEMA_PATH`.
    """
    public = {part.name for part in config.parts if part.public}
    tests = []
    for p, part in enumerate(grade.parts, start=1):
        shares = case_shares(part.max_points, part.tests)
        for t, (outcome, max_score) in enumerate(zip(part.tests, shares, strict=True), start=1):
            shown = part.name in public
            tests.append({
                "score": round(max_score * outcome.fraction, 6),
                "max_score": round(max_score, 6),
                "status": "passed" if outcome.status == PASSED else "failed",
                "name": f"{part.name}: {outcome.case}",
                "number": f"{p}.{t}",
                "output": outcome.message,
                "tags": [part.name, "public" if shown else "hidden"],
                "visibility": PUBLIC_VISIBILITY if shown else HIDDEN_VISIBILITY,
                "extra_data": {"status": outcome.status,
                               "duration_s": round(outcome.duration_s, 4)},
            })
    notes = list(grade.problems)
    if grade.skipped_statements:
        notes.append("Statements not run at import (top-level code is skipped):")
        notes.extend(f"  {s}" for s in grade.skipped_statements)
    if late_multiplier != 1.0 or late_days:
        notes.append(f"Late by {late_days} day(s): the score is multiplied by "
                     f"{late_multiplier:g}.")
    if override is not None:
        notes.append(f"Instructor override: {override.points:g} points. {override.reason}"
                     .rstrip())
    return {
        "score": round(grade.score if score is None else score, 6),
        "execution_time": round(grade.execution_time_s, 3),
        "output": "\n".join(notes),
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
        "extra_data": {
            "student_id": grade.student_id, "assignment": grade.assignment,
            "tests_score": grade.score, "max_score": grade.max_score,
            "late_days": late_days, "late_multiplier": late_multiplier,
            "override": override.points if override else None,
            "parts": [{"name": p.name, "points": p.points, "max_points": p.max_points}
                      for p in grade.parts],
        },
    }


# --- gradescope autograder bundle -------------------------------------------------------

SETUP_SH = """\
#!/usr/bin/env bash
# Gradescope runs this once, as root, while it builds the autograder image (Ubuntu).
# It installs nn-grader (bundled in nn-grader/) and what grading needs: bubblewrap for the
# sandbox, and a dataset for the accuracy tests.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends python3 python3-venv python3-pip bubblewrap
# Fashion-MNIST from the distribution; MNIST is fetched below when the build has network.
apt-get install -y --no-install-recommends dataset-fashion-mnist \\
  || echo "dataset-fashion-mnist is not packaged here; relying on MNIST"
python3 -m venv /autograder/venv
/autograder/venv/bin/pip install --upgrade pip
/autograder/venv/bin/pip install /autograder/source/nn-grader
/autograder/venv/bin/python -m grader data fetch || echo "MNIST not downloaded"
/autograder/venv/bin/python -m grader data check
"""

RUN_AUTOGRADER = """\
#!/usr/bin/env bash
# Gradescope runs this for each submission: grade /autograder/submission with the hidden
# suite of `{assignment}` and write /autograder/results/results.json.
# AUTOGRADER_ROOT (default /autograder) and GRADER_PYTHON (default the venv setup.sh made)
# let the bundle be tried outside Gradescope.
set -euo pipefail
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
PYTHON="${{GRADER_PYTHON:-$ROOT/venv/bin/python}}"
mkdir -p "$ROOT/results"
cd "$ROOT/source/course"
exec "$PYTHON" - "$ROOT" "$ROOT/source/course" "{assignment}" <<'PY'
import sys
from pathlib import Path

from grader.export import run_gradescope_autograder

sys.exit(run_gradescope_autograder(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]))
PY
"""

_BUNDLED_PROJECT = ("pyproject.toml", "README.md", "grader", "reference")


def write_autograder_bundle(config: AssignmentConfig, target: Path) -> Path:
    """Writes the Gradescope autograder zip for an assignment.

    The zip holds ``setup.sh`` and ``run_autograder`` at its root, ``nn-grader/`` (this
    grader's source, installed by setup.sh) and ``course/`` (the assignment's folder, its
    hidden suite and the reference files its assignment.toml names).

    Raises:
        ExportError: when the grader's source tree (pyproject.toml) cannot be found.
    """
    project = Path(__file__).resolve().parents[1]
    if not (project / "pyproject.toml").is_file():
        raise ExportError(f"the autograder bundle needs nn-grader's source checkout; no "
                          f"pyproject.toml in {project}")
    course = config.repo_root
    course_files = [config.root, course / "autograde_tests" / config.id,
                    *(f.reference for f in config.files if f.reference is not None)]
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as bundle:
        _add_script(bundle, "setup.sh", SETUP_SH)
        _add_script(bundle, "run_autograder", RUN_AUTOGRADER.format(assignment=config.id))
        for name in _BUNDLED_PROJECT:
            _add_tree(bundle, project / name, f"nn-grader/{name}")
        for path in course_files:
            rel = path.resolve().relative_to(course.resolve()).as_posix()
            _add_tree(bundle, path, f"course/{rel}")
    return target


def run_gradescope_autograder(root: Path, course: Path, assignment: str) -> int:
    """Inside Gradescope: grade ``<root>/submission``, write ``<root>/results/results.json``.

    A grader failure still writes a results.json (score 0, the reason in its output), so
    the student sees a message rather than Gradescope's "autograder failed"; the traceback
    goes to stderr, which only instructors see.
    """
    from grader.grading.run import grade_path

    results = root / "results" / "results.json"
    results.parent.mkdir(parents=True, exist_ok=True)
    try:
        config = load_assignment(course / "assignments" / assignment)
        graded = grade_path(config, root / "submission")
        payload = gradescope_results(config, graded.grade)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - any failure must still reach the student
        reason = printable(f"{type(exc).__name__}: {exc}", limit=400)
        payload = {"score": 0.0, "output": f"The autograder could not grade this "
                   f"submission: {reason}", "tests": []}
        traceback.print_exc()
    results.write_text(json_text(payload), encoding="utf-8")
    return 0


def _add_script(bundle: zipfile.ZipFile, name: str, text: str) -> None:
    info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
    info.external_attr = 0o100755 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    bundle.writestr(info, text)


def _add_tree(bundle: zipfile.ZipFile, path: Path, arcname: str) -> None:
    if path.is_file():
        bundle.write(path, arcname)
        return
    for item in sorted(path.rglob("*")):
        rel = item.relative_to(path)
        if item.is_file() and not any(part == "__pycache__" or part.startswith(".")
                                      for part in rel.parts):
            bundle.write(item, f"{arcname}/{rel.as_posix()}")


# --- helpers ----------------------------------------------------------------------------


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


def _on_disk_listing() -> str:
    return f"assignments/ has: {_listing(_on_disk())}"


def _unknown_assignment(assignment: str, in_gradebook: Sequence[str]) -> ExportError:
    return ExportError(f"unknown assignment `{assignment}`; the gradebook has: "
                       f"{_listing(list(in_gradebook))}; {_on_disk_listing()}")


def _listing(names: Sequence[str]) -> str:
    return ", ".join(names[:20]) + (f", ... ({len(names) - 20} more)"
                                    if len(names) > 20 else "") if names else "none"


def _num(value: float) -> str:
    """A number's cell; a non-finite one is left empty (an LMS import skips it)."""
    number = float(value)
    return format(round(number, 4), "g") if math.isfinite(number) else ""


def _time(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value is not None else ""



__all__ = [
    "COLUMN_KEYS",
    "FORMATS",
    "FORMULA_STARTS",
    "PRESETS",
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
]

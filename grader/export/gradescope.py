"""`grader export --format gradescope`: ``<out>/<student>/results.json`` per student.

Each file is written by the one serializer (`grader.results.records.to_results_json`) and
is valid against `SCHEMA_PATH` (Gradescope's documented fields only; ours go under
``extra_data``). Tests of public parts are ``visible``, hidden ones ``after_due_date``.
The top-level score is the final score of the grade record (late policy, extension and
override applied), which Gradescope takes over the sum of the tests. Folder names come
from `grader.ids.file_name`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grader.config import AssignmentConfig
from grader.grade_record import GradeRecord
from grader.gradebook import GradeRow
from grader.ids import file_name
from grader.results.records import Grade, grader_problem, json_text, to_results_json

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "gradescope_results.schema.json"


def gradescope_results(config: AssignmentConfig, grade: Grade, record: GradeRecord | None = None,
                       *, display_name: str = "", notes: Sequence[str] = ()) -> dict[str, Any]:
    """Gradescope's results.json for a grade (`to_results_json` with the assignment's
    public parts).

    Args:
        config: the assignment: which parts are public.
        grade: the grade.
        record: its grade record; None: the tests' score (Gradescope's own late policy).
        display_name, notes: the student's name and the intake's notes.

    Returns:
        A dict valid against `SCHEMA_PATH`.
    """
    public = tuple(part.name for part in config.parts if part.public)
    return to_results_json(grade, record, public_parts=public, display_name=display_name,
                           notes=notes)


def write_gradescope(config: AssignmentConfig, rows: Sequence[GradeRow], folder: Path,
                     problems: list[tuple[str, str]]) -> str:
    """Writes each row's results.json under `folder`; a student whose file fails is listed
    in `problems` and the others are written."""
    written = 0
    for row in rows:
        try:
            path = folder / file_name(row.student_id) / "results.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            results = gradescope_results(config, row.grade, row.record,
                                         display_name=row.display_name, notes=row.notes)
            path.write_text(json_text(results), encoding="utf-8")
            written += 1
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as error:  # noqa: BLE001 - one student never stops the export
            problems.append((row.student_id, grader_problem("export its results.json", error)))
    return f"{written} results.json written under {folder}/"

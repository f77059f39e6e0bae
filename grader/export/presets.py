"""CSV columns: the keys a column can show, and the presets LMS grade imports expect.

A column is "key[=Header]" (``student_id=Student Number``); ``parts`` expands to one
column per part, ``part:<name>`` is one part. Headers may use ``{title}`` and ``{id}``:
the assignment's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from grader.export.common import ExportError

COLUMN_KEYS = {
    "student_id": "the student's id",
    "name": "the student's display name",
    "parts": "one column per part: its points",
    "part:<name>": "one part's points",
    "score": "the points the tests earned (before lateness)",
    "max_score": "the points the assignment is worth",
    "submitted_at": "the submission time (ISO 8601, UTC)",
    "late_days": "started days late (after the extension and the grace period)",
    "late_multiplier": "the late policy's factor",
    "extension_days": "the student's extension in days (grader extend)",
    "extension_reason": "why the extension was granted",
    "override": "the instructor's override, if any",
    "override_reason": "why the override was given",
    "final_score": "the grade: override, else score x late multiplier",
    "status": "graded, overridden or missing",
    "comment": "lateness, extension and override in one sentence (an LMS feedback comment)",
    "blank": "an empty column (for LMS columns we have no data for)",
}
DEFAULT_COLUMNS = ("student_id", "name", "parts", "score", "max_score", "submitted_at",
                   "late_days", "late_multiplier", "override", "final_score", "status")
PRESETS: Mapping[str, tuple[str, ...]] = {
    # Canvas's gradebook export header, which its import expects; ID holds the student id.
    "canvas": ("name=Student", "student_id=ID", "blank=SIS User ID", "blank=SIS Login ID",
               "blank=Section", "final_score={title}"),
    # Moodle's "Import grades > CSV file": map "ID number" to the user, the title to the item.
    "moodle": ("student_id=ID number", "name=Full name", "final_score={title}"),
    # Any other LMS or a spreadsheet (a Chinese university's 教务系统 import, say): one row
    # per student, the grade and its maximum, and the adjustments in words.
    "generic": ("student_id=id", "name=name", "final_score=grade", "max_score=max_grade",
                "status=status", "comment=comment"),
}


@dataclass(frozen=True)
class Column:
    key: str
    header: str


def parse_columns(spec: str | Sequence[str], *, parts: Sequence[str], title: str = "",
                  assignment_id: str = "") -> list[Column]:
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
            result.extend(Column(f"part:{p}", p) for p in parts)
        elif key.startswith("part:"):
            if key[5:] not in parts:
                raise ExportError(f"unknown part `{key[5:]}` in column `{item}`; parts: "
                                  f"{', '.join(parts)}")
            result.append(Column(key, header or key[5:]))
        elif key in COLUMN_KEYS:
            result.append(Column(key, header or key))
        else:
            keys = ", ".join(k for k in COLUMN_KEYS)
            raise ExportError(f"unknown column `{key}`; columns: {keys} "
                              f"(each may be renamed: key=Header)")
    return result

"""`grader export --format csv`: one row per student, in the encoding the reader's software
expects, every cell safe to open in a spreadsheet.

- Rows: graded students and roster students without a submission (final score 0, status
  ``missing``: an LMS import records the zero, which an empty cell would not); an
  override or extension still applies to them. Numbers come from the one grade record
  (`grader.grade_record`), as stored in the gradebook.
- Encoding (`ENCODINGS`): ``utf-8-sig`` by default (UTF-8 with a byte order mark: Excel on
  Chinese Windows opens it without garbling names), ``utf-8`` (LMS imports that refuse a
  BOM), ``gbk`` (older Chinese systems); a name GBK cannot hold is an error naming the
  student and the character, never a ``?`` in the file.
- Every cell, headers included, goes through `csv_cell`: OWASP's rule against CSV
  injection (a cell beginning with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return
  gets a leading single quote). A plain decimal number (``-3``, ``7.5``, ``1e-05``) is
  left as it is: it cannot be a formula, and an LMS import needs the number.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

from grader.export.common import ExportError, moment, num
from grader.export.presets import Column
from grader.gradebook import GradeRow, Override
from grader.ids import printable
from grader.results.records import grader_problem

ENCODINGS = ("utf-8-sig", "utf-8", "gbk")
DEFAULT_ENCODING = "utf-8-sig"
# OWASP's CSV injection rule: cells starting with these are read as formulas.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?")


def csv_rows(columns: Sequence[Column], rows: Sequence[GradeRow],
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
            values = graded_values(row)
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
            "student_id": student_id, "name": name, "max_score": num(max_points),
            "override": num(override.points) if override else "",
            "override_reason": override.reason if override else "",
            "final_score": num(override.points) if override else "0",
            "status": "overridden" if override else "missing",
            "comment": "; ".join(["no submission", *_override_words(override)]),
        }))
    records.sort(key=lambda record: record[0])
    return [[values.get(c.key, "") for c in columns] for _, values in records]


def graded_values(row: GradeRow) -> dict[str, str]:
    """A graded student's cells, by column key."""
    record = row.record
    words = []
    if record.extension_days:
        words.append(f"extension of {record.extension_days:g} day(s)"
                     + (f" ({record.extension_reason})" if record.extension_reason else ""))
    if record.late_days or record.late_multiplier != 1.0:
        words.append(f"{record.late_days} day(s) late: score x {record.late_multiplier:g}")
    words.extend(_override_words(row.override))
    return {
        "student_id": row.student_id, "name": row.display_name,
        "score": num(record.score), "max_score": num(record.max_score),
        "submitted_at": moment(record.submitted_at), "late_days": str(record.late_days),
        "late_multiplier": num(record.late_multiplier),
        "extension_days": num(record.extension_days) if record.extension_days else "",
        "extension_reason": record.extension_reason,
        "override": num(row.override.points) if row.override else "",
        "override_reason": row.override.reason if row.override else "",
        "final_score": num(row.final_score),
        "status": "overridden" if row.override else "graded",
        "comment": "; ".join(words),
        **{f"part:{p.name}": num(p.points) for p in row.grade.parts},
    }


def _override_words(override: Override | None) -> list[str]:
    if override is None:
        return []
    return [f"instructor override: {override.points:g}"
            + (f" ({override.reason})" if override.reason else "")]


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


def write_csv(columns: Sequence[Column], table: Sequence[Sequence[str]],
              out: Path | str | None, default_name: str, *,
              encoding: str = DEFAULT_ENCODING) -> str:
    """Writes the table (a file, a folder's `default_name`, or "-": returned as text).

    Raises:
        ExportError: an unknown encoding, or a cell the encoding cannot hold (which student,
            which character, what to use instead).
    """
    if encoding not in ENCODINGS:
        raise ExportError(f"unknown encoding `{encoding}`; encodings: {', '.join(ENCODINGS)} "
                          f"(utf-8-sig, the default, is what Excel reads without garbling)")
    buffer = io.StringIO()
    write_rows(buffer, columns, table)
    text = buffer.getvalue()
    if str(out) == "-":
        return text.rstrip("\n")
    data = _encoded(text, encoding, table)
    target = Path(out) if out is not None else Path.cwd()
    if target.is_dir():
        target = target / default_name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return f"{len(table)} students written to {target} ({encoding})"


def write_rows(stream: TextIO, columns: Sequence[Column], table: Sequence[Sequence[str]]) -> None:
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow([csv_cell(c.header) for c in columns])
    writer.writerows([csv_cell(cell) for cell in row] for row in table)


def _encoded(text: str, encoding: str, table: Sequence[Sequence[str]]) -> bytes:
    try:
        return text.encode(encoding)
    except UnicodeEncodeError as error:
        bad = error.object[error.start:error.end]
        row = next((row for row in table if any(bad in cell for cell in row)), None)
        who = f"the row of `{printable(row[0], limit=80)}`" if row else "a header"
        raise ExportError(f"{who} holds {bad!r} (U+{ord(bad[0]):04X}), which {encoding} "
                          f"cannot encode; export with --encoding utf-8-sig (Excel reads it) "
                          f"or correct the name in the roster") from None

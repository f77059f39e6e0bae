"""Read a class roster: a CSV with the columns ``id`` and ``name`` (any order, any case).

Other columns are ignored, so an LMS export with extra columns works once its id and name
columns are called ``id`` and ``name``. A UTF-8 byte order mark (Excel's "CSV UTF-8") is
accepted.
"""

from __future__ import annotations

import csv
from pathlib import Path

from grader.ids import InvalidId, printable, validate_id

__all__ = ["RosterError", "read_roster"]


class RosterError(ValueError):
    """A roster that cannot be used; the message names the file, the line and the problem."""


def read_roster(path: Path) -> list[tuple[str, str]]:
    """The (student id, display name) pairs of a roster CSV, in file order.

    Raises:
        RosterError: if the file is missing, lacks an ``id`` or ``name`` column, has a row
            without an id or with an invalid one (`grader.ids.validate_id`: control
            characters, path separators, over 64 characters), or lists an id twice.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise RosterError(f"{path}: no such roster file; expected a CSV with columns "
                          "id,name") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RosterError(f"{path}: cannot read the roster: {exc}") from None
    reader = csv.DictReader(text.splitlines())
    columns = {name.strip().lower(): name for name in reader.fieldnames or ()}
    missing = [c for c in ("id", "name") if c not in columns]
    if missing:
        raise RosterError(f"{path}: the roster needs the columns id,name; missing: "
                          f"{', '.join(missing)}; columns found: "
                          f"{', '.join(reader.fieldnames or ()) or 'none'}")
    roster: list[tuple[str, str]] = []
    seen: dict[str, int] = {}
    for line, row in enumerate(reader, start=2):
        student_id = (row.get(columns["id"]) or "").strip()
        name = (row.get(columns["name"]) or "").strip()
        if not student_id:
            if not any((value or "").strip() for value in row.values()):
                continue  # a blank line
            raise RosterError(f"{path}: line {line} has no id; received: "
                              f"name={printable(name, limit=80)!r}")
        try:
            student_id = validate_id(student_id)
        except InvalidId as exc:
            raise RosterError(f"{path}: line {line}: {exc}") from None
        if student_id in seen:
            raise RosterError(f"{path}: line {line}: id {student_id!r} is already listed "
                              f"on line {seen[student_id]}")
        seen[student_id] = line
        roster.append((student_id, name))
    return roster


def main(*, roster: Path, db: str | Path | None = None) -> int:
    """`grader roster ROSTER.csv [--db URL]`: adds a class roster to the gradebook.

    Students on the roster who never submit then appear in exports (final score 0) and
    get a "no submission" report.
    """
    import sys

    from grader.gradebook.store import GradebookError, open_gradebook

    try:
        students = read_roster(roster)
        with open_gradebook(db) as gradebook:
            new = gradebook.add_students(students)
    except (RosterError, GradebookError) as error:
        print(f"grader: {error}", file=sys.stderr)
        return 2
    print(f"{len(students)} students on the roster, {new} new to the gradebook")
    return 0

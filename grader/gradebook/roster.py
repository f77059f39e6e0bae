"""Read a class roster: a CSV with a student id and a name per row.

- Columns: ``id`` and ``name`` (any order, any case), or any headers with a mapping
  (``--columns 学号=id,姓名=name``). Other columns are ignored. Headers that are neither
  and no mapping: refused, with the columns found and the mapping to give.
- Encoding: UTF-8 with or without a byte order mark (Excel's "CSV UTF-8"), else GBK (what
  Excel on Chinese Windows saves as plain "CSV"; read as GB 18030, its superset). Anything
  else is refused with what to do.
- Every id passes `grader.ids.validate_id`; a name is at most `MAX_NAME` characters
  without control characters (names reach reports, terminals and CSV cells).
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path

from grader.ids import InvalidId, printable, validate_id

__all__ = ["MAX_NAME", "RosterError", "parse_columns", "read_roster", "read_text"]

MAX_NAME = 300  # the gradebook's display_name column
TARGETS = ("id", "name")
# Headers an LMS or a 教务系统 export uses, only to suggest a mapping (never applied silently).
SUGGESTIONS = {
    "id": ("学号", "学生学号", "学生编号", "学籍号", "student id", "student_id", "student number",
           "id number", "sis user id", "login", "username", "用户名"),
    "name": ("姓名", "学生姓名", "名字", "full name", "student", "student name", "display name"),
}


class RosterError(ValueError):
    """A roster that cannot be used; the message names the file, the line and the problem."""


def read_text(path: Path) -> tuple[str, str]:
    """A roster file's text and the encoding it was read in (utf-8-sig, utf-8 or gbk).

    Raises:
        RosterError: a missing or unreadable file, or neither UTF-8 nor GBK.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise RosterError(f"{path}: no such roster file; expected a CSV with columns "
                          "id,name") from None
    except OSError as exc:
        raise RosterError(f"{path}: cannot read the roster: {exc}") from None
    if data.startswith(b"\xef\xbb\xbf"):
        encodings = [("utf-8-sig", "utf-8-sig")]
    else:  # UTF-8 first: GB 18030 decodes almost any bytes, UTF-8 almost never by chance
        encodings = [("utf-8", "utf-8"), ("gb18030", "gbk")]
    for codec, name in encodings:
        try:
            return data.decode(codec), name
        except UnicodeDecodeError:
            continue
    raise RosterError(f"{path}: the roster is neither UTF-8 nor GBK text; save it from Excel "
                      "as \"CSV UTF-8 (Comma delimited)\" and run the command again")


def parse_columns(spec: str | Mapping[str, str] | None) -> dict[str, str]:
    """A header mapping: "学号=id,姓名=name" -> {"id": "学号", "name": "姓名"}.

    Raises:
        RosterError: an item without ``=``, a target other than id or name, or one twice.
    """
    if spec is None:
        return {}
    items = spec.items() if isinstance(spec, Mapping) else (
        item.partition("=")[::2] for item in spec.split(",") if item.strip())
    mapping: dict[str, str] = {}
    for header, target in items:
        header, target = header.strip(), target.strip().lower()
        if not header or target not in TARGETS:
            raise RosterError(f"--columns takes HEADER=id and HEADER=name, e.g. --columns "
                              f"学号=id,姓名=name; received: {printable(f'{header}={target}')}")
        if target in mapping:
            raise RosterError(f"--columns maps two headers to `{target}`: {mapping[target]!r} "
                              f"and {header!r}")
        mapping[target] = header
    return mapping


def read_roster(path: Path, columns: str | Mapping[str, str] | None = None
                ) -> list[tuple[str, str]]:
    """The (student id, display name) pairs of a roster CSV, in file order.

    Args:
        path: the CSV file.
        columns: which headers hold the id and the name ("学号=id,姓名=name"); default:
            the columns called id and name.

    Raises:
        RosterError: if the file is missing or neither UTF-8 nor GBK, lacks the columns
            (the message lists the columns found and the mapping to give), has a row
            without an id or with an invalid one (`grader.ids.validate_id`), a name over
            `MAX_NAME` characters or with control characters, or lists an id twice.
    """
    path = Path(path)
    text, _ = read_text(path)
    mapping = parse_columns(columns)
    reader = csv.DictReader(text.splitlines())
    found = [name for name in reader.fieldnames or ()]
    by_folded = {name.strip().casefold(): name for name in found}
    chosen: dict[str, str] = {}
    for target in TARGETS:
        wanted = mapping.get(target, target)
        header = by_folded.get(wanted.strip().casefold())
        if header is not None:
            chosen[target] = header
    missing = [t for t in TARGETS if t not in chosen]
    if missing:
        shown = ", ".join(printable(name, limit=40) for name in found) or "none"
        if mapping:
            asked = ", ".join(f"{mapping.get(t, t)}={t}" for t in missing)
            raise RosterError(f"{path}: --columns names {asked}, but the roster has no such "
                              f"column; columns found: {shown}")
        raise RosterError(f"{path}: the roster needs an id and a name column; missing: "
                          f"{', '.join(missing)}; columns found: {shown}. Name them id,name in "
                          f"the file, or give the mapping: "
                          f"grader roster {path.name} --columns {_suggestion(found)}")
    roster: list[tuple[str, str]] = []
    seen: dict[str, int] = {}
    for line, row in enumerate(reader, start=2):
        student_id = (row.get(chosen["id"]) or "").strip()
        name = (row.get(chosen["name"]) or "").strip()
        if not student_id:
            if not any((value or "").strip() for value in row.values()
                       if isinstance(value, str)):
                continue  # a blank line
            raise RosterError(f"{path}: line {line} has no id; received: "
                              f"name={printable(name, limit=80)!r}")
        try:
            student_id = validate_id(student_id)
        except InvalidId as exc:
            raise RosterError(f"{path}: line {line}: {exc}") from None
        if len(name) > MAX_NAME or not name.isprintable():  # control and format characters
            raise RosterError(f"{path}: line {line}: the name of {student_id} must be at most "
                              f"{MAX_NAME} characters without control or formatting characters"
                              f"; received: "
                              f"{printable(name, limit=80)!r}")
        if student_id in seen:
            raise RosterError(f"{path}: line {line}: id {student_id!r} is already listed "
                              f"on line {seen[student_id]}")
        seen[student_id] = line
        roster.append((student_id, name))
    return roster


def _suggestion(found: list[str]) -> str:
    """The --columns value to give: known headers guessed, placeholders for the rest."""
    folded = {name.strip().casefold(): name.strip() for name in found}
    parts = []
    for target in TARGETS:
        guess = next((folded[h] for h in (target, *SUGGESTIONS[target]) if h in folded), None)
        parts.append(f"{guess or '<' + target + ' column>'}={target}")
    return ",".join(parts)


def main(*, roster: Path, db: str | Path | None = None, columns: str | None = None) -> int:
    """`grader roster ROSTER.csv [--columns 学号=id,姓名=name] [--db URL]`: adds a class
    roster to the gradebook (creating the gradebook when there is none, and saying so).

    Students on the roster who never submit then appear in exports (final score 0) and
    get a "no submission" report.
    """
    import sys

    from grader.gradebook.override import default_db
    from grader.gradebook.store import GradebookError, open_gradebook

    try:
        students = read_roster(roster, columns)
        with open_gradebook(default_db(db), create=True) as gradebook:
            if gradebook.created:
                shown = gradebook.engine.url.render_as_string(hide_password=True)
                print(f"no gradebook at {shown} yet: created a new one")
            new = gradebook.add_students(students)
    except (RosterError, GradebookError) as error:
        print(f"grader: {printable(str(error), limit=2000)}", file=sys.stderr)
        return 2
    print(f"{len(students)} students on the roster, {new} new to the gradebook")
    return 0

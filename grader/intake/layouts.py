"""Who handed a submission in, from the instructor's side: LMS download names, or the name.

The student id is never taken from inside a submission. It comes from:

- Moodle ("Download all submissions"): a folder
  `<Full Name>_<participant id>_assignsubmission_file_` holding the files, or flat files
  `<Full Name>_<participant id>_assignsubmission_file_<filename>`: the participant id.
- Canvas ("Download Submissions"): flat files `<lastfirst>_<user id>_<attachment id>_<file>`,
  and `<lastfirst>_LATE_<user id>_...` for late work (as documented by
  mikewesthad/canvas-unzipper): the Canvas user id (the `ID` column of Canvas's
  gradebook CSV). All files of one user id in a folder form one submission, which is
  late when any of them carries the LATE marker.
- Anything else is a plain upload: the folder's name or the file's stem, which is the
  name the instructor's side gave it (the LMS, or whoever put it in the class folder);
  `grader submit`'s `<assignment>-<id>.zip` gives `<id>`.

Every id goes through `grader.ids.validate_id`. An id that fails is never rewritten into
another (possibly real) student's id: the submission is recorded under
`invalid-<hash of the name>` with a problem that says why and what to rename.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from grader.ids import InvalidId, printable, validate_id
from grader.intake.files import IGNORED_DIRS

_CANVAS_RE = re.compile(
    r"^(?P<name>[^_]+?)(?P<late>_late)?_(?P<user>\d+)_(?P<attachment>\d+)_(?P<file>.+)$",
    re.IGNORECASE)
_MOODLE_RE = re.compile(
    r"^(?P<name>.+?)_(?P<participant>\d+)_assignsubmission_(?P<plugin>[a-z]+)_?(?P<file>.*)$")
_RESUBMISSION_RE = re.compile(r"^(?P<stem>.+)-\d+(?P<suffix>\.[A-Za-z0-9]+)$")
SUBMISSION_SUFFIXES = (".zip", ".py", ".ipynb")
_NEWEST_SCAN = 2000  # entries of a folder looked at for its newest file time


def parse_canvas_name(filename: str) -> dict[str, str] | None:
    """Fields of a Canvas bulk-download file name, or None if it is not one.

    Returns:
        {"name": lastfirst, "user_id", "attachment_id", "filename", "late": "1" or ""}.
    """
    m = _CANVAS_RE.match(filename)
    if m is None:
        return None
    return {"name": m["name"], "user_id": m["user"], "attachment_id": m["attachment"],
            "filename": m["file"], "late": "1" if m["late"] else ""}


def parse_moodle_name(filename: str) -> dict[str, str] | None:
    """Fields of a Moodle bulk-download folder or file name, or None if it is not one.

    Returns:
        {"name": full name, "participant_id", "plugin", "filename" ("" for a folder)}.
    """
    m = _MOODLE_RE.match(filename)
    if m is None:
        return None
    return {"name": m["name"], "participant_id": m["participant"], "plugin": m["plugin"],
            "filename": m["file"]}


@dataclass(frozen=True)
class Identity:
    """Who a submission belongs to, from its name and place alone.

    Attributes:
        layout: "moodle", "canvas" or "plain".
        student_id: The validated id, or `invalid-<hash>` when the name gives none.
        display_name: The student's name where the layout gives one, else "".
        late_flag: Canvas's LATE marker.
        problem: Why the name gives no valid id (None when it does).
    """

    layout: str
    student_id: str
    display_name: str = ""
    late_flag: bool = False
    problem: str | None = None


def placeholder_id(raw: str) -> str:
    """The id an unusable name is recorded under: never a real student's id."""
    digest = hashlib.sha256(raw.encode("utf-8", "surrogateescape")).hexdigest()[:12]
    return f"invalid-{digest}"


def identify(source: Path, assignment: str | None = None) -> Identity:
    """The instructor-side identity of a submission, from its path only (nothing is read).

    Args:
        source: A class-folder entry (folder, zip, .py, .ipynb, or one LMS flat file).
        assignment: The assignment id: strips `grader submit`'s `<assignment>-` prefix.
    """
    name = source.name
    moodle = parse_moodle_name(name)
    if moodle is not None:
        layout, raw, display, late = "moodle", moodle["participant_id"], moodle["name"], False
    elif (canvas := parse_canvas_name(name)) is not None and not source.is_dir():
        layout, raw, display = "canvas", canvas["user_id"], canvas["name"]
        late = bool(canvas["late"]) or _any_canvas_late(source, raw)
    else:
        raw = name if source.is_dir() else source.stem
        if assignment and raw.startswith(f"{assignment}-") and len(raw) > len(assignment) + 1:
            raw = raw[len(assignment) + 1:]
        layout, display, late = "plain", "", False
    display = printable(display, limit=100)
    try:
        return Identity(layout, validate_id(raw), display, late)
    except InvalidId as exc:
        stand_in = placeholder_id(raw)
        return Identity(layout, stand_in, display, late, (
            f"the name {printable(name, limit=60)!r} gives no usable student id: {exc}; "
            f"the submission is recorded under {stand_in}: rename it to the student's id "
            "and grade it again"))


def _any_canvas_late(source: Path, user: str) -> bool:
    """Whether any file of this Canvas user next to `source` carries the LATE marker."""
    try:
        names = os.listdir(source.parent)
    except OSError:
        return False
    return any((fields := parse_canvas_name(n)) is not None and fields["user_id"] == user
               and fields["late"] for n in names)


def layout_siblings(source: Path, layout: str) -> list[Path]:
    """The flat files of one Canvas user or Moodle participant next to `source`."""
    if layout not in ("canvas", "moodle") or source.is_dir():
        return [source]
    key = _group_key(source.name)
    return sorted(p for p in source.parent.iterdir()
                  if not p.is_symlink() and p.is_file() and _group_key(p.name) == key)


def layout_filename(path: Path, layout: str) -> str:
    """The name the student gave a flat LMS file (Canvas's `-1` resubmission suffix dropped)."""
    if layout == "canvas":
        fields = parse_canvas_name(path.name)
        name = fields["filename"] if fields else path.name
        m = _RESUBMISSION_RE.match(name)
        return f"{m['stem']}{m['suffix']}" if m else name
    if layout == "moodle":
        fields = parse_moodle_name(path.name)
        return fields["filename"] if fields and fields["filename"] else path.name
    return path.name


def canvas_upload_order(path: Path) -> int:
    """Canvas's attachment id: Canvas numbers uploads in the order they were made."""
    fields = parse_canvas_name(path.name)
    return int(fields["attachment_id"]) if fields else 0


def received_at(source: Path) -> datetime | None:
    """The receipt time: the newest modification time of the download's files as received.

    For a folder, the newest of its first files (bounded); never a time written inside a
    zip or a manifest, which the student controls.
    """
    times: list[float] = []
    try:
        if source.is_dir():
            seen = 0
            for root, dirs, names in os.walk(source):
                dirs[:] = [d for d in dirs if d not in IGNORED_DIRS and not d.startswith(".")]
                for name in names:
                    seen += 1
                    if seen > _NEWEST_SCAN:
                        break
                    path = Path(root) / name
                    if not name.startswith(".") and path.is_file() and not path.is_symlink():
                        times.append(path.stat().st_mtime)
                if seen > _NEWEST_SCAN:
                    break
        elif source.exists():
            times = [p.stat().st_mtime for p in layout_siblings(source, identify(source).layout)]
    except OSError:
        return None
    return datetime.fromtimestamp(max(times), tz=timezone.utc) if times else None


@dataclass(frozen=True)
class Duplicate:
    """Two or more submissions of one student in one class folder, and which one counts.

    Attributes:
        student_id: The instructor-side id they share.
        counting: The submission that is graded.
        superseded: The others: reported, recorded on the counting one, never graded.
        rule: The sentence that says why `counting` counts.
    """

    student_id: str
    counting: Path
    superseded: tuple[Path, ...]
    rule: str

    def __str__(self) -> str:
        others = ", ".join(printable(p.name, limit=80) for p in self.superseded)
        return (f"student {self.student_id} handed in more than one submission: "
                f"{printable(self.counting.name, limit=80)} counts ({self.rule}); "
                f"superseded and not graded: {others}")


@dataclass(frozen=True)
class ClassFolder:
    """What a class folder holds: one submission per student, and the duplicates."""

    submissions: tuple[Path, ...]
    duplicates: tuple[Duplicate, ...]


LATEST_RULE = ("the latest by receipt time, the newest file modification time of the "
               "download; ties go to the last name in sorted order")
CANVAS_RULE = "the latest Canvas upload: Canvas numbers uploads in order (attachment id)"


def survey(folder: Path, assignment: str | None = None) -> ClassFolder:
    """The submissions of a class folder, one per student, and the duplicates found.

    Each subfolder, `.zip`, `.py` and `.ipynb` is a submission; flat Canvas and Moodle
    files of one student (any extension) count once, as their first file; hidden
    entries, `__MACOSX`, symbolic links and other files are skipped. When two
    submissions have the same instructor-side id, the one `LATEST_RULE` picks counts;
    two Canvas files of one user with the same name are reported with `CANVAS_RULE`.

    Args:
        folder: The class folder (an unpacked LMS download, or one entry per student).
        assignment: The assignment id, for `identify`.
    """
    entries: list[Path] = []
    seen: set[tuple[str, str]] = set()
    duplicates: list[Duplicate] = []
    for path in sorted(Path(folder).iterdir()):
        if path.name.startswith(".") or path.name in IGNORED_DIRS or path.is_symlink():
            continue
        if path.is_dir():
            entries.append(path)
            continue
        key = _group_key(path.name)
        if key is None:
            if path.suffix.lower() in SUBMISSION_SUFFIXES:
                entries.append(path)
            continue
        if key not in seen:
            seen.add(key)
            entries.append(path)
            if key[0] == "canvas":
                duplicates.extend(_canvas_duplicates(path))
    by_id: dict[str, list[Path]] = {}
    for path in entries:
        by_id.setdefault(identify(path, assignment).student_id, []).append(path)
    chosen: list[Path] = []
    for student_id, paths in by_id.items():
        if len(paths) == 1:
            chosen.append(paths[0])
            continue
        epoch = datetime.min.replace(tzinfo=timezone.utc)
        ranked = sorted(paths, key=lambda p: (received_at(p) or epoch, p.name))
        chosen.append(ranked[-1])
        duplicates.append(Duplicate(student_id, ranked[-1], tuple(ranked[:-1]), LATEST_RULE))
    return ClassFolder(tuple(sorted(chosen)), tuple(duplicates))


def discover(folder: Path, assignment: str | None = None) -> list[Path]:
    """The submissions of a class folder that count, one path each, sorted (see `survey`)."""
    return list(survey(folder, assignment).submissions)


def _group_key(name: str) -> tuple[str, str] | None:
    """("moodle", participant) or ("canvas", user) for a flat LMS file, else None."""
    moodle = parse_moodle_name(name)
    if moodle is not None:
        return "moodle", moodle["participant_id"]
    canvas = parse_canvas_name(name)
    if canvas is not None:
        return "canvas", canvas["user_id"]
    return None


def _canvas_duplicates(first: Path) -> list[Duplicate]:
    """Files of one Canvas user that carry the same name (a resubmission and its original)."""
    files: dict[str, list[Path]] = {}
    for path in layout_siblings(first, "canvas"):
        files.setdefault(layout_filename(path, "canvas"), []).append(path)
    found = []
    for paths in files.values():
        if len(paths) > 1:
            ranked = sorted(paths, key=lambda p: (canvas_upload_order(p), p.name))
            user = parse_canvas_name(first.name)["user_id"]  # type: ignore[index]
            found.append(Duplicate(user, ranked[-1], tuple(ranked[:-1]), CANVAS_RULE))
    return found

"""The student kit's bookkeeping: what a release needs installed, and what it wrote.

- `install_requirement(config)`: what the instructions tell students to ``pip install``:
  ``nn-grader``, or ``nn-grader[tensorflow]`` when a reference imports TensorFlow or Keras.
- `course_language(config)`: the language students read (``course.toml``'s ``language``).
- `write_manifest(folder, config)` records the hash of every file a release wrote, in
  ``.nn-grader-release.json``; `edited_files(folder)` lists what changed since, so that
  `grader release` never silently replaces a folder a student (or a TA) has edited.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
from pathlib import Path

from grader.config import AssignmentConfig
from grader.i18n import Domain

_, _n = Domain("cli").functions()

MANIFEST = ".nn-grader-release.json"
DISTRIBUTION = "nn-grader"
TENSORFLOW_EXTRA = "tensorflow"
# Folders Python and Jupyter write by themselves: not edits.
GENERATED = {"__pycache__", ".ipynb_checkpoints", ".pytest_cache"}
_TF_MODULES = {"tensorflow", "keras"}
_NOTEBOOK_IMPORT = re.compile(r"^\s*(?:import|from)\s+(tensorflow|keras)\b", re.MULTILINE)


def needs_tensorflow(config: AssignmentConfig) -> bool:
    """Whether any reference file imports TensorFlow or Keras (then students need the extra)."""
    for file in config.files:
        if file.reference is None or not file.reference.is_file():
            continue
        text = file.reference.read_text(encoding="utf-8")
        if file.reference.suffix == ".ipynb":
            if _NOTEBOOK_IMPORT.search(text.replace("\\n", "\n")):
                return True
            continue
        for node in ast.walk(ast.parse(text, filename=str(file.reference))):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(name.split(".")[0] in _TF_MODULES for name in names):
                return True
    return False


def install_requirement(config: AssignmentConfig) -> str:
    """``nn-grader`` or ``nn-grader[tensorflow]``: the one line a student installs."""
    return f"{DISTRIBUTION}[{TENSORFLOW_EXTRA}]" if needs_tensorflow(config) else DISTRIBUTION


def course_language(config: AssignmentConfig) -> str:
    """``zh_CN`` or ``en``: the course's language; ``zh_CN`` (the lecture's) without a course."""
    from grader.course import COURSE_FILE, CourseError, load_course

    if not (config.repo_root / COURSE_FILE).is_file():
        return "zh_CN"
    try:
        return load_course(config.repo_root).language
    except CourseError:
        return "zh_CN"  # the release reports a broken course.toml where it reads it


def course_time_zone(config: AssignmentConfig) -> str | None:
    """The IANA time zone the course shows dates in (``course.toml``'s ``time_zone``); None
    without a readable course (the kit then shows the due date in its own UTC offset)."""
    from grader.course import COURSE_FILE, CourseError, load_course

    if not (config.repo_root / COURSE_FILE).is_file():
        return None
    try:
        return load_course(config.repo_root).time_zone
    except CourseError:
        return None  # the release reports a broken course.toml where it reads it


def file_hashes(folder: Path) -> dict[str, str]:
    """Relative POSIX path -> sha256 of every file under `folder` (generated folders and the
    manifest itself left out)."""
    hashes = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if path.is_dir() or relative.as_posix() == MANIFEST or GENERATED & set(relative.parts):
            continue
        hashes[relative.as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


def write_manifest(folder: Path, config: AssignmentConfig) -> Path:
    """Records what the release wrote (`file_hashes`) in ``<folder>/.nn-grader-release.json``."""
    path = folder / MANIFEST
    # The language is the kit's: `grader check` and `submit` speak it (`grader.kit.check`).
    record = {"assignment": config.id, "language": course_language(config),
              "time_zone": course_time_zone(config), "files": file_hashes(folder)}
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def write_course_catalog(folder: Path, config: AssignmentConfig, public_suite: Path) -> Path | None:
    """The kit's own ``course`` catalog: ``<folder>/locale/<language>/LC_MESSAGES/course.mo``.

    It holds only the messages extracted from `public_suite` and the assignment's
    ``assignment.toml`` texts, with the course catalog's translations: the full
    ``course.mo`` holds the hidden suites' sentences and must never ship.
    `grader.grading.fixtures.course_messages` finds it in the kit's folder.

    Returns:
        The catalog written; None for an English course or one without a catalog.
    """
    from babel.messages.catalog import Catalog
    from babel.messages.extract import extract_from_file
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    from grader.i18n import COURSE_DOMAIN, EXTRACT_KEYWORDS, extract_assignment_toml

    language = course_language(config)
    source = config.repo_root / "locale" / language / "LC_MESSAGES" / f"{COURSE_DOMAIN}.po"
    if language == "en" or not source.is_file():
        return None
    with source.open("rb") as file:
        full = read_po(file, locale=language, domain=COURSE_DOMAIN)
    wanted = []
    if public_suite.is_file():
        wanted += extract_from_file("python", str(public_suite), keywords=EXTRACT_KEYWORDS)
    toml = config.root / "assignment.toml"
    if toml.is_file():
        wanted += extract_from_file(extract_assignment_toml, str(toml), keywords=EXTRACT_KEYWORDS)
    kit_catalog = Catalog(locale=language, domain=COURSE_DOMAIN)
    for _line, message_id, _comments, _context in wanted:
        found = full.get(message_id)
        if found is not None and found.string and not found.fuzzy:
            kit_catalog.add(found.id, found.string)
    path = folder / "locale" / language / "LC_MESSAGES" / f"{COURSE_DOMAIN}.mo"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as file:
        write_mo(file, kit_catalog)
    return path


def edited_files(folder: Path) -> list[str]:
    """What differs in `folder` from what the release recorded: changed, added, removed.

    A folder without a readable manifest was not written by `grader release` (or its record
    was deleted): every file in it counts as edited.
    """
    now = file_hashes(folder)
    try:
        recorded = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))["files"]
        if not isinstance(recorded, dict):
            raise TypeError("files is not a table")
    except (OSError, ValueError, KeyError, TypeError):
        # An empty folder is no one's.
        return [_("{name} (no release record)", name=name) for name in now]
    edited = [_("{name} (changed)", name=name) for name in now if name in recorded and
              now[name] != recorded[name]]
    edited += [_("{name} (added)", name=name) for name in now if name not in recorded]
    edited += [_("{name} (removed)", name=name) for name in recorded if name not in now]
    return edited


def replace_refusal(target: Path) -> str | None:
    """Why `grader release` may not replace `target` without ``--force`` (None: it may)."""
    if not target.exists():
        return None
    if not target.is_dir():
        return _("{target} exists and is not a folder; move it away or pass --force",
                 target=target)
    edited = edited_files(target)
    if not edited:
        return None
    shown = ", ".join(edited[:10])
    if len(edited) > 10:
        return _n("{target} was edited since it was released ({shown} and {n} more file); it "
                  "may hold someone's work: move it away, or pass --force to replace it",
                  "{target} was edited since it was released ({shown} and {n} more files); it "
                  "may hold someone's work: move it away, or pass --force to replace it",
                  len(edited) - 10, target=target, shown=shown)
    return _("{target} was edited since it was released ({shown}); it may hold someone's "
             "work: move it away, or pass --force to replace it", target=target, shown=shown)

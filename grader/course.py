"""A course: the folder that holds `course.toml`, its assignments, references and results.

The tool (`grader/`) and a course are kept apart: a course is a folder like this one

```
my-course/
  course.toml         title, language, time zone, default dataset, LMS preset
  assignments/<id>/   assignment.toml and README.md per assignment
  reference/          the reference solutions (an importable package)
  autograde_tests/<id>/  the hidden suites
  templates/          optional: files here replace the tool's templates of the same name
  gradebook.db  graded/<id>/  feedback/<id>/   written by the verbs (the defaults)
```

and every verb finds it (`find_course`) from ``--course DIR``, else ``$GRADER_COURSE``,
else the first folder holding `course.toml` from the current directory upwards. This
repository's top level is the lecture's own course. The schema of `course.toml` (any other
key is an error that names the key and the file):

```toml
title = "Python 程序设计 · 神经网络"   # required
language = "zh_CN"              # optional: "zh_CN" (default) or "en"; what students read
time_zone = "Asia/Shanghai"     # optional: an IANA name (default Asia/Shanghai); dates shown
dataset = "auto"                # optional: "mnist", "fashion_mnist" or "auto" (default:
                                #   MNIST when cached, else Fashion-MNIST)
lms = "canvas"                  # optional: the CSV preset (`grader export --preset`) used
                                #   by `grader export --format csv` when none is given
```
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2

from grader.config import ConfigError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, from PyPI
    import tomli as tomllib  # type: ignore[no-redef]

__all__ = [
    "COURSE_ENV",
    "COURSE_FILE",
    "DATASETS",
    "LANGUAGES",
    "TOOL_TEMPLATES",
    "Course",
    "CourseError",
    "course_imports",
    "current",
    "find_course",
    "load_course",
    "selected",
    "template_dirs",
    "template_loader",
]

COURSE_FILE = "course.toml"
COURSE_ENV = "GRADER_COURSE"
LANGUAGES = ("zh_CN", "en")
DATASETS = ("auto", "mnist", "fashion_mnist")
TOOL_TEMPLATES = Path(__file__).resolve().parent / "templates"
REFERENCE_PACKAGE = "reference"

_KEYS = {"title": str, "language": str, "time_zone": str, "dataset": str, "lms": str}
_HOW_TO_START = ("start one with `grader init DIR` (a copy of the lecture's course), or "
                 f"name one with `--course DIR` or ${COURSE_ENV}")


class CourseError(ConfigError):
    """No course, or a `course.toml` that cannot be used; the message says what to do.

    Attributes:
        detail: The message without the file name in front.
    """

    def __init__(self, path: str, key: str, detail: str) -> None:
        self.detail = detail
        super().__init__(path, key, detail)


@dataclass(frozen=True)
class Course:
    """A course folder and its settings.

    Attributes:
        root: The folder holding `course.toml` (absolute).
        title: The course's title, shown to students.
        language: "zh_CN" or "en": the language of what students read.
        time_zone: An IANA time-zone name; dates are shown in it.
        dataset: "auto", "mnist" or "fashion_mnist": the dataset when none is named.
        lms: The CSV preset `grader export --format csv` uses by default, or None.
    """

    root: Path
    title: str
    language: str = "zh_CN"
    time_zone: str = "Asia/Shanghai"
    dataset: str = "auto"
    lms: str | None = None

    @property
    def zone(self) -> ZoneInfo:
        """The course's time zone."""
        return ZoneInfo(self.time_zone)

    def local(self, moment: datetime) -> datetime:
        """A timezone-aware time in the course's time zone."""
        return moment.astimezone(self.zone)

    @property
    def assignments(self) -> Path:
        return self.root / "assignments"

    @property
    def suites(self) -> Path:
        """`autograde_tests/`: one hidden suite per assignment."""
        return self.root / "autograde_tests"

    @property
    def reference(self) -> Path:
        return self.root / REFERENCE_PACKAGE

    @property
    def gradebook(self) -> Path:
        """The default SQLite gradebook: ``<course>/gradebook.db``."""
        return self.root / "gradebook.db"

    def graded(self, assignment: str) -> Path:
        """Where `grader autograde` writes results.json files by default."""
        return self.root / "graded" / assignment

    def feedback(self, assignment: str) -> Path:
        """Where `grader feedback` writes the reports by default."""
        return self.root / "feedback" / assignment

    def assignment_ids(self) -> list[str]:
        """The ids of the folders of `assignments/` that hold an assignment.toml, sorted."""
        return sorted(path.parent.name for path in self.assignments.glob("*/assignment.toml"))

    def template_dirs(self) -> list[Path]:
        """Where templates are looked up: the course's `templates/` first, then the tool's."""
        return template_dirs(self)


def template_dirs(course: Course | Path | None = None) -> list[Path]:
    """The template search path: a course's `templates/` first, then the tool's
    `grader/templates`, so a course's file replaces the tool's of the same name.

    Args:
        course: A course or a course folder; default: the current course, if any.
    """
    if course is None:
        course = find_course(required=False)
    if course is None:
        return [TOOL_TEMPLATES]
    own = (course.root if isinstance(course, Course) else Path(course)) / "templates"
    return [own, TOOL_TEMPLATES] if own.is_dir() else [TOOL_TEMPLATES]


def template_loader(course: Course | Path | None = None) -> jinja2.FileSystemLoader:
    """A jinja2 loader over `template_dirs`."""
    return jinja2.FileSystemLoader([str(path) for path in template_dirs(course)])


def load_course(folder: str | Path) -> Course:
    """Reads and checks ``<folder>/course.toml`` (``folder`` may also name that file).

    Raises:
        CourseError: If the file is missing or unreadable, is not TOML, has an unknown
            key, a value of the wrong type, a language, dataset or LMS preset that is not
            known, or a time zone that is not an IANA name.
    """
    root = Path(folder).expanduser().resolve()
    if root.name == COURSE_FILE and root.is_file():  # the file itself named: its folder
        root = root.parent
    path = root / COURSE_FILE
    shown = str(path)
    try:
        data = tomllib.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise CourseError(shown, "", f"no such file; {root} is not a course (a course "
                          f"folder holds a {COURSE_FILE}); {_HOW_TO_START}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CourseError(shown, "", f"cannot read the file: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise CourseError(shown, "", f"not valid TOML: {exc}") from None
    unknown = sorted(set(data) - set(_KEYS))
    if unknown:
        raise CourseError(shown, unknown[0], f"unknown key `{unknown[0]}`; expected one of: "
                          f"{', '.join(sorted(_KEYS))}")
    if "title" not in data:
        raise CourseError(shown, "title", 'missing required key `title` (e.g. title = '
                          '"Neural networks, autumn 2026")')
    for key, value in data.items():
        if not isinstance(value, _KEYS[key]):
            raise CourseError(shown, key, f"`{key}` must be a string; received "
                              f"{type(value).__name__}: {key}={value!r}")
    _one_of(shown, data, "language", LANGUAGES)
    _one_of(shown, data, "dataset", DATASETS)
    if "lms" in data:  # the presets of `grader export --preset`, one list
        from grader.export import PRESETS

        _one_of(shown, data, "lms", tuple(PRESETS))
    if not data["title"].strip():
        raise CourseError(shown, "title", "`title` must not be empty")
    zone = data.get("time_zone", Course.time_zone)
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise CourseError(shown, "time_zone", f"`time_zone` must be an IANA time-zone name "
                          f"such as Asia/Shanghai or Europe/Berlin; received: "
                          f"time_zone={zone!r}") from None
    return Course(root=root, **data)


def _one_of(shown: str, data: Mapping[str, Any], key: str, allowed: tuple[str, ...]) -> None:
    if key in data and data[key] not in allowed:
        raise CourseError(shown, key, f"`{key}` must be one of "
                          f"{', '.join(repr(a) for a in allowed)}; received: {key}={data[key]!r}")


def find_course(course: str | Path | None = None, *, cwd: Path | None = None,
                environ: Mapping[str, str] | None = None,
                required: bool = True) -> Course | None:
    """The course a verb works in.

    Args:
        course: ``--course DIR``: wins over everything else.
        cwd: Where to start walking up (default: the current directory).
        environ: Where to read ``$GRADER_COURSE`` (default: `os.environ`).
        required: Raise when no course is found (else return None). A course that is
            named (flag, environment, the CLI's selection) but broken always raises.

    Returns:
        The course named by ``course``, else the one the CLI selected (`selected`), else
        ``$GRADER_COURSE``, else the first folder from ``cwd`` upwards holding
        `course.toml`; None if there is none and ``required`` is False.

    Raises:
        CourseError: If the named course is not one, or no course is found and
            ``required``; the message says how to make one.
    """
    if course is not None:
        return load_course(course)
    if _SELECTED:
        return _SELECTED[-1]
    environ = os.environ if environ is None else environ
    if environ.get(COURSE_ENV):
        try:
            return load_course(environ[COURSE_ENV])
        except CourseError as error:
            raise CourseError(error.path, error.key,
                              f"(from ${COURSE_ENV}) {error.detail}") from None
    start = (cwd or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / COURSE_FILE).is_file():
            return load_course(folder)
    if not required:
        return None
    hint = ""
    if (start / "assignments").is_dir():
        hint = (f" ({start} has assignments/: add a {COURSE_FILE} with at least "
                '`title = "..."` to make it a course)')
    raise CourseError(str(start), "", f"not inside a course: no {COURSE_FILE} here or in any "
                      f"folder above{hint}; {_HOW_TO_START}")


def current() -> Course:
    """The course of this run (`find_course()` with its defaults); raises `CourseError`."""
    found = find_course()
    assert found is not None  # required=True never returns None
    return found


_SELECTED: list[Course] = []


@contextmanager
def selected(course: str | Path | Course | None) -> Iterator[Course | None]:
    """Makes ``course`` the current course inside the block (the CLI's ``--course``).

    With None nothing is selected and discovery runs as usual.
    """
    if course is None:
        yield None
        return
    chosen = course if isinstance(course, Course) else load_course(course)
    _SELECTED.append(chosen)
    try:
        yield chosen
    finally:
        _SELECTED.pop()


@contextmanager
def course_imports(root: Path) -> Iterator[None]:
    """Inside the block, ``import reference.X`` imports ``<root>/reference/X.py`` and nothing
    else.

    For hidden suites, which run in the grader's process: an import hook placed before every
    other finder finds `reference` and its submodules in the course's own `reference/` only
    (a missing one is an ImportError naming the course), whatever else is installed (an
    editable install of the tool maps `reference` to its checkout) or was imported before.
    The course folder itself is deliberately not put on `sys.path`: a class folder unpacked
    there (student-named folders, each possibly with an ``__init__.py``) would then shadow
    any module the grader imports later. Afterwards the import hooks and the `reference`
    modules are as they were.
    """
    root = Path(root).resolve()
    saved_path = list(sys.path)
    saved = {name: module for name, module in sys.modules.items() if _is_reference(name)}
    for name in saved:
        del sys.modules[name]
    finder = _CourseReferenceFinder(root)
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.path[:] = saved_path
        if finder in sys.meta_path:
            sys.meta_path.remove(finder)
        for name in [name for name in sys.modules if _is_reference(name)]:
            del sys.modules[name]
        sys.modules.update(saved)


def _is_reference(name: str) -> bool:
    return name == REFERENCE_PACKAGE or name.startswith(REFERENCE_PACKAGE + ".")


class _CourseReferenceFinder(importlib.abc.MetaPathFinder):
    """Finds `reference` and `reference.*` in one course's folder, and nowhere else."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if not _is_reference(fullname):
            return None
        where = [str(self.root)] if fullname == REFERENCE_PACKAGE else list(path or [])
        spec = importlib.machinery.PathFinder.find_spec(fullname, where)
        if spec is None:  # found here, it fails on import: no other finder may answer
            return importlib.machinery.ModuleSpec(fullname, _Missing(self.root))
        return spec


class _Missing(importlib.abc.Loader):
    """The loader of a `reference` module the course does not have: importing it fails."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        raise ModuleNotFoundError(
            f"No module named {spec.name!r} in the course at {self.root} (a hidden suite "
            f"imports the course's own {REFERENCE_PACKAGE}/ folder only)", name=spec.name)

    def exec_module(self, module: ModuleType) -> None:  # never reached: create_module raises
        raise ModuleNotFoundError(module.__name__)

"""`grader init DIR` starts a course; `grader new ID` scaffolds an assignment in one.

`init_course` copies a course (by default the lecture's own: this checkout's top level)
into a new folder: `course.toml`, `assignments/`, `reference/`, `autograde_tests/` and
`templates/`, without caches, gradebooks, graded results or feedback. Where the tool is
installed without the lecture's course (a wheel holds no reference solution), it writes an
empty course instead.

`new_assignment` writes a small but complete assignment (a numpy dense layer with ReLU):

```
assignments/<id>/assignment.toml   parts, points, due date, [parameters]
assignments/<id>/README.md         the task, for students (a jinja2 template), in English
assignments/<id>/README.zh_CN.md   the same in Chinese (a zh_CN course releases this one)
reference/<id>.py                  the reference, solution bodies between markers
autograde_tests/<id>/test_public.py  ships with the release (`grader check`)
autograde_tests/<id>/test_hidden.py  graded only; imports the course's reference
```

It releases as written: the reference scores full marks and the bare skeleton zero.
"""

from __future__ import annotations

import importlib.util
import json
import keyword
import re
import shutil
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from grader.course import COURSE_FILE, REFERENCE_PACKAGE, Course, current, load_course
from grader.ids import InvalidId, printable, validate_id

__all__ = ["COURSE_PARTS", "ScaffoldRefused", "init_course", "init_main", "lecture_course",
           "new_assignment", "new_main", "validate_assignment_id"]

# What a course is made of; everything else (gradebook.db, graded/, feedback/, release/,
# demo-out/, the tool's own files) stays behind.
# locale/: the course's catalog of its suites' messages (fixtures.course_messages)
COURSE_PARTS = (COURSE_FILE, "assignments", REFERENCE_PACKAGE, "autograde_tests", "templates",
                "locale")
_CACHES = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".ruff_cache",
                                 ".ipynb_checkpoints", ".DS_Store", "gradebook.db*")
_ID_RE = re.compile(r"^[a-z][a-z0-9_]*$")
# The course's and the tool's own names: an assignment of that name would shadow them.
_RESERVED = frozenset({REFERENCE_PACKAGE, "grader", "assignments", "autograde_tests", "tests",
                       "conftest", "templates"})
DUE_IN_DAYS = 14  # a new assignment's placeholder due date
# What a course keeps out of version control: results, student uploads and the service's secret.
GITIGNORE = ("gradebook.db\ngraded/\nfeedback/\nrelease/\nuploads/\n.grader-serve-secret\n"
             "__pycache__/\n")


class ScaffoldRefused(ValueError):
    """The course or assignment cannot be made; the message says why and what to do."""


@dataclass(frozen=True)
class Scaffolded:
    """What was written: the new folder or files, for the message."""

    root: Path
    files: tuple[Path, ...]


def lecture_course() -> Path | None:
    """The lecture's own course, when the tool runs from its checkout (None from a wheel)."""
    checkout = Path(__file__).resolve().parents[1]
    return checkout if (checkout / COURSE_FILE).is_file() else None


def init_course(folder: Path, *, source: Path | None = None) -> Scaffolded:
    """Makes ``folder`` a course: a copy of ``source`` (default: the lecture's course).

    Args:
        folder: The new course's folder; it must not exist or be empty.
        source: A course folder to copy; default: `lecture_course()`, and an empty course
            (course.toml, empty assignments/, reference/, autograde_tests/) without one.

    Raises:
        ScaffoldRefused: ``folder`` is a file or a folder that is not empty.
        CourseError: ``source`` is not a course.
    """
    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise ScaffoldRefused(f"{folder} is a file; give `grader init` a new or empty folder")
    if folder.is_dir():
        entries = sorted(path.name for path in folder.iterdir())
        if entries:
            shown = ", ".join(printable(name, limit=60) for name in entries[:5])
            more = f" and {len(entries) - 5} more" if len(entries) > 5 else ""
            raise ScaffoldRefused(f"{folder} is not empty (it holds {shown}{more}); "
                                  "`grader init` writes a new course only into a new or empty "
                                  "folder, so that nothing of yours is overwritten")
    source = source if source is not None else lecture_course()
    folder.mkdir(parents=True, exist_ok=True)
    if source is None:
        _empty_course(folder)
    else:
        load_course(source)  # a course, with a valid course.toml: say so before copying
        for name in COURSE_PARTS:
            path = Path(source) / name
            if path.is_dir():
                shutil.copytree(path, folder / name, ignore=_CACHES)
            elif path.is_file():
                shutil.copyfile(path, folder / name)
        for name in ("assignments", "autograde_tests"):
            (folder / name).mkdir(exist_ok=True)
    (folder / ".gitignore").write_text(GITIGNORE, encoding="utf-8")
    load_course(folder)
    return Scaffolded(folder.resolve(), tuple(sorted(folder.rglob("*"))))


def _empty_course(folder: Path) -> None:
    (folder / COURSE_FILE).write_text(
        '# The course (grader/course.py documents every key).\n'
        'title = "My neural-network course"\n'
        'language = "zh_CN"          # what students read: "zh_CN" or "en"\n'
        'time_zone = "Asia/Shanghai" # an IANA name; due dates are shown in it\n'
        'dataset = "auto"            # "mnist", "fashion_mnist" or "auto"\n',
        encoding="utf-8")
    for name in ("assignments", "autograde_tests", REFERENCE_PACKAGE):
        (folder / name).mkdir()
    (folder / REFERENCE_PACKAGE / "__init__.py").write_text(
        '"""Reference solutions, one module per assignment."""\n', encoding="utf-8")


def validate_assignment_id(text: object, course: Course) -> str:
    """An id `grader new` may use: the rules of `grader.ids.validate_id`, then a Python
    module name (the student's file is ``<id>.py``) that shadows no module and is not yet
    used in ``course``.

    Raises:
        ScaffoldRefused: Naming the rule broken and the id, escaped.
    """
    try:
        ident = validate_id(text)
    except InvalidId as error:
        raise ScaffoldRefused(f"not an assignment id: {error}".replace("student id",
                                                                        "id")) from None
    shown = printable(ident, limit=64)
    if ident != text or not _ID_RE.match(ident):
        raise ScaffoldRefused(f"the assignment id {shown!r} must be lower case ASCII letters, "
                              "digits and underscores, starting with a letter (it names "
                              "the student's file <id>.py and a Python module); e.g. "
                              "perceptron or mlp_numpy2")
    if (keyword.iskeyword(ident) or ident in sys.stdlib_module_names or ident in _RESERVED
            or _importable(ident)):
        raise ScaffoldRefused(f"the assignment id {shown!r} is taken by Python or the course "
                              "(a keyword, a module that exists already, or one of the "
                              f"course's own names); the student's file {ident}.py would "
                              "shadow it: choose another id")
    taken = [path for path in (course.assignments / ident, course.suites / ident,
                               course.reference / f"{ident}.py") if path.exists()]
    if taken:
        raise ScaffoldRefused(f"assignment `{ident}` exists already in the course at "
                              f"{course.root} ({', '.join(str(p) for p in taken)}); choose "
                              "another id, or edit the existing files")
    return ident


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return True  # it exists in some broken form: still a name to avoid


def new_assignment(ident: object, *, course: Course | None = None,
                   title: str | None = None) -> Scaffolded:
    """Writes a new assignment into ``course`` (default: the current course).

    Returns:
        The assignment's folder and every file written.

    Raises:
        ScaffoldRefused: A bad or taken id, or a title with control characters.
        CourseError: No course found.
    """
    course = course or current()
    ident = validate_assignment_id(ident, course)
    title = ident if title is None else title.strip()
    if not title or printable(title, limit=len(title) + 1) != title:
        raise ScaffoldRefused("the title must be one line of printable text; received "
                              f"{printable(str(title), limit=80)!r}")
    due = (datetime.now(course.zone) + timedelta(days=DUE_IN_DAYS)).replace(
        hour=23, minute=59, second=0, microsecond=0)
    fill = {"ID": ident, "TITLE_TOML": json.dumps(title, ensure_ascii=False),
            "DUE": due.isoformat()}
    files = {
        course.assignments / ident / "assignment.toml": ASSIGNMENT_TOML,
        course.assignments / ident / "README.md": README_MD,
        course.assignments / ident / "README.zh_CN.md": README_ZH_CN_MD,
        course.reference / f"{ident}.py": REFERENCE_PY,
        course.suites / ident / "test_public.py": TEST_PUBLIC,
        course.suites / ident / "test_hidden.py": TEST_HIDDEN,
    }
    init = course.reference / "__init__.py"
    if not init.exists():
        files[init] = '"""Reference solutions, one module per assignment."""\n'
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        for key, value in fill.items():
            text = text.replace(f"<<{key}>>", value)
        path.write_text(text, encoding="utf-8")
    return Scaffolded(course.assignments / ident, tuple(files))


def init_main(*, folder: Path, source: Path | None = None) -> int:
    """`grader init DIR [--from COURSE]`."""
    made = init_course(folder, source=source)
    copied = source or lecture_course()
    what = f"a copy of the course at {copied}" if copied else "an empty course"
    course = load_course(made.root)
    ids = course.assignment_ids()
    print(f"created {made.root}: {what}; assignments: {', '.join(ids) or 'none yet'}")
    print(f"next: edit {made.root / COURSE_FILE} (title, language, time zone), then")
    print(f"  cd {made.root}")
    print("  grader new ID          # scaffold an assignment")
    print("  grader release ID      # the student folder, once the reference scores full marks")
    return 0


def new_main(*, assignment: str, title: str | None = None) -> int:
    """`grader new ID [--title TITLE]`."""
    made = new_assignment(assignment, title=title)
    course = current()
    print(f"created assignment `{assignment}` in {course.root}:")
    for path in made.files:
        print(f"  {path.relative_to(course.root)}")
    print(f"next: write the task in reference/{assignment}.py between the solution markers, "
          "its checks in autograde_tests/, then `grader release "
          f"{assignment}` (it releases as it is: try it)")
    return 0


ASSIGNMENT_TOML = '''\
# `grader new` wrote this; grader/config.py documents every key.
id = "<<ID>>"
title = <<TITLE_TOML>>
due = <<DUE>>  # a placeholder: set the real due date (a UTC offset is required)
total = 10

[[files]]
student = "<<ID>>.py"
reference = "reference/<<ID>>.py"

# Public parts: their tests are in autograde_tests/<<ID>>/test_public.py and ship with the
# release, so students run them with `grader check`.

[[parts]]
name = "relu_example"
points = 2
tests = ["test_relu_on_a_small_example"]
public = true
description = "relu on a small example"

[[parts]]
name = "dense_shape"
points = 2
tests = ["test_dense_relu_shape"]
public = true
description = "dense_relu returns one row per input and one column per unit"

# Hidden parts (autograde_tests/<<ID>>/test_hidden.py): graded, never shipped.

[[parts]]
name = "relu"
points = 3
tests = ["test_relu_matches_reference"]
description = "relu computes max(0, x) elementwise"

[[parts]]
name = "dense_relu"
points = 3
tests = ["test_dense_relu_matches_reference"]
description = "dense_relu computes relu(x @ w + b)"

[parameters]
# The task's own numbers, one home each: the tests read them (the `parameters` fixture),
# README.md shows them ({{ parameters.units }}), and `grader release` refuses when the
# reference's constant of the same name in upper case (UNITS) says otherwise.
units = 4
'''

README_MD = '''\
## The task

Write two functions in `<<ID>>.py`:

- `relu(x)`: `max(0, x)` elementwise, an array of the shape of `x`;
- `dense_relu(x, w, b)`: `relu(x @ w + b)`; for `x` of shape `(N, D)`,
  `w` of shape `(D, {{ parameters.units }})` and `b` of shape `({{ parameters.units }},)`,
  an array of shape `(N, {{ parameters.units }})`.

The layer has {{ parameters.units }} units (`UNITS` in the file).
'''

# `grader release` picks README.<language>.md for the course's language, else README.md.
README_ZH_CN_MD = '''\
## 任务

在 `<<ID>>.py` 中写两个函数：

- `relu(x)`：逐元素计算 `max(0, x)`，返回与 `x` 形状相同的数组；
- `dense_relu(x, w, b)`：计算 `relu(x @ w + b)`；`x` 的形状为 `(N, D)`，
  `w` 的形状为 `(D, {{ parameters.units }})`，`b` 的形状为 `({{ parameters.units }},)`，
  返回形状为 `(N, {{ parameters.units }})` 的数组。

这个全连接层有 {{ parameters.units }} 个神经元（即文件中的 `UNITS`）。
'''

REFERENCE_PY = '''\
"""Reference solution of `<<ID>>`: a fully connected layer with ReLU.

`grader release <<ID>>` replaces every block between the solution markers with a stub that
raises NotImplementedError; the rest (docstrings, signatures, constants) ships as written.
"""

import numpy as np

UNITS = 4  # [parameters] units in assignments/<<ID>>/assignment.toml: the release checks


def relu(x):
    """The rectified linear unit, elementwise.

    Args:
        x: an array of any shape.

    Returns:
        An array of the shape of x: max(0, x).
    """
    ### BEGIN SOLUTION
    return np.maximum(x, 0.0)
    ### END SOLUTION


def dense_relu(x, w, b):
    """A fully connected layer followed by ReLU.

    Args:
        x: inputs of shape (N, D).
        w: weights of shape (D, UNITS).
        b: biases of shape (UNITS,).

    Returns:
        An array of shape (N, UNITS).
    """
    ### BEGIN SOLUTION
    return relu(x @ w + b)
    ### END SOLUTION
'''

TEST_PUBLIC = '''\
"""Public checks of `<<ID>>`: they ship with the release and run on the student's machine
(`grader check`), so they never import the reference or hold hidden data."""

import numpy as np

from grader.checks.arrays import assert_close, assert_shape
from grader.grading.fixtures import course_messages

# The course's messages: English as written here, translated by the course's locale/ catalog
# when it has one (see README, "Translations").
_, _n = course_messages(__file__)


def test_relu_on_a_small_example(student):
    assert_close(student.<<ID>>.relu(np.array([[-2.0, 0.0, 3.0]])), np.array([[0.0, 0.0, 3.0]]),
                 "`relu([[-2, 0, 3]])`")


def test_dense_relu_shape(student):
    x, w, b = np.ones((2, 3)), np.ones((3, 5)), np.zeros(5)
    assert_shape(student.<<ID>>.dense_relu(x, w, b), (2, 5),
                 _("`dense_relu(x, w, b)` with x of shape {x}, w {w} and b {b}",
                   x=x.shape, w=w.shape, b=b.shape))
'''

TEST_HIDDEN = '''\
"""Hidden checks of `<<ID>>`: they run in the grader's process and reach the student's code
only through the `student` proxy; expected values come from the course's own reference."""

import numpy as np
import pytest

import reference.<<ID>> as ref
from grader.checks.arrays import assert_close

SEEDS = (0, 1, 2)


@pytest.mark.parametrize("seed", SEEDS)
def test_relu_matches_reference(student, seed):
    x = np.random.default_rng(seed).normal(size=(4, 5))
    assert_close(student.<<ID>>.relu(x), ref.relu(x),
                 f"`relu(x)` with x a random (4, 5) array (seed {seed})")


@pytest.mark.parametrize("seed", SEEDS)
def test_dense_relu_matches_reference(student, parameters, seed):
    units = int(parameters["units"])
    rng = np.random.default_rng(seed)
    x, w, b = rng.normal(size=(6, 3)), rng.normal(size=(3, units)), rng.normal(size=units)
    assert_close(student.<<ID>>.dense_relu(x, w, b), ref.dense_relu(x, w, b),
                 f"`dense_relu(x, w, b)` with {units} units (seed {seed})")
'''

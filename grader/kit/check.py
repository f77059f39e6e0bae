"""`grader check`: the public tests on a student's folder or notebook, with a short table.

The assignment is identified by the ``assignment.toml`` that `grader release` wrote into
the folder, never by the folder's name, so a copied or renamed folder (``mlp_numpy (1)``,
``作业2``) checks as the original. The student's files run in this process
(`grader.kit.local`): nothing here needs a sandbox or a POSIX-only module.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from grader import i18n
from grader.config import CONFIG_NAME, AssignmentConfig, ConfigError, load_assignment
from grader.i18n import Domain, lazy
from grader.results.records import PASSED, Grade

_, _n = Domain("cli").functions()

PUBLIC_SUITE = "test_public.py"
"""The public tests' file in a released folder's ``tests/`` (`grader.release.build`)."""
NOTEBOOK = ".ipynb"
# An id as `grader release` writes it; anything else is not a released folder's file.
RELEASED_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
# A check's mark in the table, translated when shown.
MARKS = {"passed": lazy("ok"), "failed": lazy("FAIL"), "error": lazy("ERROR"),
         "skipped": lazy("skip")}
RELEASE_RECORD = ".nn-grader-release.json"
"""What `grader release` recorded in the folder (`grader.release.kit.write_manifest`): the
files it wrote and the language of the course, which `grader check` and `submit` speak."""


class NotReleased(FileNotFoundError):
    """The path is not a released assignment (or a notebook in one); the message says why."""


def released_folder(path: Path) -> tuple[Path, Path | None]:
    """The released folder to check and, for a notebook or script path, that file.

    Args:
        path: A released folder, or a ``.ipynb``/``.py`` file inside one.

    Raises:
        NotReleased: Neither the path nor (for a file) its folder holds assignment.toml.
    """
    path = path.resolve()
    if path.is_file():
        if path.suffix not in (NOTEBOOK, ".py"):
            raise NotReleased(_("{name} is not a notebook (.ipynb) or a Python file (.py); "
                                "pass your work file or the released folder", name=path.name))
        folder, work = path.parent, path
    elif path.is_dir():
        folder, work = path, None
    else:
        raise NotReleased(_("{path} does not exist; pass the folder that `grader release` "
                            "made for the assignment, or a notebook inside it", path=path))
    if not (folder / CONFIG_NAME).is_file():
        raise NotReleased(_(
            "{folder} holds no {config}: run `grader check` inside the folder that "
            "`grader release` made for the assignment (it holds {config}, README.md and "
            "tests/), or pass that folder: grader check path/to/folder",
            folder=folder, config=CONFIG_NAME))
    return folder, work


def load_released(folder: Path) -> AssignmentConfig:
    """The assignment.toml that `grader release` put in a student folder (any folder name).

    Raises:
        NotReleased: No assignment.toml in `folder`.
        ConfigError: The file is damaged; the message names the key.
    """
    toml = folder / CONFIG_NAME
    if not toml.is_file():
        raise NotReleased(_("{path} does not exist: run `grader check` inside the folder "
                            "that `grader release` made for the assignment (it holds {config})",
                            path=toml, config=CONFIG_NAME))
    assignment_id = _released_id(toml)
    # An assignment's folder is named after its id; a student's copy may be named anything,
    # so the file is read from a folder of the right name.
    with tempfile.TemporaryDirectory(prefix="nn-grader-released-") as scratch:
        copy = Path(scratch) / assignment_id / CONFIG_NAME
        copy.parent.mkdir()
        shutil.copyfile(toml, copy)
        config = load_assignment(copy, repo_root=folder)
    return dataclasses.replace(config, root=folder, repo_root=folder)


def _released_id(toml: Path) -> str:
    from grader.config import tomllib

    try:
        data = tomllib.loads(toml.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(str(toml), "", _("not valid TOML: {error}; download the released "
                                           "folder again", error=exc)) from None
    assignment_id = data.get("id")
    if not isinstance(assignment_id, str) or not RELEASED_ID.fullmatch(assignment_id) \
            or assignment_id.strip(".") == "":
        raise ConfigError(str(toml), "id", _("expected the assignment's id (letters, digits, "
                                             "`_`); received: id={received}",
                                             received=repr(assignment_id)))
    return assignment_id


def student_files(config: AssignmentConfig, folder: Path, work: Path | None, into: Path) -> None:
    """Copies the work to check into `into`: the given file, else each expected file.

    A notebook passed on the command line (or found where the ``.py`` is missing) is
    copied as ``<module>.ipynb``; intake converts it to the module. With several expected
    files, a file passed on the command line replaces the one of its name.

    Raises:
        NotReleased: A file passed for an assignment of several files matches none of them.
    """
    expected = list(config.student_files)
    stems = [Path(name).stem for name in expected]
    if work is not None and len(expected) > 1 and work.stem not in stems:
        raise NotReleased(_("{name}: this assignment has several files ({files}); pass the "
                            "folder, or a file named after one of them (e.g. {example})",
                            name=work.name, files=", ".join(expected),
                            example=stems[0] + NOTEBOOK))
    for name in expected:
        stem = Path(name).stem
        if work is not None and (len(expected) == 1 or work.stem == stem):
            shutil.copyfile(work, into / (stem + work.suffix))
        elif (folder / name).is_file():
            shutil.copyfile(folder / name, into / name)
        elif (folder / (stem + NOTEBOOK)).is_file():
            shutil.copyfile(folder / (stem + NOTEBOOK), into / (stem + NOTEBOOK))


def check_folder(path: Path, *, dataset: str | None = None) -> Grade:
    """Runs the public suite of a released assignment on the student's files.

    Args:
        path: The released folder, or a notebook or script inside it.
        dataset: The dataset of data-driven public tests (default: `grader.data`'s).

    Returns:
        The public parts' grade; `problems` says what of the work could not be used.
    """
    from grader.grading.run import run_suite
    from grader.intake import intake
    from grader.kit.local import LocalRuntime

    folder, work = released_folder(path)
    config = load_released(folder)
    with tempfile.TemporaryDirectory(prefix="nn-grader-check-") as scratch:
        work_dir = Path(scratch) / "work"  # a valid student id: the folder's own name is not
        work_dir.mkdir()
        student_files(config, folder, work, work_dir)
        submission = intake(work_dir, Path(scratch), expected_files=config.student_files,
                            assignment=config.id)

        def open_local(cfg: AssignmentConfig, sub) -> LocalRuntime:
            return LocalRuntime(sub.workspace, [Path(name).stem for name in cfg.student_files])

        return run_suite(config, submission, suite=folder / "tests",
                         test_files=[folder / "tests" / PUBLIC_SUITE], dataset_name=dataset,
                         open_runtime=open_local, device="cpu")


def format_check(grade: Grade) -> str:
    """The student's table: each public part, each check, the message of each failure."""
    lines = []
    for problem in grade.problems:
        lines.append(_("problem: {problem}", problem=problem))
    for part in grade.parts:
        lines.append(_("{part}: {points}/{max_points}", part=part.name,
                       points=f"{part.points:g}", max_points=f"{part.max_points:g}"))
        for test in part.tests:
            mark = _(MARKS[test.status]) if test.status in MARKS else test.status
            lines.append(f"  [{mark}] {test.case}")
            if test.status != PASSED and test.message:
                lines += [f"      {line}" for line in test.message.splitlines()[:12]]
    # As grading will: definitions only. A main guard is skipped on purpose: not listed.
    skipped = [s for s in grade.skipped_statements if "if __name__ ==" not in s]
    if skipped:
        lines.append("\n" + _n("{n} statement not run (your files are imported for their "
                               'definitions only; put such code under `if __name__ == '
                               '"__main__":`):',
                               "{n} statements not run (your files are imported for their "
                               'definitions only; put such code under `if __name__ == '
                               '"__main__":`):', len(skipped)))
        lines += [f"  {statement}" for statement in skipped[:10]]
    passed = sum(t.status == PASSED for p in grade.parts for t in p.tests)
    total = sum(len(p.tests) for p in grade.parts)
    lines.append("\n" + _n("{passed} of {n} public check passed. Hidden tests check more "
                           "when you submit.",
                           "{passed} of {n} public checks passed. Hidden tests check more "
                           "when you submit.", total, passed=passed))
    return "\n".join(lines)


def all_passed(grade: Grade) -> bool:
    return all(t.status == PASSED for p in grade.parts for t in p.tests) and bool(grade.parts)


def kit_time_zone(folder: Path) -> ZoneInfo | None:
    """The course's time zone `grader release` recorded in a released folder (None: none, or
    not an IANA name this machine knows)."""
    try:
        record = json.loads((folder / RELEASE_RECORD).read_text(encoding="utf-8"))
        return ZoneInfo(record["time_zone"])
    except (OSError, ValueError, KeyError, TypeError, ZoneInfoNotFoundError):
        return None


def kit_language(folder: Path) -> str | None:
    """The course language `grader release` recorded in a released folder (None: none or
    unreadable; a student's edit of the record is the student's own choice of language)."""
    try:
        record = json.loads((folder / RELEASE_RECORD).read_text(encoding="utf-8"))
        return i18n.normalise(record["language"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def use_kit_language(path: Path) -> str:
    """Speaks the released folder's language unless one was chosen (``--lang``,
    ``GRADER_LANG``); returns the language in effect."""
    chosen = i18n.ENV_VAR in os.environ
    if not chosen:
        try:
            folder, _work = released_folder(path)
        except NotReleased:
            return i18n.current_language()  # the error is reported by the verb itself
        language = kit_language(folder)
        if language is not None:
            return i18n.set_language(language)
    return i18n.current_language()


def main(*, folder: Path, dataset: str | None = None) -> int:
    """`grader check [FOLDER | NOTEBOOK]`: exits 0 when every public check passes, else 1."""
    use_kit_language(folder)
    released, _work = released_folder(folder)
    if not (released / "tests" / PUBLIC_SUITE).is_file():
        print(_("{folder}: this assignment has no public tests (no tests/{suite}), so there "
                "is nothing to check before you submit; the hidden tests grade your work when "
                "it is submitted.", folder=released.name, suite=PUBLIC_SUITE))
        return 0
    grade = check_folder(folder, dataset=dataset)
    print(format_check(grade))
    config = load_released(released)
    if config.due is not None:  # in the course's time zone, else the due date's own offset
        zone = kit_time_zone(released) or config.due.tzinfo
        print(_("Due: {due}.", due=i18n.format_datetime(config.due, zone=zone,
                                                        length="deadline")))
    return 0 if all_passed(grade) else 1

"""`grader check`: the public tests on a student's folder or notebook, with a short table.

The assignment is identified by the ``assignment.toml`` that `grader release` wrote into
the folder, never by the folder's name, so a copied or renamed folder (``mlp_numpy (1)``,
``作业2``) checks as the original. The student's files run in this process
(`grader.kit.local`): nothing here needs a sandbox or a POSIX-only module.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import tempfile
from pathlib import Path

from grader.config import CONFIG_NAME, AssignmentConfig, ConfigError, load_assignment
from grader.results.records import PASSED, Grade

PUBLIC_SUITE = "test_public.py"
"""The public tests' file in a released folder's ``tests/`` (`grader.release.build`)."""
NOTEBOOK = ".ipynb"
# An id as `grader release` writes it; anything else is not a released folder's file.
RELEASED_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
MARKS = {"passed": "ok", "failed": "FAIL", "error": "ERROR", "skipped": "skip"}


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
            raise NotReleased(f"{path.name} is not a notebook (.ipynb) or a Python file (.py); "
                              "pass your work file or the released folder")
        folder, work = path.parent, path
    elif path.is_dir():
        folder, work = path, None
    else:
        raise NotReleased(f"{path} does not exist; pass the folder that `grader release` made "
                          "for the assignment, or a notebook inside it")
    if not (folder / CONFIG_NAME).is_file():
        raise NotReleased(
            f"{folder} holds no {CONFIG_NAME}: run `grader check` inside the folder that "
            f"`grader release` made for the assignment (it holds {CONFIG_NAME}, README.md and "
            "tests/), or pass that folder: grader check path/to/folder")
    return folder, work


def load_released(folder: Path) -> AssignmentConfig:
    """The assignment.toml that `grader release` put in a student folder (any folder name).

    Raises:
        NotReleased: No assignment.toml in `folder`.
        ConfigError: The file is damaged; the message names the key.
    """
    toml = folder / CONFIG_NAME
    if not toml.is_file():
        raise NotReleased(f"{toml} does not exist: run `grader check` inside the folder that "
                          f"`grader release` made for the assignment (it holds {CONFIG_NAME})")
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
        raise ConfigError(str(toml), "", f"not valid TOML: {exc}; download the released "
                          "folder again") from None
    assignment_id = data.get("id")
    if not isinstance(assignment_id, str) or not RELEASED_ID.fullmatch(assignment_id) \
            or assignment_id.strip(".") == "":
        raise ConfigError(str(toml), "id", f"expected the assignment's id (letters, digits, "
                          f"`_`); received: id={assignment_id!r}")
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
        raise NotReleased(f"{work.name}: this assignment has several files "
                          f"({', '.join(expected)}); pass the folder, or a file named after "
                          "one of them (e.g. " + stems[0] + NOTEBOOK + ")")
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
        lines.append(f"problem: {problem}")
    for part in grade.parts:
        lines.append(f"{part.name}: {part.points:g}/{part.max_points:g}")
        for test in part.tests:
            lines.append(f"  [{MARKS.get(test.status, test.status)}] {test.case}")
            if test.status != PASSED and test.message:
                lines += [f"      {line}" for line in test.message.splitlines()[:12]]
    # As grading will: definitions only. A main guard is skipped on purpose: not listed.
    skipped = [s for s in grade.skipped_statements if "if __name__ ==" not in s]
    if skipped:
        lines.append("\nnot run (your files are imported for their definitions only; put such "
                     'code under `if __name__ == "__main__":`):')
        lines += [f"  {statement}" for statement in skipped[:10]]
    passed = sum(t.status == PASSED for p in grade.parts for t in p.tests)
    total = sum(len(p.tests) for p in grade.parts)
    lines.append(f"\n{passed} of {total} public checks passed. Hidden tests check more when "
                 "you submit.")
    return "\n".join(lines)


def all_passed(grade: Grade) -> bool:
    return all(t.status == PASSED for p in grade.parts for t in p.tests) and bool(grade.parts)


def main(*, folder: Path, dataset: str | None = None) -> int:
    """`grader check [FOLDER | NOTEBOOK]`: exits 0 when every public check passes, else 1."""
    released, _ = released_folder(folder)
    if not (released / "tests" / PUBLIC_SUITE).is_file():
        print(f"{released.name}: this assignment has no public tests (no tests/{PUBLIC_SUITE}), "
              "so there is nothing to check before you submit; the hidden tests grade your "
              "work when it is submitted.")
        return 0
    grade = check_folder(folder, dataset=dataset)
    print(format_check(grade))
    return 0 if all_passed(grade) else 1

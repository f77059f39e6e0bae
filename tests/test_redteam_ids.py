"""Red team: a student id never becomes a file name that a shell reads as an option.

Results, reports and exports are written as ``<out>/<file_name(id)>/``; an instructor
archiving or cleaning that folder with a wildcard (``tar czf class.tgz *``, ``rm -r *``)
hands every name to the command, and a name that starts with ``-`` is read as an option:
a student whose id is ``--remove-files`` made tar delete the class's results.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from grader.ids import InvalidId, file_name, validate_id


@pytest.mark.parametrize("student_id", ["--remove-files", "-rf", "-2+3", "---", "-.hidden",
                                        "._-x", "--checkpoint-action=exec=sh"])
def test_a_file_name_never_starts_with_a_dash_or_a_dot(student_id: str) -> None:
    name = file_name(validate_id(student_id))
    assert not name.startswith(("-", ".")), name
    assert "/" not in name and name


def test_a_leading_dash_still_tells_students_apart() -> None:
    names = {file_name(student_id) for student_id in ("-2+3", "2+3", "--2+3", "_2+3")}
    assert len(names) == 4, names
    assert file_name("2+3") == "2+3"  # an ordinary id keeps its name


def test_a_dash_inside_an_id_is_kept() -> None:
    assert file_name("anne-marie") == "anne-marie"
    assert file_name("s-1") == "s-1"


@pytest.mark.parametrize("student_id", ["s1\u202e99", "al\u200bice", "a\u2028b", "x\ufeff",
                                        "p\ue000", "u\U000e0041"])
def test_an_id_with_an_invisible_character_is_refused_by_name(student_id: str) -> None:
    """A bidi override shows "s1<RLO>99" as "s199" in a report; a zero-width space makes two
    ids look alike in the gradebook: neither is an id."""
    with pytest.raises(InvalidId, match=r"invisible character U\+[0-9A-F]{4,5} \("):
        validate_id(student_id)


@pytest.mark.parametrize("student_id", ["Zoë", "王小明", "o\u0301", "d'Arc", "Ana María"])
def test_ids_in_other_scripts_and_with_accents_are_still_accepted(student_id: str) -> None:
    assert validate_id(student_id) == student_id


FILES = Path(__file__).parent / "files" / "grading"


def test_through_the_cli_a_disguised_id_is_a_problem_and_no_name_is_an_option(
        tmp_path: Path) -> None:
    """`grader autograde` over a class with a folder named with a right-to-left override
    and one named like a tar option, next to an honest student; then `grader export`."""
    course = tmp_path / "course"
    shutil.copytree(FILES / "repo", course)
    klass = tmp_path / "class"
    for name in ("honest", "s1\u202e99", "--remove-files"):
        shutil.copytree(FILES / "submissions" / "wrong_relu", klass / name)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    graded, db = tmp_path / "graded", tmp_path / "gradebook.db"
    autograde = subprocess.run(
        [sys.executable, "-m", "grader", "autograde", "act", str(klass), "--out", str(graded),
         "--db", str(db), "--workers", "2"], cwd=course, env=env, capture_output=True,
        text=True, timeout=600)
    assert autograde.returncode == 3, autograde.stdout + autograde.stderr
    assert "U+202E (RIGHT-TO-LEFT OVERRIDE)" in autograde.stderr  # the problems list
    assert "\u202e" not in autograde.stdout + autograde.stderr
    names = sorted(path.name for path in graded.iterdir())
    assert len(names) == 3 and not any(name.startswith(("-", ".")) for name in names), names
    assert "honest" in names and any(name.startswith("invalid-") for name in names), names
    export = subprocess.run(
        [sys.executable, "-m", "grader", "export", "act", "--format", "csv", "--db", str(db),
         "--out", "-"], cwd=course, env=env, capture_output=True, text=True, timeout=600)
    assert export.returncode == 0, export.stderr
    assert "\u202e" not in export.stdout and "--remove-files" in export.stdout

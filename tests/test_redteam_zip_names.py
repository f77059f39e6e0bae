"""Red team: a zip that names one file twice is refused, so what is graded is what a
reviewer sees.

A zip may hold two entries with one name (Python's zipfile appends them; so can any
hand-made archive). Intake graded the first copy while ``unzip -o``, a plagiarism
checker or a TA's file manager keeps the last: a student could be graded on someone
else's code and reviewed on their own. Names equal up to case collide the same way on
macOS and Windows. Through the real CLI, next to an honest student.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

FILES = Path(__file__).parent / "files" / "grading"


def _zip(path: Path, entries: list[tuple[str, str]]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate: that's the attack
        with zipfile.ZipFile(path, "w") as archive:
            for name, text in entries:
                archive.writestr(name, text)


def test_duplicate_and_case_colliding_names_are_problems_and_the_class_goes_on(
        tmp_path: Path) -> None:
    course = tmp_path / "course"
    shutil.copytree(FILES / "repo", course)
    source = (FILES / "submissions" / "wrong_relu" / "act.py").read_text()
    klass = tmp_path / "class"
    klass.mkdir()
    _zip(klass / "twice.zip", [("act.py", source), ("act.py", "raise SystemExit(1)\n")])
    _zip(klass / "cased.zip", [("act.py", source), ("ACT.py", "raise SystemExit(1)\n")])
    _zip(klass / "honest.zip", [("act.py", source), ("notes/act.py.txt", "draft")])
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    graded = tmp_path / "graded"
    run = subprocess.run(
        [sys.executable, "-m", "grader", "autograde", "act", str(klass), "--out", str(graded),
         "--db", str(tmp_path / "gradebook.db"), "--workers", "2"], cwd=course, env=env,
        capture_output=True, text=True, timeout=600)
    assert run.returncode == 3, run.stdout + run.stderr
    assert "2 submissions had problems" in run.stderr, run.stderr
    assert "twice.zip holds two files named 'act.py' and 'act.py'" in run.stderr
    assert "cased.zip holds two files named 'act.py' and 'ACT.py'" in run.stderr
    table = run.stdout.split("\n\n")[0]
    assert any(line.split()[:2] == ["honest", "3/6"] for line in table.splitlines()), table

"""The whole day from the built wheel, in a fresh virtual environment that cannot see this
repository: the README's instructor and student sections are these steps.

instructor: pip install nn-grader; grader init; grader new; grader release
student:    pip install nn-grader; grader check (bare, then solved, from a renamed copy);
            grader submit
instructor: grader autograde; grader feedback; grader export (CSV, Gradescope)

The environment gets the wheel and its dependencies from PyPI (pip's cache makes later runs
fast), never TensorFlow: the numpy path runs without it. The wheel and the student's folder
are searched for solution text.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import venv
from pathlib import Path

import pytest
from test_distribution import build_distributions, distribution_files, leaks

SOLUTION_START, SOLUTION_END = "### BEGIN SOLUTION", "### END SOLUTION"
STUDENT = "2023001"


def solution_lines(reference: Path) -> list[str]:
    """The code lines between the solution markers of a reference file."""
    lines, inside = [], False
    for line in reference.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped == SOLUTION_START or stripped == SOLUTION_END:
            inside = stripped == SOLUTION_START
        elif inside and stripped and not stripped.startswith("#"):
            lines.append(stripped)
    return lines


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path]:
    """(the built wheel, a fresh environment with it installed): the student's pip install."""
    base = tmp_path_factory.mktemp("wheel-e2e")
    wheel, _ = build_distributions(base / "dist")
    environment = base / "env"
    venv.EnvBuilder(with_pip=True, clear=True).create(environment)
    python = environment / "bin" / "python"
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--quiet",
         "--only-binary", ":all:", str(wheel)],
        cwd=base, env=_clean_env(environment), capture_output=True, text=True, timeout=900)
    assert installed.returncode == 0, (
        "pip could not install the wheel and its dependencies (it needs PyPI or pip's "
        f"cache): {installed.stderr[-3000:]}")
    return wheel, environment


def _clean_env(environment: Path) -> dict[str, str]:
    """The environment's own PATH first, nothing that points at this repository."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONPATH", "VIRTUAL_ENV", "GRADER_COURSE", "PYTHONHOME")}
    env["PATH"] = f"{environment / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    # The day is read in English here (a new course speaks zh_CN); Chinese output is tested
    # in tests/test_i18n_cli.py and tests/test_i18n_kit.py.
    env["GRADER_LANG"] = "en"
    return env


def _run(environment: Path, *args: str, cwd: Path, ok: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([str(environment / "bin" / args[0]), *args[1:]], cwd=cwd,
                          env=_clean_env(environment), capture_output=True, text=True,
                          timeout=300)
    if ok:
        assert done.returncode == 0, f"{' '.join(args)}: {done.stdout[-2000:]}{done.stderr}"
    return done


def test_the_installed_tool_is_the_wheel_without_tensorflow(installed, tmp_path):
    _, environment = installed
    where = _run(environment, "python", "-c",
                 "import grader, importlib.util; print(grader.__file__); "
                 "print(importlib.util.find_spec('tensorflow'))", cwd=tmp_path)
    origin, tensorflow = where.stdout.split()
    assert Path(origin).is_relative_to(environment)
    assert tensorflow == "None"
    for course_package in ("reference", "autograde_tests"):
        missing = _run(environment, "python", "-c", f"import {course_package}", cwd=tmp_path,
                       ok=False)
        assert missing.returncode != 0


def test_an_instructors_and_a_students_day_from_the_wheel(installed, tmp_path):
    wheel, environment = installed
    assert leaks(distribution_files(wheel)) == []

    # The instructor starts a course and an assignment, and releases it.
    _run(environment, "grader", "init", "course", cwd=tmp_path)
    course = tmp_path / "course"
    assert (course / "course.toml").is_file()
    _run(environment, "grader", "new", "dense", cwd=course)
    released = _run(environment, "grader", "release", "dense", cwd=course)
    assert "reference: 10/10, bare skeleton: 0/10" in released.stdout
    kit = course / "release" / "dense"
    readme = (kit / "README.md").read_text(encoding="utf-8")
    assert 'pip install "nn-grader"' in readme and "grader submit" in readme

    # The student's folder holds no solution text, in any file.
    secret = solution_lines(course / "reference" / "dense.py")
    assert secret, "the scaffolded reference has solution lines to look for"
    for path in kit.rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            assert not [line for line in secret if line in text], path.name

    # The student renames the folder, checks the bare skeleton, solves it, checks, submits.
    folder = tmp_path / "student" / "dense (1)"
    shutil.copytree(kit, folder)
    bare = _run(environment, "grader", "check", cwd=folder, ok=False)
    assert bare.returncode == 1 and "0 of 2 public checks passed" in bare.stdout
    shutil.copyfile(course / "reference" / "dense.py", folder / "dense.py")
    solved = _run(environment, "grader", "check", cwd=folder)
    assert "2 of 2 public checks passed" in solved.stdout
    _run(environment, "grader", "submit", "--student-id", STUDENT, cwd=folder)
    submissions = course / "submissions"
    submissions.mkdir()
    shutil.copyfile(folder / f"dense-{STUDENT}.zip", submissions / f"dense-{STUDENT}.zip")

    # The instructor grades, writes the reports and exports.
    graded = _run(environment, "grader", "autograde", "dense", "submissions", cwd=course)
    assert f"{STUDENT}" in graded.stdout and "10/10" in graded.stdout
    results = json.loads((course / "graded" / "dense" / STUDENT / "results.json")
                         .read_text(encoding="utf-8"))
    assert results["score"] == 10
    _run(environment, "grader", "feedback", "dense", cwd=course)
    report = course / "feedback" / "dense" / STUDENT / "report.html"
    assert STUDENT in report.read_text(encoding="utf-8")
    assert (course / "feedback" / "dense" / "index.html").is_file()
    _run(environment, "grader", "export", "dense", "--format", "csv", "--out", "grades.csv",
         cwd=course)
    with open(course / "grades.csv", encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["student_id"], float(row["final_score"])) for row in rows] == [(STUDENT, 10.0)]
    _run(environment, "grader", "export", "dense", "--format", "gradescope", "--out",
         "gradescope", cwd=course)
    assert (course / "gradescope" / STUDENT / "results.json").is_file()

    # Nothing was written into the installed tool: the defaults live in the course.
    site = next((environment / "lib").glob("python3*/site-packages/grader"))
    assert not [p for p in site.rglob("*") if p.name in ("gradebook.db", "graded", "feedback")]


@pytest.mark.slow  # the hidden suite trains the numpy MLP to its threshold (seconds)
def test_the_numpy_assignment_releases_checks_and_grades_without_tensorflow(installed, tmp_path):
    # The lecture's course, copied from this checkout as an instructor would copy a course.
    _, environment = installed
    repository = Path(__file__).resolve().parents[1]
    _run(environment, "grader", "init", "lecture", "--from", str(repository), cwd=tmp_path)
    course = tmp_path / "lecture"
    released = _run(environment, "grader", "release", "mlp_numpy", cwd=course)
    assert "reference: 100/100, bare skeleton: 0/100" in released.stdout
    kit = course / "release" / "mlp_numpy"
    assert 'pip install "nn-grader"' in (kit / "README.md").read_text(encoding="utf-8")
    folder = tmp_path / "作业2"
    shutil.copytree(kit, folder)
    shutil.copyfile(course / "reference" / "mlp_numpy.py", folder / "mlp_numpy.py")
    checked = _run(environment, "grader", "check", cwd=folder)
    assert "21 of 21 public checks passed" in checked.stdout
    _run(environment, "grader", "submit", "--student-id", STUDENT, "--no-check", cwd=folder)
    (course / "submissions").mkdir()
    shutil.copyfile(folder / f"mlp_numpy-{STUDENT}.zip",
                    course / "submissions" / f"mlp_numpy-{STUDENT}.zip")
    graded = _run(environment, "grader", "autograde", "mlp_numpy", "submissions", cwd=course)
    assert "100/100" in graded.stdout, graded.stdout
    imported = _run(environment, "python", "-c", "import importlib.util; "
                    "print(importlib.util.find_spec('tensorflow'))", cwd=tmp_path)
    assert imported.stdout.strip() == "None"  # graded without TensorFlow installed

"""The student kit: what `grader release` writes, and `grader check`/`submit` on a laptop.

The kit is released once from the small golden course (tests/files/grading/repo, one
assignment `act`) with the real self-check; each test works on its own copy of it, renamed
as students rename folders. `grader check` runs the student's own files in its own process
(`grader.kit.local`), so it must work where `resource`, `fcntl`, `pwd`, `termios`,
`os.killpg` and `os.setsid` do not exist (Windows) and without TensorFlow.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import nbformat
import numpy as np
import pytest

from grader.config import load_assignment
from grader.grading.run import grade_path
from grader.kit.check import PUBLIC_SUITE, check_folder, load_released
from grader.release.build import (
    ReleaseRefused,
    public_config_text,
    release,
    render_instructions,
    skeleton_texts,
)
from grader.release.kit import MANIFEST, edited_files

ROOT = Path(__file__).resolve().parents[1]
COURSE = Path(__file__).parent / "files" / "grading" / "repo"
SOLUTION = COURSE / "solutions" / "act.py"
LECTURE_ASSIGNMENTS = ("tf_basics", "mlp_numpy", "keras_mlp", "keras_cnn", "alexnet")

# Run first in the child: what a Windows Python lacks, and TensorFlow, made unavailable.
NO_POSIX = textwrap.dedent("""
    import os, sys
    BLOCKED = {"resource", "fcntl", "pwd", "grp", "termios", "tensorflow", "keras", "nbgrader"}
    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is not available on this platform (test blocker)")
            return None
    sys.meta_path.insert(0, Blocker())
    for name in ("killpg", "setsid", "getpgid", "fork"):
        if hasattr(os, name):
            delattr(os, name)
    from grader.cli import main
    code = main(sys.argv[1:])
    loaded = sorted(BLOCKED & {m.split(".")[0] for m in sys.modules})
    print("LOADED-BLOCKED:", ",".join(loaded) or "none")
    sys.exit(code)
""")


@pytest.fixture(scope="module")
def released(tmp_path_factory) -> Path:
    """`act` released once (reference full marks, bare skeleton zero, really graded)."""
    base = tmp_path_factory.mktemp("kit")
    course = base / "course"
    shutil.copytree(COURSE, course)
    config = load_assignment(course / "assignments" / "act" / "assignment.toml")
    report = release(config, base / "release",
                     grade=lambda cfg, folder: grade_path(cfg, folder).grade)
    return report.folder


def _copy(released: Path, tmp_path: Path, name: str, *, solved: bool = True) -> Path:
    folder = tmp_path / name
    shutil.copytree(released, folder)
    if solved:
        shutil.copyfile(SOLUTION, folder / "act.py")
    return folder


def _grader(*args: str, cwd: Path, prelude: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = ([sys.executable, "-c", prelude, *args] if prelude
               else [sys.executable, "-m", "grader", *args])
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("name", ["act (1)", "作业2", "act-copy"])
def test_check_and_submit_work_in_a_renamed_folder(released, tmp_path, name):
    folder = _copy(released, tmp_path, name)
    checked = _grader("check", cwd=folder)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "2 of 2 public checks passed" in checked.stdout
    submitted = _grader("submit", "--student-id", "2023001", cwd=folder)
    assert submitted.returncode == 0, submitted.stderr
    with zipfile.ZipFile(folder / "act-2023001.zip") as archive:
        assert sorted(archive.namelist()) == ["act.py", "manifest.json"]
        assert json.loads(archive.read("manifest.json"))["assignment"] == "act"


def test_check_of_the_bare_skeleton_fails_saying_what_to_write(released, tmp_path):
    folder = _copy(released, tmp_path, "act (2)", solved=False)
    checked = _grader("check", str(folder), cwd=tmp_path)
    assert checked.returncode == 1
    assert "0 of 2 public checks passed" in checked.stdout
    assert "NotImplementedError" in checked.stdout
    assert 'File "act.py"' in checked.stdout  # the student's frame, not the grader's


def test_check_a_notebook(released, tmp_path):
    folder = _copy(released, tmp_path, "notebook work", solved=False)
    (folder / "act.py").unlink()
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_markdown_cell("# my work"),
                      nbformat.v4.new_code_cell("%matplotlib inline\nimport numpy as np"),
                      nbformat.v4.new_code_cell(SOLUTION.read_text(encoding="utf-8")),
                      nbformat.v4.new_code_cell("print(relu(np.ones(3)))")]
    nbformat.write(notebook, folder / "act.ipynb")
    checked = _grader("check", "act.ipynb", cwd=folder)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "2 of 2 public checks passed" in checked.stdout
    assert "print(relu(np.ones(3)))" in checked.stdout  # listed as not run, as when graded
    submitted = _grader("submit", "--student-id", "2023002", "--no-check", cwd=folder)
    assert submitted.returncode == 0, submitted.stderr
    with zipfile.ZipFile(folder / "act-2023002.zip") as archive:
        assert "act.ipynb" in archive.namelist()


def test_check_a_wrong_notebook_fails(released, tmp_path):
    folder = _copy(released, tmp_path, "wrong notebook", solved=False)
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(
        "import numpy as np\n\ndef relu(x):\n    return np.abs(x)\n")]
    nbformat.write(notebook, folder / "mine.ipynb")
    checked = _grader("check", "mine.ipynb", cwd=folder)
    assert checked.returncode == 1
    assert "1 of 2 public checks passed" in checked.stdout


def test_check_runs_without_posix_modules_or_tensorflow(released, tmp_path):
    folder = _copy(released, tmp_path, "windows laptop")
    checked = _grader("check", cwd=folder, prelude=NO_POSIX)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "2 of 2 public checks passed" in checked.stdout
    assert "LOADED-BLOCKED: none" in checked.stdout
    submitted = _grader("submit", "--student-id", "2023003", cwd=folder, prelude=NO_POSIX)
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr


def test_a_student_exception_is_the_students_not_a_grader_error(released, tmp_path):
    folder = _copy(released, tmp_path, "raises")
    (folder / "act.py").write_text("def relu(x):\n    raise ValueError('my bug')\n",
                                   encoding="utf-8")
    checked = _grader("check", cwd=folder)
    assert checked.returncode == 1
    assert "ValueError: my bug" in checked.stdout
    assert "grader error" not in checked.stdout.lower()


def test_check_refuses_a_folder_that_was_not_released(tmp_path):
    (tmp_path / "act.py").write_text("x = 1\n", encoding="utf-8")
    checked = _grader("check", cwd=tmp_path)
    assert checked.returncode == 2
    assert "holds no assignment.toml" in checked.stderr
    assert "Traceback" not in checked.stderr


@pytest.mark.parametrize("hostile_id", ["../../escape", "", "a/b", 42, ".."])
def test_a_damaged_released_toml_is_a_clear_error(released, tmp_path, hostile_id):
    folder = _copy(released, tmp_path, "damaged")
    toml = folder / "assignment.toml"
    lines = toml.read_text(encoding="utf-8").splitlines()
    lines[0] = f"id = {json.dumps(hostile_id)}"
    toml.write_text("\n".join(lines) + "\n", encoding="utf-8")
    checked = _grader("check", cwd=folder)
    assert checked.returncode == 2
    assert "expected the assignment's id" in checked.stderr
    assert "Traceback" not in checked.stderr
    assert not (tmp_path / "escape").exists()


def test_the_released_toml_is_read_whatever_the_folder_name(released, tmp_path):
    folder = _copy(released, tmp_path, "任意 名字 (3)")
    config = load_released(folder)
    assert config.id == "act"
    assert [part.name for part in config.parts] == ["relu"]  # the public parts only


def test_release_refuses_to_replace_an_edited_folder_without_force(released, tmp_path):
    out = tmp_path / "release"
    shutil.copytree(released, out / "act")
    assert edited_files(out / "act") == []  # as released
    course = tmp_path / "course"
    shutil.copytree(COURSE, course)
    config = load_assignment(course / "assignments" / "act" / "assignment.toml")

    def grade(cfg, folder):
        return grade_path(cfg, folder).grade

    release(config, out, grade=grade)  # unchanged: replaced without --force
    (out / "act" / "act.py").write_text("def relu(x):\n    return x  # my work\n",
                                        encoding="utf-8")
    (out / "act" / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(ReleaseRefused) as refused:
        release(config, out, grade=grade)
    assert "act.py (changed)" in str(refused.value)
    assert "notes.txt (added)" in str(refused.value)
    assert "--force" in str(refused.value)
    assert "my work" in (out / "act" / "act.py").read_text(encoding="utf-8")  # untouched
    release(config, out, grade=grade, force=True)
    assert "my work" not in (out / "act" / "act.py").read_text(encoding="utf-8")
    assert not (out / "act" / "notes.txt").exists()


def test_a_folder_without_a_release_record_is_not_replaced(tmp_path):
    folder = tmp_path / "act"
    folder.mkdir()
    (folder / "act.py").write_text("mine", encoding="utf-8")
    assert edited_files(folder) == ["act.py (no release record)"]
    (folder / MANIFEST).write_text("not json", encoding="utf-8")
    assert edited_files(folder) == ["act.py (no release record)"]


def test_the_kit_holds_what_a_student_needs_and_no_solution(released):
    names = sorted(p.relative_to(released).as_posix() for p in released.rglob("*")
                   if p.is_file())
    assert names == [MANIFEST, "README.md", "act.py", "assignment.toml", "tests/test_public.py"]
    readme = (released / "README.md").read_text(encoding="utf-8")
    for line in ('pip install "nn-grader"', "grader check", "grader check act.ipynb",
                 "grader submit --student-id YOUR_ID", "Write `relu(x)`"):
        assert line in readme, line
    assert "安装" not in readme  # the test course's language is English
    for path in released.rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            assert "np.maximum(x, 0.0)" not in text  # the reference's relu body
            assert "BEGIN HIDDEN TESTS" not in text and "test_sigmoid_large" not in text


def test_instructions_speak_the_course_language_and_name_the_extra(tmp_path):
    course = tmp_path / "course"
    shutil.copytree(COURSE, course)
    toml = course / "course.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace('language = "en"',
                                                              'language = "zh_CN"'),
                    encoding="utf-8")
    config = load_assignment(course / "assignments" / "act" / "assignment.toml")
    readme = render_instructions(config)
    # One template in the course's language: Chinese only, commands and identifiers kept.
    assert "## 安装（一次即可）" in readme and "Install once" not in readme
    assert "补全每一处 `raise NotImplementedError(...)`" in readme
    assert "grader submit --student-id YOUR_ID" in readme and "act-YOUR_ID.zip" in readme
    assert 'pip install "nn-grader"' in readme
    keras = load_assignment(ROOT / "assignments" / "keras_cnn" / "assignment.toml")
    assert 'pip install "nn-grader[tensorflow]"' in render_instructions(keras)
    numpy_only = load_assignment(ROOT / "assignments" / "mlp_numpy" / "assignment.toml")
    assert 'pip install "nn-grader"' in render_instructions(numpy_only)


@pytest.mark.parametrize("assignment", LECTURE_ASSIGNMENTS)
def test_lecture_skeletons_import_nothing_from_the_grader(assignment):
    config = load_assignment(ROOT / "assignments" / assignment / "assignment.toml")
    for name, text in skeleton_texts(config).items():
        tree = ast.parse(text)
        imported = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                    for alias in node.names]
        imported += [node.module or "" for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom)]
        assert not [m for m in imported if m.split(".")[0] in ("grader", "reference")], name


def test_the_local_runtime_keeps_the_sandboxes_contract(tmp_path):
    from grader.kit.local import LocalRuntime
    from grader.runtime.errors import ImportFailed, StudentAttributeError, StudentError
    from grader.runtime.protocol import Callable

    (tmp_path / "work.py").write_text(textwrap.dedent("""
        import numpy as np

        def apply(f, x):
            return f(x)

        def double_in_place(x):
            x *= 2
            return x

        class Box:
            def __init__(self):
                self.value = np.zeros(2)

        def boom():
            raise KeyError("no such key")

        train()  # a top-level run: skipped, never executed
    """), encoding="utf-8")
    (tmp_path / "broken.py").write_text("def f(:\n", encoding="utf-8")
    with LocalRuntime(tmp_path, ["work", "broken"]) as runtime:
        work = runtime.student.work
        assert work.apply(Callable("square"), 3.0) == 9.0
        x = np.ones(3)
        assert (work.double_in_place(x) == 2).all() and (x == 1).all()  # a copy crossed
        box = work.Box()
        values = box.value
        values[0] = 5.0  # a copy came back: the student's object is unchanged
        assert float(np.asarray(box.value)[0]) == 0.0
        box.value = np.ones(2)
        assert np.asarray(box.value).tolist() == [1.0, 1.0]
        with pytest.raises(StudentError, match="no such key"):
            work.boom()
        with pytest.raises(StudentAttributeError):
            work.missing_function  # noqa: B018
        with pytest.raises(ImportFailed, match="broken.py"):
            runtime.student.broken  # noqa: B018
        assert [s.text.split("#")[0].strip() for s in runtime.skipped["work"]] == ["train()"]


@pytest.mark.parametrize("assignment", LECTURE_ASSIGNMENTS)
def test_the_lecture_references_pass_their_public_checks_locally(assignment, tmp_path):
    # The folder `grader release` writes (public toml, public tests), renamed, with the
    # reference as the student's file: every public check passes without the sandbox,
    # the Keras ones through the grader's evaluator in this process.
    config = load_assignment(ROOT / "assignments" / assignment / "assignment.toml")
    folder = tmp_path / f"{assignment} (1)"
    (folder / "tests").mkdir(parents=True)
    (folder / "assignment.toml").write_text(public_config_text(config), encoding="utf-8")
    shutil.copyfile(ROOT / "autograde_tests" / assignment / PUBLIC_SUITE,
                    folder / "tests" / PUBLIC_SUITE)
    for file in config.files:
        shutil.copyfile(file.reference, folder / file.student)
    grade = check_folder(folder)
    failed = [(t.case, t.message) for p in grade.parts for t in p.tests if t.status != "passed"]
    assert grade.parts and failed == [] and grade.problems == ()


def test_the_cli_forwards_release_force_and_a_notebook_to_check(monkeypatch, tmp_path):
    from grader import cli
    from grader.kit import check
    from grader.release import build

    seen = {}
    monkeypatch.setattr(build, "main", lambda **kwargs: seen.update(release=kwargs) or 0)
    monkeypatch.setattr(check, "main", lambda **kwargs: seen.update(check=kwargs) or 0)
    assert cli.main(["release", "act", "--force", "--out", str(tmp_path)]) == 0
    assert seen["release"]["force"] is True
    assert cli.main(["check", "work.ipynb"]) == 0
    assert seen["check"]["folder"] == Path("work.ipynb")


def test_a_file_for_an_assignment_of_several_files_must_name_one(tmp_path):
    from grader.kit.check import NotReleased, student_files

    config = load_assignment(COURSE / "assignments" / "act" / "assignment.toml")
    several = dataclasses.replace(config, files=(  # two expected files
        dataclasses.replace(config.files[0], student="act.py"),
        dataclasses.replace(config.files[0], student="extra.py")))
    work = tmp_path / "mine.ipynb"
    work.write_text("{}", encoding="utf-8")
    into = tmp_path / "into"
    into.mkdir()
    with pytest.raises(NotReleased, match="several files"):
        student_files(several, tmp_path, work, into)
    named = tmp_path / "extra.ipynb"
    named.write_text("{}", encoding="utf-8")
    student_files(several, tmp_path, named, into)
    assert sorted(p.name for p in into.iterdir()) == ["extra.ipynb"]


def test_check_of_an_assignment_without_public_tests_says_so(released, tmp_path):
    folder = _copy(released, tmp_path, "hidden only")
    shutil.rmtree(folder / "tests")
    checked = _grader("check", cwd=folder)
    assert checked.returncode == 0, checked.stderr
    assert "no public tests" in checked.stdout
    submitted = _grader("submit", "--student-id", "2023004", cwd=folder)
    assert submitted.returncode == 0, submitted.stderr
    assert (folder / "act-2023004.zip").is_file()

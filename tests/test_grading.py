"""End to end on a small golden assignment (`act`): release, check, submit, autograde.

The assignment lives in tests/files/grading/repo (its own assignments/, autograde_tests/
and reference file); submissions in tests/files/grading/submissions. Every run uses the
real sandboxed runtime.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from grader.config import load_assignment
from grader.grading.run import grade_path
from grader.release.build import ReleaseRefused, release

FILES = Path(__file__).parent / "files" / "grading"
REPO = FILES / "repo"
SUBMISSIONS = FILES / "submissions"


@pytest.fixture
def repo(tmp_path) -> Path:
    """A writable copy of the golden course folder."""
    copy = tmp_path / "course"
    shutil.copytree(REPO, copy)
    return copy


def _config(repo: Path):
    return load_assignment(repo / "assignments" / "act" / "assignment.toml")


def _points(graded) -> dict[str, float]:
    return {part.name: part.points for part in graded.grade.parts}


def _grader(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    return subprocess.run([sys.executable, "-m", "grader", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_reference_scores_full_marks():
    config = _config(REPO)
    graded = grade_path(config, REPO / "solutions" / "act.py")
    assert graded.grade.score == 10, graded.grade


def test_a_wrong_relu_loses_the_relu_part_only():
    graded = grade_path(_config(REPO), SUBMISSIONS / "wrong_relu")
    assert _points(graded) == {"relu": 3.0, "sigmoid": 4.0}  # the shape test still passes
    failed = [t for p in graded.grade.parts for t in p.tests if t.status != "passed"]
    assert [t.case for t in failed] == ["test_relu_values"]
    assert "values differ from the expected ones" in failed[0].message


def test_a_crash_costs_only_the_tests_it_broke():
    graded = grade_path(_config(REPO), SUBMISSIONS / "exits")
    assert _points(graded) == {"relu": 6.0, "sigmoid": 0.0}
    messages = [t.message for t in graded.grade.parts[1].tests]
    assert all(message for message in messages)
    assert any("exit" in message.lower() for message in messages), messages


def test_top_level_training_is_skipped_and_listed():
    graded = grade_path(_config(REPO), SUBMISSIONS / "train_at_top")
    assert graded.grade.score == 10
    skipped = "\n".join(graded.grade.skipped_statements)
    assert "line 3" in skipped and "print(" in skipped
    assert "line 15" in skipped and "while True" in skipped


def test_missing_file_scores_zero_with_the_reason(tmp_path):
    empty = tmp_path / "student42"
    empty.mkdir()
    (empty / "notes.txt").write_text("I ran out of time")
    graded = grade_path(_config(REPO), empty)
    assert graded.grade.score == 0
    assert graded.submission.student_id == "student42"
    assert any("act.py" in problem for problem in graded.grade.problems)


def test_same_submission_twice_gets_the_same_grade():
    first = grade_path(_config(REPO), SUBMISSIONS / "wrong_relu")
    second = grade_path(_config(REPO), SUBMISSIONS / "wrong_relu")
    assert [(t.case, t.status, t.fraction, t.message)
            for p in first.grade.parts for t in p.tests] == [
        (t.case, t.status, t.fraction, t.message) for p in second.grade.parts for t in p.tests]


# --- release --------------------------------------------------------------------------------


def _grade(config, folder):
    return grade_path(config, folder).grade


def test_release_writes_skeleton_public_tests_and_instructions(repo, tmp_path):
    report = release(_config(repo), tmp_path / "release", grade=_grade)
    folder = report.folder
    assert folder == tmp_path / "release" / "act"
    assert report.reference_grade.score == 10 and report.skeleton_grade.score == 0
    skeleton = (folder / "act.py").read_text()
    assert "np.maximum" not in skeleton and "BEGIN SOLUTION" not in skeleton
    assert 'raise NotImplementedError("Write the body of relu' in skeleton
    assert '"""ReLU of an array of any shape."""' in skeleton  # docstrings stay
    assert sorted(p.name for p in (folder / "tests").iterdir()) == ["test_public.py"]
    readme = (folder / "README.md").read_text()
    assert "| relu | 6 | yes (`grader check`) |" in readme
    assert "| sigmoid | 4 | no (hidden tests) |" in readme
    assert "2026-12-23" in readme and "Write `relu(x)`" in readme
    public = (folder / "assignment.toml").read_text()
    assert "solutions/act.py" not in public and "test_sigmoid" not in public


def test_release_refuses_a_reference_that_fails(repo, tmp_path):
    reference = repo / "solutions" / "act.py"
    reference.write_text(reference.read_text().replace("np.maximum(x, 0.0)", "np.abs(x)"))
    with pytest.raises(ReleaseRefused, match=r"reference scores 3/6 on part `relu`"):
        release(_config(repo), tmp_path / "release", grade=_grade)
    assert not (tmp_path / "release").exists()  # nothing written


def test_release_refuses_a_public_test_that_imports_the_reference(repo, tmp_path):
    public = repo / "autograde_tests" / "act" / "test_public.py"
    public.write_text("import reference.act\n" + public.read_text())
    with pytest.raises(ReleaseRefused, match="the public suite imports the reference"):
        release(_config(repo), tmp_path / "release", grade=_grade)


def test_release_refuses_a_skeleton_that_scores(repo, tmp_path):
    reference = repo / "solutions" / "act.py"
    text = reference.read_text()
    start, end = text.index("    ### BEGIN SOLUTION\n    out"), text.index(
        "    ### END SOLUTION\n", text.index("out = np.empty"))
    # The sigmoid body moves outside the markers: the skeleton now passes the sigmoid part.
    body = text[start:end].replace("    ### BEGIN SOLUTION\n", "")
    reference.write_text(text[:start] + body + "    ### BEGIN SOLUTION\n    pass\n" + text[end:])
    with pytest.raises(ReleaseRefused, match="bare skeleton scores 4/4 on part `sigmoid`"):
        release(_config(repo), tmp_path / "release", grade=_grade)


# --- the student's side and the CLI ---------------------------------------------------------


def test_student_day_check_submit_autograde(repo, tmp_path):
    released = _grader("release", "act", "--out", str(tmp_path / "release"), cwd=repo)
    assert released.returncode == 0, released.stderr
    folder = tmp_path / "release" / "act"

    bare = _grader("check", cwd=folder)
    assert bare.returncode == 1
    assert "[ERROR] test_relu_values" in bare.stdout or "[FAIL] test_relu_values" in bare.stdout
    assert "Write the body of relu" in bare.stdout
    assert "0 of 2 public checks passed" in bare.stdout

    shutil.copyfile(SUBMISSIONS / "train_at_top" / "act.py", folder / "act.py")
    good = _grader("check", cwd=folder)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "2 of 2 public checks passed" in good.stdout
    assert "test_sigmoid" not in good.stdout  # hidden tests never run on the student side

    submitted = _grader("submit", "--student-id", "2023001", cwd=folder)
    assert submitted.returncode == 0, submitted.stderr
    archive = folder / "act-2023001.zip"
    with zipfile.ZipFile(archive) as opened:
        assert sorted(opened.namelist()) == ["act.py", "manifest.json"]
        manifest = json.loads(opened.read("manifest.json"))
    assert manifest["student_id"] == "2023001" and manifest["assignment"] == "act"

    graded = _grader("autograde", "act", str(archive), "--out", str(tmp_path / "graded"),
                     cwd=repo)
    assert graded.returncode == 0, graded.stderr
    assert "2023001" in graded.stdout and "10/10" in graded.stdout
    results = json.loads((tmp_path / "graded" / "2023001" / "results.json").read_text())
    assert results["score"] == 10
    assert {t["status"] for t in results["tests"]} == {"passed"}


def test_submit_refuses_when_a_file_is_missing(repo, tmp_path):
    assert _grader("release", "act", "--out", str(tmp_path / "release"), cwd=repo).returncode == 0
    folder = tmp_path / "release" / "act"
    (folder / "act.py").unlink()
    refused = _grader("submit", "--student-id", "s1", cwd=folder)
    assert refused.returncode == 2
    assert "act.py missing" in refused.stderr and "Traceback" not in refused.stderr


def test_a_syntax_error_gets_zero_with_the_line():
    graded = grade_path(_config(REPO), SUBMISSIONS / "syntax_error")
    assert graded.grade.score == 0
    message = graded.grade.parts[0].tests[0].message
    assert "could not import act" in message and "line 4" in message, message


def test_a_hanging_call_times_out_and_costs_only_its_tests():
    graded = grade_path(_config(REPO), SUBMISSIONS / "hangs")
    assert _points(graded) == {"relu": 0.0, "sigmoid": 4.0}
    assert "did not finish within 5 s" in graded.grade.parts[0].tests[0].message


def test_autograde_a_class_folder(tmp_path, repo):
    """Broken, hanging and unreadable submissions never stop the batch or touch the others."""
    klass = tmp_path / "class"
    for name in ("wrong_relu", "exits", "train_at_top", "syntax_error"):
        shutil.copytree(SUBMISSIONS / name, klass / name)
    (klass / "damaged.zip").write_bytes(b"PK\x03\x04 this is not really a zip")
    graded = _grader("autograde", "act", str(klass), "--out", str(tmp_path / "graded"), cwd=repo)
    assert graded.returncode == 3, graded.stderr  # some submissions had problems: listed
    assert "1 submission had problems:" in graded.stderr
    assert "  damaged (damaged.zip): " in graded.stderr and "Traceback" not in graded.stderr
    table = graded.stdout.split("\n\n")[0].splitlines()[1:]  # the score table, header cut
    lines = {line.split()[0]: line.split()[-1] for line in table}
    assert lines == {"exits": "6/10", "train_at_top": "10/10", "wrong_relu": "7/10",
                     "syntax_error": "0/10", "damaged": "0/10"}
    damaged = json.loads((tmp_path / "graded" / "damaged" / "results.json").read_text())
    assert "zip" in damaged["output"].lower(), damaged["output"]


def test_autograde_resumes_and_force_grades_again(tmp_path, repo):
    klass = tmp_path / "class"
    for name in ("wrong_relu", "train_at_top"):
        shutil.copytree(SUBMISSIONS / name, klass / name)
    db = str(tmp_path / "gradebook.db")
    args = ("autograde", "act", str(klass), "--out", str(tmp_path / "graded"), "--db", db,
            "--workers", "2")
    first = _grader(*args, cwd=repo)
    assert first.returncode == 0, first.stderr
    assert "'passed': 1" in first.stdout and "'failed': 1" in first.stdout
    (klass / "train_at_top" / "act.py").write_text(
        (SUBMISSIONS / "exits" / "act.py").read_text())  # this student hands in new files
    second = _grader(*args, cwd=repo)
    assert "1 submission already graded with the same files: skipped" in second.stderr
    assert second.stdout.splitlines()[1].split()[0] == "train_at_top"  # only the changed one
    assert "6/10" in second.stdout
    forced = _grader(*args, "--force", cwd=repo)
    assert "already graded" not in forced.stderr
    assert "wrong_relu" in forced.stdout and "train_at_top" in forced.stdout


def test_a_missing_protection_is_recorded_with_the_grade(monkeypatch, tmp_path):
    """Issue 9: a sandbox element the machine cannot give is said once and kept in the result."""
    import grader.runtime.student as student
    from grader.grading.run import write_results
    from grader.runtime.seccomp import SeccompUnavailable

    def no_libseccomp() -> int:
        raise SeccompUnavailable("libseccomp is not installed")

    monkeypatch.setattr(student, "filter_fd", no_libseccomp)
    with pytest.warns(RuntimeWarning):  # said once, as well as recorded
        graded = grade_path(_config(REPO), REPO / "solutions" / "act.py")
    assert graded.grade.score == 10  # a missing protection costs the student nothing
    assert any("no seccomp filter" in note for note in graded.grade.sandbox_notes)
    saved = json.loads(write_results(graded, tmp_path).read_text(encoding="utf-8"))
    assert saved["extra_data"]["sandbox_notes"] == list(graded.grade.sandbox_notes)


def test_a_course_inside_another_project_ignores_that_projects_conftest(tmp_path):
    """Only the suite's own conftest.py loads: one in the project around the course, in the
    course's folder or in autograde_tests/ would otherwise run inside the hidden suite."""
    course = tmp_path / "project" / "course"
    shutil.copytree(REPO, course)
    for folder in (tmp_path / "project", course, course / "autograde_tests"):
        (folder / "conftest.py").write_text(
            f'raise RuntimeError("{folder.name}/conftest.py loaded inside a hidden suite")\n')
    own = course / "autograde_tests" / "act" / "conftest.py"
    own.write_text(own.read_text() + "\n\ndef pytest_collection_finish(session):\n"
                   "    from pathlib import Path\n\n"
                   "    (Path(__file__).parent / 'own-conftest-loaded').touch()\n")
    config = _config(course)
    assert _points(grade_path(config, SUBMISSIONS / "wrong_relu")) == {"relu": 3.0,
                                                                        "sigmoid": 4.0}
    assert grade_path(config, course / "solutions" / "act.py").grade.score == 10
    assert (own.parent / "own-conftest-loaded").is_file()  # the suite's own one still does

"""`grader init DIR` and `grader new ID` (grader.scaffold): a course, then an assignment that
releases as created — the reference scores full marks, the bare skeleton zero."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from grader import cli, scaffold
from grader.config import load_assignment
from grader.course import COURSE_ENV, CourseError, load_course
from grader.grading.run import grade_path
from grader.release.build import ReleaseRefused, release

TOOL = Path(__file__).resolve().parents[1]


@pytest.fixture
def blank(tmp_path, monkeypatch) -> Path:
    """An empty course: what `grader init` writes where the tool has no lecture course (a
    wheel holds no reference solution)."""
    monkeypatch.setattr(scaffold, "lecture_course", lambda: None)
    made = scaffold.init_course(tmp_path / "blank")
    return made.root


def test_init_without_the_lecture_writes_an_empty_course(blank):
    course = load_course(blank)
    assert course.assignment_ids() == [] and course.language == "zh_CN"
    assert (blank / "reference" / "__init__.py").is_file()
    assert (blank / "autograde_tests").is_dir() and (blank / ".gitignore").is_file()


@pytest.fixture(autouse=True)
def _no_course_from_the_environment(monkeypatch):
    monkeypatch.delenv(COURSE_ENV, raising=False)


def _grade(config, folder: Path):
    return grade_path(config, folder).grade


def test_init_copies_the_lectures_course_and_nothing_else(tmp_path, monkeypatch, capsys):
    lecture = tmp_path / "lecture"  # a course with the leftovers of a term's work
    lecture.mkdir()
    for name in scaffold.COURSE_PARTS[:4]:
        source = TOOL / name
        if source.is_dir():
            shutil.copytree(source, lecture / name,
                            ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copyfile(source, lecture / name)
    (lecture / "gradebook.db").write_text("grades")
    (lecture / "graded" / "mlp_numpy").mkdir(parents=True)
    (lecture / "feedback").mkdir()
    (lecture / "reference" / "__pycache__").mkdir()
    (lecture / "reference" / "__pycache__" / "mlp_numpy.cpython-311.pyc").write_bytes(b"x")
    (lecture / "assignments" / "mlp_numpy" / "samples" / ".pytest_cache").mkdir()
    monkeypatch.setattr(scaffold, "lecture_course", lambda: lecture)
    assert cli.main(["init", str(tmp_path / "mine")]) == 0
    assert "created" in capsys.readouterr().out
    mine = tmp_path / "mine"
    names = {path.relative_to(mine).as_posix() for path in mine.rglob("*")}
    assert {"course.toml", "reference/mlp_numpy.py", "autograde_tests/mlp_numpy/test_hidden.py",
            "assignments/mlp_numpy/assignment.toml", ".gitignore"} <= names
    assert not any(part in {"gradebook.db", "graded", "feedback", "__pycache__",
                            ".pytest_cache"} for name in names for part in name.split("/"))
    assert load_course(mine).title == load_course(TOOL).title
    assert load_assignment("mlp_numpy", repo_root=mine).repo_root == mine.resolve()


def test_init_refuses_a_folder_that_is_not_empty(tmp_path, capsys):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    assert cli.main(["init", str(tmp_path / "taken")]) == 2
    err = capsys.readouterr().err
    assert "is not empty (it holds notes.txt)" in err and "new or empty folder" in err
    assert sorted(p.name for p in (tmp_path / "taken").iterdir()) == ["notes.txt"]
    (tmp_path / "file").write_text("")
    with pytest.raises(scaffold.ScaffoldRefused, match="is a file"):
        scaffold.init_course(tmp_path / "file")


def test_init_from_a_folder_that_is_not_a_course_is_refused(tmp_path):
    (tmp_path / "loose" / "assignments").mkdir(parents=True)
    with pytest.raises(CourseError, match="is not a course"):
        scaffold.init_course(tmp_path / "new", source=tmp_path / "loose")


def test_new_assignment_releases_as_created(blank, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(blank)
    assert cli.main(["new", "perceptron", "--title", "感知机"]) == 0
    out = capsys.readouterr().out
    assert "reference/perceptron.py" in out and "grader release perceptron" in out
    config = load_assignment("perceptron")
    assert config.title == "感知机" and config.parameters == {"units": 4}
    assert config.due.tzinfo is not None and config.total_points == 10
    report = release(config, tmp_path / "release", grade=_grade)
    assert report.reference_grade.score == report.reference_grade.max_score == 10
    assert report.skeleton_grade.score == 0
    folder = tmp_path / "release" / "perceptron"
    skeleton = (folder / "perceptron.py").read_text()
    assert "NotImplementedError" in skeleton and "np.maximum" not in skeleton
    assert "UNITS = 4" in skeleton
    readme = (folder / "README.md").read_text()  # the course is zh_CN: README.zh_CN.md
    assert "形状为 `(N, 4)`" in readme and "parameters" not in readme
    english = (blank / "assignments" / "perceptron" / "README.md").read_text()
    assert "shape `(N, {{ parameters.units }})`" in english
    assert not (folder / "tests" / "test_hidden.py").exists()
    assert "[parameters]\nunits = 4" in (folder / "assignment.toml").read_text()


def test_the_release_refuses_a_reference_that_contradicts_its_parameters(blank, tmp_path):
    made = scaffold.new_assignment("layer", course=load_course(blank))
    toml = made.root / "assignment.toml"
    toml.write_text(toml.read_text().replace("units = 4", "units = 6"))
    config = load_assignment(toml)
    with pytest.raises(ReleaseRefused, match=r"layer.py: UNITS = 4 but assignment.toml has "
                       r"\[parameters\] units = 6"):
        release(config, tmp_path / "release", grade=_grade)
    assert not (tmp_path / "release").exists()


def test_a_readme_that_names_no_parameter_is_refused_with_its_line(blank, tmp_path):
    made = scaffold.new_assignment("layer", course=load_course(blank))
    # The course is zh_CN: its release renders README.zh_CN.md.
    (made.root / "README.zh_CN.md").write_text("Intro\n\n{{ parameters.unist }} units\n")
    with pytest.raises(ReleaseRefused, match=r"README.zh_CN.md line 3: .*unist"):
        release(load_assignment(made.root), tmp_path / "release", grade=_grade)


@pytest.mark.parametrize("ident, says", [
    ("../escape", "path separators (/ and"),
    ("Perceptron", "lower case ASCII letters"),
    ("1st", "lower case ASCII letters"),
    ("a b", "lower case ASCII letters"),
    (" padded", "lower case ASCII letters"),
    ("x\u202ey", "invisible character U+202E"),
    ("x\x1b[2Jy", "control characters"),
    ("", "is empty"),
    ("a" * 65, "the limit is 64"),
    ("class", "taken by Python or the course"),
    ("json", "taken by Python or the course"),
    ("numpy", "taken by Python or the course"),
    ("reference", "taken by Python or the course"),
    ("grader", "taken by Python or the course"),
    ("conftest", "taken by Python or the course"),
    ("taken", "exists already in the course"),
])
def test_new_refuses_a_bad_or_taken_id(blank, ident, says, capsys, monkeypatch):
    scaffold.new_assignment("taken", course=load_course(blank))
    before = sorted(p.relative_to(blank) for p in blank.rglob("*"))
    monkeypatch.chdir(blank)
    # English: the blank course speaks zh_CN, and the id's reasons are in the cli catalog.
    assert cli.main(["--lang", "en", "new", ident]) == 2
    err = capsys.readouterr().err
    assert says in err, err
    assert "\x1b" not in err and "\u202e" not in err  # shown escaped
    assert sorted(p.relative_to(blank) for p in blank.rglob("*")) == before


def test_new_outside_a_course_says_how_to_make_one(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["new", "perceptron"]) == 2
    assert "not inside a course" in capsys.readouterr().err and not list(tmp_path.iterdir())


def test_new_refuses_a_title_with_control_characters(blank):
    with pytest.raises(scaffold.ScaffoldRefused, match="one line of printable text"):
        scaffold.new_assignment("layer", course=load_course(blank), title="a\nb")

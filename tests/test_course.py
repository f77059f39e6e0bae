"""grader.course: finding the course, reading course.toml, and what lands in the course.

A course is a folder with `course.toml`; every verb finds it from ``--course``, else
``$GRADER_COURSE``, else the first `course.toml` from the current folder up. Results and
gradebooks default into it (never into the tool's checkout), hidden suites import its own
`reference/`, and its `templates/` replace the tool's file by file.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from grader import cli, course
from grader.config import load_assignment
from grader.course import COURSE_ENV, CourseError, find_course, load_course
from grader.grading.run import grade_path
from grader.reports.templates_env import environment

TOOL = Path(__file__).resolve().parents[1]
FILES = Path(__file__).parent / "files" / "grading"
SUBMISSIONS = FILES / "submissions"


def _course(folder: Path, title: str = "A course", extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "course.toml").write_text(f'title = "{title}"\n{extra}', encoding="utf-8")
    return folder


@pytest.fixture
def act_course(tmp_path) -> Path:
    """A writable copy of the small golden course (`act`), outside the tool's checkout."""
    copy = tmp_path / "course"
    shutil.copytree(FILES / "repo", copy)
    return copy


# -- discovery ---------------------------------------------------------------------------------

def test_flag_beats_environment_beats_walking_up(tmp_path):
    walked, named, flagged = (_course(tmp_path / name, name) for name in
                              ("walked", "named", "flagged"))
    deep = walked / "assignments" / "x" / "deeper"
    deep.mkdir(parents=True)
    env = {COURSE_ENV: str(named)}
    assert find_course(flagged, cwd=deep, environ=env).title == "flagged"
    assert find_course(cwd=deep, environ=env).title == "named"
    assert find_course(cwd=deep, environ={}).root == walked.resolve()
    with course.selected(flagged):  # the CLI's --course, for code that calls current()
        assert find_course(cwd=deep, environ=env).title == "flagged"
    assert find_course(cwd=deep, environ={}).title == "walked"
    assert find_course(cwd=deep, environ={COURSE_ENV: str(named / "course.toml")}).root == (
        named.resolve())  # the file itself names its folder


def test_the_nearest_course_toml_wins(tmp_path):
    outer = _course(tmp_path / "outer", "outer")
    inner = _course(outer / "terms" / "2026", "inner")
    assert find_course(cwd=inner / "..", environ={}).title == "outer"
    assert find_course(cwd=inner, environ={}).title == "inner"


def test_no_course_says_how_to_make_one(tmp_path):
    (tmp_path / "assignments").mkdir()
    with pytest.raises(CourseError) as caught:
        find_course(cwd=tmp_path, environ={})
    message = str(caught.value)
    assert "not inside a course: no course.toml" in message
    assert "grader init DIR" in message and "--course DIR" in message and COURSE_ENV in message
    assert "has assignments/: add a course.toml" in message  # a folder that almost is one
    assert find_course(cwd=tmp_path, environ={}, required=False) is None


def test_a_named_folder_that_is_not_a_course_is_an_error_not_a_fallback(tmp_path):
    _course(tmp_path / "walked")
    with pytest.raises(CourseError, match=r"\(from \$GRADER_COURSE\) no such file; .*"
                       r"is not a course"):
        find_course(cwd=tmp_path / "walked", environ={COURSE_ENV: str(tmp_path / "nope")})
    with pytest.raises(CourseError, match="is not a course"):
        find_course(tmp_path / "nope", cwd=tmp_path / "walked", environ={})


def test_the_repository_is_the_lectures_course():
    lecture = load_course(TOOL)
    assert (lecture.language, lecture.time_zone, lecture.dataset) == (
        "zh_CN", "Asia/Shanghai", "auto")
    assert {"mlp_numpy", "tf_basics", "keras_cnn"} <= set(lecture.assignment_ids())


def test_an_assignment_id_is_looked_up_in_the_course_never_the_tool(tmp_path, monkeypatch):
    monkeypatch.delenv(COURSE_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CourseError, match="not inside a course"):
        load_assignment("mlp_numpy")  # the tool's checkout is not a fallback
    (tmp_path / "mlp_numpy").mkdir()  # a student's release of that name is not the course's
    with course.selected(TOOL):
        assert load_assignment("mlp_numpy").repo_root == TOOL


# -- course.toml ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text, key, says", [
    ('title = "x"\ntitel = "y"\n', "titel", "unknown key `titel`; expected one of: dataset, "
     "language, lms, time_zone, title"),
    ("title = 3\n", "title", "`title` must be a string; received int: title=3"),
    ('language = "en"\n', "title", "missing required key `title`"),
    ('title = "  "\n', "title", "`title` must not be empty"),
    ('title = "x"\nlanguage = "fr"\n', "language", "`language` must be one of 'zh_CN', 'en'; "
     "received: language='fr'"),
    ('title = "x"\ntime_zone = "Mars/Olympus"\n', "time_zone", "must be an IANA time-zone "
     "name"),
    ('title = "x"\ntime_zone = "../../etc/passwd"\n', "time_zone", "IANA time-zone name"),
    ('title = "x"\ntime_zone = ""\n', "time_zone", "IANA time-zone name"),
    ('title = "x"\ndataset = "cifar"\n', "dataset", "`dataset` must be one of 'auto', "
     "'mnist', 'fashion_mnist'"),
    ('title = "x"\nlms = "blackboard"\n', "lms", "`lms` must be one of 'canvas', 'moodle'"),
    ('title = "x"\ntime_zone = ["UTC"]\n', "time_zone", "must be a string; received list"),
    ('title = "x\n', "", "not valid TOML"),
])
def test_a_bad_course_toml_names_the_file_and_key(tmp_path, text, key, says):
    (tmp_path / "course.toml").write_text(text, encoding="utf-8")
    with pytest.raises(CourseError) as caught:
        load_course(tmp_path)
    assert caught.value.key == key
    assert str(caught.value).startswith(f"{tmp_path / 'course.toml'}: ")
    assert says in str(caught.value)


def test_a_course_toml_that_is_not_utf8_is_refused_readably(tmp_path):
    (tmp_path / "course.toml").write_bytes('title = "神经网络"\n'.encode("gbk"))
    with pytest.raises(CourseError, match="cannot read the file"):
        load_course(tmp_path)


def test_course_settings_and_time_zone(tmp_path):
    from datetime import datetime, timezone

    loaded = load_course(_course(tmp_path, "Nets", 'language = "en"\ntime_zone = '
                                 '"Europe/Berlin"\ndataset = "fashion_mnist"\nlms = "moodle"\n'))
    assert (loaded.language, loaded.dataset, loaded.lms) == ("en", "fashion_mnist", "moodle")
    noon = loaded.local(datetime(2026, 12, 1, 12, tzinfo=timezone.utc))
    assert noon.hour == 13  # CET in December
    assert loaded.gradebook == tmp_path.resolve() / "gradebook.db"
    assert loaded.graded("a1") == tmp_path.resolve() / "graded" / "a1"


# -- defaults land in the course -------------------------------------------------------------------

def _tool_state() -> dict[str, float | None]:
    """The default outputs in the tool's checkout: each one's modification time, or None."""
    state = {}
    for name in ("gradebook.db", "graded", "feedback"):
        path = TOOL / name
        state[name] = path.stat().st_mtime if path.exists() else None
    return state


def test_verbs_run_in_an_outside_course_write_into_it_and_never_into_the_tool(
        act_course, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(COURSE_ENV, raising=False)
    klass = tmp_path / "class"
    shutil.copytree(SUBMISSIONS / "wrong_relu", klass / "wrong_relu")
    before = _tool_state()
    monkeypatch.chdir(act_course / "assignments")  # found by walking up
    assert cli.main(["autograde", "act", str(klass), "--workers", "1"]) == 0
    assert (act_course / "graded" / "act" / "wrong_relu" / "results.json").is_file()
    assert (act_course / "gradebook.db").is_file()
    monkeypatch.chdir(tmp_path)  # named by --course, after the verb as well as before it
    assert cli.main(["feedback", "act", "--course", str(act_course)]) == 0
    assert (act_course / "feedback" / "act" / "index.html").is_file()
    assert cli.main(["--course", str(act_course), "export", "act", "--format", "csv",
                     "--out", "-"]) == 0
    assert "wrong_relu" in capsys.readouterr().out
    assert _tool_state() == before
    assert not (tmp_path / "gradebook.db").exists() and not (tmp_path / "graded").exists()


def test_a_verb_outside_any_course_says_how_to_start_one(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(COURSE_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["feedback", "mlp_numpy"]) == 2
    err = capsys.readouterr().err
    assert "not inside a course" in err and "grader init DIR" in err
    assert "Traceback" not in err
    assert not list(tmp_path.iterdir())  # nothing written where it was run


def test_course_lms_preset_is_the_csv_default(act_course, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(COURSE_ENV, raising=False)
    klass = tmp_path / "class"
    shutil.copytree(SUBMISSIONS / "wrong_relu", klass / "wrong_relu")
    toml = act_course / "course.toml"
    toml.write_text(toml.read_text() + 'lms = "moodle"\n')
    monkeypatch.chdir(act_course)
    assert cli.main(["autograde", "act", str(klass), "--workers", "1"]) == 0
    capsys.readouterr()
    assert cli.main(["export", "act", "--format", "csv", "--out", "-"]) == 0
    header = capsys.readouterr().out.lstrip("\ufeff").splitlines()[0]
    assert header.startswith("ID number,Full name")  # moodle's columns


# -- the course's own reference ---------------------------------------------------------------

HIDDEN_WITH_REFERENCE = '''\
import numpy as np

import reference.act as ref
from grader.checks.arrays import assert_close


def test_relu_shape(student):
    assert student.act.relu(np.zeros((2, 3))).shape == (2, 3)


def test_relu_values(student):
    x = np.array([-1.0, 0.5, 2.0])
    assert_close(student.act.relu(x), ref.relu(x), "`relu` against the course's reference")


def test_sigmoid_values(student):
    try:  # a package in the course folder is no module of the grader's
        import course_folder_package  # noqa: F401
    except ImportError:
        pass
    else:
        raise AssertionError("the grader imported a package from the course folder")
    x = np.array([-1.0, 0.5, 2.0])
    assert_close(student.act.sigmoid(x), ref.sigmoid(x), "`sigmoid` against the reference")


def test_sigmoid_large(student):
    assert ref.MARK == "outside course"
'''

# The course's reference differs from the truth: relu doubles. A student who doubles too
# scores full marks only if the course's reference, not the tool's, is the one imported.
COURSE_REFERENCE = '''\
import numpy as np

MARK = "outside course"


def relu(x):
    return 2 * np.maximum(x, 0)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))
'''


def test_a_hidden_suite_imports_its_own_courses_reference(act_course, tmp_path):
    suite = act_course / "autograde_tests" / "act"
    (suite / "test_hidden.py").write_text(HIDDEN_WITH_REFERENCE, encoding="utf-8")
    (suite / "test_public.py").unlink()
    (act_course / "reference").mkdir()
    (act_course / "reference" / "__init__.py").write_text("")
    (act_course / "reference" / "act.py").write_text(COURSE_REFERENCE, encoding="utf-8")
    # A student-named folder unpacked in the course folder: never importable by the grader.
    (act_course / "course_folder_package").mkdir()
    (act_course / "course_folder_package" / "__init__.py").write_text(
        f"open({str(tmp_path / 'planted')!r}, 'w').close()\n")
    student = tmp_path / "student"
    student.mkdir()
    (student / "act.py").write_text(COURSE_REFERENCE, encoding="utf-8")
    before = dict(sys.modules)
    import reference  # the tool's, as the project's own tests see it

    tools = reference.__file__
    grade = grade_path(load_assignment(act_course / "assignments" / "act"), student).grade
    failed = [f"{t.case}: {t.message}" for p in grade.parts for t in p.tests if t.fraction < 1]
    assert grade.score == grade.max_score == 10, failed
    assert not (tmp_path / "planted").exists()
    import reference as again  # restored afterwards

    assert again.__file__ == tools and sys.modules.get("reference.act") is before.get(
        "reference.act")


def test_a_course_without_the_module_gets_an_import_error_not_the_tools(tmp_path):
    lonely = _course(tmp_path / "lonely")
    (lonely / "reference").mkdir()
    with course.course_imports(lonely):
        with pytest.raises(ModuleNotFoundError, match="in the course at"):
            import reference.mlp_numpy  # noqa: F401 - the tool's checkout has one
    empty = _course(tmp_path / "empty")
    with course.course_imports(empty):
        with pytest.raises(ModuleNotFoundError, match="No module named 'reference'"):
            import reference  # noqa: F401


# -- templates ------------------------------------------------------------------------------------

def test_a_course_template_replaces_the_tools_file_by_file(act_course, tmp_path):
    from grader.release.build import render_instructions

    config = load_assignment(act_course / "assignments" / "act")
    tools = render_instructions(config)
    (act_course / "templates").mkdir()
    (act_course / "templates" / "instructions.md.j2").write_text(
        "# {{ config.title }} (our course's own page)\n\n{{ body }}", encoding="utf-8")
    ours = render_instructions(config)
    assert ours.startswith("# Two activations (our course's own page)") and ours != tools
    assert course.template_dirs(act_course) == [act_course / "templates",
                                                 course.TOOL_TEMPLATES]
    with course.selected(act_course):  # reports: the course's file where it has one
        env = environment()
        loaded = env.get_template("instructions.md.j2")
        assert Path(loaded.filename).resolve() == (
            act_course / "templates" / "instructions.md.j2").resolve()
        assert Path(env.get_template("report.html.j2").filename).resolve() == (
            course.TOOL_TEMPLATES / "report.html.j2").resolve()


def test_course_dataset_is_the_default_below_the_flag_and_the_environment(tmp_path,
                                                                          monkeypatch):
    ours = _course(tmp_path / "ours", extra='dataset = "fashion_mnist"\n')

    def dataset(argv: list[str]) -> str | None:
        args = cli.build_parser().parse_args(argv)
        with course.selected(args.course):
            cli._course_defaults(args)
        return args.dataset

    monkeypatch.delenv("GRADER_DATASET", raising=False)
    assert dataset(["--course", str(ours), "autograde", "act", "x"]) == "fashion_mnist"
    assert dataset(["autograde", "act", "x", "--course", str(ours),
                    "--dataset", "mnist"]) == "mnist"
    assert dataset(["--course", str(ours), "check"]) is None  # a student's verb: no course
    monkeypatch.setenv("GRADER_DATASET", "mnist")
    assert dataset(["--course", str(ours), "autograde", "act", "x"]) is None  # env decides


def test_a_gradebook_verb_outside_a_course_makes_no_gradebook_there(tmp_path, monkeypatch,
                                                                     capsys):
    monkeypatch.delenv(COURSE_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "roster.csv").write_text("id,name\ns1,Ada\n", encoding="utf-8")
    assert cli.main(["roster", "roster.csv"]) == 2
    assert "not inside a course" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["roster.csv"]
    ours = _course(tmp_path / "ours")
    from grader.gradebook import open_gradebook

    with open_gradebook(ours / "gradebook.db"):
        pass  # the course's gradebook exists (autograde makes it)
    assert cli.main(["roster", "roster.csv", "--course", str(ours)]) == 0
    with open_gradebook(ours / "gradebook.db") as gradebook:
        assert [student.id for student in gradebook.students()] == ["s1"]
    assert not (tmp_path / "gradebook.db").exists()

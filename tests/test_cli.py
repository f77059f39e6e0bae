"""The `grader` command line: parsing, usage, abbreviations, exit statuses (issue 11).

Most cases parse in this process (`grader.cli.main` with an argv); one runs a real
`grader autograde` over a class whose every submission is unreadable, for the
per-submission problem lines and exit status 3.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from grader import cli
from grader.autograde import TABLE_WIDTH, progress_line, score_table
from grader.results.records import Grade, PartGrade

REPO = Path(__file__).parents[1]
MLP = REPO / "assignments" / "mlp_numpy"


@pytest.fixture(autouse=True)
def english(monkeypatch):
    """These tests read the English usage and messages: the lecture's course around them
    speaks zh_CN (help included), so they ask for English as a user would."""
    monkeypatch.setenv("GRADER_LANG", "en")


def _verbs() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _exit(argv: list[str], capsys) -> tuple[int, str]:
    """The exit status of `grader <argv>` in this process, and what it wrote to stderr."""
    try:
        status = cli.main(argv)
    except SystemExit as stop:  # argparse's own errors and --help
        status = stop.code
    return status, capsys.readouterr().err


# -- parsing -------------------------------------------------------------------------

def test_no_parser_takes_abbreviations():
    parsers = {"grader": cli.build_parser(), **_verbs()}
    assert len(parsers) > 10
    assert not [name for name, parser in parsers.items() if parser.allow_abbrev], parsers


@pytest.mark.parametrize("flag", ["--worker", "--work", "--w"])
def test_an_abbreviated_option_is_an_error_not_the_option_it_starts(flag, capsys):
    status, err = _exit(["autograde", "mlp_numpy", "subs", flag, "1"], capsys)
    assert status == 2
    assert err.startswith("usage: grader autograde"), err
    assert f"unrecognized arguments: {flag} 1" in err


def test_a_misspelled_option_names_the_closest_one(capsys):
    status, err = _exit(["autograde", "mlp_numpy", "subs", "--worker", "1"], capsys)
    assert status == 2 and "(did you mean --workers?)" in err


@pytest.mark.parametrize("verb", sorted(_verbs()))
def test_each_verb_shows_its_own_usage_for_an_unknown_option(verb, capsys):
    status, err = _exit([verb, "--no-such-option"], capsys)
    assert status == 2
    assert err.startswith(f"usage: grader {verb}"), err
    assert "usage: grader [-h]" not in err  # not the top-level usage


def test_an_unknown_verb_shows_the_top_level_usage(capsys):
    status, err = _exit(["autograd", "mlp_numpy"], capsys)
    assert status == 2 and err.startswith("usage: grader [-h]")
    assert "invalid choice: 'autograd'" in err


@pytest.mark.parametrize("verb", sorted(_verbs()))
def test_each_verb_explains_itself(verb, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main([verb, "--help"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: grader {verb}")


def test_the_top_level_help_lists_the_exit_statuses(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps the epilog
    assert "Exit status:" in out and "130 stopped by Ctrl-C" in out and "3 `autograde`" in out


# -- exit statuses on bad input --------------------------------------------------------

@pytest.mark.parametrize(("argv", "says"), [
    (["autograde", str(MLP), "no/such/folder"], "no such submission file or folder"),
    (["autograde", "no_such_assignment", "."], "no_such_assignment"),
    (["release", "no_such_assignment"], "no_such_assignment"),
    (["submit", "--student-id", "../../etc"], "--student-id"),
    (["submit", "--student-id", ""], "--student-id"),
    (["autograde", str(MLP), ".", "--workers", "two"], "invalid int value: 'two'"),
    (["autograde", str(MLP), ".", "--submitted-at", "yesterday"], "not an ISO 8601 time"),
    (["autograde", str(MLP), ".", "--submitted-at", "2026-12-01T23:59"], "no UTC offset"),
    (["autograde", str(MLP), ".", "--engine", "spark"], "invalid choice: 'spark'"),
    (["export", "mlp_numpy", "--format", "xlsx"], "invalid choice: 'xlsx'"),
    (["data", "download"], "invalid choice: 'download'"),
    (["data", "check", "--dataset", "cifar10"], "invalid choice: 'cifar10'"),
    (["check", "{tmp}"], "holds no assignment.toml"),
    (["check", "{tmp}/nowhere"], "does not exist"),
    (["submit", "{tmp}", "--student-id", "2023001"], "holds no assignment.toml"),
    (["audit", "no_such_assignment"], "no_such_assignment"),
    (["calibrate", "no_such_assignment"], "no_such_assignment"),
    (["feedback", "no_such_assignment"], "no_such_assignment"),
    (["extend", "no_such_assignment", "s1", "--days", "1", "--reason", "x"],
     "no_such_assignment"),
    (["roster", "{tmp}/nowhere.csv", "--db", "{tmp}/gradebook.db"], "nowhere.csv"),
    (["override", "mlp_numpy", "s1", "5", "--reason", "x", "--db", "{tmp}/none.db"],
     "no gradebook at"),
    (["export", "mlp_numpy", "--format", "csv", "--db", "{tmp}/none.db"], "no gradebook at"),
    (["new", "Bad-Id"], "'Bad-Id'"),
    (["init", "{tmp}"], "is not empty"),
])
def test_bad_input_exits_2_with_a_message_and_no_traceback(argv, says, capsys, tmp_path,
                                                           monkeypatch):
    monkeypatch.chdir(REPO)
    (tmp_path / "notes.txt").write_text("not a course or a release", encoding="utf-8")
    status, err = _exit([arg.replace("{tmp}", str(tmp_path)) for arg in argv], capsys)
    assert status == 2, err
    assert says in err and "Traceback" not in err


def test_ctrl_c_outside_a_batch_is_one_line_and_130(monkeypatch, capsys):
    from grader import autograde

    def interrupted(**_):
        raise KeyboardInterrupt

    monkeypatch.setattr(autograde, "main", interrupted)
    status, err = _exit(["autograde", "mlp_numpy", "."], capsys)
    assert status == 130
    assert err == "grader: stopped by Ctrl-C\n"


# -- what autograde prints ---------------------------------------------------------------

def _graded(student: str, points: list[float], names: list[str]):
    parts = tuple(PartGrade(name, got, 10.0, ()) for name, got in zip(names, points,
                                                                       strict=True))
    grade = Grade(student_id=student, assignment="a", parts=parts, execution_time_s=1.0)
    submission = argparse.Namespace(source=Path(f"class/{student}.zip"), files={"a.py": "x"})
    return argparse.Namespace(grade=grade, submission=submission)


def test_a_narrow_score_table_is_printed_whole():
    table = score_table([_graded("2023001", [10, 5], ["forward", "backward"])])
    assert table.splitlines() == ["student  forward  backward  total",
                                  "2023001  10/10    5/10      15/20"]


@pytest.mark.parametrize("parts", [18, 40, 120])
def test_a_wide_score_table_fits_100_columns_with_a_legend(parts):
    names = [f"a_rather_long_part_name_{i}" for i in range(parts)]
    graded = [_graded("2023123456789012345678901234", [i % 11 for i in range(parts)], names),
              _graded("\x1b[31mevil", [10] * parts, names)]
    table = score_table(graded)
    assert max(len(line) for line in table.splitlines()) <= TABLE_WIDTH, table
    assert "\x1b" not in table
    assert table.splitlines()[3] == ""  # a table parser stops at the blank line
    legend = " ".join(line.strip() for line in table.splitlines()[4:])
    assert legend.startswith("parts: A = a_rather_long_part_name_0")
    assert legend.endswith("every part in full: grader export a --format csv (with this "
                           "run's --db, if any)")
    missing = [name for name in names if not re.search(rf"\b{name}\b", legend)]
    assert not missing, legend
    totals = [line.split()[-1] for line in table.splitlines()[1:3]]
    assert totals == [f"{sum(i % 11 for i in range(parts)):g}/{10 * parts:g}",
                      f"{10 * parts:g}/{10 * parts:g}"]


def test_a_grouped_column_holds_the_sum_of_its_parts():
    names = [f"part_number_{i:02d}_with_a_long_name" for i in range(60)]
    table = score_table([_graded("s1", [1.0] * 60, names)])
    header, row = table.splitlines()[:2]
    letters = header.split()[1:-1]
    assert len(letters) < 60  # grouped
    cells = row.split()[1:-1]
    assert sum(float(cell) for cell in cells) == 60  # small integers: exact
    assert "A = part_number_00_with_a_long_name + part_number_01_with_a_long_name" in \
        " ".join(line.strip() for line in table.splitlines()[3:])


def test_progress_line_names_the_submission_and_escapes_it():
    line = progress_line(3, 12, _graded("\x1b[2Jevil", [10, 4], ["a", "b"]))
    assert line.startswith("[3/12] \\x1b[2Jevil (\\x1b[2Jevil.zip): 14/20, ")
    assert "\x1b" not in line


# -- a class of unreadable submissions, through the real CLI -----------------------------

def test_each_unreadable_submission_is_listed_with_what_to_do_and_exits_3(tmp_path):
    klass = tmp_path / "class"
    (klass / "empty_folder").mkdir(parents=True)
    (klass / "text_as_zip.zip").write_text("these are my answers", encoding="utf-8")
    (klass / "bad_notebook").mkdir()
    (klass / "bad_notebook" / "mlp_numpy.ipynb").write_text('{"cells": [', encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "grader", "autograde", str(MLP), str(klass), "--workers", "1",
         "--db", str(tmp_path / "gradebook.db"), "--out", str(tmp_path / "graded")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr and "INTERNALERROR" not in done.stderr
    problems = done.stderr.split("3 submissions had problems:\n", 1)[1].splitlines()
    assert len(problems) == 3, problems
    by_id = {line.split()[0]: line for line in problems}
    assert "holds no files; hand in mlp_numpy.py" in by_id["empty_folder"]
    assert "is damaged" in by_id["text_as_zip"] and "hands in a new zip" in by_id["text_as_zip"]
    assert "not valid JSON" in by_id["bad_notebook"]
    assert "save it again" in by_id["bad_notebook"]
    assert all(line.endswith("(its results.json and report say the same)") for line in problems)
    # Off a terminal, progress is one line per submission, as each is graded.
    assert sorted(line.split()[0] for line in done.stderr.splitlines()
                  if line.startswith("[")) == ["[1/3]", "[2/3]", "[3/3]"]
    assert "unreadable" in done.stdout


def test_the_demo_stops_at_ctrl_c_in_its_batch(monkeypatch, tmp_path):
    """`grader demo` returns autograde's 130 at once: no reports, no next assignment."""
    from grader import autograde, demo

    grade = argparse.Namespace(score=1.0, max_score=1.0)
    monkeypatch.setattr(demo.data, "load", lambda name: argparse.Namespace(name="fashion_mnist"))
    monkeypatch.setattr(demo, "load_assignment",
                        lambda name: argparse.Namespace(id=name, title=name))
    monkeypatch.setattr(demo, "release", lambda *a, **k: argparse.Namespace(
        folder=tmp_path, reference_grade=grade, skeleton_grade=grade))
    monkeypatch.setattr(demo, "sample_class", lambda *a, **k: tmp_path)
    batches = []
    monkeypatch.setattr(autograde, "main", lambda **k: batches.append(k) or 130)

    def no_reports(**_):
        raise AssertionError("reports written after Ctrl-C")

    monkeypatch.setattr(demo.feedback, "main", no_reports)
    assert demo.main(out=tmp_path, assignments=["tf_basics", "mlp_numpy"]) == 130
    assert [batch["assignment"] for batch in batches] == ["tf_basics"]

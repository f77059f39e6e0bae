"""The gradebook on SQLite and on a real PostgreSQL server (see conftest.py).

Grades are built from test outcomes with `grader.scoring` (no grading run) except in the
end-to-end test, which grades the golden `act` assignment with `grader autograde`.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event

from grader import autograde, scoring
from grader.config import LatePolicy, load_assignment
from grader.gradebook import (
    GradebookError,
    RosterError,
    content_hash,
    database_url,
    open_gradebook,
    override,
    read_roster,
    roster,
)
from grader.intake import Submission
from grader.results.records import TestOutcome

FILES = Path(__file__).parent / "files" / "grading"
CONFIG = load_assignment(FILES / "repo" / "assignments" / "act" / "assignment.toml")
DUE = CONFIG.due
ALL_PASS = {"test_relu_shape": 1.0, "test_relu_values": 1.0, "test_sigmoid_values[0]": 1.0,
            "test_sigmoid_values[1]": 1.0, "test_sigmoid_large": 1.0}


def _submission(student: str = "s1", *, content: str = "v1", name: str = "",
                submitted_at: datetime | None = DUE - timedelta(hours=1)) -> Submission:
    return Submission(student_id=student, source=Path(f"/class/{student}"),
                      workspace=Path("/nonexistent"), files={"act.py": content * 8},
                      problems=(), submitted_at=submitted_at, expected=("act.py",),
                      display_name=name)


def _grade(student: str = "s1", fractions: dict[str, float] | None = None, **extra):
    """A grade of the act assignment: every case passes unless `fractions` says otherwise."""
    fractions = {**ALL_PASS, **(fractions or {})}
    outcomes = [TestOutcome(case.split("[")[0], case, "passed" if f == 1 else "failed", f,
                            "" if f == 1 else f"`{case}` values differ", 0.01 * i,
                            {"curve": [1.0, 0.5]} if i == 0 else {})
                for i, (case, f) in enumerate(fractions.items())]
    return scoring.score(CONFIG.parts, outcomes, student_id=student, assignment="act",
                         execution_time_s=1.25, **extra)


def _record(gradebook, student="s1", content="v1", config=CONFIG, fractions=None, **kw):
    return gradebook.record(config, _submission(student, content=content, **kw),
                            _grade(student, fractions))


@pytest.fixture
def gradebook(db_url):
    with open_gradebook(db_url) as opened:
        yield opened


def test_a_recorded_grade_comes_back_whole(gradebook):
    grade = _grade("s1", {"test_relu_values": 0.0},
                   problems=("act.py was renamed",), skipped_statements=("act.py line 3: x",))
    grade = dataclasses.replace(grade, unassigned=(TestOutcome("test_x", "test_x", "passed",
                                                               1.0),))
    submission_id = gradebook.record(CONFIG, _submission("s1", name="Ada"), grade)
    [row] = gradebook.latest("act")
    assert row.submission_id == submission_id
    assert row.grade == grade  # parts, tests, messages, figures, problems, skipped
    assert (row.student_id, row.display_name, row.score, row.max_score) == ("s1", "Ada", 7, 10)
    assert row.late_days == 0 and row.late_multiplier == 1.0 and row.final_score == 7
    assert row.submitted_at == DUE - timedelta(hours=1)
    assert row.override is None
    [assignment] = gradebook.assignments()
    assert (assignment.id, assignment.title, assignment.max_points) == ("act",
                                                                        "Two activations", 10)
    assert assignment.due == DUE


def test_regrading_the_same_files_replaces_their_results(gradebook):
    first = _record(gradebook, fractions={"test_relu_values": 0.0})
    second = _record(gradebook)  # same content, graded again (a fixed hidden test, say)
    assert first == second
    [row] = gradebook.latest("act")
    assert row.final_score == 10
    assert sum(len(p.tests) for p in row.grade.parts) == 5  # replaced, not added
    [entry] = gradebook.history("act", "s1")
    assert not entry.superseded and entry.score == 10


def test_changed_files_keep_the_history(gradebook):
    first = _record(gradebook, content="v1", fractions={"test_relu_values": 0.0})
    second = _record(gradebook, content="v2")
    assert first != second
    [row] = gradebook.latest("act")
    assert row.submission_id == second and row.final_score == 10
    old, new = gradebook.history("act", "s1")
    assert (old.submission_id, old.superseded, old.superseded_by, old.score) == (
        first, True, second, 7)
    assert (new.submission_id, new.superseded, new.content_hash) == (
        second, False, content_hash({"act.py": "v2" * 8}))
    assert gradebook.is_graded("act", "s1", old.content_hash)
    assert not gradebook.is_graded("act", "s1", content_hash({"act.py": "v3"}))
    # the first files handed in again: that submission is current again, nothing is lost
    assert _record(gradebook, content="v1") == first
    assert gradebook.latest("act")[0].submission_id == first
    assert [e.superseded for e in gradebook.history("act", "s1")] == [True, False]


def test_an_override_survives_regrading_and_can_be_cleared(gradebook):
    _record(gradebook, fractions={"test_relu_values": 0.0})
    override = gradebook.set_override("act", "s1", 9.5, "regrade request: relu was fine")
    assert override is not None and override.points == 9.5
    _record(gradebook, content="v2", fractions={"test_relu_shape": 0.0})
    [row] = gradebook.latest("act")
    assert row.score == 7 and row.final_score == 9.5
    assert row.override.reason == "regrade request: relu was fine"
    assert gradebook.overrides("act")["s1"].points == 9.5
    gradebook.set_override("act", "s1", None)
    assert gradebook.latest("act")[0].final_score == 7


@pytest.mark.parametrize(("policy", "late_by", "days", "multiplier"), [
    (LatePolicy("none"), timedelta(days=3), 3, 1.0),
    (LatePolicy("percent_per_day", percent=10), timedelta(hours=30), 2, 0.8),
    (LatePolicy("percent_per_day", percent=10, grace_minutes=60), timedelta(minutes=59), 0,
     1.0),
    (LatePolicy("percent_per_day", percent=10, cutoff=DUE + timedelta(days=2)),
     timedelta(days=2, hours=1), 3, 0.0),
    (LatePolicy("zero_after"), timedelta(seconds=1), 1, 0.0),
    (LatePolicy("zero_after", cutoff=DUE + timedelta(days=1)), timedelta(hours=5), 1, 1.0),
])
def test_late_policy_is_applied_and_stored(tmp_path, policy, late_by, days, multiplier):
    config = dataclasses.replace(CONFIG, late=policy)
    with open_gradebook(tmp_path / "gb.db") as gradebook:
        gradebook.record(config, _submission(submitted_at=DUE + late_by), _grade())
        [row] = gradebook.latest("act")
    assert (row.late_days, row.late_multiplier, row.final_score) == (
        days, multiplier, 10 * multiplier)


def test_roster_students_without_submissions_are_known(gradebook, tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("\ufeffID,Name,Email\n s1 ,Ada Lovelace,a@x\ns2,Alan Turing,t@x\n\n",
                      encoding="utf-8")
    assert read_roster(roster) == [("s1", "Ada Lovelace"), ("s2", "Alan Turing")]
    assert gradebook.add_students(read_roster(roster)) == 2
    _record(gradebook, "s1")
    assert [s.id for s in gradebook.missing("act")] == ["s2"]
    assert gradebook.latest("act")[0].display_name == "Ada Lovelace"  # kept from the roster
    assert gradebook.add_students([("s2", "Alan M. Turing"), ("s3", "Grace")]) == 1
    assert {s.id: s.display_name for s in gradebook.students()}["s2"] == "Alan M. Turing"


def test_a_bad_roster_says_what_is_wrong(tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("student,name\n1,A\n")
    with pytest.raises(RosterError, match=r"missing: id; columns found: student, name"):
        read_roster(roster)
    roster.write_text("id,name\n1,A\n1,B\n")
    with pytest.raises(RosterError, match=r"line 3: id '1' is already listed on line 2"):
        read_roster(roster)
    with pytest.raises(RosterError, match="no such roster file"):
        read_roster(tmp_path / "nope.csv")


def test_unknown_names_are_errors_that_list_what_exists(gradebook):
    with pytest.raises(GradebookError, match=r"unknown assignment `mlp`; .* has: none yet"):
        gradebook.latest("mlp")
    _record(gradebook, "s1")
    _record(gradebook, "s2")
    with pytest.raises(GradebookError, match=r"unknown assignment `mlp`; .* has: act$"):
        gradebook.history("mlp", "s1")
    with pytest.raises(GradebookError, match=r"unknown student `s9`; .* has: s1, s2$"):
        gradebook.set_override("act", "s9", 1, "")


def test_a_failure_inside_the_transaction_leaves_nothing_behind(gradebook):
    _record(gradebook, "s1", fractions={"test_relu_values": 0.0})
    before = gradebook.history("act", "s1")

    def fail_after_the_submission_row(session, _context, _instances):
        if any(type(obj).__name__ == "TestResultModel" for obj in session.new):
            raise RuntimeError("the disk is full")

    event.listen(gradebook._sessions, "before_flush", fail_after_the_submission_row)
    for student, content in (("s1", "v2"), ("s1", "v1"), ("s2", "v1")):
        with pytest.raises(RuntimeError, match="the disk is full"):
            _record(gradebook, student, content=content)
    event.remove(gradebook._sessions, "before_flush", fail_after_the_submission_row)
    assert gradebook.history("act", "s1") == before  # not superseded, not replaced
    assert [s.id for s in gradebook.students()] == ["s1"]  # s2 not even half there
    assert gradebook.latest("act")[0].final_score == 7


_CHILD = """
import sys, time
from pathlib import Path
sys.path.insert(0, {tests!r})
from sqlalchemy import event
from grader.gradebook import open_gradebook
from test_gradebook import _record

gradebook = open_gradebook({url!r})
_record(gradebook, "s1")
def pause(session, context):
    Path({marker!r}).write_text("writing")
    time.sleep(120)
event.listen(gradebook._sessions, "after_flush", pause)
_record(gradebook, "s2")
"""


def test_a_process_killed_mid_write_leaves_the_submission_untouched(db_url, tmp_path):
    marker = tmp_path / "marker"
    script = _CHILD.format(tests=str(Path(__file__).parent), url=db_url, marker=str(marker))
    child = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE,
                             text=True)
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert child.poll() is None, child.stderr.read()
        assert time.monotonic() < deadline, "the child never reached the write"
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    with open_gradebook(db_url) as gradebook:
        assert [s.id for s in gradebook.students()] == ["s1"]
        assert [row.student_id for row in gradebook.latest("act")] == ["s1"]
        _record(gradebook, "s2")  # the database is usable after the crash
        assert len(gradebook.latest("act")) == 2


def test_database_urls_and_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert database_url() == f"sqlite:///{tmp_path / 'gradebook.db'}"
    assert database_url("course/gb.db") == f"sqlite:///{tmp_path / 'course' / 'gb.db'}"
    assert database_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert database_url("sqlite:///:memory:") == "sqlite:///:memory:"
    with pytest.raises(GradebookError, match=r"cannot open the gradebook at "
                       r"postgresql\+psycopg://u:\*\*\*@127.0.0.1:1/db"):
        open_gradebook("postgresql://u:secret@127.0.0.1:1/db")


def test_autograde_records_each_submission(tmp_path, capsys):
    course = tmp_path / "course"
    shutil.copytree(FILES / "repo", course)
    klass = tmp_path / "class"
    for name in ("wrong_relu", "train_at_top"):
        shutil.copytree(FILES / "submissions" / name, klass / name)
    db = f"sqlite:///{tmp_path / 'gb.db'}"
    assert autograde.main(assignment=str(course / "assignments" / "act"), submissions=klass,
                          out=tmp_path / "graded", db=db) == 0
    assert f"no gradebook at {db} yet: created a new one" in capsys.readouterr().err
    assert (tmp_path / "graded" / "wrong_relu" / "results.json").exists()
    with open_gradebook(db) as gradebook:
        rows = {row.student_id: row for row in gradebook.latest("act")}
    assert {k: r.final_score for k, r in rows.items()} == {"train_at_top": 10,
                                                           "wrong_relu": 7}
    [failed] = [t for p in rows["wrong_relu"].grade.parts for t in p.tests
                if t.status != "passed"]
    assert "values differ from the expected ones" in failed.message
    assert rows["train_at_top"].grade.skipped_statements


def test_roster_and_override_verbs(tmp_path, capsys):
    db = tmp_path / "gb.db"
    roster_csv = tmp_path / "roster.csv"
    roster_csv.write_text("id,name\ns1,Ada\ns2,Alan\n")
    assert roster.main(roster=roster_csv, db=db) == 0
    assert "2 students on the roster, 2 new" in capsys.readouterr().out
    with open_gradebook(db) as gradebook:
        _record(gradebook, "s1")
    assert override.main(assignment="act", student="s2", points=5, reason="paper",
                         db=db) == 0
    assert "s2 on act gets 5 points (paper)" in capsys.readouterr().out
    assert override.main(assignment="act", student="s3", points=5, db=db) == 2
    assert "unknown student `s3`; the gradebook has: s1, s2" in capsys.readouterr().err
    assert override.main(assignment="act", student="s2", points=None, db=db) == 0
    assert "override cleared" in capsys.readouterr().out


# -- issue 11: one grade record, extensions, override bounds, no surprises ---------------------

LATE = dataclasses.replace(CONFIG, late=LatePolicy("percent_per_day", percent=10))


def test_an_override_outside_zero_to_max_or_without_a_reason_is_refused(tmp_path, capsys):
    db = tmp_path / "gb.db"
    with open_gradebook(db) as gradebook:
        _record(gradebook, "s1")
    for points, reason, message in ((150, "bonus", "between 0 and 10 points"),
                                    (-1, "penalty", "between 0 and 10 points"),
                                    (float("nan"), "x", "between 0 and 10 points"),
                                    (9, "", "needs a reason")):
        assert override.main(assignment="act", student="s1", points=points, reason=reason,
                             db=db) == 2
        assert message in capsys.readouterr().err
    with open_gradebook(db) as gradebook:
        assert gradebook.overrides("act") == {}  # nothing stored by a refused override
        gradebook.set_override("act", "s1", 10, "full marks after regrade", by="prof")
        [row] = gradebook.latest("act")
    assert (row.final_score, row.override.set_by) == (10, "prof")
    assert row.record.final == 10 and row.record.override_reason == "full marks after regrade"


def test_an_extension_recomputes_the_stored_lateness_and_is_audited(gradebook):
    gradebook.add_students([("s1", "Ada")])
    _record(gradebook, "s1", config=LATE, submitted_at=DUE + timedelta(hours=30))
    [row] = gradebook.latest("act")
    assert (row.late_days, row.late_multiplier, row.final_score) == (2, 0.8, 8)
    gradebook.extend(LATE, "s1", 1, "medical certificate", by="prof")
    [row] = gradebook.latest("act")
    assert (row.late_days, row.late_multiplier, row.final_score) == (1, 0.9, 9)
    assert row.extension_days == 1 and row.extension_reason == "medical certificate"
    assert any("Extension of 1 day(s) granted (medical certificate)" in n for n in row.notes)
    _record(gradebook, "s1", content="v2", config=LATE, submitted_at=DUE + timedelta(hours=47))
    [row] = gradebook.latest("act")  # a new submission keeps the extension
    assert (row.late_days, row.final_score) == (1, 9)
    gradebook.extend(LATE, "s1", 0, "granted by mistake", by="ta")
    [row] = gradebook.latest("act")
    assert (row.late_days, row.final_score, row.extension_days) == (2, 8, 0)
    grants = gradebook.extensions("act", "s1")
    assert [(g.days, g.reason, g.granted_by) for g in grants] == [
        (1, "medical certificate", "prof"), (0, "granted by mistake", "ta")]
    assert all(g.granted_at.tzinfo is not None for g in grants)
    assert gradebook.extension("act", "s1") is None  # 0 days: none in force


def test_one_submissions_grade_row_is_the_row_latest_gives(gradebook):
    from sqlalchemy.orm import sessionmaker

    from grader.gradebook.models import SubmissionModel

    gradebook.add_students([("s1", "Ada"), ("s2", "Alan")])
    late = {"config": LATE, "submitted_at": DUE + timedelta(hours=30)}
    first = _record(gradebook, "s1", fractions={"test_relu_values": 0.0}, **late)
    second = _record(gradebook, "s1", content="v2", **late)
    other = _record(gradebook, "s2", **late)
    gradebook.extend(LATE, "s1", 1, "medical certificate", by="prof")
    gradebook.set_override("act", "s1", 9.5, "regrade request")
    current = {row.student_id: row for row in gradebook.latest("act")}
    assert gradebook.grade_row(second) == current["s1"]
    assert gradebook.grade_row(other) == current["s2"]  # s1's override and extension stay s1's
    assert current["s2"].override is None and current["s2"].extension_days == 0
    old = gradebook.grade_row(first)  # superseded, still readable
    assert (old.submission_id, old.score, old.override.points) == (first, 7, 9.5)
    with sessionmaker(gradebook.engine).begin() as session:  # inside the caller's transaction
        assert gradebook.grade_row(second, session=session) == current["s1"]
        session.get(SubmissionModel, other).grade = None
    with pytest.raises(GradebookError, match=f"submission {other} is not graded yet"):
        gradebook.grade_row(other)
    with pytest.raises(GradebookError, match="submission 999999 does not exist"):
        gradebook.grade_row(999999)


def test_an_extension_before_any_submission_applies_when_it_is_graded(gradebook):
    gradebook.add_students([("s2", "Alan")])
    gradebook.extend(LATE, "s2", 2, "exchange programme", by="prof")
    _record(gradebook, "s2", config=LATE, submitted_at=DUE + timedelta(hours=30))
    [row] = gradebook.latest("act")
    assert (row.late_days, row.final_score) == (0, 10)
    with pytest.raises(GradebookError, match=r"unknown student `s9`.*grader roster"):
        gradebook.extend(LATE, "s9", 2, "x", by="prof")
    with pytest.raises(GradebookError, match="needs a reason"):
        gradebook.extend(LATE, "s2", 2, "  ", by="prof")


def test_the_extend_verb(tmp_path, capsys):
    course = tmp_path / "course"
    shutil.copytree(FILES / "repo", course)
    toml = course / "assignments" / "act" / "assignment.toml"
    toml.write_text(toml.read_text() + '\n[late]\npolicy = "percent_per_day"\npercent = 10\n')
    db = tmp_path / "gb.db"
    assert override.extend_main(assignment=str(toml), student="s1", days=2, reason="ill",
                                db=db) == 2
    assert "no gradebook at" in capsys.readouterr().err and not db.exists()
    with open_gradebook(db) as gradebook:
        _record(gradebook, "s1", config=load_assignment(toml),
                submitted_at=DUE + timedelta(hours=30))
    assert override.extend_main(assignment=str(toml), student="s1", days=2, reason="ill",
                                db=db) == 0
    out = capsys.readouterr().out
    assert "extension granted: s1 on act is due 2026-12-25T00:00:00+08:00" in out
    assert "current grade: 10 of 10 (0 day(s) late" in out
    assert override.extend_main(assignment=str(toml), student="s1", days=-2, reason="ill",
                                db=db) == 2
    assert "between 0 and 365 days" in capsys.readouterr().err


def test_a_missing_gradebook_is_an_error_for_every_reading_verb(tmp_path, capsys):
    from grader import export, feedback

    missing = tmp_path / "typo" / "gradebokk.db"
    assert feedback.main(assignment=str(CONFIG.root), db=missing, out=tmp_path / "f") == 2
    assert export.main(assignment=str(CONFIG.root), format="csv", out="-", db=missing) == 2
    assert override.main(assignment="act", student="s1", points=5, reason="x", db=missing) == 2
    err = capsys.readouterr().err
    assert err.count(f"no gradebook at sqlite:///{missing}") == 3
    assert "check --db" in err and "`grader autograde` creates the gradebook" in err
    assert not missing.exists() and not missing.parent.exists()
    with pytest.raises(GradebookError, match="no gradebook"):
        open_gradebook(missing, create=False)


def test_an_empty_database_holds_no_gradebook(db_url):
    """A server's empty database, or an empty SQLite file: refused, and left empty."""
    if db_url.startswith("sqlite:///"):
        Path(db_url.removeprefix("sqlite:///")).touch()
    with pytest.raises(GradebookError, match=r"no gradebook at .*holds no gradebook tables"):
        open_gradebook(db_url, create=False)
    from sqlalchemy import create_engine, inspect

    engine = create_engine(db_url)
    with engine.connect() as connection:
        assert inspect(connection).get_table_names() == []  # nothing was created
    engine.dispose()


@pytest.mark.parametrize(("url", "message"), [
    ("mysql://user@db.example/grades", r"needs the Python driver `MySQLdb`.*pip install "
                                       r"mysqlclient.*tested on SQLite .* and PostgreSQL"),
    ("mysql+pymysql://user@db.example/grades", r"driver `pymysql`.*pip install pymysql"),
    ("foo://x/y", r"unsupported database `foo` in foo://x/y; nn-grader's gradebook runs on "
                  r"SQLite \(a file path or sqlite:///path\) and PostgreSQL"),
    ("postgresql+nodriver://u@h/db", r"unsupported database `postgresql\+nodriver`"),
])
def test_an_unsupported_database_url_names_what_to_install(tmp_path, url, message, capsys):
    with pytest.raises(GradebookError, match=message):
        open_gradebook(url)
    from grader import cli

    assert cli.main(["feedback", str(CONFIG.root), "--db", url, "--out",
                     str(tmp_path / "f")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "grader" in err


def test_override_without_points_or_clear_is_an_error_not_a_silent_clear(tmp_path, capsys):
    from grader import cli

    db = tmp_path / "gb.db"
    with open_gradebook(db) as gradebook:
        _record(gradebook, "s1")
        gradebook.set_override("act", "s1", 9, "regrade")
    assert cli.main(["--lang", "en", "override", "act", "s1", "--db", str(db)]) == 2
    assert "give the POINTS to set (with --reason) or --clear" in capsys.readouterr().err
    with open_gradebook(db) as gradebook:
        assert gradebook.overrides("act")["s1"].points == 9  # still there
    assert cli.main(["override", "act", "s1", "--clear", "--db", str(db)]) == 0
    with open_gradebook(db) as gradebook:
        assert gradebook.overrides("act") == {}

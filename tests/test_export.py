"""`grader export` and its CSV (grader/export/__init__.py, csv.py, presets.py): columns,
presets, encodings, bad input. Gradescope's formats: tests/test_export_gradescope.py.

The class: tests/export_class.py (two graded submissions of the golden `act` assignment,
recorded into a fresh gradebook per test).
"""

from __future__ import annotations

import csv
import io

import export_class
import pytest
from export_class import course_late_config, run_export

from grader import export
from grader.gradebook import open_gradebook

# the shared class's fixtures, used by name
graded, course = export_class.graded, export_class.course


def _table(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_csv_has_a_row_per_student_with_parts_lateness_and_final_score(course, capsys):
    code, out, err = run_export(course, capsys, format="csv")
    assert code == 0, err
    rows = {row["student_id"]: row for row in _table(out)}
    assert list(rows) == ["absent", "train_at_top", "wrong_relu"]
    assert rows["wrong_relu"] | {"submitted_at": ""} == {
        "student_id": "wrong_relu", "name": "Wendy Relu", "relu": "3", "sigmoid": "4",
        "score": "7", "max_score": "10", "submitted_at": "", "late_days": "2",
        "late_multiplier": "0.8", "override": "", "final_score": "5.6", "status": "graded"}
    assert rows["wrong_relu"]["submitted_at"] == "2026-12-23T22:00:00+00:00"  # due + 30 h
    assert rows["train_at_top"]["final_score"] == "10"
    assert rows["absent"] == {
        "student_id": "absent", "name": "Absent Student", "relu": "", "sigmoid": "",
        "score": "", "max_score": "10", "submitted_at": "", "late_days": "",
        "late_multiplier": "", "override": "", "final_score": "0", "status": "missing"}


def test_csv_presets_and_columns(course, capsys, tmp_path):
    folder, db = course
    with open_gradebook(db) as gradebook:
        gradebook.set_override("act", "absent", 8, "paper submission")
    _, out, _ = run_export(course, capsys, format="csv", preset="canvas")
    assert out.splitlines()[0] == "Student,ID,SIS User ID,SIS Login ID,Section,Two activations"
    assert "Absent Student,absent,,,,8" in out.splitlines()
    _, out, _ = run_export(course, capsys, format="csv", preset="moodle")
    assert out.splitlines()[:2] == ["ID number,Full name,Two activations",
                                    "absent,Absent Student,8"]
    _, out, _ = run_export(course, capsys, format="csv",
                        columns="student_id=Matrikel, part:relu=ReLU (6), final_score={id}")
    assert out.splitlines() == ["Matrikel,ReLU (6),act", "absent,,8", "train_at_top,6,10",
                                "wrong_relu,3,5.6"]
    code, out, _ = run_export(course, capsys, format="csv", out=tmp_path)
    assert code == 0 and "3 students written to" in out
    # utf-8-sig by default: the byte order mark makes Excel read the file as UTF-8
    assert (tmp_path / "act-grades.csv").read_bytes().startswith(
        b"\xef\xbb\xbfstudent_id,name,relu,")
    code, _, _ = run_export(course, capsys, format="csv", student="wrong_relu",
                         out=tmp_path / "one.csv")
    assert len((tmp_path / "one.csv").read_text().splitlines()) == 2


@pytest.mark.parametrize(("encoding", "bom", "codec"), [
    ("utf-8-sig", b"\xef\xbb\xbf", "utf-8-sig"), ("utf-8", b"", "utf-8"), ("gbk", b"", "gbk")])
def test_csv_encodings_for_excel_and_chinese_systems(course, capsys, tmp_path, encoding, bom,
                                                     codec):
    folder, db = course
    with open_gradebook(db) as gradebook:
        gradebook.add_students([("absent", "张三"), ("wrong_relu", "欧阳娜娜")])
    target = tmp_path / "grades.csv"
    code, out, err = run_export(course, capsys, format="csv", preset="generic", out=target,
                             encoding=encoding)
    assert code == 0, err
    assert f"3 students written to {target} ({encoding})" in out
    data = target.read_bytes()
    assert data.startswith(bom + b"id,name,grade,max_grade,status,comment\n")
    assert not data.startswith(b"\xef\xbb\xbf\xef\xbb\xbf")
    rows = {row["id"]: row for row in _table(data.decode(codec))}
    assert (rows["absent"]["name"], rows["wrong_relu"]["name"]) == ("张三", "欧阳娜娜")


def test_a_name_gbk_cannot_hold_is_an_error_naming_the_student(course, capsys, tmp_path):
    folder, db = course
    with open_gradebook(db) as gradebook:
        gradebook.add_students([("absent", "吉\U00020bb7")])  # 𠮷: outside GBK
    target = tmp_path / "grades.csv"
    code, _, err = run_export(course, capsys, format="csv", out=target, encoding="gbk")
    assert code == 2 and not target.exists()
    assert "the row of `absent` holds" in err and "U+20BB7" in err
    assert "--encoding utf-8-sig" in err
    code, _, err = run_export(course, capsys, format="csv", out=target, encoding="latin-1")
    assert code == 2 and "unknown encoding `latin-1`; encodings: utf-8-sig, utf-8, gbk" in err


def test_the_generic_preset_says_lateness_extension_and_override_in_words(course, capsys):
    folder, db = course
    with open_gradebook(db) as gradebook:
        gradebook.extend(course_late_config(course), "wrong_relu", 1, "ill", by="prof")
        gradebook.set_override("act", "absent", 8, '=HYPERLINK("http://evil")')
    _, out, _ = run_export(course, capsys, format="csv", preset="generic")
    assert out.splitlines() == [
        "id,name,grade,max_grade,status,comment",
        "absent,Absent Student,8,10,overridden,"
        '"no submission; instructor override: 8 (=HYPERLINK(""http://evil""))"',
        "train_at_top,,10,10,graded,",
        "wrong_relu,Wendy Relu,6.3,10,graded,extension of 1 day(s) (ill); 1 day(s) late: "
        "score x 0.9"]
    _, out, _ = run_export(course, capsys, format="csv",
                        columns="student_id,extension_days,extension_reason,override_reason")
    assert out.splitlines()[1:] == [  # the reason starts with "=": quoted as text (OWASP)
        'absent,,,"\'=HYPERLINK(""http://evil"")"', "train_at_top,,,", "wrong_relu,1,ill,"]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"format": "xlsx"}, "unknown format `xlsx`; formats: csv, gradescope, "
                         "gradescope-autograder"),
    ({"format": "csv", "preset": "blackboard"}, "unknown preset `blackboard`; presets: "
                                                "canvas, moodle"),
    ({"format": "csv", "columns": "student_id,grade"}, "unknown column `grade`; columns: "
                                                       "student_id, name, parts"),
    ({"format": "csv", "columns": "part:tanh"}, "unknown part `tanh` in column `part:tanh`; "
                                                "parts: relu, sigmoid"),
    ({"format": "csv", "student": "s404"}, "unknown student `s404` for `act`; students: "
                                           "absent, train_at_top, wrong_relu"),
    ({"format": "csv", "assignment": "mlp"}, "unknown assignment `mlp`; the gradebook has: "
                                             "act; assignments/ has: act"),
])
def test_bad_input_names_it_and_lists_what_exists(course, capsys, kwargs, message):
    folder, db = course
    kwargs = {"assignment": "act", "out": "-", "db": db, **kwargs}
    assert export.main(**kwargs) == 2
    err = capsys.readouterr().err
    assert err.startswith("grader: ") and message in err, err


def test_the_cli_passes_encoding_and_the_generic_preset(course, capsys, tmp_path):
    from grader import cli

    folder, db = course
    with open_gradebook(db) as gradebook:
        gradebook.add_students([("absent", "张三")])
    target = tmp_path / "成绩.csv"
    assert cli.main(["export", "act", "--format", "csv", "--preset", "generic", "--encoding",
                     "gbk", "--out", str(target), "--db", db]) == 0
    assert target.read_bytes().decode("gbk").splitlines()[1].startswith("absent,张三,0,10,")
    with pytest.raises(SystemExit):  # argparse: one of the three encodings
        cli.main(["export", "act", "--format", "csv", "--encoding", "latin-1", "--db", db])
    assert "invalid choice: 'latin-1'" in capsys.readouterr().err

"""`grader roster`: a Chinese classroom's roster files (GBK, UTF-8 with or without BOM,
学号/姓名 headers) and hostile rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.gradebook import RosterError, open_gradebook, read_roster, roster

CHINESE = "学号,姓名,班级\n2023001,张三,计科1班\n2023002,欧阳娜娜,计科2班\n"
EXPECTED = [("2023001", "张三"), ("2023002", "欧阳娜娜")]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk"])
def test_utf8_with_or_without_bom_and_gbk_are_read_with_a_header_mapping(tmp_path, encoding):
    path = tmp_path / "roster.csv"
    path.write_bytes(CHINESE.encode(encoding))
    assert read_roster(path, "学号=id,姓名=name") == EXPECTED
    assert read_roster(path, {"学号": "id", "姓名": "name"}) == EXPECTED


def test_gbk_with_excel_line_endings_and_the_id_name_headers(tmp_path):
    path = tmp_path / "roster.csv"
    path.write_bytes("ID,Name\r\n2023001,张三\r\n\r\n".encode("gbk"))
    assert read_roster(path) == [("2023001", "张三")]


def test_unknown_headers_are_refused_with_the_columns_found_and_the_mapping(tmp_path):
    path = tmp_path / "roster.csv"
    path.write_bytes(CHINESE.encode("gbk"))
    with pytest.raises(RosterError) as error:
        read_roster(path)
    message = str(error.value)
    assert "missing: id, name; columns found: 学号, 姓名, 班级" in message
    assert "grader roster roster.csv --columns 学号=id,姓名=name" in message


def test_headers_nobody_could_guess_get_placeholders(tmp_path):
    path = tmp_path / "roster.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(RosterError, match=r"--columns <id column>=id,<name column>=name"):
        read_roster(path)


@pytest.mark.parametrize(("mapping", "message"), [
    ("学号=id,姓名=email", r"takes HEADER=id and HEADER=name"),
    ("学号", r"takes HEADER=id and HEADER=name"),
    ("=id", r"takes HEADER=id and HEADER=name"),
    ("学号=id,班级=id", r"maps two headers to `id`"),
    ("学籍号=id,姓名=name", r"--columns names 学籍号=id, but the roster has no such column; "
                           r"columns found: 学号, 姓名, 班级"),
])
def test_a_bad_mapping_says_what_is_wrong(tmp_path, mapping, message):
    path = tmp_path / "roster.csv"
    path.write_text(CHINESE, encoding="utf-8")
    with pytest.raises(RosterError, match=message):
        read_roster(path, mapping)


def test_a_file_neither_utf8_nor_gbk_is_refused_with_what_to_do(tmp_path):
    path = tmp_path / "roster.csv"
    path.write_bytes(b"id,name\n1,\xff\xfe\xff\n")
    with pytest.raises(RosterError, match=r"neither UTF-8 nor GBK.*CSV UTF-8"):
        read_roster(path)


@pytest.mark.parametrize(("row", "message"), [
    ("../../etc,Evil", r"line 2"),  # a path in an id
    ("s1,\x1b[2Jcleared", r"control or formatting characters"),
    ("s1,\u202eevil\u202c", r"control or formatting characters"),  # right-to-left override
    ("s1," + "長" * 301, r"at most 300 characters"),
    ("s" * 65 + ",Long id", r"line 2"),
])
def test_hostile_rows_are_refused_with_the_line(tmp_path, row, message):
    path = tmp_path / "roster.csv"
    path.write_text(f"id,name\n{row}\n", encoding="utf-8")
    with pytest.raises(RosterError, match=message):
        read_roster(path)


def test_a_formula_name_is_kept_as_text_and_neutralised_on_export(tmp_path, capsys):
    from grader.export import csv_cell

    path = tmp_path / "roster.csv"
    path.write_text("id,name\ns1,=HYPERLINK(\"http://x\")\n", encoding="utf-8")
    [(ident, name)] = read_roster(path)
    assert name == '=HYPERLINK("http://x")' and csv_cell(name).startswith("'=")


def test_the_verb_creates_the_gradebook_and_says_so(tmp_path, capsys):
    path, db = tmp_path / "roster.csv", tmp_path / "course" / "gradebook.db"
    path.write_bytes(CHINESE.encode("gbk"))
    assert roster.main(roster=path, db=db) == 2
    assert "--columns 学号=id,姓名=name" in capsys.readouterr().err
    assert not db.exists()  # a refused roster creates nothing
    assert roster.main(roster=path, db=db, columns="学号=id,姓名=name") == 0
    out = capsys.readouterr().out
    assert "created a new one" in out and "2 students on the roster, 2 new" in out
    with open_gradebook(db, create=False) as gradebook:
        assert [(s.id, s.display_name) for s in gradebook.students()] == EXPECTED
    assert roster.main(roster=path, db=db, columns="学号=id,姓名=name") == 0
    assert "created" not in capsys.readouterr().out


def test_without_db_the_verbs_use_the_current_courses_gradebook(tmp_path, monkeypatch, capsys):
    from grader.gradebook import override

    course = tmp_path / "course"
    (course / "assignments").mkdir(parents=True)
    (course / "course.toml").write_text('title = "Neural networks"\n', encoding="utf-8")
    (course / "rosters").mkdir()
    (course / "rosters" / "class.csv").write_text(CHINESE, encoding="utf-8")
    monkeypatch.chdir(course / "rosters")  # a subfolder: the course is found upwards
    monkeypatch.delenv("GRADER_COURSE", raising=False)
    assert roster.main(roster=course / "rosters" / "class.csv", columns="学号=id,姓名=name") == 0
    assert (course / "gradebook.db").is_file()
    assert not (course / "rosters" / "gradebook.db").exists()
    assert override.main(assignment="act", student="2023001", points=5, reason="x") == 2
    assert "unknown assignment `act`" in capsys.readouterr().err  # it read the course's gradebook


def test_the_cli_takes_columns_and_extend(tmp_path, capsys):
    import shutil

    from grader import cli

    course = tmp_path / "course"
    shutil.copytree(Path(__file__).parent / "files" / "grading" / "repo", course)
    path, db = tmp_path / "名单.csv", str(tmp_path / "gb.db")
    path.write_bytes(CHINESE.encode("gbk"))
    assert cli.main(["roster", str(path), "--columns", "学号=id,姓名=name", "--db", db]) == 0
    assert "2 students on the roster, 2 new" in capsys.readouterr().out
    act = str(course / "assignments" / "act")
    assert cli.main(["extend", act, "2023001", "--days", "2", "--reason", "病假",
                     "--db", db]) == 0
    assert "extension granted: 2023001 on act" in capsys.readouterr().out
    with open_gradebook(db, create=False) as gradebook:
        [grant] = gradebook.extensions("act", "2023001")
    assert (grant.days, grant.reason) == (2, "病假") and grant.granted_by
    with pytest.raises(SystemExit):  # --reason is required
        cli.main(["extend", act, "2023001", "--days", "2", "--db", db])
    assert "--reason" in capsys.readouterr().err

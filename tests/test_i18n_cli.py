"""The ``cli`` domain in both languages: what `grader check` and `submit` print, intake's
problems, the runtime's limits and the grade record's notes (issue 12, engineer B).

A released folder speaks the course's language (recorded by `grader release` in
``.nn-grader-release.json``) unless ``--lang`` or ``GRADER_LANG`` says otherwise; either way
the facts (numbers, names, file names) are the same, and a value the student controls is
shown literally inside a translated sentence, never read as a format string.
"""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from pathlib import Path

import pytest

from grader import grade_record, i18n
from grader.cli import main
from grader.config import load_assignment
from grader.grading.run import grade_path
from grader.intake import intake
from grader.intake.submission import missing_file
from grader.kit.check import RELEASE_RECORD, kit_language, use_kit_language
from grader.kit.submit import SubmitRefused, pack
from grader.release.build import instructions_source, release
from grader.results.records import Grade, summary_lines
from grader.runtime.errors import StudentCrashed, StudentTimeout, TimeBudgetExhausted
from grader.runtime.sandbox import SandboxLimits

ROOT = Path(__file__).resolve().parents[1]
COURSE = Path(__file__).parent / "files" / "grading" / "repo"
SOLUTION = COURSE / "solutions" / "act.py"
HOSTILE = ("{0}{name}%s%(x)s{__class__}{n:>999999999}", "%d {} {{}} }{")


@pytest.fixture(autouse=True)
def no_language(monkeypatch):
    """Each test starts with no language chosen, and leaves none behind."""
    monkeypatch.delenv(i18n.ENV_VAR, raising=False)
    with i18n.speaking(None):
        i18n._current.set(None)  # noqa: SLF001 - "nothing chosen" is the state under test
        yield


@pytest.fixture(scope="module")
def released_zh(tmp_path_factory) -> Path:
    """`act` released from a copy of the golden course whose language is zh_CN."""
    base = tmp_path_factory.mktemp("kit-zh")
    course = base / "course"
    shutil.copytree(COURSE, course)
    toml = course / "course.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace('language = "en"',
                                                             'language = "zh_CN"'),
                    encoding="utf-8")
    config = load_assignment(course / "assignments" / "act" / "assignment.toml")
    return release(config, base / "release",
                   grade=lambda cfg, folder: grade_path(cfg, folder).grade).folder


def _copy(released: Path, tmp_path: Path, name: str = "act", *, solved: bool) -> Path:
    folder = tmp_path / name
    shutil.copytree(released, folder)
    if solved:
        shutil.copyfile(SOLUTION, folder / "act.py")
    return folder


def _check(capsys, *argv: str) -> tuple[int, str]:
    code = main(["check", *argv])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _numbers(text: str) -> list[str]:
    return re.findall(r"\d+(?:\.\d+)?", text)


def test_the_release_records_the_course_language(released_zh):
    record = json.loads((released_zh / RELEASE_RECORD).read_text(encoding="utf-8"))
    assert record["language"] == "zh_CN"
    assert kit_language(released_zh) == "zh_CN"


def test_check_speaks_the_kits_chinese_and_english_with_lang(released_zh, tmp_path, capsys):
    folder = _copy(released_zh, tmp_path, "作业1", solved=False)
    code_zh, zh = _check(capsys, str(folder))
    code_en, en = _check(capsys, str(folder), "--lang", "en")
    assert code_zh == code_en == 1
    assert "2 项公开检查中通过 0 项" in zh and "[未通过]" in zh and "截止时间" in zh
    assert "public checks passed" not in zh
    assert "0 of 2 public checks passed" in en and "[FAIL]" in en and "Due:" in en
    assert "项公开检查" not in en
    # The failing public test's message (the student's NotImplementedError) in both.
    assert zh.count("NotImplementedError") == en.count("NotImplementedError") > 0
    assert 'File "act.py"' in zh and 'File "act.py"' in en
    # The part's points and the counts are the same facts in both languages.
    part_zh = next(line for line in zh.splitlines() if line.startswith("relu"))
    part_en = next(line for line in en.splitlines() if line.startswith("relu"))
    assert _numbers(part_zh) == _numbers(part_en) == ["0", "6"]
    assert i18n.current_language() == "en"  # the run left no language behind


def test_check_passes_in_chinese_with_the_same_counts(released_zh, tmp_path, capsys):
    folder = _copy(released_zh, tmp_path, solved=True)
    code, zh = _check(capsys, str(folder))
    assert code == 0 and "2 项公开检查中通过 2 项" in zh and "[通过]" in zh


def test_grader_lang_wins_over_the_kit(released_zh, tmp_path, capsys, monkeypatch):
    folder = _copy(released_zh, tmp_path, solved=True)
    monkeypatch.setenv(i18n.ENV_VAR, "en")
    code, out = _check(capsys, str(folder))
    assert code == 0 and "2 of 2 public checks passed" in out


@pytest.mark.parametrize("record", ['{"language": "klingon"}', '{"language": ["zh_CN"]}',
                                    "[1, 2]", "not json", '{"language": "{0}%s"}'])
def test_a_damaged_language_record_falls_back_to_english(released_zh, tmp_path, capsys,
                                                         record):
    folder = _copy(released_zh, tmp_path, solved=True)
    (folder / RELEASE_RECORD).write_text(record, encoding="utf-8")
    assert kit_language(folder) is None
    code, out = _check(capsys, str(folder))
    assert code == 0 and "2 of 2 public checks passed" in out


def test_a_broken_notebook_is_an_intake_problem_in_both_languages(released_zh, tmp_path,
                                                                  capsys):
    folder = _copy(released_zh, tmp_path, solved=False)
    (folder / "act.py").unlink()
    (folder / "act.ipynb").write_text('{"cells": [', encoding="utf-8")
    _, zh = _check(capsys, str(folder / "act.ipynb"))
    _, en = _check(capsys, str(folder / "act.ipynb"), "--lang", "en")
    assert "问题：" in zh and "notebook 不是有效的 JSON" in zh and "File > Save" in zh
    assert "problem: " in en and "notebook is not valid JSON" in en
    problem_zh = next(line for line in zh.splitlines() if line.startswith("问题"))
    problem_en = next(line for line in en.splitlines() if line.startswith("problem"))
    assert _numbers(problem_zh) == _numbers(problem_en)  # line and column of the JSON error


def test_submit_says_where_the_zip_is_in_chinese(released_zh, tmp_path, capsys):
    folder = _copy(released_zh, tmp_path, solved=True)
    assert main(["submit", "--student-id", "2023001", "--no-check", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "已生成" in out and "act-2023001.zip" in out and "请提交这个文件" in out


def test_submit_warns_in_chinese_with_the_failing_checks(released_zh, tmp_path, capsys):
    folder = _copy(released_zh, tmp_path, solved=False)
    assert main(["submit", "--student-id", "2023001", str(folder)]) == 0
    err = capsys.readouterr().err
    assert "警告：2 项公开检查未通过" in err and "test_relu_shape" in err


@pytest.mark.parametrize("language", ["zh_CN", "en"])
def test_a_damaged_zip_is_a_problem_in_the_language_with_the_same_facts(tmp_path, language):
    i18n.set_language(language)
    damaged = tmp_path / "2023001.zip"
    damaged.write_bytes(b"PK\x03\x04 this is not a whole zip")
    submission = intake(damaged, tmp_path, expected_files=["act.py"], assignment="act")
    text = " ".join(submission.problems)
    assert "2023001.zip" in text
    assert ("已损坏" in text) == (language == "zh_CN")
    assert ("is damaged" in text) == (language == "en")


@pytest.mark.parametrize("language", ["zh_CN", "en"])
def test_runtime_limits_in_both_languages_with_the_same_numbers(language):
    i18n.set_language(language)
    timeout = str(StudentTimeout(5, "act.relu(...)"))
    budget = str(TimeBudgetExhausted(120, "act.sigmoid(...)", stopped=True))
    full = SandboxLimits().workspace_full()
    assert "act.relu(...)" in timeout and _numbers(timeout) == ["5"]
    assert "act.sigmoid(...)" in budget and "120" in budget
    chinese = {"timeout": "秒内完成", "budget": "时间预算已用完", "full": "工作目录已满"}
    english = {"timeout": "did not finish within 5 s", "budget": "time budget exhausted",
               "full": "the workspace is full"}
    expected = chinese if language == "zh_CN" else english
    assert expected["timeout"] in timeout and expected["budget"] in budget
    assert expected["full"] in full
    limits = SandboxLimits()
    assert _numbers(full) == [str(limits.workspace_mb), str(limits.workspace_files),
                              str(limits.tmp_size_mb)]


def test_a_translated_memory_kill_is_still_a_memory_failure():
    i18n.set_language("zh_CN")
    crash = StudentCrashed("已终止：超出内存限制 2048 MB", memory=True)
    assert crash.kind == "memory"
    assert StudentCrashed("killed: memory limit 2048 MB exceeded").kind == "memory"
    assert StudentCrashed("已终止：超出文件大小限制 10 MB").kind == "crash"


@pytest.mark.parametrize("language", ["zh_CN", "en"])
def test_the_late_note_has_the_same_numbers_in_both_languages(language):
    i18n.set_language(language)
    record = grade_record.GradeRecord(score=7, max_score=10, late_days=2, late_multiplier=0.8,
                                      extension_days=1.5, extension_reason="medical")
    lines = summary_lines(Grade("2023001", "act", (), 0.0), record)
    late = grade_record.late_note(record)
    assert late in lines and _numbers(late) == ["2", "0.8"]
    assert ("迟交 2 天" in late) == (language == "zh_CN")
    assert ("Late by 2 days" in late) == (language == "en")
    one_day = grade_record.late_note(
        grade_record.GradeRecord(score=7, max_score=10, late_days=1, late_multiplier=0.9))
    assert ("Late by 1 day:" in one_day) == (language == "en")  # ngettext, not "day(s)"
    assert grade_record.late_note(grade_record.GradeRecord(score=7, max_score=10)) is None
    assert any("1.5" in line and "medical" in line for line in lines)


@pytest.mark.parametrize("language", ["zh_CN", "en"])
@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_names_are_shown_literally_in_both_languages(language, hostile):
    i18n.set_language(language)
    text = missing_file(f"{hostile}.py", [f"{hostile}.ipynb", "act.py"])
    assert f"{hostile}.py" in text and f"{hostile}.ipynb" in text
    record = grade_record.GradeRecord(score=1, max_score=10, override_points=9.5,
                                      override_reason=hostile)
    assert grade_record.override_note(record).endswith(hostile)
    timeout = str(StudentTimeout(5, f"{hostile}(...)"))
    assert f"{hostile}(...)" in timeout


@pytest.mark.parametrize("hostile", HOSTILE)
def test_a_hostile_student_id_or_file_name_is_shown_literally(released_zh, tmp_path, capsys,
                                                              hostile):
    folder = _copy(released_zh, tmp_path, solved=True)
    i18n.set_language("zh_CN")
    path = pack(folder, student_id=hostile)  # `grader.ids` accepts braces and percent signs
    assert main(["submit", "--student-id", hostile, "--no-check", str(folder)]) == 0
    assert f"已生成 {path}：请提交这个文件。" in capsys.readouterr().out
    with pytest.raises(SubmitRefused) as refused:  # refused: shown literally, in Chinese
        pack(folder, student_id=f"../{hostile[:30]}")
    assert f"'../{hostile[:30]}'" in str(refused.value) and "学号" in str(refused.value)
    # A file name with braces, passed to `grader check`: named literally, no format error.
    odd = folder / f"{hostile}.txt"
    odd.write_text("x", encoding="utf-8")
    code, out = _check(capsys, str(odd))
    assert code == 2 or code == 1
    assert f"{hostile}.txt" in out


def test_use_kit_language_outside_a_released_folder_keeps_english(tmp_path):
    assert use_kit_language(tmp_path) == "en"


def test_the_release_picks_the_readme_of_the_course_language(tmp_path):
    course = tmp_path / "course"
    shutil.copytree(COURSE, course)
    folder = course / "assignments" / "act"
    (folder / "README.md").write_text("English instructions\n", encoding="utf-8")
    (folder / "README.zh_CN.md").write_text("中文说明\n", encoding="utf-8")
    config = load_assignment(folder / "assignment.toml")
    assert instructions_source(config).name == "README.md"  # the course says "en"
    toml = course / "course.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace('"en"', '"zh_CN"'),
                    encoding="utf-8")
    assert instructions_source(config).name == "README.zh_CN.md"
    (folder / "README.zh_CN.md").unlink()
    assert instructions_source(config).name == "README.md"  # no translation: the source


@pytest.mark.parametrize("assignment", ["tf_basics", "mlp_numpy", "keras_mlp", "keras_cnn",
                                        "alexnet"])
def test_every_lecture_assignment_has_its_instructions_in_both_languages(assignment):
    english = (ROOT / "assignments" / assignment / "README.md").read_text(encoding="utf-8")
    chinese = (ROOT / "assignments" / assignment / "README.zh_CN.md").read_text(
        encoding="utf-8")
    # Chinese prose (English quotes only the lecture's Chinese section titles).
    assert len(re.findall(r"[\u4e00-\u9fff]", chinese)) > 10 * len(
        re.findall(r"[\u4e00-\u9fff]", english)) + 200
    # The same parameters are shown (jinja2 placeholders) and the same code identifiers.
    placeholders = set(re.findall(r"\{\{[^}]*\}\}", english))
    assert placeholders == set(re.findall(r"\{\{[^}]*\}\}", chinese))
    code_en = set(re.findall(r"`([A-Za-z_][\w.]*)\(", english))
    assert code_en and code_en <= set(re.findall(r"`([A-Za-z_][\w.]*)\(", chinese))
    # The same sections: one heading for each of the English README's.
    assert english.count("\n#") == chinese.count("\n#")


def test_zip_of_a_chinese_submit_holds_the_files(released_zh, tmp_path, capsys):
    folder = _copy(released_zh, tmp_path, solved=True)
    assert main(["submit", "--student-id", "2023009", "--no-check", str(folder)]) == 0
    capsys.readouterr()
    with zipfile.ZipFile(folder / "act-2023009.zip") as archive:
        assert sorted(archive.namelist()) == ["act.py", "manifest.json"]


def test_check_help_speaks_the_kits_language(released_zh, tmp_path, capsys, monkeypatch):
    folder = _copy(released_zh, tmp_path, solved=False)
    monkeypatch.chdir(folder)
    with pytest.raises(SystemExit) as done:
        main(["check", "--help"])
    assert done.value.code == 0 and "运行已发布作业的公开测试" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["submit", "--help"])
    assert "你的学号或登录名" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["check", "--help", "--lang", "en"])
    assert "the released assignment folder, whatever it is named" in capsys.readouterr().out
    assert i18n.current_language() == "en"


@pytest.mark.parametrize("hostile", HOSTILE)
def test_a_refused_student_id_is_a_chinese_usage_error_shown_literally(capsys, hostile):
    with pytest.raises(SystemExit) as done:
        main(["--lang", "zh_CN", "submit", "--student-id", f"a/{hostile[:30]}"])
    err = capsys.readouterr().err
    assert done.value.code == 2
    assert f"a/{hostile[:30]}" in err and "应为你的学号或登录名" in err


def test_autograde_speaks_chinese_with_the_same_scores(tmp_path, capsys):
    course = tmp_path / "course"
    shutil.copytree(COURSE, course)
    submissions = tmp_path / "class"
    (submissions / "2023001").mkdir(parents=True)
    shutil.copyfile(SOLUTION, submissions / "2023001" / "act.py")
    (submissions / "2023002").mkdir()  # an empty folder: a problem for that student
    outputs = {}
    for language in ("zh_CN", "en"):
        code = main(["--lang", language, "--course", str(course), "autograde", "act",
                     str(submissions), "--db", str(tmp_path / f"{language}.db"),
                     "--out", str(tmp_path / language), "--workers", "1"])
        captured = capsys.readouterr()
        outputs[language] = (code, captured.out, captured.err)
    (code_zh, out_zh, err_zh), (code_en, out_en, err_en) = outputs["zh_CN"], outputs["en"]
    assert code_zh == code_en == 3
    assert "已新建一个" in err_zh and "1 份提交有问题：" in err_zh
    assert "每位学生的 results.json" in out_zh and "成绩记录在" in out_zh
    assert "created a new one" in err_en and "1 submission had problems:" in err_en
    assert "  2023002（2023002）：缺少 act.py" in err_zh and "问题解决后，请用 --force" in err_zh
    assert "  2023002 (2023002): act.py is missing" in err_en and "once it is fixed" in err_en
    table_zh = [line for line in out_zh.splitlines() if line.startswith("2023")]
    table_en = [line for line in out_en.splitlines() if line.startswith("2023")]
    assert table_zh == table_en and len(table_zh) == 2  # the same grades, word for word
    results = [json.loads((tmp_path / language / "2023001" / "results.json").read_text(
        encoding="utf-8"))["score"] for language in ("zh_CN", "en")]
    assert results[0] == results[1] == 10


@pytest.mark.parametrize("hostile", HOSTILE)
def test_a_hostile_zip_entry_is_named_literally_in_chinese(tmp_path, hostile):
    i18n.set_language("zh_CN")
    path = tmp_path / "2023001.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"../{hostile}.py", "x = 1\n")
        archive.writestr("manifest.json", json.dumps({"files": {f"{hostile}.py": "00"}}))
    submission = intake(path, tmp_path, expected_files=["act.py"], assignment="act")
    text = "\n".join(submission.problems)
    assert repr(f"../{hostile}.py") in text and "没有解压它" in text
    assert f"{hostile}.py" in text and "提交的内容中没有这个文件" in text  # the manifest's list
    assert "缺少 act.py" in text


@pytest.mark.parametrize("hostile", HOSTILE)
def test_a_release_refusal_names_edited_files_literally_in_chinese(released_zh, tmp_path,
                                                                   hostile):
    from grader.release.kit import replace_refusal

    folder = _copy(released_zh, tmp_path, solved=True)
    (folder / f"{hostile}.py").write_text("x = 1\n", encoding="utf-8")
    i18n.set_language("zh_CN")
    refusal = replace_refusal(folder)
    assert f"{hostile}.py（新增）" in refusal and "act.py（已改动）" in refusal
    assert "--force" in refusal and "在发布后被改动过" in refusal


def test_a_broken_readme_template_is_refused_in_chinese_with_the_jinja2_spelling(tmp_path):
    from grader.release.build import ReleaseRefused, render_instructions

    course = tmp_path / "course"
    shutil.copytree(COURSE, course)
    (course / "course.toml").write_text('title = "t"\nlanguage = "zh_CN"\n', encoding="utf-8")
    folder = course / "assignments" / "act"
    (folder / "README.zh_CN.md").write_text("说明\n\n{{ parameters.unist }} 个\n",
                                            encoding="utf-8")
    config = load_assignment(folder / "assignment.toml")
    i18n.set_language("zh_CN")
    with pytest.raises(ReleaseRefused) as refused:
        render_instructions(config)
    text = str(refused.value)
    assert "README.zh_CN.md 第 3 行" in text and "unist" in text
    assert "{{ parameters.NAME }}" in text and "{{ '{{' }}" in text


def test_the_kit_installs_babel_and_ships_the_cli_catalog():
    """`pip install nn-grader` alone must give a student `grader check` in Chinese."""
    import fnmatch

    from grader.config import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    requires = [line.split(">")[0].split("=")[0].strip().lower()
                for line in project["project"]["dependencies"]]
    assert "babel" in requires
    patterns = project["tool"]["setuptools"]["package-data"]["grader"]
    for name in ("locale/cli.pot", "locale/zh_CN/LC_MESSAGES/cli.po",
                 "locale/zh_CN/LC_MESSAGES/cli.mo"):
        assert (ROOT / "grader" / name).is_file(), name
        assert any(fnmatch.fnmatch(name, pattern) for pattern in patterns), name


def test_a_missing_file_is_said_in_chinese_by_intake_and_by_the_import(released_zh, tmp_path,
                                                                      capsys):
    folder = _copy(released_zh, tmp_path, solved=False)
    (folder / "act.py").unlink()
    code, zh = _check(capsys, str(folder))
    assert code == 1
    assert "问题：缺少 act.py：提交的内容中没有任何文件" in zh
    assert "无法导入 act：文件夹中没有 act.py" in zh


@pytest.mark.parametrize("zone", ["../../etc/passwd", "Mars/Olympus_Mons", 8, None])
def test_the_due_date_is_shown_in_the_courses_zone_or_its_own_offset(released_zh, tmp_path,
                                                                     capsys, zone):
    folder = _copy(released_zh, tmp_path, solved=True)
    _, zh = _check(capsys, str(folder))
    _, en = _check(capsys, str(folder), "--lang", "en")
    # The golden course's zone is UTC; the due date is 2026-12-23T00:00+08:00.
    assert "截止时间：2026-12-22 16:00" in zh and "Due: 2026-12-22 16:00" in en
    record = json.loads((folder / RELEASE_RECORD).read_text(encoding="utf-8"))
    record["time_zone"] = zone  # a hostile or unknown zone: the due date's own offset
    (folder / RELEASE_RECORD).write_text(json.dumps(record), encoding="utf-8")
    _, zh = _check(capsys, str(folder))
    assert "截止时间：2026-12-23 00:00 GMT+08:00" in zh


def test_a_syntax_error_is_named_in_chinese_with_the_same_line(released_zh, tmp_path, capsys):
    folder = _copy(released_zh, tmp_path, solved=False)
    (folder / "act.py").write_text("import numpy as np\n\ndef relu(x:\n    return x\n",
                                   encoding="utf-8")
    _, zh = _check(capsys, str(folder))
    _, en = _check(capsys, str(folder), "--lang", "en")
    assert "act.py 第 3 行有 SyntaxError（语法错误）" in zh
    assert "SyntaxError in act.py, line 3" in en


def test_the_top_level_help_speaks_the_kits_language_where_the_student_works(
        released_zh, tmp_path, capsys, monkeypatch):
    folder = _copy(released_zh, tmp_path, solved=False)
    monkeypatch.chdir(folder)
    with pytest.raises(SystemExit):
        main(["--help"])
    zh = capsys.readouterr().out
    assert "发布、检查、提交神经网络作业" in zh and "用隐藏测试为提交评分" in zh
    monkeypatch.chdir(tmp_path)  # not a released folder: English
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "Release, check, submit and grade" in capsys.readouterr().out

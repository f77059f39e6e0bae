"""The student kit's own `course` catalog (`grader.release.kit.write_course_catalog`).

A released folder carries ``locale/<language>/LC_MESSAGES/course.mo`` with only the public
suite's and the assignment.toml's sentences: the course's full catalog holds the hidden
suites' sentences and must never ship. `grader check` in zh_CN then reads the public
suite's own phrases in Chinese.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_file
from babel.messages.mofile import read_mo
from babel.messages.pofile import write_po

from grader.config import load_assignment
from grader.grading.run import grade_path
from grader.i18n import EXTRACT_KEYWORDS
from grader.release.build import release
from grader.release.kit import write_course_catalog

ROOT = Path(__file__).resolve().parents[1]
COURSE = Path(__file__).parent / "files" / "grading" / "repo"
LECTURE_ASSIGNMENTS = ("tf_basics", "mlp_numpy", "keras_mlp", "keras_cnn", "alexnet")
KIT_MO = Path("locale") / "zh_CN" / "LC_MESSAGES" / "course.mo"

PUBLIC_PHRASE = "`relu` raised {error}; write its body in act.py"
PUBLIC_CHINESE = "`relu` 抛出了 {error}；请在 act.py 中写出它的函数体"
HIDDEN_PHRASE = "hidden: `sigmoid` on a secret input"  # must never reach a student
HEADER = "from grader.grading.fixtures import course_messages\n_, _n = course_messages(__file__)\n"


def _msgids(path: Path) -> set[str]:
    """Every message id `pybabel extract` finds in one suite."""
    found = extract_from_file("python", str(path), keywords=EXTRACT_KEYWORDS)
    return {message if isinstance(message, str) else message[0]
            for _line, message, _comments, _context in found}


def _kit_msgids(mo: Path) -> set[str]:
    with mo.open("rb") as file:
        catalog = read_mo(file)
    return {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id}


@pytest.mark.parametrize("assignment", LECTURE_ASSIGNMENTS)
def test_the_lectures_kit_catalog_holds_no_hidden_sentence(assignment, tmp_path):
    config = load_assignment(assignment, repo_root=ROOT)
    suite = ROOT / "autograde_tests" / assignment
    mo = write_course_catalog(tmp_path, config, suite / "test_public.py")
    assert mo == tmp_path / KIT_MO
    shipped = _kit_msgids(mo)
    hidden_only = _msgids(suite / "test_hidden.py") - _msgids(suite / "test_public.py")
    assert not shipped & hidden_only, f"hidden sentences in the kit: {shipped & hidden_only}"
    # The title travels (the kit's README and check show it).
    assert config.title in shipped
    # Nothing else than the public suite's and the toml's texts.
    allowed = _msgids(suite / "test_public.py") | {config.title} | {
        p.description for p in config.parts}
    assert shipped <= allowed


def test_an_english_course_ships_no_catalog(tmp_path):
    config = load_assignment(COURSE / "assignments" / "act" / "assignment.toml")
    suite = COURSE / "autograde_tests" / "act" / "test_public.py"
    assert write_course_catalog(tmp_path, config, suite) is None
    assert not (tmp_path / "locale").exists()


@pytest.fixture(scope="module")
def chinese_kit(tmp_path_factory) -> Path:
    """`act` in a zh_CN course whose catalog holds a public and a hidden sentence, released."""
    base = tmp_path_factory.mktemp("zh-kit")
    course = base / "course"
    shutil.copytree(COURSE, course)
    (course / "course.toml").write_text(
        'title = "Test course"\nlanguage = "zh_CN"\ntime_zone = "UTC"\n', encoding="utf-8")
    suites = course / "autograde_tests" / "act"
    public = (suites / "test_public.py").read_text(encoding="utf-8")
    public = HEADER + public.replace(
        '    x = np.array([[-2.0, 0.5], [3.0, -0.1]])\n',
        '    x = np.array([[-2.0, 0.5], [3.0, -0.1]])\n'
        '    try:\n        student.act.relu(x)\n    except Exception as error:\n'
        f'        raise AssertionError(_("{PUBLIC_PHRASE}", error=type(error).__name__))\n')
    (suites / "test_public.py").write_text(public, encoding="utf-8")
    hidden = (suites / "test_hidden.py").read_text(encoding="utf-8")
    hidden = HEADER + hidden + f'\n\ndef _unused():\n    return _("{HIDDEN_PHRASE}")\n'
    (suites / "test_hidden.py").write_text(hidden, encoding="utf-8")
    catalog = Catalog(locale="zh_CN", domain="course")
    catalog.add(PUBLIC_PHRASE, PUBLIC_CHINESE)
    catalog.add(HIDDEN_PHRASE, "隐藏：秘密输入上的 `sigmoid`")
    catalog.add("Two activations", "两个激活函数")
    po = course / "locale" / "zh_CN" / "LC_MESSAGES" / "course.po"
    po.parent.mkdir(parents=True)
    with po.open("wb") as file:
        write_po(file, catalog)
    config = load_assignment(course / "assignments" / "act" / "assignment.toml")
    return release(config, base / "release",
                   grade=lambda cfg, folder: grade_path(cfg, folder).grade).folder


def test_the_released_catalog_holds_the_public_sentence_not_the_hidden_one(chinese_kit):
    mo = chinese_kit / KIT_MO
    raw = mo.read_bytes()
    assert HIDDEN_PHRASE.encode() not in raw and "隐藏".encode() not in raw
    assert _kit_msgids(mo) == {PUBLIC_PHRASE, "Two activations"}
    assert not list(chinese_kit.rglob("*.po"))  # only the compiled catalog ships


def test_check_in_chinese_shows_the_public_suites_phrase_in_chinese(chinese_kit, tmp_path):
    folder = tmp_path / "作业"
    shutil.copytree(chinese_kit, folder)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("GRADER_LANG", None)  # the kit's own language (zh_CN) speaks
    checked = subprocess.run([sys.executable, "-m", "grader", "check"], cwd=folder, env=env,
                             capture_output=True, text=True, timeout=120)
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert PUBLIC_CHINESE.split("{")[0] in checked.stdout, checked.stdout
    assert "write its body" not in checked.stdout


def test_a_checks_differences_are_joined_by_the_locales_separators():
    """Clauses with "；" and list items with "、" in Chinese; "; " and ", " in English."""
    import numpy as np

    from grader.checks.arrays import assert_close
    from grader.checks.mlp_diagnoses import worst_entries
    from grader.i18n import join_items, speaking

    received, expected = np.array([[1.0, 9.0], [9.0, 4.0]]), np.array([[1.0, 2.0], [3.0, 4.0]])
    messages = {}
    for language in ("zh_CN", "en"):
        with speaking(language), pytest.raises(AssertionError) as failed:
            assert_close(received, expected, "`relu(x)`")
        messages[language] = str(failed.value)
    assert "得到 9，应为 2；[1, 0]：得到 9，应为 3" in messages["zh_CN"], messages["zh_CN"]
    assert "; [" not in messages["zh_CN"] and ", [" not in messages["zh_CN"]
    assert "got 9, expected 2; [1, 0]: got 9, expected 3" in messages["en"], messages["en"]
    with speaking("zh_CN"):
        worst = worst_entries(received, expected)
        items = join_items(["Dense", "Dropout"])
    assert worst.startswith("[0, 1]：得到 9，应为 2；[1, 0]：得到 9，应为 3；"), worst
    assert items == "Dense、Dropout"


@pytest.mark.parametrize(("hostile", "chinese"), [
    ("{0}/{id}", "含有字符 '/'；不允许使用控制字符和路径分隔符"),  # braces: a value, not a format
    ("s1\u202e99", "含有不可见字符 U+202E"),
    ("...", "只由点号组成"),
    ("9" * 65, "长 65 个字符；上限为 64 个"),
    ("   ", "学号为空"),
])
def test_a_refused_student_ids_reason_reads_in_chinese(hostile, chinese):
    from grader.i18n import speaking
    from grader.ids import InvalidId, validate_id

    with speaking("zh_CN"), pytest.raises(InvalidId) as refused:
        validate_id(hostile)
    assert chinese in str(refused.value), str(refused.value)
    with speaking("en"), pytest.raises(InvalidId) as refused:
        validate_id(hostile)
    assert not any("\u4e00" <= char <= "\u9fff" for char in str(refused.value))


def test_a_skipped_statements_position_and_the_feedback_summary_read_in_chinese(capsys,
                                                                               tmp_path):
    from grader.feedback import _summary
    from grader.grading.run import _position
    from grader.i18n import speaking

    with speaking("zh_CN"):
        assert _position({}, "act.py", 17) == "act.py 第 17 行"
    with speaking("en"):
        assert _position({}, "act.py", 17) == "act.py line 17"
    config = load_assignment(COURSE / "assignments" / "act" / "assignment.toml")
    with speaking("zh_CN"):
        code = _summary(config, tmp_path, tmp_path / "index.html", graded=3, total=5,
                        problems=[("s{1}", "results.json is not JSON")], empty=False)
    out = capsys.readouterr()
    assert code != 0
    assert "act：3 人已评分，2 人未提交" in out.out and "全班汇总：" in out.out
    assert "1 份报告有问题" in out.err and "s{1}：results.json is not JSON；" in out.err

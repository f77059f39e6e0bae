"""The translation catalogs CI holds to: complete, current, compiled; the language contract.

For every domain in `grader.i18n.DOMAIN_SOURCES` (and the course's ``course`` domain):
0 untranslated and 0 fuzzy messages in zh_CN, every message the sources mark present in the
catalog, placeholders kept, and the committed ``.mo`` equal to a fresh compile of the ``.po``.
A domain may have no ``.po`` yet only while its sources mark no message.
"""

from __future__ import annotations

import io
import os
import re
import string
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_file
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.util import pathmatch

from grader import i18n

ROOT = Path(__file__).resolve().parents[1]
LANGUAGE = "zh_CN"


def _domains() -> list[str]:
    names = list(i18n.DOMAIN_SOURCES)
    return names


def _folder(domain: str) -> Path:
    # The built-in course is this repository's top level.
    return i18n.catalog_folder(domain, course_root=ROOT)


def _po_path(domain: str) -> Path:
    return _folder(domain) / LANGUAGE / "LC_MESSAGES" / f"{domain}.po"


def _method_map():
    with open(ROOT / "babel.cfg", encoding="utf-8") as handle:
        return parse_mapping_cfg(handle)


def _source_files(domain: str) -> list[Path]:
    """The files under the domain's source paths (babel.cfg's patterns pick the extractor)."""
    files: list[Path] = []
    for entry in i18n.DOMAIN_SOURCES[domain]:
        path = ROOT / entry
        files += [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return files


def extracted(domain: str) -> dict[str, list[str]]:
    """Every msgid the domain's sources mark, with where it was found.

    Returns:
        ``{msgid: ["path:line", ...]}``; a plural's key is its singular.
    """
    method_map, options_map = _method_map()
    keywords = {**DEFAULT_KEYWORDS, **i18n.EXTRACT_KEYWORDS}
    found: dict[str, list[str]] = {}
    for path in _source_files(domain):
        relative = path.relative_to(ROOT).as_posix()
        pattern, method = next(((pattern, m) for pattern, m in method_map
                                if pathmatch(pattern, relative)), (None, None))
        if method is None:
            continue
        options = options_map.get(pattern, {})
        for line, message, _comments, _context in extract_from_file(
                method, str(path), keywords=keywords, options=options):
            msgid = message[0] if isinstance(message, tuple) else message
            if msgid:
                found.setdefault(msgid, []).append(f"{relative}:{line}")
    return found


def _catalog(domain: str):
    with open(_po_path(domain), "rb") as handle:
        return read_po(handle, locale=LANGUAGE)


_PERCENT_NAMED = re.compile(r"%\(([^)]*)\)[sdfr]")


def _placeholders(text: str) -> set[str]:
    """``{name}`` (Python code, str.format) and ``%(name)s`` (templates, jinja2 newstyle)."""
    named = {f"%({name})" for name in _PERCENT_NAMED.findall(text)}
    try:
        return named | {name for _lit, name, _spec, _conv in string.Formatter().parse(text)
                        if name is not None}
    except ValueError as error:
        return named | {f"<unparsable: {error}>"}


def test_babel_cfg_extracts_python_and_templates():
    method_map, options_map = _method_map()
    methods = dict(method_map)
    assert methods.get("**.py") == "python"
    assert methods.get("**.j2") == "jinja2"
    assert "jinja2.ext.i18n" in options_map["**.j2"]["extensions"]
    assert methods.get("**/assignment.toml") == "grader.i18n:extract_assignment_toml"


def test_assignment_toml_texts_are_extracted_and_translated_through_the_course(tmp_path):
    """A course's title and part descriptions: extracted from assignment.toml, shown in the
    course's language when its catalog has them, unchanged when it does not."""
    from babel.messages.catalog import Catalog
    from babel.messages.mofile import write_mo as write

    toml = tmp_path / "assignment.toml"
    toml.write_text('id = "a"\ntitle = "Two activations"\n[[parts]]\nname = "p"\n'
                    'description = "relu is max(0, x)"\n[[parts]]\nname = "q"\n',
                    encoding="utf-8")
    found = [m for _l, m, _c, _x in extract_from_file(
        "grader.i18n:extract_assignment_toml", str(toml))]
    assert found == ["Two activations", "relu is max(0, x)"]
    catalog = Catalog(locale="zh_CN")
    catalog.add("Two activations", "两个激活函数")
    folder = tmp_path / "locale" / "zh_CN" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    with open(folder / "course.mo", "wb") as handle:
        write(handle, catalog)
    with i18n.speaking("zh_CN"):
        assert i18n.course_text("Two activations", tmp_path) == "两个激活函数"
        assert i18n.course_text("relu is max(0, x)", tmp_path) == "relu is max(0, x)"
        assert i18n.course_text("Two activations", None) == "Two activations"
    assert i18n.course_text("Two activations", tmp_path) == "Two activations"  # English


def test_every_domain_source_path_exists():
    missing = [(domain, entry) for domain, entries in i18n.DOMAIN_SOURCES.items()
               for entry in entries if not (ROOT / entry).exists()]
    assert not missing, f"DOMAIN_SOURCES names paths that do not exist: {missing}"


@pytest.mark.parametrize("domain", _domains())
def test_catalog_exists_when_sources_mark_messages(domain):
    marked = extracted(domain)
    if not _po_path(domain).exists():
        # A domain whose engineer has not landed yet: allowed only while nothing is marked.
        assert not marked, (f"{domain}: {len(marked)} marked messages but no catalog at "
                            f"{_po_path(domain).relative_to(ROOT)}; run pybabel init (README)")


@pytest.mark.parametrize("domain", _domains())
def test_catalog_is_complete_and_current(domain):
    if not _po_path(domain).exists():
        pytest.skip(f"{domain}: no catalog and no marked message yet")
    catalog = _catalog(domain)
    messages = [m for m in catalog if m.id]
    untranslated = [m.id for m in messages
                    if not m.string or (isinstance(m.string, tuple) and not all(m.string))]
    fuzzy = [m.id for m in messages if m.fuzzy]
    assert not untranslated, f"{domain}: {len(untranslated)} untranslated: {untranslated[:5]}"
    assert not fuzzy, f"{domain}: {len(fuzzy)} fuzzy: {fuzzy[:5]}"
    in_catalog = {m.id[0] if isinstance(m.id, tuple) else m.id for m in messages}
    missing = {msgid: where for msgid, where in extracted(domain).items()
               if msgid not in in_catalog}
    assert not missing, (f"{domain}: {len(missing)} messages used in code are missing from "
                         f"the catalog (run the pybabel extract/update commands in README): "
                         f"{list(missing.items())[:5]}")


@pytest.mark.parametrize("domain", _domains())
def test_translations_keep_every_placeholder(domain):
    if not _po_path(domain).exists():
        pytest.skip(f"{domain}: no catalog yet")
    wrong = []
    for message in _catalog(domain):
        if not message.id or not message.string:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        wanted = set().union(*(_placeholders(i) for i in ids))
        for text in strings:
            # A translation may drop only the count (one Chinese form for every n).
            dropped = (_placeholders(ids[0]) - {"n", "%(num)", "%(count)"}) - _placeholders(text)
            if _placeholders(text) - wanted or dropped:
                wrong.append((ids[0], text))
    assert not wrong, f"{domain}: translations that change placeholders: {wrong[:5]}"


@pytest.mark.parametrize("domain", _domains())
def test_committed_mo_equals_fresh_compile(domain):
    po = _po_path(domain)
    if not po.exists():
        pytest.skip(f"{domain}: no catalog yet")
    mo = po.with_suffix(".mo")
    assert mo.exists(), f"{domain}: {mo.relative_to(ROOT)} missing; run pybabel compile"
    fresh = io.BytesIO()
    write_mo(fresh, _catalog(domain), use_fuzzy=False)
    assert mo.read_bytes() == fresh.getvalue(), (
        f"{domain}: the committed .mo is stale; run pybabel compile -d "
        f"{_folder(domain).relative_to(ROOT)} -D {domain} -l {LANGUAGE}")


def test_extraction_sees_python_plurals_and_template_messages(tmp_path):
    """The extractor this test relies on finds `_`, `_n` and {% trans %} (not vacuous)."""
    (tmp_path / "m.py").write_text(
        '_("expected {expected}", expected=1)\n_n("{n} file", "{n} files", 2)\n'
        'lazy("a lazy one")\n', encoding="utf-8")
    (tmp_path / "t.html.j2").write_text(
        "{% trans %}Your report{% endtrans %} {{ ngettext('%(num)d point', "
        "'%(num)d points', 3) }}", encoding="utf-8")
    keywords = {**DEFAULT_KEYWORDS, **i18n.EXTRACT_KEYWORDS}
    python = [m for _l, m, _c, _x in extract_from_file("python", str(tmp_path / "m.py"),
                                                        keywords=keywords)]
    assert python == ["expected {expected}", ("{n} file", "{n} files"), "a lazy one"]
    jinja = [m for _l, m, _c, _x in extract_from_file(
        "jinja2", str(tmp_path / "t.html.j2"), keywords=keywords,
        options={"extensions": "jinja2.ext.i18n"})]
    assert "Your report" in jinja and ("%(num)d point", "%(num)d points") in jinja


@pytest.mark.parametrize("spelling, expected", [
    ("zh_CN", "zh_CN"), ("zh-CN", "zh_CN"), ("ZH", "zh_CN"), (" zh-hans ", "zh_CN"),
    ("en", "en"), ("en_US", "en"), ("English", "en"),
])
def test_normalise_accepts_common_spellings(spelling, expected):
    assert i18n.normalise(spelling) == expected


@pytest.mark.parametrize("bad", ["fr", "", "zh_TW", "../../etc", None, 3, "en;rm -rf"])
def test_normalise_refuses_other_languages_with_a_clear_message(bad):
    with pytest.raises(i18n.LanguageError, match="nn-grader speaks zh_CN and en"):
        i18n.normalise(bad)


def test_set_language_reaches_a_child_process(monkeypatch):
    monkeypatch.delenv(i18n.ENV_VAR, raising=False)
    with i18n.speaking(None):  # puts this process's language back afterwards
        assert i18n.set_language("zh-CN") == "zh_CN"
        out = subprocess.run(
            [sys.executable, "-c", "from grader import i18n; print(i18n.current_language())"],
            capture_output=True, text=True, check=True, env=dict(os.environ), cwd=ROOT)
        assert out.stdout.strip() == "zh_CN"
    assert i18n.ENV_VAR not in os.environ


def test_a_hostile_grader_lang_falls_back_to_english(monkeypatch):
    monkeypatch.setenv(i18n.ENV_VAR, "../../../etc/passwd")
    out = subprocess.run(
        [sys.executable, "-c", "from grader import i18n; print(i18n.current_language())"],
        capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "en"


def test_format_number_and_datetime_follow_the_language():
    from datetime import datetime, timezone
    assert i18n.format_number(1234.5, "en", decimals=1) == "1,234.5"
    assert i18n.format_number(0.5, "zh_CN", decimals=2) == "0.50"
    moment = datetime(2026, 12, 1, 23, 50, tzinfo=timezone.utc)
    assert "2026" in i18n.format_datetime(moment, "zh_CN", zone="UTC")
    assert "年" in i18n.format_datetime(moment, "zh_CN", zone="UTC")
    assert "Dec" in i18n.format_datetime(moment, "en", zone="UTC")


# -- choosing the language: --lang, $GRADER_LANG, course.toml ---------------------------------

def _course(tmp_path: Path, language: str) -> Path:
    folder = tmp_path / "course"
    folder.mkdir()
    (folder / "course.toml").write_text(f'title = "t"\nlanguage = "{language}"\n',
                                        encoding="utf-8")
    return folder


def _language_seen(monkeypatch, argv: list[str]) -> tuple[int, str | None]:
    """Runs `grader ARGV` with `export` replaced by a probe; the language the verb ran in."""
    from grader import cli

    seen: list[str] = []
    monkeypatch.setattr(cli, "_export_main",
                        lambda args: seen.append(i18n.current_language()) or 0)
    status = cli.main(argv)
    return status, (seen[0] if seen else None)


@pytest.mark.parametrize("course_language, argv_lang, env, expected", [
    ("zh_CN", [], None, "zh_CN"),                          # the course's language
    ("en", [], None, "en"),
    ("zh_CN", ["--lang", "en"], None, "en"),               # --lang wins over the course
    ("en", ["--lang", "zh-cn"], "en", "zh_CN"),            # ... and over $GRADER_LANG
    ("en", [], "zh_CN", "zh_CN"),                          # $GRADER_LANG over the course
])
def test_the_language_of_a_run(tmp_path, monkeypatch, course_language, argv_lang, env,
                               expected):
    folder = _course(tmp_path, course_language)
    monkeypatch.delenv(i18n.ENV_VAR, raising=False)
    if env is not None:
        monkeypatch.setenv(i18n.ENV_VAR, env)
    before = i18n.current_language()
    for argv in (["--course", str(folder), *argv_lang, "export", "a", "--format", "csv"],
                 ["--course", str(folder), "export", "a", "--format", "csv", *argv_lang]):
        assert _language_seen(monkeypatch, argv) == (0, expected)
        # The run leaves no language behind for the next one in this process.
        assert i18n.current_language() == before
        assert os.environ.get(i18n.ENV_VAR) == env


@pytest.mark.parametrize("hostile", ["fr", "../../etc/passwd", "zh_CN; rm -rf ~", ""])
def test_a_bad_lang_is_a_usage_error_that_names_the_languages(tmp_path, monkeypatch, capsys,
                                                             hostile):
    folder = _course(tmp_path, "zh_CN")
    with pytest.raises(SystemExit) as exit_:
        _language_seen(monkeypatch, ["--course", str(folder), "--lang", hostile,
                                     "export", "a", "--format", "csv"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "--lang" in err and "nn-grader speaks zh_CN and en" in err


def test_a_course_with_an_unknown_language_is_refused(tmp_path, monkeypatch, capsys):
    folder = _course(tmp_path, "klingon")
    status, seen = _language_seen(monkeypatch, ["--course", str(folder), "export", "a",
                                                "--format", "csv"])
    assert (status, seen) == (2, None)
    assert "language" in capsys.readouterr().err


def test_every_reason_and_hint_reads_in_chinese():
    """The lazily marked texts of hints.py are looked up when shown, in the language then."""
    from grader.reports import hints
    from grader.reports.templates_env import status_label

    cjk = re.compile(r"[\u4e00-\u9fff]")
    with i18n.speaking("zh_CN"):
        for reason in hints.REASONS:
            assert cjk.search(hints.reason_label(reason)), reason
            assert cjk.search(hints.reason_text(reason)), reason
            assert cjk.search(hints.HINTS[reason]) is None  # stored in English ...
            outcome_hint = i18n.Domain("reports").gettext(hints.HINTS[reason])
            assert cjk.search(outcome_hint), reason  # ... and shown in Chinese
        assert status_label("partial") == "部分通过"
    assert hints.reason_label(hints.WRONG) == "wrong result"
    assert status_label("partial") == "partial"
    assert hints.reason_label("<script>") == "<script>"  # an unknown kind is shown as is


# -- the instructor's side in Chinese: every verb's help, argparse's own words, usage errors --

_USAGE_PREFIXES = ("用法：", "usage: ")
# A verb's or option's name column in argparse's help ("  --out OUT    ...", "    init  ...").
_NAME_COLUMN = re.compile(r"^ {2,4}\S.*?(?: {2,}|$)")
# An example after "示例：" / "Example:" runs on in ASCII until the next Chinese character.
_EXAMPLE = re.compile(r"(?:示例|Example)[：:][^\u4e00-\u9fff]*")
_CODE = re.compile(r"`[^`]*`")
_WIDE = re.compile(r"[^\x00-\x7f]")
# Option names, metavars, paths, ids, numbers, placeholders: tokens that are code, not prose.
_CODE_TOKEN = re.compile(r"""^(?:-.*|[A-Z0-9]+|.*[-_./=$<>:@\[\](){}'"\d].*)$""")
_ENGLISH_RUN = re.compile(r"[A-Za-z]+(?:,? [A-Za-z]+){2,}")


def english_leftovers(help_text: str) -> list[str]:
    """Runs of three or more English words in `help_text` outside the usage block, the
    option and verb names, examples, `code`, metavars, paths and identifiers.

    Args:
        help_text: What `grader ... --help` printed.

    Returns:
        The runs found, e.g. ``["the new course folder"]``; empty for a help all in Chinese.
    """
    kept, in_usage = [], False
    for line in help_text.splitlines():
        if line.startswith(_USAGE_PREFIXES):
            in_usage = True
        if in_usage:
            in_usage = bool(line.strip())
            continue
        kept.append(_NAME_COLUMN.sub("", line))
    # An example ends its paragraph (the description's) or at the next Chinese character.
    paragraphs = "\n".join(kept).split("\n\n")
    text = " | ".join(_CODE.sub(" | ", _EXAMPLE.sub(" | ", " ".join(paragraph.split())))
                      for paragraph in paragraphs)
    words = [word if not _CODE_TOKEN.match(word) else "|"
             for word in _WIDE.sub(" | ", text).replace(";", " | ").split()]
    return _ENGLISH_RUN.findall(" ".join(words))


def _every_help() -> list[list[str]]:
    """The argv before ``--help`` of the top level, every verb and every verb's verb."""
    from argparse import _SubParsersAction

    from grader.cli import build_parser

    found = [[]]

    def walk(parser, prefix):
        for action in parser._actions:  # noqa: SLF001 - argparse keeps its verbs here
            if isinstance(action, _SubParsersAction):
                for name, child in action.choices.items():
                    found.append([*prefix, name])
                    walk(child, [*prefix, name])

    walk(build_parser(), [])
    return found


def _help(capsys, argv: list[str]) -> str:
    from grader.cli import main

    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("verb", _every_help(), ids=lambda verb: " ".join(verb) or "grader")
def test_every_help_reads_in_chinese(verb, capsys, monkeypatch):
    """`grader [VERB] --help` in zh_CN: argparse's words and ours in Chinese, no English
    sentence left; the same help in English is caught by the same checker (not vacuous)."""
    monkeypatch.delenv(i18n.ENV_VAR, raising=False)
    zh = _help(capsys, ["--lang", "zh_CN", *verb, "--help"])
    assert zh.startswith("用法：grader"), zh[:80]
    assert "选项：" in zh and "显示此帮助信息并退出" in zh and "usage:" not in zh
    assert english_leftovers(zh) == [], zh
    en = _help(capsys, ["--lang", "en", *verb, "--help"])
    assert en.startswith("usage: grader") and "show this help message and exit" in en
    assert english_leftovers(en), en  # English prose is found where there is some
    assert i18n.current_language() == "en"  # the run left no language behind


def test_the_checker_keeps_code_and_examples_and_finds_prose():
    assert english_leftovers("用法：grader x [-h]\n  assignment submissions\n\n说明") == []
    assert english_leftovers("示例：grader autograde mlp_numpy subs/ --out graded\n") == []
    assert english_leftovers("  --out OUT   用 `grader user add` 设置 DB_HELP a/b.csv") == []
    assert english_leftovers("选项：the new course folder") == ["the new course folder"]
    assert english_leftovers("成绩册，grade every planted bug") == ["grade every planted bug"]


@pytest.mark.parametrize("argv, says", [
    (["autograde"], "错误：缺少以下必需的参数：assignment, submissions"),
    (["export", "a", "--format", "xlsx"], "无效的选项：'xlsx'（可选值："),
    (["autograde", "a", "s", "--workers", "two"], "无效的 int 值：'two'"),
    (["worker", "--concurrency", "0"], "应为不小于 1 的整数。得到的是：'0'"),
    (["worker", "--lease", "nan"], "应为 1 到 86400 之间的秒数"),
    (["autograde", "a", "s", "--submitted-at", "2026-12-01T23:59"], "没有 UTC 偏移"),
    (["autograde", "a", "s", "--worker", "2"],
     "无法识别的参数：--worker 2（你是不是想用 --workers？）"),
    (["autograd"], "无效的选项：'autograd'"),
    (["autograde", "a", "s", "--force=1"], "忽略了显式给出的参数 '1'"),
    (["autograde", "a", "s", "--out"], "需要一个参数"),
])
def test_a_usage_error_reads_in_chinese(argv, says, capsys):
    from grader.cli import main

    with pytest.raises(SystemExit) as done:
        main(["--lang", "zh_CN", *argv])
    err = capsys.readouterr().err
    assert done.value.code == 2
    assert err.startswith("用法：grader") and says in err, err
    assert english_leftovers(err.split("错误：", 1)[1]) == [], err


@pytest.mark.parametrize("hostile", ["{0}{name}%s%(x)s{__class__}", "%d {} }{ \x1b[2J"])
def test_a_hostile_value_in_a_chinese_usage_error_is_shown_literally(hostile, capsys):
    from grader.cli import main

    for argv in (["export", "a", "--format", hostile], ["worker", "--lease", hostile],
                 ["autograde", "a", "s", f"--{hostile}"]):
        with pytest.raises(SystemExit) as done:
            main(["--lang", "zh_CN", *argv])
        err = capsys.readouterr().err
        assert done.value.code == 2 and "错误：" in err
        assert repr(hostile)[1:-1] in err or hostile in err, err


def test_argparse_speaks_chinese_only_inside_the_cli(capsys):
    """The bridge is scoped: argparse's own `_` is back after a run, and any other parser in
    the process (pytest's) keeps argparse's English while the grader speaks Chinese."""
    import argparse
    import gettext

    from grader.cli import main

    with pytest.raises(SystemExit):
        main(["--lang", "zh_CN", "autograde", "--help"])
    capsys.readouterr()
    assert argparse._ is gettext.gettext and argparse.ngettext is gettext.ngettext
    with i18n.speaking("zh_CN"):
        other = argparse.ArgumentParser(prog="other").format_help()
    assert other.startswith("usage: other") and "show this help message" in other


@pytest.mark.parametrize("course_language, env, expected", [
    ("zh_CN", None, "用法："), ("en", None, "usage: "), ("zh_CN", "en", "usage: "),
    ("en", "zh_CN", "用法："), ("klingon", None, "usage: "),
])
def test_the_help_speaks_the_courses_language(tmp_path, monkeypatch, capsys, course_language,
                                              env, expected):
    """An instructor's `grader VERB --help` (and usage error) in the course's language, unless
    $GRADER_LANG or --lang says otherwise; a broken course leaves the help in English."""
    folder = _course(tmp_path, course_language)
    monkeypatch.delenv(i18n.ENV_VAR, raising=False)
    if env is not None:
        monkeypatch.setenv(i18n.ENV_VAR, env)
    monkeypatch.chdir(tmp_path)
    assert _help(capsys, ["--course", str(folder), "feedback", "--help"]).startswith(expected)
    monkeypatch.chdir(folder)  # found from the current folder
    assert _help(capsys, ["feedback", "--help"]).startswith(expected)
    assert _help(capsys, ["--lang", "en", "feedback", "--help"]).startswith("usage: ")


def test_chinese_help_is_wrapped_by_display_width():
    from grader.argparse_i18n import display_width, wrap

    text = ("把班级名单 CSV 中的学生加入成绩册（列为 id,name，或用 --columns 指定任意表头；编码为 "
            "UTF-8 或 GBK），这样从未提交的学生也会有报告。示例：grader roster roster.csv")
    lines = wrap(text, 40)
    assert all(display_width(line) <= 40 for line in lines), lines
    assert not [line for line in lines if line[0] in "，。；：、）"]
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")  # nothing lost
    assert "--columns" in " ".join(lines).split() and "roster.csv" in "".join(lines)
    assert wrap("plain English words", 11) == ["plain", "English", "words"]


# -- the service's instructor terminal messages -------------------------------------------

def test_account_errors_read_in_chinese_with_the_name_shown_literally(tmp_path):
    from sqlalchemy.orm import Session

    from grader.gradebook import open_gradebook
    from grader.service.auth import AccountError, add_staff, issue_codes

    hostile = "{0}%s"
    with open_gradebook(tmp_path / "g.db", create=True) as book, Session(book.engine) as session:
        with i18n.speaking("zh_CN"):
            with pytest.raises(AccountError, match="密码至少需要 10 个字符；得到的是 5 个"):
                add_staff(session, "prof", "instructor", "short")
            with pytest.raises(AccountError, match=r"--role 必须是以下之一：ta, instructor。"
                                                   r"得到的是：'\{0\}%s'"):
                add_staff(session, "prof", hostile, "a-long-password")
            with pytest.raises(AccountError, match="用户名须遵守 id 的规则"):
                add_staff(session, "../x", "ta", "a-long-password")
            add_staff(session, "prof", "ta", "a-long-password")
            with pytest.raises(AccountError, match="'prof' 已经是教学人员的用户名"):
                issue_codes(session, ["prof"])
        with pytest.raises(AccountError, match="the password must have at least 10"):
            add_staff(session, "prof2", "ta", "short")


@pytest.mark.parametrize("field, value, says", [
    ("kind", "{0}secret", "未知的任务类型 '{0}secret'；应为以下之一：public, hidden"),
    ("priority", "9", "任务的优先级必须是整数。得到的是：'9'"),
    ("submission_id", "/etc/{passwd}", "必须位于课程文件夹之内"),
    ("submission_id", "", "必须是相对于课程文件夹的路径"),
    ("student_id", "../../x", "无法把任务加入队列："),
])
def test_queue_errors_read_in_chinese(field, value, says):
    from grader.service.queue import QueueError, enqueue

    arguments = {"submission_id": "uploads/a.zip", "kind": "public", "priority": 0,
                 "assignment_id": "act", "student_id": "s1", field: value}
    with i18n.speaking("zh_CN"), pytest.raises(QueueError) as refused:
        enqueue(None, **arguments)  # refused before the session is used
    assert says in str(refused.value)


def test_the_serve_banner_reads_in_chinese(tmp_path, monkeypatch, capsys):
    import uvicorn

    from grader import scaffold
    from grader.service.app import serve_main

    monkeypatch.setattr(scaffold, "lecture_course", lambda: None)  # an empty course
    root = tmp_path / "c"
    scaffold.init_course(root)
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: None)  # no server: the banner
    monkeypatch.setenv("GRADER_COURSE", str(root))
    with i18n.speaking("zh_CN"):
        assert serve_main(port=8123, workers=0, db=str(tmp_path / "g.db")) == 0
    err = capsys.readouterr().err
    assert "运行在 http://127.0.0.1:8123/，有 0 个本地评分进程；按 Ctrl-C 停止" in err
    assert english_leftovers(err.split("grader serve：", 1)[1]) == [], err

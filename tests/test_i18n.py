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

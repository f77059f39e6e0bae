"""What people read, in their language: gettext catalogs compiled with Babel.

Messages are written in English in the code and looked up in a catalog per *domain*:

- ``cli``: the verbs' messages and help (`grader check`, `grader submit`, the instructor's
  verbs), the check output;
- ``reports``: the templates (reports, class summary, instructions) and the hints;
- ``checks``: what the grader's checks say (what was checked, expected, received) and the
  diagnoses in ``grader/checks``;
- ``service``: `grader serve`'s pages (``grader/templates/service``) and the messages of
  ``grader/service``;
- ``course``: a course's own texts (its hidden and public suites' messages), kept in the
  course's ``locale/`` folder, not in the tool's.

Catalogs live in ``grader/locale/<language>/LC_MESSAGES/<domain>.po`` (and ``.mo``, compiled
by ``pybabel compile``; both are package data). English is the source language: its
"translation" is the message itself.

The language is chosen by `set_language` (the CLI's ``--lang``, else the course's
``course.toml`` or the student kit's settings) and inherited by child processes through
``GRADER_LANG``, so a hidden suite run by pytest in another process speaks the same language.
The CLI's help and usage errors are built before the run's language is set: they speak the
language `grader.cli._help_language` reads from the command line first (``--lang``, else
``$GRADER_LANG``, else the released folder's, else the course's ``language``).

argparse's own words ("usage:", "options", "error:", "invalid choice", ...) are messages of
the ``cli`` catalog under argparse's msgids (`grader.argparse_i18n.MESSAGES`): a bridge,
`grader.argparse_i18n.argparse_speaks`, points ``argparse._``/``ngettext`` at that catalog
while the CLI builds its parser and parses, and puts argparse's back after, so another
argparse user in the process (pytest) keeps English. Decision: a bridge over shipping a
catalog for argparse's own ``messages`` domain, which would be process-wide and need
``gettext.bindtextdomain`` before argparse is first used.

A message is one whole sentence with named parameters, formatted after translation
(``_("expected {expected}, received {received}", expected=..., received=...)``): every
language gets the same facts, and no translated fragments are ever concatenated.
"""

from __future__ import annotations

import gettext as _gettext
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from functools import cache
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel import dates as babel_dates
from babel import numbers as babel_numbers
from babel.support import Translations

LANGUAGES = ("zh_CN", "en")
DEFAULT_LANGUAGE = "zh_CN"
DOMAINS = ("cli", "reports", "checks", "service")
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
ENV_VAR = "GRADER_LANG"
# The files each domain's messages are extracted from (relative to the repository root);
# the i18n test and the pybabel commands in README read this one mapping.
DOMAIN_SOURCES: dict[str, tuple[str, ...]] = {
    "cli": ("grader/kit", "grader/intake", "grader/runtime", "grader/grade_record.py",
            "grader/cli.py", "grader/autograde.py", "grader/release/build.py",
            "grader/release/kit.py", "grader/ids.py", "grader/feedback.py",
            "grader/grading/run.py", "grader/argparse_i18n.py", "grader/demo.py"),
    "reports": ("grader/reports", "grader/templates/report.html.j2",
                "grader/templates/report.md.j2", "grader/templates/class_summary.html.j2",
                "grader/templates/instructions.md.j2"),
    "checks": ("grader/checks", "grader/evaluator"),
    # `grader serve`'s pages and messages (students and staff read them)
    "service": ("grader/service", "grader/templates/service"),
    # the built-in course's suites and assignment.toml texts; catalog in locale/
    "course": ("autograde_tests", "assignments"),
}
COURSE_DOMAIN = "course"
# The keywords `pybabel extract -k _ -k _n:1,2 -k lazy` adds to Babel's defaults.
EXTRACT_KEYWORDS = {"_": None, "_n": (1, 2), "lazy": None}


def catalog_folder(domain: str, course_root: Path | str | None = None) -> Path:
    """The folder holding `domain`'s ``<language>/LC_MESSAGES/<domain>.po`` and ``.mo``.

    The ``course`` domain's catalogs live in the course's own ``locale/`` (`course_root`),
    every other domain's in the tool's ``grader/locale``.
    """
    if domain == COURSE_DOMAIN:
        if course_root is None:
            raise ValueError("the course domain's catalogs live in a course; pass course_root")
        return Path(course_root) / "locale"
    return LOCALE_DIR

_current: ContextVar[str | None] = ContextVar("grader_language", default=None)
# Spellings people type for the two languages, mapped to the gettext locale names.
_ALIASES = {
    "zh_cn": "zh_CN", "zh-cn": "zh_CN", "zh": "zh_CN", "zh_hans": "zh_CN",
    "zh-hans": "zh_CN", "zh-hans-cn": "zh_CN", "cn": "zh_CN", "chinese": "zh_CN",
    "en": "en", "en_us": "en", "en-us": "en", "en_gb": "en", "en-gb": "en", "english": "en",
}


class LanguageError(ValueError):
    """A language nn-grader does not speak, named with the ones it does."""


def normalise(language: str) -> str:
    """The gettext locale name for a language as a person writes it.

    Args:
        language: ``zh_CN``, ``zh-CN``, ``zh``, ``en``, ``en_US``, ... (case-insensitive).

    Returns:
        ``"zh_CN"`` or ``"en"``.

    Raises:
        LanguageError: Any other value.
    """
    key = language.strip().lower() if isinstance(language, str) else ""
    if key in _ALIASES:
        return _ALIASES[key]
    raise LanguageError(f"unknown language {language!r}; nn-grader speaks "
                        f"{' and '.join(LANGUAGES)} (e.g. --lang zh_CN)")


def set_language(language: str | None) -> str:
    """Makes `language` this process's language and its children's (``GRADER_LANG``).

    Args:
        language: A language as `normalise` accepts it; ``None`` keeps the current one.

    Returns:
        The language now in effect.
    """
    if language is None:
        return current_language()
    chosen = normalise(language)
    _current.set(chosen)
    os.environ[ENV_VAR] = chosen
    return chosen


@contextmanager
def speaking(language: str | None) -> Iterator[str]:
    """`set_language` inside the block; the previous language (and ``GRADER_LANG``) after.

    A CLI run in a test or a long-lived process leaves no language behind for the next one.
    """
    saved = os.environ.get(ENV_VAR)
    token = _current.set(_current.get())
    try:
        yield set_language(language)
    finally:
        _current.reset(token)
        if saved is None:
            os.environ.pop(ENV_VAR, None)
        else:
            os.environ[ENV_VAR] = saved


@contextmanager
def in_language(language: str) -> Iterator[str]:
    """`language` in this context only (``GRADER_LANG`` untouched): one request of a
    long-lived service, which must not change its other requests' or children's language."""
    token = _current.set(normalise(language))
    try:
        yield _current.get() or language
    finally:
        _current.reset(token)


def current_language() -> str:
    """The language in effect: `set_language`'s, else ``GRADER_LANG``, else English.

    English is the default of a process that was told nothing (a library call, a test);
    a course's default (``zh_CN``) reaches the process through `set_language`.
    """
    chosen = _current.get()
    if chosen is not None:
        return chosen
    try:
        return normalise(os.environ.get(ENV_VAR, "en"))
    except LanguageError:
        return "en"


@cache
def translations(domain: str, language: str,
                 locale_dir: str | None = None) -> _gettext.NullTranslations:
    """The compiled catalog of `domain` in `language` (identity for English or none found).

    Args:
        domain: One of `DOMAINS`, or ``"course"`` with the course's `locale_dir`.
        language: ``"zh_CN"`` or ``"en"``.
        locale_dir: The folder holding ``<language>/LC_MESSAGES/<domain>.mo``; default the
            tool's ``grader/locale``.
    """
    if language == "en":
        return _gettext.NullTranslations()
    folder = locale_dir or str(LOCALE_DIR)
    found = Translations.load(folder, [language], domain)
    return found


class Domain:
    """The ``_`` and ``_n`` of one domain, looked up in the language in effect at call time.

    Usage at module level::

        _, _n = Domain("checks").functions()
    """

    def __init__(self, name: str, locale_dir: Path | str | None = None) -> None:
        self.name = name
        self.locale_dir = str(locale_dir) if locale_dir is not None else None

    def _catalog(self) -> _gettext.NullTranslations:
        return translations(self.name, current_language(), self.locale_dir)

    def gettext(self, message: str, /, **params: object) -> str:
        """`message` translated, then formatted with `params` (``str.format`` names)."""
        text = self._catalog().gettext(message)
        return text.format(**params) if params else text

    def ngettext(self, singular: str, plural: str, n: int, /, **params: object) -> str:
        """The form of `singular`/`plural` for `n`, translated, formatted with `n` and `params`."""
        text = self._catalog().ngettext(singular, plural, n)
        return text.format(n=n, **params)

    def jinja_callables(self) -> tuple[Callable[[str], str], Callable[[str, str, int], str]]:
        """gettext and ngettext without formatting, for jinja2's ``install_gettext_callables``
        (newstyle: jinja2 formats ``%(name)s`` itself, escaping values in HTML)."""
        return (lambda message: self._catalog().gettext(message),
                lambda singular, plural, n: self._catalog().ngettext(singular, plural, n))

    def functions(self) -> tuple[Callable[..., str], Callable[..., str]]:
        """``(_, _n)`` for a module: the names Babel's extractor looks for."""
        return self.gettext, self.ngettext


def course_domain(course_root: Path | str) -> Domain:
    """The ``course`` domain of the course at `course_root` (catalog in its ``locale/``).

    A suite writes ``_, _n = course_domain(Path(__file__).parents[2]).functions()``; a course
    with no catalog (or English) reads its English messages unchanged.
    """
    return Domain("course", locale_dir=Path(course_root) / "locale")


def course_text(text: str, course_root: Path | str | None) -> str:
    """A course's own text from its ``assignment.toml`` (title, part descriptions) in the
    language in effect: looked up in the course's catalog, unchanged when it has none."""
    if not text or course_root is None:
        return text
    return course_domain(course_root).gettext(text)


def extract_assignment_toml(fileobj, keywords, comment_tags, options):  # noqa: ARG001
    """Babel extractor (babel.cfg ``[extractors]``) for an ``assignment.toml``: its ``title``
    and every part's ``description``, the texts `course_text` translates.

    Yields:
        ``(lineno, funcname, message, comments)`` as Babel expects.
    """
    import tomllib

    text = fileobj.read().decode("utf-8")
    table = tomllib.loads(text)
    found = [table.get("title")] + [part.get("description") for part in table.get("parts", [])
                                    if isinstance(part, dict)]
    lines = text.splitlines()
    for message in found:
        if isinstance(message, str) and message:
            lineno = next((n for n, line in enumerate(lines, 1) if message in line), 0)
            yield lineno, None, message, []


def lazy(message: str) -> str:
    """Marks a message for extraction where it is defined and translated later (``N_``)."""
    return message


def babel_locale(language: str | None = None) -> Locale:
    """Babel's locale for `language` (default: the language in effect)."""
    name = normalise(language) if language else current_language()
    try:
        return Locale.parse(name)
    except (UnknownLocaleError, ValueError):
        return Locale.parse("en")


# Between clauses of one sentence ("[0]: got 1, expected 2; [3]: ..."): CLDR has no such
# list pattern, and a Chinese sentence takes the full-width semicolon.
_CLAUSE_SEPARATORS = {"zh": "；"}


def join_items(items: Iterable[str], language: str | None = None) -> str:
    """Items of a list inside a sentence with the locale's separator (CLDR's list pattern,
    Babel: ``a, b, c`` / ``a、b、c``); no "and", so a list of code names reads as code."""
    middle = babel_locale(language).list_patterns["standard"]["middle"]
    separator = middle.replace("{0}", "").replace("{1}", "")
    return separator.join(items)


def join_clauses(items: Iterable[str], language: str | None = None) -> str:
    """Clauses of one sentence, e.g. a check's differences: ``a; b`` / ``a；b``."""
    return _CLAUSE_SEPARATORS.get(babel_locale(language).language, "; ").join(items)


def format_number(value: float, language: str | None = None, *,
                  decimals: int | None = None, max_decimals: int | None = None) -> str:
    """A number as a reader of `language` writes it (grouping, decimal sign).

    Args:
        decimals: Exactly this many decimals (``0.50``).
        max_decimals: At most this many, trailing zeros dropped (default: Babel's 3).
    """
    locale = babel_locale(language)
    if decimals is None and max_decimals is None:
        return babel_numbers.format_decimal(value, locale=locale)
    if decimals is not None:
        pattern = "#,##0" + ("." + "0" * decimals if decimals > 0 else "")
    else:
        pattern = "#,##0" + ("." + "#" * max_decimals if max_decimals else "")
    return babel_numbers.format_decimal(value, format=pattern, locale=locale)


def format_percent(fraction: float, language: str | None = None) -> str:
    """A fraction (0.8) as a percentage a reader of `language` writes (``80%``)."""
    return babel_numbers.format_percent(fraction, locale=babel_locale(language))


def format_datetime(moment: datetime, language: str | None = None, *,
                    zone: str | None = None, length: str = "medium") -> str:
    """A date and time in the reader's language, in `zone` if given.

    Args:
        length: Babel's ``"short"`` or ``"medium"`` (no zone), or ``"deadline"``: the ISO date,
            the time to the minute and the zone's name in the reader's language
            (``2026-12-01 23:50 中国标准时间``), unambiguous wherever the reader is.
    """
    pattern = DEADLINE_PATTERN if length == "deadline" else length
    return babel_dates.format_datetime(moment, format=pattern, tzinfo=zone,
                                       locale=babel_locale(language))


DEADLINE_PATTERN = "yyyy-MM-dd HH:mm zzzz"

"""The jinja2 environments every report is rendered in, and the filters their templates use.

Two environments share one template folder (``grader/templates``, package data): HTML,
autoescaped, and Markdown, where every ``{{ }}`` goes through `markdown_text` so that
student text stays inert text. Both only format values; what a report shows is decided by
`grader.reports.student` and `grader.reports.class_summary`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup, escape

from grader import i18n
from grader.ids import printable

_, _n = i18n.Domain("reports").functions()

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
DEFAULT_LANGUAGE = "en"
# A BCP 47 tag as a course writes it (en, zh-CN, zh-Hans-CN): letters and digits in
# hyphenated subtags; anything else is refused before it reaches `<html lang>`.
_LANGUAGE_RE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}")
_CODE_RE = re.compile(r"`([^`\n]+)`")
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-!|<>~&])")


def html_language(language: str | None) -> str:
    """The value of ``<html lang>`` for a course's language (``"en"`` when none is given).

    course.toml names a gettext locale (``zh_CN``); HTML wants a BCP 47 tag (``zh-CN``).

    Raises:
        ValueError: `language` is not a language tag such as ``en``, ``zh-CN`` or ``zh_CN``.
    """
    if language is None or language == "":
        return DEFAULT_LANGUAGE
    tag = language.replace("_", "-") if isinstance(language, str) else ""
    if not _LANGUAGE_RE.fullmatch(tag):
        raise ValueError(f"a report's language must be a language tag such as 'en' or "
                         f"'zh-CN' (course.toml: language); received {language!r}")
    return tag


@contextmanager
def rendering_language(language: str | None) -> Iterator[str]:
    """Renders the block in `language` (a course's ``zh_CN``/``en``, or the tag ``zh-CN``),
    else in the language in effect; yields the ``<html lang>`` tag.

    Raises:
        ValueError: `language` is not a language tag, or one nn-grader does not speak.
    """
    html_language(language)  # a value that is no tag at all: the message that says so
    chosen = i18n.normalise(language) if language else i18n.current_language()
    with i18n.speaking(chosen):
        yield html_language(chosen)


def _codespans(text: str) -> Markup:
    """HTML-escapes a message and shows its `backticked` names as code."""
    escaped = str(escape(text))
    return Markup(_CODE_RE.sub(r"<code>\1</code>", escaped))


def _fence(text: str) -> str:
    """A Markdown code fence longer than any run of backticks in `text`."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def points(value: float) -> str:
    """Points as a student reads them, in the language in effect: ``7``, ``3.25``."""
    return i18n.format_number(round(value, 2) + 0.0)  # + 0.0: never "-0"


def when(value: datetime | None) -> str:
    """A date and time with its zone in the language in effect, or "unknown"."""
    if value is None:
        return _("unknown")
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return i18n.format_datetime(value, length="deadline")


def percent(value: float) -> str:
    """A percentage already scaled to 0..100 (``80`` -> ``80%``), in the language in effect."""
    return i18n.format_percent(value / 100.0)


# A test's or part's status as a report names it (the English word is the CSS class).
STATUS_LABEL = {"passed": i18n.lazy("passed"), "partial": i18n.lazy("partial"),
                "failed": i18n.lazy("failed"), "error": i18n.lazy("error"),
                "skipped": i18n.lazy("skipped")}


def status_label(status: str) -> str:
    """``passed``/``partial``/``failed``/... in the language in effect."""
    return _(STATUS_LABEL[status]) if status in STATUS_LABEL else status


def _reason_label(reason: str | None) -> str:
    from grader.reports.hints import reason_label

    return reason_label(reason)


@jinja2.pass_context
def _course_text(context: Any, text: str) -> str:
    """``{{ config.title|course }}``: a course's own text in the language in effect, from the
    catalog in the course's ``locale/`` (`grader.i18n.course_text`)."""
    config = context.get("config")
    return i18n.course_text(text, getattr(config, "repo_root", None))


class Verbatim(str):
    """Markdown the template built on purpose (a code fence, a number): never escaped."""


def markdown_text(value: Any) -> str:
    """Any value as inert Markdown text: what ``{{ }}`` prints in a Markdown template.

    Student text (ids, names, messages, file names) must not become HTML, a link, an
    image, a heading or a table cell border in an LMS that renders report.md: every
    Markdown (CommonMark) punctuation character is backslash-escaped, ``&`` included (no
    entities), and line breaks become spaces (no new block). `Verbatim` values pass.
    """
    if isinstance(value, Verbatim):
        return value
    text = printable(" ".join(str(value).splitlines()), limit=1_000_000)
    return _MD_SPECIAL.sub(r"\\\1", text)


class _MarkdownMessage(str):
    """A translated template sentence in the Markdown environment: jinja2 formats it with
    ``%``, which here escapes every value (as `markdown_text`) but the sentence itself."""

    def __mod__(self, values: Any) -> Verbatim:
        if isinstance(values, dict):
            values = {key: markdown_text(value) for key, value in values.items()}
        return Verbatim(str.__mod__(self, values))


def _visible_lines(value: Any) -> Verbatim:
    """A fenced block's contents: literal there, but with terminal escapes shown as ``\\xNN``
    (report.md is also read with ``cat``)."""
    return Verbatim("\n".join(printable(line.expandtabs(4), limit=1_000_000)
                               for line in str(value).split("\n")))


def _markdown_code(value: Any) -> Verbatim:
    """A Markdown code span of any text: a fence longer than its backtick runs, one line."""
    text = printable(" ".join(str(value).splitlines()), limit=1_000_000)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)  # a span closes only on a run of exactly its length
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return Verbatim(f"{fence}{pad}{text}{pad}{fence}")


def _environment(*, markdown: bool = False,
                 dirs: tuple[str, ...] = (str(TEMPLATES),)) -> jinja2.Environment:
    """The HTML environment (autoescaped), or the Markdown one (`markdown_text` on output)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(list(dirs)),
        extensions=["jinja2.ext.i18n"],
        autoescape=False if markdown else (lambda name: bool(name) and ".html" in name),
        finalize=markdown_text if markdown else None,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["code"] = _codespans
    env.filters["pts"] = points
    env.filters["when"] = when
    env.filters["fence"] = _fence
    env.filters["pct"] = percent
    env.filters["course"] = _course_text
    env.filters["num"] = lambda v, decimals=None: i18n.format_number(v, decimals=decimals)
    # Looked up at render time, so one environment serves every language (newstyle:
    # `%(name)s` formatted by jinja2, which escapes the values in HTML).
    env.globals["status_label"] = status_label
    env.globals["reason_label"] = _reason_label
    plain, plural = i18n.Domain("reports").jinja_callables()
    if markdown:  # our sentence is Markdown on purpose; the values in it are escaped
        env.install_gettext_callables(lambda m: _MarkdownMessage(plain(m)),
                                      lambda s, p, n: _MarkdownMessage(plural(s, p, n)),
                                      newstyle=True)
    else:
        env.install_gettext_callables(plain, plural, newstyle=True)
    if markdown:  # what these filters print is built here from numbers, never student text
        for name in ("pts", "when", "fence", "pct", "num"):
            env.filters[name] = (lambda f: lambda *a, **k: Verbatim(f(*a, **k)))(env.filters[name])
        env.filters["verbatim"] = _visible_lines  # a fenced block's contents
        env.filters["mdcode"] = _markdown_code
    return env


def add_i18n(env: jinja2.Environment) -> jinja2.Environment:
    """jinja2's i18n extension (the ``reports`` catalog, looked up at render time) and the
    number and date filters (``pts``, ``num``, ``when``) on an environment of plain text,
    such as the one `grader release` renders the instructions in."""
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_callables(*i18n.Domain("reports").jinja_callables(), newstyle=True)
    env.filters.update(pts=points, when=when, pct=percent, course=_course_text,
                       num=lambda v, decimals=None: i18n.format_number(v, decimals=decimals))
    return env


_ENVS: dict[tuple[bool, tuple[str, ...]], jinja2.Environment] = {}


def environment(*, markdown: bool = False) -> jinja2.Environment:
    """The templates' environment: HTML (autoescaped) or Markdown (escaped by `markdown_text`).

    The current course's ``templates/`` replaces the tool's templates file by file
    (`grader.course.template_dirs`)."""
    from grader.course import template_dirs

    key = (markdown, tuple(str(path) for path in template_dirs()))
    if key not in _ENVS:
        _ENVS[key] = _environment(markdown=markdown, dirs=key[1])
    return _ENVS[key]

"""The jinja2 environments every report is rendered in, and the filters their templates use.

Two environments share one template folder (``grader/templates``, package data): HTML,
autoescaped, and Markdown, where every ``{{ }}`` goes through `markdown_text` so that
student text stays inert text. Both only format values; what a report shows is decided by
`grader.reports.student` and `grader.reports.class_summary`.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup, escape

from grader.ids import printable

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


def _codespans(text: str) -> Markup:
    """HTML-escapes a message and shows its `backticked` names as code."""
    escaped = str(escape(text))
    return Markup(_CODE_RE.sub(r"<code>\1</code>", escaped))


def _fence(text: str) -> str:
    """A Markdown code fence longer than any run of backticks in `text`."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def points(value: float) -> str:
    """Points as a student reads them: ``7``, ``3.25``."""
    return f"{round(value, 2):g}"


def when(value: datetime | None) -> str:
    """A date and time with its zone, or "unknown"."""
    if value is None:
        return "unknown"
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.strftime("%Y-%m-%d %H:%M %Z").strip()


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
    env.filters["pct"] = lambda v: f"{v:.0f}%"
    if markdown:  # what these filters print is built here from numbers, never student text
        for name in ("pts", "when", "fence", "pct"):
            env.filters[name] = (lambda f: lambda *a, **k: Verbatim(f(*a, **k)))(env.filters[name])
        env.filters["verbatim"] = _visible_lines  # a fenced block's contents
        env.filters["mdcode"] = _markdown_code
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

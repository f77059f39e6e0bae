"""argparse's own words ("usage:", "options", "error:", "invalid choice", ...) in our language.

argparse looks up its words with ``argparse._`` and ``argparse.ngettext`` (the standard
library's gettext on its default domain, which has no Chinese). `argparse_speaks` swaps
both for lookups in the ``cli`` catalog while the CLI builds its parser and parses, and
puts argparse's own back afterwards.

Decisions:

- The msgids are argparse's own spelling (Python 3.11 to 3.13), listed in `MESSAGES` so that
  `pybabel extract` keeps them in ``cli.po``; a word a future Python spells differently
  stays English (untranslated, never wrong), and every other word still reads in Chinese.
- Scoped to the CLI's parse, not a patch of the stdlib for the process: other argparse
  users in the same process (pytest, a library) keep argparse's English.
- Looked up in the language in effect at each call (`grader.i18n.current_language`), so the
  same bridge serves ``--lang``, ``$GRADER_LANG``, a kit's and a course's language.
- `HelpFormatter` wraps Chinese help by display width (a Chinese character takes two
  columns) and may break between Chinese characters, never before ，。；： or inside a
  word; a heading in Chinese ends with ``：``. Text without a wide character is wrapped by
  argparse's own formatter, unchanged.
"""

from __future__ import annotations

import argparse
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager

from grader import i18n
from grader.i18n import lazy

DOMAIN = "cli"


def _n(singular: str, plural: str) -> tuple[str, str]:
    """Marks a plural pair of argparse's for extraction (`pybabel -k _n:1,2`)."""
    return singular, plural


# Every word argparse can show a person using `grader` (help, usage, errors).
MESSAGES = (
    lazy("usage: "),
    lazy("positional arguments"),
    lazy("options"),
    lazy("show this help message and exit"),
    lazy("%(prog)s: error: %(message)s\n"),
    lazy("argument %(argument_name)s: %(message)s"),
    lazy("the following arguments are required: %s"),
    lazy("one of the arguments %s is required"),
    lazy("invalid choice: %(value)r (choose from %(choices)s)"),
    lazy("invalid %(type)s value: %(value)r"),
    lazy("unrecognized arguments: %s"),
    lazy("unknown parser %(parser_name)r (choices: %(choices)s)"),
    lazy("expected one argument"),
    lazy("expected at most one argument"),
    lazy("expected at least one argument"),
    lazy("ignored explicit argument %r"),
    lazy("ambiguous option: %(option)s could match %(matches)s"),
    lazy("unexpected option string: %s"),
    lazy("not allowed with argument %s"),
    lazy("can't open '%(filename)s': %(error)s"),
)
PLURALS = (_n("expected %s argument", "expected %s arguments"),)


def gettext(message: str) -> str:
    """argparse's `_`: `message` from the cli catalog in the language in effect.

    Args:
        message: One of argparse's msgids (or None, which argparse passes for a missing
            subparsers description).

    Returns:
        The translation, or `message` itself where the catalog has none.
    """
    if not message:
        return message
    return i18n.translations(DOMAIN, i18n.current_language()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """argparse's `ngettext`: the form for `n`, from the cli catalog."""
    return i18n.translations(DOMAIN, i18n.current_language()).ngettext(singular, plural, n)


@contextmanager
def argparse_speaks() -> Iterator[None]:
    """Inside the block argparse's words come from the cli catalog; outside, its own."""
    saved = argparse._, argparse.ngettext  # noqa: SLF001 - argparse's documented hook names
    argparse._, argparse.ngettext = gettext, ngettext  # noqa: SLF001
    try:
        yield
    finally:
        argparse._, argparse.ngettext = saved  # noqa: SLF001


# Marks a Chinese heading, so that `format_help` swaps argparse's ":" for "：" (never shown).
_HEADING_MARK = "\u2063"
# Full-width punctuation that never starts a line, and that never ends one.
_NO_BREAK_BEFORE = frozenset("，。；：、）」』》！？")
_NO_BREAK_AFTER = frozenset("（「『《")


def _wide(char: str) -> bool:
    return unicodedata.east_asian_width(char) in ("W", "F")


def display_width(text: str) -> int:
    """Terminal columns `text` takes: two for a wide (Chinese) character, one otherwise."""
    return sum(2 if _wide(char) else 1 for char in text)


def wrap(text: str, width: int) -> list[str]:
    """`text` in lines of at most `width` columns, breaking at spaces and between Chinese
    characters (a word or a punctuation rule longer than a line overflows it)."""
    units: list[tuple[str, bool, bool]] = []  # (text, space before, wide)
    space = False
    for char in " ".join(text.split()):
        if char == " ":
            space = True
            continue
        wide = _wide(char)
        if units and not space and not wide and not units[-1][2]:
            units[-1] = (units[-1][0] + char, units[-1][1], False)  # the word goes on
        else:
            units.append((char, space, wide))
        space = False
    lines: list[str] = []
    line = ""
    for index, (chunk, spaced, wide) in enumerate(units):
        before = units[index - 1] if index else None
        breakable = before is not None and (spaced or (
            (wide or before[2]) and chunk[0] not in _NO_BREAK_BEFORE
            and before[0][-1] not in _NO_BREAK_AFTER))
        joined = line + (" " if spaced and line else "") + chunk
        if line and breakable and display_width(joined) > width:
            lines.append(line)
            line = chunk
        else:
            line = joined
    return [*lines, line] if line else lines


class HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, with Chinese wrapped by display width and headed with ``：``."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        if not any(_wide(char) for char in text):
            return super()._split_lines(text, width)
        return wrap(text, width)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if not any(_wide(char) for char in text):
            return super()._fill_text(text, width, indent)
        return "\n".join(indent + line for line in wrap(text, width))

    def start_section(self, heading: str | None) -> None:
        if heading and any(_wide(char) for char in heading):
            # argparse appends ":" itself; a Chinese heading takes the full-width colon
            heading += _HEADING_MARK
        super().start_section(heading)

    def format_help(self) -> str:
        return super().format_help().replace(_HEADING_MARK + ":", "：")

    def _format_usage(self, usage, actions, groups, prefix):  # noqa: ANN001 - argparse's own
        text = super()._format_usage(usage, actions, groups, prefix)
        shown = gettext("usage: ") if prefix is None else prefix
        extra = display_width(shown) - len(shown)
        if not extra:
            return text
        # argparse indents the usage's later lines by the prefix's length in characters
        first, *rest = text.split("\n")
        return "\n".join([first, *((" " * extra + line) if line.strip() else line
                                   for line in rest)])

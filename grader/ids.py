"""Student ids: what a valid one is, and the one way an id becomes a file name.

A student id reaches the grader from outside (an LMS download's names, a roster, a
command line, a manifest) and is hostile input: it may hold ``..``, slashes, NUL
bytes, terminal escapes or a megabyte of text. :func:`validate_id` says whether an id
may be recorded; :func:`file_name` is the only function any writer (results.json,
reports, exports, bundles, workspaces) uses to turn an id into a path component.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

from grader.i18n import Domain

# A refused id's reason is read inside the `--student-id` message, in the run's language.
_, _n = Domain("cli").functions()

MAX_ID_LENGTH = 64
"""Longest accepted id (characters); university ids and LMS user ids are far shorter."""

_FORBIDDEN_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f/\\]")
_SAFE_CHARS = re.compile(r"[^\w.@+-]", re.ASCII)
_INVISIBLE_CATEGORIES = frozenset(("Cf", "Cs", "Co", "Cn", "Zl", "Zp"))
"""Unicode categories refused in ids: format (bidi overrides, zero-width), surrogates,
private use, unassigned, line and paragraph separators."""
_WINDOWS_RESERVED = frozenset(
    {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)),
     *(f"lpt{i}" for i in range(1, 10))})


class InvalidId(ValueError):
    """A student id that cannot be recorded; the message says why and what is allowed."""


def validate_id(student_id: object) -> str:
    """Check that ``student_id`` may be recorded, and return it stripped of outer spaces.

    Args:
        student_id: The id as received.

    Returns:
        The id without leading or trailing white space.

    Raises:
        InvalidId: Not a string, empty, longer than `MAX_ID_LENGTH`, holding control
            characters (NUL, escapes, newlines), invisible ones (bidi overrides,
            zero-width spaces, line separators), path separators, or only dots.
    """
    if not isinstance(student_id, str):
        raise InvalidId(_("a student id must be text; received {received}",
                          received=type(student_id).__name__))
    text = student_id.strip()
    shown = printable(text, limit=40)
    if not text:
        raise InvalidId(_("the student id is empty"))
    if len(text) > MAX_ID_LENGTH:
        raise InvalidId(_("the student id {id} is {length} characters long; the limit is "
                          "{limit}", id=repr(shown), length=len(text), limit=MAX_ID_LENGTH))
    bad = _FORBIDDEN_CHARS.search(text)
    if bad:
        raise InvalidId(_("the student id {id} holds the character {char}; control "
                          "characters and path separators (/ and \\) are not allowed",
                          id=repr(shown), char=repr(bad.group())))
    invisible = next((char for char in text
                      if unicodedata.category(char) in _INVISIBLE_CATEGORIES), None)
    if invisible is not None:
        # a right-to-left override shows "s1\u202e99" as "s199" in a report; a zero-width
        # space makes two ids look the same in the gradebook
        raise InvalidId(_("the student id {id} holds the invisible character {code} ({name}); "
                          "format characters, line separators and unassigned code points are "
                          "not allowed", id=repr(shown), code=f"U+{ord(invisible):04X}",
                          name=unicodedata.name(invisible, "unnamed")))
    if set(text) == {"."}:
        raise InvalidId(_("the student id {id} is only dots", id=repr(shown)))
    return text


def file_name(student_id: str) -> str:
    """The file or folder name for ``student_id``: one path component, safe on every OS.

    Letters, digits, ``_ . @ + -`` are kept (ASCII only); anything else becomes ``_``.
    When that changed the id, or the result could be mistaken for something else (a
    leading dot, a Windows device name), a short hash of the id is appended so that
    two different ids never share a name.

    Args:
        student_id: Any id (validated or not).

    Returns:
        A non-empty name of at most 80 characters, without separators, leading dots or
        leading dashes.

    Examples:
        >>> file_name("2023123456")
        '2023123456'
        >>> file_name("../../etc")
        'etc-74ccf3c5'
    """
    normal = unicodedata.normalize("NFKC", student_id)
    # no leading dash: in a folder of results, `tar czf class.tgz *` would read a student
    # named "--remove-files" as an option (the wildcard injection)
    safe = _SAFE_CHARS.sub("_", normal).lstrip("._-").rstrip("._")[:MAX_ID_LENGTH]
    if safe == student_id and safe.lower().split(".")[0] not in _WINDOWS_RESERVED:
        return safe
    digest = hashlib.sha256(student_id.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{safe}-{digest}" if safe else f"id-{digest}"


def printable(text: str, *, limit: int = 200) -> str:
    """``text`` with control characters (terminal escapes included) shown as ``\\xNN``.

    For anything written to a terminal or a log: a student-controlled string must not
    move the cursor, recolour or clear the instructor's screen.

    Args:
        text: Any text.
        limit: Longest result; longer text ends with ``...``.
    """
    shown = "".join(
        char if char.isprintable() or char == " " else f"\\x{ord(char):02x}"
        if ord(char) < 256 else f"\\u{ord(char):04x}" for char in text)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."

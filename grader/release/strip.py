"""Strip nbgrader solution markers out of a reference `.py` file.

Markers follow nbgrader (`nbgrader/preprocessors/clearsolutions.py` and
`clearhiddentests.py`): a line is a marker when it *contains* the delimiter
(`BEGIN SOLUTION`, `END SOLUTION`, `BEGIN HIDDEN TESTS`, `END HIDDEN TESTS`) anywhere, so
`### BEGIN SOLUTION` and `# BEGIN SOLUTION` both count, as they do in nbgrader. Unlike
nbgrader, which silently drops a stray END line, every malformed marker is an error here.

- A solution region (the marker lines included) becomes one line at the BEGIN marker's
  indentation: `raise NotImplementedError("Write the body of FullConnectionLayer.backward")`.
- A hidden-tests region is removed with its marker lines.
- Every other byte stays as it was (docstrings, signatures, comments, line endings).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "BEGIN_HIDDEN",
    "BEGIN_SOLUTION",
    "END_HIDDEN",
    "END_SOLUTION",
    "MIN_LEAK_CHARS",
    "MarkerError",
    "StripResult",
    "find_solution_leaks",
    "strip_file",
    "strip_solutions",
]

BEGIN_SOLUTION = "BEGIN SOLUTION"
END_SOLUTION = "END SOLUTION"
BEGIN_HIDDEN = "BEGIN HIDDEN TESTS"
END_HIDDEN = "END HIDDEN TESTS"
# A reference line shorter than this (after stripping) is too generic to call a leak.
MIN_LEAK_CHARS = 12

_SOLUTION = "solution"
_HIDDEN = "hidden tests"
_INDENT = re.compile(r"[ \t]*")


class MarkerError(ValueError):
    """A malformed solution marker; str(error) is "file:line: reason".

    Attributes:
        filename: The file being stripped.
        line: The 1-based line the problem is on.
        reason: What is wrong, and what was expected.
    """

    def __init__(self, filename: str, line: int, reason: str) -> None:
        self.filename = filename
        self.line = line
        self.reason = reason
        super().__init__(f"{filename}:{line}: {reason}")


@dataclass(frozen=True)
class StripResult:
    """A stripped file.

    Attributes:
        text: The released source.
        solution_regions: How many solution regions were replaced by a stub.
        hidden_regions: How many hidden-test regions were removed.
    """

    text: str
    solution_regions: int
    hidden_regions: int


@dataclass(frozen=True)
class _Region:
    kind: str
    begin: int  # 0-based index of the BEGIN marker line
    end: int  # 0-based index of the END marker line


def _marker(line: str) -> tuple[str, str] | None:
    """("begin" | "end", kind) when the line is a marker, else None; nbgrader's order."""
    if BEGIN_SOLUTION in line:
        return "begin", _SOLUTION
    if END_SOLUTION in line:
        return "end", _SOLUTION
    if BEGIN_HIDDEN in line:
        return "begin", _HIDDEN
    if END_HIDDEN in line:
        return "end", _HIDDEN
    return None


def _regions(lines: list[str], filename: str) -> list[_Region]:
    """Pair the markers up, raising MarkerError on the first malformed one."""
    regions: list[_Region] = []
    open_kind: str | None = None
    open_at = 0
    for i, line in enumerate(lines):
        found = _marker(line)
        if found is None:
            continue
        side, kind = found
        label = "BEGIN " + kind.upper() if side == "begin" else "END " + kind.upper()
        if side == "begin":
            if open_kind is not None:
                raise MarkerError(filename, i + 1, f"{label} inside the BEGIN "
                                  f"{open_kind.upper()} opened on line {open_at + 1}; "
                                  f"expected END {open_kind.upper()} first (regions do not nest)")
            open_kind, open_at = kind, i
        else:
            if open_kind is None:
                raise MarkerError(filename, i + 1, f"{label} without a BEGIN "
                                  f"{kind.upper()} before it")
            if kind != open_kind:
                raise MarkerError(filename, i + 1, f"{label} closes the BEGIN "
                                  f"{open_kind.upper()} opened on line {open_at + 1}; "
                                  f"expected END {open_kind.upper()}")
            regions.append(_Region(kind, open_at, i))
            open_kind = None
    if open_kind is not None:
        raise MarkerError(filename, open_at + 1, f"BEGIN {open_kind.upper()} is never closed; "
                          f"expected END {open_kind.upper()} before the end of the file")
    return regions


def _scopes(tree: ast.Module) -> list[tuple[int, int, str, ast.AST]]:
    """(first line, last line, qualified name, node) of every def and class."""
    found: list[tuple[int, int, str, ast.AST]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                found.append((child.lineno, child.end_lineno or child.lineno, name, child))
                visit(child, name + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    return found


def _message(region: _Region, scopes: list[tuple[int, int, str, ast.AST]],
             filename: str) -> str:
    """What the student writes in place of the region."""
    line = region.begin + 1
    enclosing = [s for s in scopes if s[0] < line <= s[1]]
    if not enclosing:
        return f"Write the code for this part of {filename}"
    _, _, name, node = max(enclosing, key=lambda s: s[0])
    if isinstance(node, ast.ClassDef):
        return f"Write this part of the class {name}"
    body = list(node.body)  # type: ignore[attr-defined]
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]  # the docstring stays
    if body and isinstance(body[-1], ast.Return):
        body = body[:-1]  # so does a skeleton's closing `return`
    inside = all(region.begin < stmt.lineno - 1 < region.end for stmt in body)
    return f"Write the body of {name}" if inside else f"Write the missing part of {name}"


def _stub(indent: str, message: str, newline: str) -> str:
    literal = '"' + message.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{indent}raise NotImplementedError({literal}){newline}"


def _newline(line: str) -> str:
    stripped = line.rstrip("\r\n")
    return line[len(stripped):] or "\n"


def _apply(lines: list[str], regions: list[_Region],
           scopes: list[tuple[int, int, str, ast.AST]], filename: str) -> str:
    """The text with `regions` stubbed (solution) or removed (hidden tests)."""
    out: list[str] = []
    position = 0
    for region in regions:
        out.extend(lines[position:region.begin])
        if region.kind == _SOLUTION:
            begin = lines[region.begin]
            indent = _INDENT.match(begin).group(0)  # type: ignore[union-attr]
            out.append(_stub(indent, _message(region, scopes, filename), _newline(begin)))
        position = region.end + 1
    out.extend(lines[position:])
    return "".join(out)


def _parses(text: str) -> bool:
    try:
        ast.parse(text)
    except SyntaxError:
        return False
    return True


def strip_solutions(source: str, *, filename: str) -> StripResult:
    """Replace solution regions by stubs and remove hidden-test regions.

    Args:
        source: The reference file's text.
        filename: Its name, for messages ("mlp_numpy.py").

    Returns:
        The released text and how many regions of each kind were handled.

    Raises:
        MarkerError: If a marker is malformed (END without BEGIN, nested BEGIN, BEGIN
            never closed, BEGIN SOLUTION closed by END HIDDEN TESTS), if the reference is
            not valid Python, or if the stripped text is not valid Python (a marker inside
            a bracket, or a hidden region that was a whole body). Nothing is returned then.
    """
    lines = source.splitlines(keepends=True)
    regions = _regions(lines, filename)
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as exc:
        raise MarkerError(filename, exc.lineno or 1, f"the reference is not valid Python: "
                          f"{exc.msg}") from None
    scopes = _scopes(tree)
    text = _apply(lines, regions, scopes, filename)
    try:
        ast.parse(text, filename=filename)
    except SyntaxError as exc:
        # Blame the first region that breaks the file on its own.
        culprit = next((r for r in regions if not _parses(_apply(lines, [r], scopes, filename))),
                       regions[0] if regions else None)
        line = culprit.begin + 1 if culprit else exc.lineno or 1
        what = "solution" if culprit is None or culprit.kind == _SOLUTION else "hidden tests"
        raise MarkerError(filename, line, f"the stripped file is not valid Python once this "
                          f"{what} region is stripped ({exc.msg}); expected a region to hold "
                          "whole statements, and a block to keep a statement after its "
                          "hidden tests are removed") from None
    return StripResult(
        text=text,
        solution_regions=sum(r.kind == _SOLUTION for r in regions),
        hidden_regions=sum(r.kind == _HIDDEN for r in regions),
    )


def strip_file(path: Path) -> StripResult:
    """Read a reference file (UTF-8) and strip it; see `strip_solutions`."""
    return strip_solutions(path.read_text(encoding="utf-8"), filename=path.name)


def find_solution_leaks(stripped_text: str, reference_text: str, *,
                        filename: str = "<reference>") -> list[str]:
    """Solution lines of the reference that still appear in a released text.

    A line counts when it lies inside a solution or hidden-tests region of the reference,
    is at least `MIN_LEAK_CHARS` long after stripping, is not a comment, and does not also
    appear outside the regions (a `return` kept in the skeleton is no leak).

    Args:
        stripped_text: The text about to be released.
        reference_text: The reference it came from.
        filename: The reference's name, for a MarkerError.

    Returns:
        The leaked lines, stripped, in reference order, each once; empty when clean.

    Raises:
        MarkerError: If the reference's markers are malformed.
    """
    lines = reference_text.splitlines()
    regions = _regions(lines, filename)
    inside: set[int] = set()
    for region in regions:
        inside.update(range(region.begin + 1, region.end))
    outside = {lines[i].strip() for i in range(len(lines)) if i not in inside}
    released = {line.strip() for line in stripped_text.splitlines()}
    leaks: list[str] = []
    for i in sorted(inside):
        text = lines[i].strip()
        if (len(text) >= MIN_LEAK_CHARS and not text.startswith("#") and text in released
                and text not in outside and text not in leaks):
            leaks.append(text)
    return leaks

"""Definitions-only import: keep a submission's definitions, skip its top-level runs.

A student's script usually ends with ``train(...)`` or ``model.fit(...)``;
importing it would train for minutes before any test runs. This module keeps
imports, functions, classes, docstrings and constant assignments, and replaces
every other top-level statement with ``pass`` on the same lines, so line
numbers in tracebacks still match the student's file.

Rules (top level only; class and function bodies are never touched):

- kept: ``import``/``from``; ``def``/``async def``/``class``; docstrings and
  ``pass``; assignments to plain names whose value makes no call (calls to a
  few harmless builtins such as ``range`` and ``tuple`` are allowed, and
  lambda bodies are not evaluated) and reads only names bound by earlier kept
  statements or builtins; ``if`` and ``try`` blocks made only of kept
  statements (``try: import x`` / ``except ImportError: x = None``).
- skipped: everything else: calls such as ``train()`` and ``print()``, loops,
  ``with``, augmented assignments, assignments to attributes or items, and
  ``if __name__ == "__main__":`` blocks.

This is a convenience, not a security boundary: class bodies, decorators and
default arguments still run, inside the sandbox.

The parsing itself runs in the grader's process on hostile text, so it is bounded and
total: sources over `MAX_SOURCE_BYTES` are refused before parsing, and any exception
(SyntaxError, RecursionError from a 200,000-term expression, MemoryError, ValueError)
becomes a `SourceError` in the result, never an exception out of `definitions_only`.
Sources are decoded as Python decodes them (`decode_source`: a UTF-8 byte order mark,
a PEP 263 coding line), so an honest file in GBK or with a BOM reads as it runs.
"""

from __future__ import annotations

import ast
import builtins
import io
import tokenize
from collections.abc import Iterable
from dataclasses import dataclass

from grader.i18n import Domain

_, _n = Domain("cli").functions()

MAX_SOURCE_BYTES = 1 << 20
"""Largest student source the grader parses (1 MiB); the course's files are under 50 KB."""

SAFE_CALLS = frozenset(
    {"range", "len", "tuple", "list", "dict", "set", "frozenset", "int", "float", "str",
     "bool", "abs", "min", "max", "round", "sorted", "zip", "enumerate", "complex"}
)
"""Builtins an assignment may call and still count as a constant."""
_BUILTINS = frozenset(dir(builtins)) | {"__name__", "__file__", "__doc__", "__spec__"}


@dataclass(frozen=True)
class SkippedStatement:
    """A top-level statement that was not run.

    Attributes:
        line: 1-based line number in the student's file.
        text: The statement's first line, stripped.
    """

    line: int
    text: str

    def __str__(self) -> str:
        return _("line {line}: {statement}", line=self.line, statement=self.text)


@dataclass(frozen=True)
class SourceError:
    """A file that could not be parsed.

    Attributes:
        filename: The student's file name, e.g. ``mlp_numpy.py``.
        line: 1-based line of the error (0 when unknown).
        message: Python's message, e.g. ``invalid syntax``.
        text: The offending line, stripped ('' when unknown).
    """

    filename: str
    line: int
    message: str
    text: str = ""
    syntax: bool = True  # False: the grader could not parse it (size, depth, encoding)

    def __str__(self) -> str:
        if not self.syntax:
            return f"the grader could not parse {self.filename}: {self.message}"
        shown = f"\n    {self.text}" if self.text else ""  # the student's line, as Python shows it
        if self.line:
            return _("SyntaxError in {file}, line {line}: {error}", file=self.filename,
                     line=self.line, error=self.message) + shown
        return _("SyntaxError in {file}: {error}", file=self.filename, error=self.message) + shown


class UnreadableSource(ValueError):
    """A source file that cannot be decoded as Python would; the message says why."""


def decode_source(data: bytes, filename: str) -> str:
    """A student's ``.py`` bytes as text, decoded the way Python decodes them.

    Follows `tokenize.open`: a UTF-8 byte order mark or a PEP 263 coding line
    (``# -*- coding: gbk -*-``) picks the encoding, UTF-8 otherwise; the BOM is dropped.

    Args:
        data: The file's bytes.
        filename: Its name, for messages.

    Returns:
        The source text.

    Raises:
        UnreadableSource: An unknown or contradictory coding line, or bytes that are not
            in the declared encoding.
    """
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as exc:  # unknown codec, a BOM with another coding line, bad UTF-8
        if "invalid or missing encoding" in str(exc.msg):
            encoding = "utf-8"  # undeclared and not UTF-8: said below, with the position
        else:
            raise UnreadableSource(f"{filename}: {exc.msg}") from None
    try:
        return data.decode(encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        where = f"byte {exc.start}: " if isinstance(exc, UnicodeDecodeError) else ""
        reason = exc.reason if isinstance(exc, UnicodeDecodeError) else str(exc)
        raise UnreadableSource(f"{filename} is not valid {encoding} text ({where}{reason}); "
                               "save it as UTF-8 or declare its encoding on the first "
                               "line, e.g. `# -*- coding: gbk -*-`") from None


def parse_source(source: str | bytes, filename: str) -> ast.Module | SourceError:
    """Parse a student's module in the grader's process, bounded; never raises.

    Args:
        source: The text, or the file's bytes (decoded with `decode_source`).
        filename: Its name, for messages.

    Returns:
        The module's tree, or a `SourceError` saying why there is none.
    """
    size = len(source)
    if size > MAX_SOURCE_BYTES:
        return SourceError(filename, 0, f"the file is {size:,} bytes long; the limit is "
                           f"{MAX_SOURCE_BYTES:,}", syntax=False)
    text = ""
    try:
        text = decode_source(source, filename) if isinstance(source, bytes) else source
        return ast.parse(text, filename=filename)
    except UnreadableSource as exc:
        return SourceError(filename, 0, str(exc).removeprefix(f"{filename}: "), syntax=False)
    except SyntaxError as exc:
        message = exc.msg if "null bytes" not in exc.msg else "the file holds NUL bytes"
        return SourceError(filename, exc.lineno or 0, message, (exc.text or "").strip()[:200])
    except RecursionError:
        line = _busiest_line(text)
        where = f"the statement on line {line}" if line else "a statement"
        return SourceError(filename, line, f"{where} is too deeply nested for Python's "
                           "parser (a very long chain of operators or brackets); Python "
                           "itself could not run it", syntax=False)
    except MemoryError:
        return SourceError(filename, 0, "parsing it ran out of memory", syntax=False)
    except Exception as exc:  # noqa: BLE001 - any parser failure is this file's problem
        return SourceError(filename, 0, f"{type(exc).__name__}: {str(exc)[:200]}",
                           syntax=False)


_LAYOUT_TOKENS = frozenset({tokenize.COMMENT, tokenize.NL, tokenize.INDENT, tokenize.DEDENT,
                            tokenize.ENCODING})


def _busiest_line(text: str) -> int:
    """The line of the statement with the most tokens (what overflowed the parser), or 0."""
    counts: dict[int, int] = {}
    start = 0
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type in (tokenize.NEWLINE, tokenize.ENDMARKER):
                start = 0
                continue
            if token.type in _LAYOUT_TOKENS:
                continue  # comments, blank lines and indentation belong to no statement
            start = start or token.start[0]
            counts[start] = counts.get(start, 0) + 1
    except (tokenize.TokenError, SyntaxError, RecursionError, MemoryError, ValueError):
        pass  # the counts so far still point at the culprit
    return max(counts, key=counts.__getitem__) if counts else 0


@dataclass(frozen=True)
class DefinitionsResult:
    """The outcome of :func:`definitions_only`.

    Attributes:
        source: The module source with only definitions (None on a syntax error).
        skipped: The statements that were replaced by ``pass``.
        error: The syntax error, or None.
    """

    source: str | None
    skipped: tuple[SkippedStatement, ...]
    error: SourceError | None


def _is_main_guard(node: ast.stmt) -> bool:
    """Whether ``node`` is ``if __name__ == "__main__":``."""
    if not isinstance(node, ast.If) or not isinstance(node.test, ast.Compare):
        return False
    parts = [node.test.left, *node.test.comparators]
    names = {p.id for p in parts if isinstance(p, ast.Name)}
    values = {p.value for p in parts if isinstance(p, ast.Constant)}
    return "__name__" in names and "__main__" in values


def _expression_is_safe(expr: ast.expr | None, bound: set[str]) -> bool:
    """Whether evaluating ``expr`` at import time makes no call and reads only known names."""
    if expr is None:
        return True
    local: set[str] = set()
    for node in ast.walk(expr):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            local.add(node.id)  # comprehension targets, walrus
        elif isinstance(node, ast.arg):
            local.add(node.arg)
    lambda_nodes = {id(n) for lam in ast.walk(expr) if isinstance(lam, ast.Lambda)
                    for n in ast.walk(lam.body)}
    for node in ast.walk(expr):
        if id(node) in lambda_nodes:
            continue  # a lambda body runs only when called
        if isinstance(node, ast.Call):
            if not (isinstance(node.func, ast.Name) and node.func.id in SAFE_CALLS):
                return False
        elif isinstance(node, (ast.Await, ast.Yield, ast.YieldFrom)):
            return False
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            if node.id not in bound and node.id not in _BUILTINS and node.id not in local:
                return False
    return True


def _target_names(target: ast.expr) -> list[str] | None:
    """Names bound by an assignment target, or None if it is not plain names."""
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Starred):
        return _target_names(target.value)
    if isinstance(target, (ast.Tuple, ast.List)):
        names: list[str] = []
        for element in target.elts:
            inner = _target_names(element)
            if inner is None:
                return None
            names.extend(inner)
        return names
    return None


def _keep(node: ast.stmt, bound: set[str]) -> bool:
    """Decide whether a statement is a definition; add the names it binds to ``bound``."""
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        for alias in node.names:
            bound.add((alias.asname or alias.name).split(".")[0])
        return True
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        bound.add(node.name)
        return True
    if isinstance(node, ast.Pass):
        return True
    if isinstance(node, ast.Expr):
        return isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
    if isinstance(node, (ast.Assign, ast.AnnAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        names = [_target_names(target) for target in targets]
        if any(found is None for found in names):
            return False
        annotation = node.annotation if isinstance(node, ast.AnnAssign) else None
        if not (_expression_is_safe(node.value, bound) and _expression_is_safe(annotation, bound)):
            return False
        bound.update(name for found in names for name in found or ())
        return True
    if isinstance(node, (ast.If, ast.Try)):
        inner = set(bound)  # a block that is dropped must bind nothing
        if not _keep_block(node, inner):
            return False
        bound.update(inner)
        return True
    return False


def _keep_block(node: ast.If | ast.Try, bound: set[str]) -> bool:
    """Whether an ``if`` or ``try`` block holds only definitions."""
    if isinstance(node, ast.If):
        if _is_main_guard(node) or not _expression_is_safe(node.test, bound):
            return False
        return _keep_all(node.body, bound) and _keep_all(node.orelse, bound)
    for handler in node.handlers:
        if not _expression_is_safe(handler.type, bound):
            return False
        if handler.name:
            bound.add(handler.name)
    blocks = [node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)]
    return all([_keep_all(block, bound) for block in blocks])


def _keep_all(statements: Iterable[ast.stmt], bound: set[str]) -> bool:
    """Whether every statement of a nested block is kept (all are checked)."""
    return all([_keep(statement, bound) for statement in statements])


def _blank_out(lines: list[bytes], node: ast.stmt) -> None:
    """Replace ``node``'s span with ``pass``, keeping every line in place."""
    start, end = node.lineno - 1, (node.end_lineno or node.lineno) - 1
    head = lines[start][: node.col_offset]
    tail = lines[end][node.end_col_offset :] if node.end_col_offset is not None else b""
    lines[start] = head + b"pass" + tail
    for index in range(start + 1, end + 1):
        lines[index] = b""


def definitions_only(source: str | bytes, filename: str) -> DefinitionsResult:
    """Keep only the definitions of a student's module.

    Args:
        source: The module's source text, or the file's bytes (decoded as Python
            would: BOM, PEP 263 coding line).
        filename: Its file name, for error messages (e.g. ``mlp_numpy.py``).

    Returns:
        The filtered source (text), the skipped statements (line, first line of text)
        and, instead of raising, a structured error: a syntax error, or why the grader
        could not parse the file (too large, too deeply nested, not decodable).
    """
    try:
        return _definitions_only(source, filename)
    except Exception as exc:  # noqa: BLE001 - a hostile file is its submission's problem
        reason = "too deeply nested" if isinstance(exc, RecursionError) else (
            f"{type(exc).__name__}: {str(exc)[:200]}")
        return DefinitionsResult(None, (), SourceError(filename, 0, reason, syntax=False))


def _definitions_only(source: str | bytes, filename: str) -> DefinitionsResult:
    tree = parse_source(source, filename)
    if isinstance(tree, SourceError):
        return DefinitionsResult(None, (), tree)
    text = decode_source(source, filename) if isinstance(source, bytes) else source
    # ast counts lines like str.splitlines would for \r\n, \r and \n only.
    text_lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    byte_lines = [line.encode("utf-8") for line in text_lines]
    bound: set[str] = set()
    dropped = [node for node in tree.body if not _keep(node, bound)]
    for node in reversed(dropped):
        _blank_out(byte_lines, node)
    skipped = tuple(
        SkippedStatement(node.lineno, text_lines[node.lineno - 1].strip()) for node in dropped
    )
    filtered = b"\n".join(byte_lines).decode("utf-8")
    return DefinitionsResult(filtered, skipped, None)

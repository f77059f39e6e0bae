"""Notebooks: read as UTF-8 JSON, turned into a module of their code cells."""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass

from grader.i18n import Domain

_, _n = Domain("cli").functions()

# Python cell magics whose body is still Python.
_PYTHON_CELL_MAGICS = {"time", "timeit", "capture", "prun", "debug"}
# `x = !ls`, `out = %timeit ...`: an assignment from a magic or a shell escape.
_MAGIC_ASSIGN_RE = re.compile(r"^[\w\s,.\[\]()]+=\s*[%!]")
MAX_NOTEBOOK_BYTES = 20 << 20
"""Largest notebook read (20 MiB): outputs with figures make honest ones a few MB."""


_HEADER_RE = re.compile(r"# Converted from (?P<name>.+?) by grader intake: ")
_CELL_RE = re.compile(r"# %% \[cell (?P<cell>[1-9][0-9]{0,5})\]$")


@dataclass(frozen=True)
class NotebookLines:
    """Where each line of a module `notebook_to_module` wrote came from in the notebook.

    Built from the converted module's own ``# %% [cell n]`` markers, so it needs nothing
    but the workspace file. A student who writes such a marker in a cell only renumbers
    the positions shown to themselves.

    Attributes:
        notebook: The notebook's file name, e.g. ``mlp_numpy.ipynb``.
        cells: For each module line (index 0 is line 1): (cell number, line in that cell),
            or None for a line the converter added (the header, a marker).
    """

    notebook: str
    cells: tuple[tuple[int, int] | None, ...]

    @classmethod
    def from_module(cls, source: str | bytes) -> NotebookLines | None:
        """The map of a converted notebook, or None for a module that is not one."""
        if isinstance(source, bytes):
            source = source.decode("utf-8", errors="replace")
        lines = source.split("\n")
        header = _HEADER_RE.match(lines[0]) if lines else None
        if header is None:
            return None
        cells: list[tuple[int, int] | None] = []
        cell, line = 0, 0
        for text in lines:
            marker = _CELL_RE.match(text)
            if marker is not None:
                cell, line = int(marker["cell"]), 0
                cells.append(None)
            elif cell == 0:
                cells.append(None)  # the header and the blank line before the first cell
            else:
                line += 1
                cells.append((cell, line))
        return cls(header["name"][:200], tuple(cells))

    def position(self, line: int) -> tuple[int, int] | None:
        """(cell, line in the cell) of a 1-based module line, or None if it has none."""
        if not isinstance(line, int) or not 1 <= line <= len(self.cells):
            return None
        return self.cells[line - 1]

    def describe(self, line: int) -> str | None:
        """``"cell 3, line 5"`` for a module line, or None."""
        where = self.position(line)
        return None if where is None else _("cell {cell}, line {line}", cell=where[0],
                                            line=where[1])


def read_notebook_text(data: bytes, name: str) -> str:
    """A notebook's bytes as text: notebooks are UTF-8 JSON (a BOM is tolerated).

    Raises:
        ValueError: Too large, or not UTF-8; the message says which.
    """
    if len(data) > MAX_NOTEBOOK_BYTES:
        raise ValueError(_("{name}: the notebook is {size} bytes; the limit is {limit} (clear its "
                           "outputs and save it again)", name=name, size=f"{len(data):,}",
                           limit=f"{MAX_NOTEBOOK_BYTES:,}"))
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(_("{name}: notebook is not UTF-8 text (byte {byte}: {reason}); open it in "
                           "Jupyter and save it again (File > Save), then hand in that .ipynb "
                           "file; a renamed text file or a notebook cut short cannot be read",
                           name=name, byte=exc.start, reason=exc.reason)) from None


def notebook_to_module(text: str, *, name: str = "notebook.ipynb") -> str:
    """The code cells of a notebook as a Python module.

    IPython line magics (`%matplotlib inline`), shell escapes (`!pip install x`,
    `files = !ls`) and cell magics whose body is not Python (`%%bash`) are commented out;
    the body of `%%time`-like cells is kept.

    Args:
        text: The notebook's JSON text.
        name: Its file name, for the header comment and errors.

    Returns:
        The module's source, one `# %% [cell n]` header per code cell.

    Raises:
        ValueError: If the text is not JSON or not a notebook; the message says which.
    """
    import nbformat

    try:
        json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        reason = exc if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
        raise ValueError(_("{name}: notebook is not valid JSON: {reason}; open it in Jupyter and "
                           "save it again (File > Save), then hand in that .ipynb file; a renamed "
                           "text file or a notebook cut short cannot be read", name=name,
                           reason=reason)) from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # nbformat's advice is for the notebook's author
            nb = nbformat.reads(text, as_version=4)
        cells = [(number, str(cell.get("source", ""))) for number, cell
                 in enumerate(nb.cells, start=1) if cell.get("cell_type") == "code"]
    except Exception as exc:  # noqa: BLE001 - nbformat raises many kinds for a non-notebook
        raise ValueError(_("{name}: not a Jupyter notebook: {kind}: {error}; open it in Jupyter "
                           "and save it again (File > Save), then hand in that .ipynb file; a "
                           "renamed text file or a notebook cut short cannot be read", name=name,
                           kind=type(exc).__name__, error=str(exc)[:200])) from None
    out = [f"# Converted from {name} by grader intake: code cells only; IPython magics "
           "and shell lines are commented out.\n"]
    for number, source in cells:
        lines = source.splitlines()
        out.append(f"\n# %% [cell {number}]\n")
        whole_cell = False
        if lines and lines[0].lstrip().startswith("%%"):
            magic = lines[0].lstrip()[2:].split(maxsplit=1)[0] if lines[0].strip() != "%%" else ""
            whole_cell = magic not in _PYTHON_CELL_MAGICS
            out.append("# " + lines[0] + "\n")
            lines = lines[1:]
        for line in lines:
            stripped = line.lstrip()
            if whole_cell or stripped.startswith(("%", "!")) or _MAGIC_ASSIGN_RE.match(stripped):
                indent = line[:len(line) - len(stripped)]
                out.append(f"{indent}# {stripped}\n")
            else:
                out.append(line + "\n")
    return "".join(out)

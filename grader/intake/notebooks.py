"""Notebooks: read as UTF-8 JSON, turned into a module of their code cells."""

from __future__ import annotations

import json
import re
import warnings

# Python cell magics whose body is still Python.
_PYTHON_CELL_MAGICS = {"time", "timeit", "capture", "prun", "debug"}
# `x = !ls`, `out = %timeit ...`: an assignment from a magic or a shell escape.
_MAGIC_ASSIGN_RE = re.compile(r"^[\w\s,.\[\]()]+=\s*[%!]")
MAX_NOTEBOOK_BYTES = 20 << 20
"""Largest notebook read (20 MiB): outputs with figures make honest ones a few MB."""


def read_notebook_text(data: bytes, name: str) -> str:
    """A notebook's bytes as text: notebooks are UTF-8 JSON (a BOM is tolerated).

    Raises:
        ValueError: Too large, or not UTF-8; the message says which.
    """
    if len(data) > MAX_NOTEBOOK_BYTES:
        raise ValueError(f"{name}: the notebook is {len(data):,} bytes; the limit is "
                         f"{MAX_NOTEBOOK_BYTES:,} (clear its outputs and save it again)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{name}: notebook is not UTF-8 text (byte {exc.start}: "
                         f"{exc.reason})") from None


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
        raise ValueError(f"{name}: notebook is not valid JSON: {reason}") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # nbformat's advice is for the notebook's author
            nb = nbformat.reads(text, as_version=4)
        cells = [(number, str(cell.get("source", ""))) for number, cell
                 in enumerate(nb.cells, start=1) if cell.get("cell_type") == "code"]
    except Exception as exc:  # noqa: BLE001 - nbformat raises many kinds for a non-notebook
        raise ValueError(f"{name}: not a Jupyter notebook: {type(exc).__name__}: "
                         f"{str(exc)[:200]}") from None
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

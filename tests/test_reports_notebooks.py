"""Notebook submitters read positions in their notebook: "cell 3, line 2", not module lines.

A notebook is converted to a module at intake (`grader.intake.notebooks`); tracebacks,
skipped statements and syntax errors are told by cell and line through
`NotebookLines` (built from the converted module's own markers). Graded for real through
the sandbox, then rendered.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from grader.config import load_assignment
from grader.grading.run import grade_path
from grader.intake.notebooks import NotebookLines, notebook_to_module
from grader.reports import from_graded, render_student_report
from grader.runtime.errors import StudentError, TracebackLine, in_notebook_cells

ACT = load_assignment(Path(__file__).parent / "files" / "grading" / "repo" / "assignments"
                      / "act" / "assignment.toml")

IMPORTS = "import numpy as np\n%matplotlib inline"
RELU = "def relu(x):\n    scale = 2.0\n    return np.maximum(x, 0.0) / missing_name"
SIGMOID = ("def sigmoid(x):\n    out = np.empty_like(x, dtype=float)\n"
           "    out[:] = 0.5 * (1 + np.tanh(x / 2))\n    return out")


def notebook(*cells: tuple[str, str]) -> str:
    """A notebook's JSON from (cell type, source) pairs."""
    return json.dumps({"cells": [
        {"cell_type": kind, "metadata": {}, "source": source,
         **({"outputs": [], "execution_count": None} if kind == "code" else {})}
        for kind, source in cells], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


def test_every_module_line_maps_to_its_cell_and_line():
    module = notebook_to_module(notebook(("markdown", "# Two activations"), ("code", IMPORTS),
                                         ("code", RELU)), name="act.ipynb")
    lines = NotebookLines.from_module(module)
    assert lines is not None and lines.notebook == "act.ipynb"
    for number, text in enumerate(module.split("\n"), start=1):
        if text == "    return np.maximum(x, 0.0) / missing_name":
            assert lines.describe(number) == "cell 3, line 3"  # the Markdown cell counts
        if text == "# %matplotlib inline":
            assert lines.describe(number) == "cell 2, line 2"  # a commented-out magic keeps
            # its line, so the lines after it keep theirs
        if text.startswith("# Converted from") or text.startswith("# %% [cell"):
            assert lines.position(number) is None
    assert NotebookLines.from_module("import numpy\n# %% [cell 2]\nx = 1\n") is None


@pytest.mark.parametrize("line", [0, -1, 10**9, "3", None, 2.0, True])
def test_lines_outside_the_map_keep_their_module_line(line):
    """Traceback line numbers come from the student's process: anything may arrive."""
    lines = NotebookLines.from_module(notebook_to_module(notebook(("code", RELU)),
                                                         name="act.ipynb"))
    frame = TracebackLine("act.py", line, "relu", "x")
    assert lines.describe(line) is None
    assert in_notebook_cells((frame,), {"act.py": lines}) == (frame,)


def test_other_files_are_left_alone():
    lines = NotebookLines.from_module(notebook_to_module(notebook(("code", RELU)),
                                                         name="act.ipynb"))
    frame = TracebackLine("helpers.py", 4, "f", "y = 1")
    assert in_notebook_cells((frame,), {"act.py": lines}) == (frame,)
    assert str(frame) == '  File "helpers.py", line 4, in f\n    y = 1'


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("nb")
    path = folder / "act.ipynb"
    path.write_text(notebook(("markdown", "# Two activations"), ("code", IMPORTS),
                             ("code", RELU), ("code", SIGMOID),
                             ("code", "print(relu(np.ones(3)))")), encoding="utf-8")
    return grade_path(ACT, path)


def test_a_traceback_names_the_notebook_cell_and_line(graded):
    messages = [t.message for p in graded.grade.parts for t in p.tests if t.message]
    assert any('File "act.ipynb", cell 3, line 3, in relu' in m for m in messages), messages
    assert not any('File "act.py"' in m for m in messages)
    report = render_student_report(from_graded(graded), config=ACT)
    assert 'File &#34;act.ipynb&#34;, cell 3, line 3, in relu' in report.html or \
        'File "act.ipynb", cell 3, line 3, in relu' in report.html
    assert "NameError" in report.html and "missing_name" in report.html
    assert "cell 3, line 3" in report.markdown


def test_skipped_statements_name_the_cell(graded):
    assert graded.grade.skipped_statements == (
        "act.ipynb cell 5, line 1: print(relu(np.ones(3)))",)
    report = render_student_report(from_graded(graded), config=ACT)
    assert "act.ipynb cell 5, line 1" in re.sub(r"<[^>]+>", "", report.html)


def test_a_syntax_error_names_the_cell(tmp_path):
    path = tmp_path / "act.ipynb"
    path.write_text(notebook(("code", IMPORTS), ("code", "def relu(x):\n    return x +\n")),
                    encoding="utf-8")
    graded = grade_path(ACT, path)
    said = " ".join([*graded.grade.problems,
                     *(t.message for p in graded.grade.parts for t in p.tests)])
    assert "cell 2, line 2" in said, said
    assert not re.search(r"line \d", re.sub(r"cell \d+, line \d+", "", said)), said


def test_a_student_error_prints_cells_like_python():
    lines = NotebookLines.from_module(notebook_to_module(notebook(("code", IMPORTS),
                                                                  ("code", RELU)),
                                                         name="act.ipynb"))
    module_line = next(n for n in range(1, 20) if lines.describe(n) == "cell 2, line 3")
    error = StudentError("NameError", "name 'missing_name' is not defined", in_notebook_cells(
        (TracebackLine("act.py", module_line, "relu", "return x / missing_name"),),
        {"act.py": lines}))
    assert str(error) == ('Traceback (most recent call last):\n  File "act.ipynb", cell 2, '
                          'line 3, in relu\n    return x / missing_name\n'
                          "NameError: name 'missing_name' is not defined")

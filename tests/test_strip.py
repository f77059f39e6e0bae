"""Tests for grader.release.strip and grader.release.notebook."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from grader.release.notebook import NotebookReleaseError, release_notebook
from grader.release.strip import (
    MIN_LEAK_CHARS,
    MarkerError,
    find_solution_leaks,
    strip_file,
    strip_solutions,
)

REPO = Path(__file__).resolve().parents[1]
FILES = Path(__file__).resolve().parent / "files" / "strip"


def test_golden_file_strips_byte_for_byte() -> None:
    result = strip_file(FILES / "layers.py")
    assert result.text == (FILES / "layers_released.py").read_text(encoding="utf-8")
    assert (result.solution_regions, result.hidden_regions) == (5, 1)


def test_stub_keeps_indentation_and_everything_else() -> None:
    source = ('def f(x):\n'
              '    """Doc."""\n'
              '    # a comment that stays\n'
              '    ### BEGIN SOLUTION\n'
              '    y = x + 1\n'
              '    ### END SOLUTION\n'
              '    return y\n')
    text = strip_solutions(source, filename="f.py").text
    assert text == ('def f(x):\n'
                    '    """Doc."""\n'
                    '    # a comment that stays\n'
                    '    raise NotImplementedError("Write the body of f")\n'
                    '    return y\n')


def test_crlf_line_endings_survive() -> None:
    source = "def f():\r\n    ### BEGIN SOLUTION\r\n    return 1\r\n    ### END SOLUTION\r\n"
    text = strip_solutions(source, filename="f.py").text
    assert text == 'def f():\r\n    raise NotImplementedError("Write the body of f")\r\n'


def test_nested_function_gets_qualified_name() -> None:
    source = ("class A:\n    class B:\n        def g(self):\n"
              "            ### BEGIN SOLUTION\n            pass\n            ### END SOLUTION\n")
    assert "Write the body of A.B.g" in strip_solutions(source, filename="a.py").text


def test_file_without_markers_is_unchanged() -> None:
    source = "x = 1  # BEGIN nothing\n"
    result = strip_solutions(source, filename="x.py")
    assert result.text == source and result.solution_regions == result.hidden_regions == 0


@pytest.mark.parametrize(("source", "line", "reason"), [
    ("x = 1\n### END SOLUTION\n", 2, "END SOLUTION without a BEGIN SOLUTION before it"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n### END SOLUTION\n", 2,
     "BEGIN SOLUTION inside the BEGIN SOLUTION opened on line 1"),
    ("### BEGIN SOLUTION\n### BEGIN HIDDEN TESTS\n", 2,
     "BEGIN HIDDEN TESTS inside the BEGIN SOLUTION opened on line 1"),
    ("x = 1\n### BEGIN SOLUTION\nx = 2\n", 2,
     "BEGIN SOLUTION is never closed; expected END SOLUTION before the end of the file"),
    ("### BEGIN SOLUTION\nx = 2\n### END HIDDEN TESTS\n", 3,
     "END HIDDEN TESTS closes the BEGIN SOLUTION opened on line 1; expected END SOLUTION"),
    ("x = (1,\n### BEGIN SOLUTION\n2)\n### END SOLUTION\n", 2, "not valid Python"),
    ("def t():\n    ### BEGIN HIDDEN TESTS\n    assert 1\n    ### END HIDDEN TESTS\n", 2,
     "the stripped file is not valid Python"),
    ("def broken(:\n    pass\n", 1, "the reference is not valid Python"),
])
def test_malformed_markers_raise_with_file_and_line(source: str, line: int, reason: str) -> None:
    with pytest.raises(MarkerError) as info:
        strip_solutions(source, filename="ref.py")
    assert info.value.line == line
    assert str(info.value).startswith(f"ref.py:{line}: ")
    assert reason in str(info.value)


def test_leaks_are_found_in_an_unstripped_release() -> None:
    reference = (FILES / "layers.py").read_text(encoding="utf-8")
    assert find_solution_leaks(strip_file(FILES / "layers.py").text, reference) == []
    leaks = find_solution_leaks(reference, reference)
    assert "grad_W = self.mem[\"X\"].T @ grad_H" in leaks
    assert 'assert double(-3.0) == -6.0, "hidden edge case"' in leaks
    assert "H = X @ W" not in leaks  # too short to mean anything
    assert all(len(line) >= MIN_LEAK_CHARS for line in leaks)


def test_line_kept_outside_the_markers_is_no_leak() -> None:
    reference = ("def f(x):\n    ### BEGIN SOLUTION\n    return_value = x * 2\n"
                 "    ### END SOLUTION\n    return_value = x * 2\n    return return_value\n")
    assert find_solution_leaks(reference, reference) == []


def _references() -> list[Path]:
    return [p for p in sorted((REPO / "reference").glob("*.py"))
            if "BEGIN SOLUTION" in p.read_text(encoding="utf-8")]


@pytest.mark.parametrize("path", _references(), ids=lambda p: p.name)
def test_real_references_strip_to_valid_python_without_solution_lines(path: Path) -> None:
    reference = path.read_text(encoding="utf-8")
    result = strip_file(path)
    ast.parse(result.text)
    assert result.solution_regions > 0
    assert find_solution_leaks(result.text, reference, filename=path.name) == []
    assert "BEGIN SOLUTION" not in result.text and "END SOLUTION" not in result.text


# --- notebooks -------------------------------------------------------------------------


def _nbgrader_release(notebook: Path, tmp_path: Path) -> Path:
    """Run the real `nbgrader generate_assignment` on one notebook in a temporary course."""
    course = tmp_path / "course"
    (course / "source" / "ps1").mkdir(parents=True)
    shutil.copy(notebook, course / "source" / "ps1" / notebook.name)
    (course / "nbgrader_config.py").write_text(
        f"c = get_config()\nc.CourseDirectory.root = {str(course)!r}\n", encoding="utf-8")
    bindir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bindir + os.pathsep + os.environ.get("PATH", "")}
    done = subprocess.run([str(Path(bindir) / "nbgrader"), "generate_assignment", "ps1"],
                          cwd=course, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return course / "release" / "ps1" / notebook.name


@pytest.mark.skipif(shutil.which("nbgrader", path=str(Path(sys.executable).parent)) is None,
                    reason="the nbgrader command is not installed next to this Python")
def test_notebook_release_equals_nbgrader_generate_assignment(tmp_path: Path) -> None:
    source = FILES / "activations.ipynb"
    ours = release_notebook(source, tmp_path / "ours" / "activations.ipynb")
    theirs = _nbgrader_release(source, tmp_path)
    ours_nb = nbformat.read(ours, as_version=4)
    theirs_nb = nbformat.read(theirs, as_version=4)
    assert [c.source for c in ours_nb.cells] == [c.source for c in theirs_nb.cells]
    assert [c.metadata for c in ours_nb.cells] == [c.metadata for c in theirs_nb.cells]
    assert ours.read_text(encoding="utf-8") == theirs.read_text(encoding="utf-8")


def test_notebook_release_clears_solutions_hidden_tests_and_outputs(tmp_path: Path) -> None:
    out = release_notebook(FILES / "activations.ipynb", tmp_path / "a.ipynb")
    nb = nbformat.read(out, as_version=4)
    text = out.read_text(encoding="utf-8")
    assert "1.0 / (1.0 + np.exp(-z))" not in text and "np.maximum" not in text
    assert "sigmoid(np.array([100.0]))" not in text and "exp(-z) vanishes" not in text
    sigmoid = nb.cells[2]
    assert sigmoid.source.endswith("# YOUR CODE HERE\n    raise NotImplementedError()")
    assert '"""Logistic function' in sigmoid.source
    assert nb.cells[4].source.startswith('"""Check sigmoid."""')
    assert nb.cells[4].metadata["editable"] is False
    assert all(c.get("outputs", []) == [] for c in nb.cells if c.cell_type == "code")
    assert "celltoolbar" not in nb.metadata
    assert all("checksum" in c.metadata["nbgrader"] for c in nb.cells[1:6])


def test_notebook_with_solution_outside_a_solution_cell_is_refused(tmp_path: Path) -> None:
    nb = json.loads((FILES / "activations.ipynb").read_text(encoding="utf-8"))
    nb["cells"][6]["source"] = "### BEGIN SOLUTION\nx = 1\n### END SOLUTION"
    bad = tmp_path / "bad.ipynb"
    bad.write_text(json.dumps(nb), encoding="utf-8")
    with pytest.raises(NotebookReleaseError, match="non-solution cell"):
        release_notebook(bad, tmp_path / "out" / "bad.ipynb")
    assert not (tmp_path / "out").exists()

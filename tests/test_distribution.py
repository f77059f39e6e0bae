"""The `nn-grader` distribution is the tool only: no reference solution, no hidden test.

Builds the sdist and the wheel from this checkout (offline: no build isolation) and
searches every file in both for solution markers, the solution bodies of every reference,
hidden test functions and the course's own files; the package data (templates, schemas)
must be there, since a non-editable install has nothing else.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"^\s*#+\s*(BEGIN|END) (SOLUTION|HIDDEN TESTS)\s*$", re.MULTILINE)
SOLUTION = re.compile(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", re.DOTALL)
WINDOW = 3  # consecutive solution lines: one line alone (`x = np.asarray(x)`) is not distinctive
# `grader new` scaffolds a reference whose placeholder example sits between markers.
MARKERS_ALLOWED = {"grader/scaffold.py"}
TEMPLATES = ("instructions.md.j2", "report.html.j2", "report.md.j2", "class_summary.html.j2")


def build_distributions(out: Path) -> tuple[Path, Path]:
    """`python -m build` of this checkout into `out`: (the wheel, the sdist)."""
    subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--skip-dependency-check",
                    "--outdir", str(out), str(ROOT)],
                   check=True, capture_output=True, text=True, timeout=300)
    return next(out.glob("nn_grader-*.whl")), next(out.glob("nn[-_]grader-*.tar.gz"))


def distribution_files(path: Path) -> dict[str, str]:
    """Name -> text of every file in a wheel or an sdist (binary files as latin-1)."""
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as archive:
            return {name: archive.read(name).decode("latin-1") for name in archive.namelist()
                    if not name.endswith("/")}
    with tarfile.open(path) as archive:
        return {member.name: archive.extractfile(member).read().decode("latin-1")
                for member in archive.getmembers() if member.isfile()}


def _code_lines(text: str) -> list[str]:
    """The stripped, non-blank, non-comment lines of a text."""
    return [line.strip() for line in text.splitlines()
            if line.strip() and not line.strip().startswith("#")]


def solution_blocks() -> set[str]:
    """Every run of `WINDOW` consecutive lines of every reference's solution bodies."""
    blocks = set()
    for path in sorted((ROOT / "reference").glob("*.py")):
        for body in SOLUTION.findall(path.read_text(encoding="utf-8")):
            lines = _code_lines(body)
            blocks |= {"\n".join(lines[i:i + WINDOW]) for i in range(len(lines) - WINDOW + 1)}
    return blocks


def hidden_test_names() -> set[str]:
    names = set()
    for path in sorted((ROOT / "autograde_tests").glob("*/test_hidden.py")):
        names |= set(re.findall(r"^def (test_\w+)\(", path.read_text(encoding="utf-8"),
                                re.MULTILINE))
    return names


def leaks(files: dict[str, str]) -> list[str]:
    """Every place a distribution shows course material: what, and in which file."""
    solutions, hidden = solution_blocks(), hidden_test_names()
    assert len(solutions) > 50 and len(hidden) > 20  # the search has something to find
    found = []
    for name, text in files.items():
        parts = Path(name).parts
        if {"reference", "autograde_tests", "assignments", "tests"} & set(parts[:2]):
            found.append(f"{name}: a course file")
        if not any(name.endswith(allowed) for allowed in MARKERS_ALLOWED):
            found += [f"{name}: marker {m.group(0).strip()!r}" for m in MARKER.finditer(text)]
        code = "\n".join(_code_lines(text))
        found += [f"{name}: solution lines {block!r}" for block in solutions if block in code]
        found += [f"{name}: hidden test {test}" for test in hidden
                  if re.search(rf"\bdef {test}\(", text)]
    return found


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path]:
    return build_distributions(tmp_path_factory.mktemp("dist"))


def test_the_wheel_is_the_tool_with_its_package_data(built):
    wheel, _ = built
    names = set(distribution_files(wheel))
    assert {name.split("/")[0] for name in names} == {"grader", wheel.name.split("-py3")[0]
                                                       + ".dist-info"}
    for template in TEMPLATES:
        assert f"grader/templates/{template}" in names
    assert "grader/schemas/gradescope_results.schema.json" in names
    assert "grader/kit/check.py" in names and "grader/kit/local.py" in names


def test_the_wheel_holds_no_solution_and_no_hidden_test(built):
    wheel, _ = built
    assert leaks(distribution_files(wheel)) == []


def test_the_sdist_holds_no_solution_and_no_hidden_test(built):
    _, sdist = built
    files = distribution_files(sdist)
    assert any(name.endswith("grader/templates/instructions.md.j2") for name in files)
    assert leaks(files) == []


def test_tensorflow_is_an_extra_not_a_dependency(built):
    wheel, _ = built
    metadata = next(text for name, text in distribution_files(wheel).items()
                    if name.endswith(".dist-info/METADATA"))
    requires = re.findall(r"^Requires-Dist: (.*)$", metadata, re.MULTILINE)
    base = [line for line in requires if "extra ==" not in line]
    assert not [line for line in base if line.lower().startswith(("tensorflow", "nbgrader"))]
    assert any(line.startswith("tensorflow") and 'extra == "tensorflow"' in line
               for line in requires)
    for needed in ("numpy", "pytest", "jinja2", "sqlalchemy", "matplotlib", "nbformat"):
        assert any(line.lower().startswith(needed) for line in base), needed


def test_the_search_finds_a_planted_leak(built, tmp_path):
    # The search itself can fail: a wheel with a reference file in it is caught.
    wheel, _ = built
    files = distribution_files(wheel)
    reference = (ROOT / "reference" / "mlp_numpy.py").read_text(encoding="utf-8")
    files["grader/helpers.py"] = reference
    found = leaks(files)
    assert any("marker" in item for item in found)
    assert any("solution lines" in item for item in found)

"""The pieces of `bench/batch.py` that can be checked without timing anything.

The class generator, the nbgrader notebooks it writes (valid, with grade cells worth the
assignment's points, accepted by nbgrader's release preprocessors) and the shim that runs
one hidden test in a notebook's namespace.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from collections import Counter
from pathlib import Path

import nbformat
import pytest

from grader.release.notebook import release_notebook_text

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _load(name: str, filename: str):
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))  # the notebooks import the shim by its bare name
    spec = importlib.util.spec_from_file_location(name, BENCH / filename)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


batch = _load("bench_batch", "batch.py")
shim = _load("nbgrader_shim", "nbgrader_shim.py")


@pytest.fixture(scope="module")
def config():
    return batch._config()


@pytest.fixture(scope="module")
def klass(config):
    return batch.generate_class(40, config=config)


def _namespace(code: str) -> dict:
    """A notebook's globals after its solution cell ran."""
    namespace = {"__name__": "__main__"}
    exec(compile(batch.notebook_code(code), "solution-cell", "exec"), namespace)  # noqa: S102
    return namespace


def _nbg(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def test_a_class_of_40_is_correct_planted_and_hostile_work(klass, config):
    kinds = Counter(student.kind for student in klass)
    bugs = sorted(batch._planted(config))
    expected = batch.class_counts(40, len(bugs))
    assert kinds == expected and expected["hostile"] == 3
    # 45% of the non-hostile work is planted bugs: each once, the first ones by name
    assert expected["planted"] == min(len(bugs), round(37 * batch.PLANTED_SHARE))
    planted = sorted(s.source for s in klass if s.kind == "planted")
    assert planted == bugs[:expected["planted"]]
    assert sorted(s.source for s in klass if s.kind == "hostile") == sorted(batch.HOSTILE)
    correct = Counter(s.source for s in klass if s.kind == "correct")
    assert set(correct) == {name for name, _ in batch._correct(config)}
    assert max(correct.values()) - min(correct.values()) <= 1  # repeated evenly
    assert len({s.student_id for s in klass}) == 40
    assert batch.generate_class(40, config=config) == klass  # the same order every run


def test_the_quick_class_has_one_of_each_kind_and_a_second_correct_one(config):
    quick = batch.generate_class(quick=True, config=config)
    assert [s.kind for s in quick] == ["correct", "correct", "planted", "hostile"]
    assert quick[0].source == "reference"


def test_hostile_code_starts_the_chosen_function(klass):
    codes = {s.source: ast.parse(s.code) for s in klass if s.kind == "hostile"}

    def first_statement(tree, function, cls=None):
        scope = tree.body
        if cls:
            scope = next(n for n in scope if isinstance(n, ast.ClassDef) and n.name == cls).body
        node = next(n for n in scope if isinstance(n, ast.FunctionDef) and n.name == function)
        body = node.body[1:] if isinstance(node.body[0].value, ast.Constant) else node.body
        return body[0]

    assert isinstance(first_statement(codes["endless_loop_in_train"], "train"), ast.While)
    assert isinstance(first_statement(codes["os_exit_in_forward"], "forward", "Relu"), ast.Import)
    bomb = first_statement(codes["memory_bomb_in_train"], "train_model")
    assert isinstance(bomb, ast.Assign) and bomb.targets[0].id == "hoard"
    assert all("### BEGIN SOLUTION" not in s.code for s in klass)


def test_notebook_code_drops_the_future_import_and_the_main_block():
    code = ('"""Doc."""\nfrom __future__ import annotations\n\nimport numpy as np\n\n'
            'def f():\n    return 1\n\nif __name__ == "__main__":\n    f()\n')
    assert batch.notebook_code(code) == '"""Doc."""\n\nimport numpy as np\n\ndef f():\n' \
                                        '    return 1\n'


def test_the_source_notebook_is_valid_and_nbgrader_releases_it(config, klass, tmp_path):
    source = batch.source_notebook(config, batch.REFERENCE.read_text(encoding="utf-8"))
    nbformat.validate(source)
    meta = [cell.metadata.get("nbgrader", {}) for cell in source.cells]
    grades = [m for m in meta if m.get("grade")]
    assert [m["grade_id"] for m in grades] == [t for p in config.parts for t in p.tests]
    assert all(m["locked"] and m["points"] > 0 for m in grades)
    assert sum(m["points"] for m in grades) == pytest.approx(config.total)
    assert sum(bool(m.get("solution")) for m in meta) == 1

    path = tmp_path / "source" / "mlp_numpy" / "mlp_numpy.ipynb"
    path.parent.mkdir(parents=True)
    nbformat.write(source, path)
    released = nbformat.reads(release_notebook_text(path), as_version=4)  # nbgrader's checks
    solution = next(c for c in released.cells if _nbg(c).get("solution"))
    assert "raise NotImplementedError()" in solution.source
    assert "### BEGIN SOLUTION" not in solution.source

    student = batch.student_notebook(released, klass[0].code)
    nbformat.validate(student)
    solution = next(c for c in student.cells if _nbg(c).get("solution"))
    assert solution.source == batch.notebook_code(klass[0].code)
    assert [c.source for c in student.cells if _nbg(c).get("grade")] == [
        c.source for c in released.cells if _nbg(c).get("grade")]


def test_the_shim_passes_the_reference_and_fails_a_planted_bug(config):
    reference = _namespace(batch._correct(config)[0][1])
    assert shim.run_test("test_softmax_forward_matches_reference", reference) is None
    assert shim.run_test("test_fc_backward_matches_numerical_gradient", reference) is None

    wrong_axis = _namespace(batch._planted(config)["softmax_wrong_axis"])
    with pytest.raises(AssertionError, match=r"test_softmax_forward_matches_reference\["):
        shim.run_test("test_softmax_forward_matches_reference", wrong_axis)


def test_the_shim_gives_the_reference_every_point_of_every_test(config):
    """The comparison with nbgrader is fair only if the shim gives each test the fixtures
    the grader gives it (a fixture it lacks costs every student that test's points)."""
    reference = _namespace(batch._correct(config)[0][1])
    lost = [(case.case, case.message[:200]) for part in config.parts for test in part.tests
            for case in shim.run_cases(test, reference) if case.fraction < 1.0]
    assert lost == []


def test_the_shim_turns_failed_cases_into_partial_points(config, capsys):
    # Counting instead of averaging is right only for the one-row case: 1 of 3 cases.
    counts = _namespace(batch._planted(config)["accuracy_counts_not_fraction"])
    earned = shim.run_test("test_compute_accuracy", counts)
    assert earned == pytest.approx(shim.points_of("test_compute_accuracy") / 3, abs=1e-6)
    assert "test_compute_accuracy[" in capsys.readouterr().out


def test_the_shim_keeps_warnings_off_stderr(config, capsys):
    # nbgrader gives no points to a grade cell that wrote to stderr; pytest ignores warnings.
    unstable = _namespace(batch._planted(config)["softmax_unstable"])
    assert shim.run_test("test_softmax_forward_matches_reference", unstable) is None
    with pytest.raises(AssertionError):
        shim.run_test("test_softmax_forward_huge_logits", unstable)
    assert capsys.readouterr().err == ""

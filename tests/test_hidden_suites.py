"""The hidden suites of `tf_basics` and `mlp_numpy` grade what they should.

Every submission goes through the real pipeline (intake, sandboxed runtime, pytest,
scoring). The golden cases live in assignments/<assignment>/samples/:

- the reference scores full marks and the released skeleton scores zero on every part;
- each planted bug (an edit of the reference in `bugs.toml`) loses points in exactly
  the parts `bugs.toml` lists for it, and keeps full points everywhere else;
- each correct variant in another style (`variants/<name>/`) scores full marks.

Grading needs the dataset for `mlp_numpy`'s training test; the tf_basics cases import
TensorFlow in every runtime, so they are marked slow.

Hostile mlp_numpy submissions (tests/files/mlp_*) go through the same pipeline: one with
no learning in it (constant forwards, zero backwards) earns nothing through the real
`grader autograde` CLI, and one that copied the public test labels in the dataset's order
earns no accuracy points.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import tomllib

from grader import data
from grader.config import AssignmentConfig, load_assignment
from grader.grading.fixtures import load_dataset
from grader.grading.run import grade_path
from grader.release.strip import strip_file
from grader.results.records import KIND_TIME_BUDGET, KIND_TIME_LIMIT, Grade
from grader.samples import PlantedBug, load_bugs, variants, write_bug

REPO = Path(__file__).resolve().parents[1]
FILES = Path(__file__).resolve().parent / "files"
ASSIGNMENTS = ("mlp_numpy", "tf_basics")
SLOW = {"tf_basics"}  # every runtime imports TensorFlow: seconds per submission


def _config(assignment: str) -> AssignmentConfig:
    return load_assignment(REPO / "assignments" / assignment / "assignment.toml")


def _marks(assignment: str) -> list:
    marks = [pytest.mark.slow] if assignment in SLOW else []
    if assignment == "mlp_numpy" and not data.available():
        marks.append(pytest.mark.skip(reason="no dataset installed (apt-get install "
                                      "dataset-fashion-mnist)"))
    return marks


def _cases(kind: str) -> list:
    params = []
    for assignment in ASSIGNMENTS:
        config = _config(assignment)
        names = ([bug.name for bug in load_bugs(config)] if kind == "bugs" else
                 [folder.name for folder in variants(config)])
        params += [pytest.param(assignment, name, marks=_marks(assignment),
                                id=f"{assignment}-{name}") for name in names]
    return params


@cache
def _diagnoses(assignment: str) -> dict[str, str]:
    """Each planted bug's `diagnosis` in bugs.toml: the Mistake.id its failure must name."""
    path = REPO / "assignments" / assignment / "samples" / "bugs.toml"
    table = tomllib.loads(path.read_text(encoding="utf-8"))
    return {name: entry.get("diagnosis", "") for name, entry in table.items()}


def _by_part(grade: Grade) -> dict[str, tuple[float, float]]:
    return {part.name: (part.points, part.max_points) for part in grade.parts}


def _failures(grade: Grade) -> str:
    return "\n".join(f"{part.name}: {test.case}: {test.message.splitlines()[-1][:160]}"
                     for part in grade.parts for test in part.tests
                     if test.fraction < 1 and test.message)


@pytest.mark.parametrize("assignment", [pytest.param(a, marks=_marks(a)) for a in ASSIGNMENTS])
def test_reference_scores_full_marks(assignment, tmp_path):
    config = _config(assignment)
    student = tmp_path / config.student_files[0]
    student.write_bytes((REPO / "reference" / student.name).read_bytes())
    grade = grade_path(config, student).grade
    assert grade.score == config.total_points, _failures(grade)


@pytest.mark.parametrize("assignment", [pytest.param(a, marks=_marks(a)) for a in ASSIGNMENTS])
def test_skeleton_scores_zero_on_every_part(assignment, tmp_path):
    config = _config(assignment)
    student = tmp_path / config.student_files[0]
    student.write_text(strip_file(REPO / "reference" / student.name).text, encoding="utf-8")
    grade = grade_path(config, student).grade
    earning = {name: points for name, (points, _) in _by_part(grade).items() if points > 0}
    assert not earning, f"the skeleton earns points: {earning}"


@pytest.mark.parametrize("assignment, case", _cases("bugs"))
def test_planted_bug_loses_only_its_parts(assignment, case, tmp_path):
    config = _config(assignment)
    bug = next(bug for bug in load_bugs(config) if bug.name == case)
    expected = set(bug.parts)
    unknown = expected - {part.name for part in config.parts}
    assert not unknown, f"bugs.toml names parts that do not exist: {sorted(unknown)}"
    grade = grade_path(config, write_bug(config, bug, tmp_path / case)).grade
    lost = {name for name, (points, maximum) in _by_part(grade).items() if points < maximum}
    assert lost == expected, (
        f"{assignment}/{case}: lost points in {sorted(lost)}; expected {sorted(expected)}\n"
        + _failures(grade))
    diagnosis = _diagnoses(assignment).get(case, "")
    if diagnosis:  # the outcome carries the mistake's id as data (TestOutcome.diagnosis)
        named = {test.diagnosis for part in grade.parts if part.name in expected
                 for test in part.tests}
        assert diagnosis in named, (
            f"{assignment}/{case}: expected a failing test to be diagnosed as {diagnosis!r}; "
            f"the diagnoses were {sorted(named - {''})}\n" + _failures(grade))


@pytest.mark.skipif(not data.available(), reason="no dataset installed (apt-get install "
                    "dataset-fashion-mnist)")
def test_an_endless_loop_in_train_costs_the_training_parts_only(tmp_path):
    """A `train` that never returns uses up the submission's whole time budget (30 s); the
    public tests run first and the training tests last, so the budget runs out for the
    training tests alone (a bug costs its own part)."""
    config = _config("mlp_numpy")
    student = tmp_path / config.student_files[0]
    student.write_text((REPO / "reference" / student.name).read_text(encoding="utf-8")
                       + "\n\ndef train(*args, **kwargs):\n    while True:  # never returns\n"
                       "        pass\n", encoding="utf-8")
    grade = grade_path(config, student).grade
    lost = {name for name, (points, maximum) in _by_part(grade).items() if points < maximum}
    assert lost == {"train"}, _failures(grade)
    kinds = {test.kind for part in grade.parts if part.name == "train" for test in part.tests}
    assert kinds and kinds <= {KIND_TIME_LIMIT, KIND_TIME_BUDGET}, kinds


def test_most_mlp_numpy_planted_bugs_get_a_specific_diagnosis():
    """Issue 10: at least 80% of the planted bugs are diagnosed (each one proved above)."""
    diagnoses = _diagnoses("mlp_numpy")
    undiagnosed = sorted(name for name, mistake in diagnoses.items() if not mistake)
    assert len(diagnoses) - len(undiagnosed) >= 0.8 * len(diagnoses), (
        f"undiagnosed planted bugs: {undiagnosed}")


@pytest.mark.parametrize("assignment, variant", _cases("variants"))
def test_correct_variant_scores_full_marks(assignment, variant):
    config = _config(assignment)
    grade = grade_path(config, config.root / "samples" / "variants" / variant).grade
    assert grade.score == config.total_points, _failures(grade)


# -- hostile mlp_numpy submissions -------------------------------------------------------------

GRADIENT_PARTS = ("fc_backward", "relu_backward", "softmax_backward", "cross_entropy_backward",
                  "model_gradients")
MLP = pytest.param("mlp_numpy", marks=_marks("mlp_numpy"))


def _case(grade: Grade, name: str):
    return next(test for part in grade.parts for test in part.tests if test.case == name)


@pytest.mark.parametrize("assignment", [MLP])
def test_a_submission_with_no_learning_in_it_earns_nothing(assignment, tmp_path):
    """Through the real CLI: `grader autograde` on constant forwards and zero backwards."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "grader", "autograde", assignment, str(FILES / "mlp_constant"),
         "--out", str(tmp_path / "graded"), "--db", f"sqlite:///{tmp_path / 'gradebook.db'}",
         "--lang", "en"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    results = json.loads((tmp_path / "graded" / "mlp_constant" / "results.json").read_text())
    earning = {test["name"]: test["score"] for test in results["tests"] if test["score"] > 0}
    assert results["score"] == 0 and not earning, (
        f"constant forwards and zero backwards earn points: {earning}")
    outputs = {part: "\n".join(test["output"] for test in results["tests"]
                               if test["name"].startswith(f"{part}: "))
               for part in (*GRADIENT_PARTS, "shapes")}
    for part in GRADIENT_PARTS:
        assert "your forward does not depend on" in outputs[part], outputs[part]
    assert "`Relu.backward` returned all zeros" in outputs["relu_backward"]
    assert "does not depend on W1 here" in outputs["model_gradients"]
    assert "returned the same output for" in outputs["shapes"]
    assert "every entry equal to 0" in outputs["shapes"]


@pytest.mark.parametrize("assignment", [MLP])
def test_test_labels_copied_in_dataset_order_earn_no_accuracy_points(assignment, tmp_path):
    config = _config(assignment)
    labels = load_dataset(None).y_test
    source = (FILES / "mlp_copied_labels" / "mlp_numpy.py").read_text(encoding="utf-8")
    student = tmp_path / "mlp_numpy.py"
    student.write_text(source.replace("__TEST_LABELS__", "".join(map(str, labels))),
                       encoding="utf-8")
    # The attack is real: the submission's own predictions on the test split, in the
    # dataset's order, are the labels themselves.
    namespace: dict = {}
    exec(compile(student.read_text(encoding="utf-8"), str(student), "exec"), namespace)  # noqa: S102
    model = namespace["FullConnectionModel"](100, rng=0)
    n = int(config.budgets["test_images"])
    model.forward(np.zeros((n, 784)), np.zeros((n, 10)))
    assert (np.argmax(model.h2_soft, axis=1) == labels[:n]).all()
    grade = grade_path(config, student).grade
    threshold = _case(grade, "test_train_reaches_threshold")
    assert threshold.fraction == 0, threshold.message
    assert "reached test accuracy 0." in threshold.message, threshold.message


def test_every_tf_basics_planted_bug_names_its_diagnosis():
    """Issue 10: each tf_basics bug lists the mistake it must be diagnosed as (bugs.toml);
    test_planted_bug_loses_only_its_parts proves each one through the real pipeline."""
    undiagnosed = sorted(name for name, mistake in _diagnoses("tf_basics").items()
                         if not mistake)
    assert not undiagnosed, f"undiagnosed tf_basics planted bugs: {undiagnosed}"


@pytest.mark.parametrize("assignment", [pytest.param("tf_basics", marks=_marks("tf_basics"))])
def test_a_tf_gradient_that_always_returns_zeros_earns_nothing_for_it(assignment, tmp_path):
    config = _config(assignment)
    bug = next(bug for bug in load_bugs(config) if bug.name == "tf_gradient_always_zero")
    grade = grade_path(config, write_bug(config, bug, tmp_path / bug.name)).grade
    points, _ = _by_part(grade)["tf_gradient"]
    assert points == 0, _failures(grade)
    constant = _case(grade, "test_tf_gradient[constant]")
    assert "for f = square at the same x" in constant.message, constant.message


@pytest.mark.parametrize("assignment", [MLP])
def test_diverged_weights_lose_the_train_part_only_and_say_so(assignment, tmp_path):
    config = _config(assignment)
    diverged = PlantedBug("diverged_weights", ("train",), ((
        "\n    return best_model\n",
        "\n    best_model.W2 = best_model.W2 * np.nan  # training diverged\n"
        "    return best_model\n"),), config.student_files[0])
    grade = grade_path(config, write_bug(config, diverged, tmp_path / "diverged")).grade
    lost = {name for name, (points, maximum) in _by_part(grade).items() if points < maximum}
    assert lost == {"train"}, _failures(grade)
    assert _by_part(grade)["train"][0] == 0, _failures(grade)
    threshold = _case(grade, "test_train_reaches_threshold")
    assert "`W2` holds 1000 NaN or infinite values; expected finite weights" in (
        threshold.message), threshold.message


@cache
def _hidden_suite(assignment: str):
    spec = importlib.util.spec_from_file_location(
        f"_{assignment}_hidden", REPO / "autograde_tests" / assignment / "test_hidden.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("seed", range(3))
def test_the_search_data_make_the_validation_choice_unique(seed):
    """Per case, the right size is best on validation by a wide margin; where learning hurts
    validation it is also worst on the training data; never first or last in the list."""
    from reference import mlp_numpy as ref

    suite = _hidden_suite("mlp_numpy")
    for case, (dims, best) in suite.SEARCH_CASES.items():
        x, y, xv, yv, _ = suite._search_data(case)
        train_accuracy, validation_accuracy = {}, {}
        for size in dims:
            model = ref.train(x, y, xv, yv, latent_dims=(size,), epochs=suite.SEARCH_EPOCHS,
                              seed=seed, verbose=False)
            train_accuracy[size] = ref.test(model, x, y)
            validation_accuracy[size] = ref.test(model, xv, yv)
        others = [size for size in dims if size != best]
        assert best not in (dims[0], dims[-1]), case
        margin = 0.03 if case == "learning_hurts" else 0.5
        assert all(validation_accuracy[best] >= validation_accuracy[size] + margin
                   for size in others), (case, validation_accuracy)
        if case == "learning_hurts":
            assert all(train_accuracy[size] >= 0.98 > train_accuracy[best] for size in others), (
                train_accuracy)
        else:
            assert min(dims) != best  # keeping the smallest size is wrong here
            assert validation_accuracy[best] >= suite.SEARCH_TRAINED_ACCURACY


COUNTS = ("\n    return float(np.mean(predictions == truth))\n",
          "\n    return float(np.sum(predictions == truth))\n")


@pytest.mark.parametrize("assignment", [MLP])
def test_a_wrong_compute_accuracy_is_charged_once_and_named_where_it_is_used(assignment,
                                                                            tmp_path):
    """Error carried forward: a step and `test` that call the student's own counting
    `computeAccuracy` keep their points, and say where the error is."""
    config = _config(assignment)
    bug = next(bug for bug in load_bugs(config) if bug.name == "accuracy_counts_not_fraction")
    grade = grade_path(config, write_bug(config, bug, tmp_path / "counts")).grade
    parts = _by_part(grade)
    assert parts["train_one_step"][0] == parts["train_one_step"][1], _failures(grade)
    assert parts["test"][0] == parts["test"][1], _failures(grade)
    for case in ("test_train_one_step[0.05]", "test_test_returns_accuracy"):
        message = _case(grade, case).message
        assert "the error is in `computeAccuracy` (see the accuracy part)" in message, message


@pytest.mark.parametrize("assignment", [MLP])
def test_an_accuracy_unlike_the_students_own_compute_accuracy_is_still_charged(assignment,
                                                                              tmp_path):
    """Attack: a wrong `computeAccuracy` does not excuse a step or `test` that returns
    something else (a constant here): only an answer equal to it is carried forward."""
    config = _config(assignment)
    liar = PlantedBug("constant_accuracy", ("accuracy", "train_one_step", "test"), (
        COUNTS,
        ("\n    return model.loss, computeAccuracy(model.h2_soft, y)\n",
         "\n    return model.loss, 0.5\n"),
        ("\n    model.forward(x, y)\n    return computeAccuracy(model.h2_soft, y)\n",
         "\n    model.forward(x, y)\n    return 7.0\n")), config.student_files[0])
    grade = grade_path(config, write_bug(config, liar, tmp_path / "liar")).grade
    lost = {name for name, (points, maximum) in _by_part(grade).items() if points < maximum}
    assert {"accuracy", "train_one_step", "test"} <= lost, _failures(grade)
    assert "the batch accuracy" in _case(grade, "test_train_one_step[0.05]").message


HE_FIND = ("\n        self.W1 = rng.normal(loc=0, scale=1, size=[fan_in, latent_dims]) / "
           "np.sqrt(fan_in / 2)\n")


@pytest.mark.parametrize("assignment", [MLP])
@pytest.mark.parametrize("value", ["np.nan", "1e308"])
def test_hostile_initial_weights_fail_he_init_as_a_wrong_result(assignment, value, tmp_path):
    """Attack: a W1 of NaN or 1e308 reaches the std the He check (and its diagnosis) reads;
    it fails he_init as the student's wrong result, never as a pass or a grader error."""
    from grader.results.records import KIND_GRADER_ERROR, KIND_WRONG

    config = _config(assignment)
    hostile = PlantedBug(f"w1_{value}", ("he_init",), ((
        HE_FIND, f"\n        self.W1 = np.full([fan_in, latent_dims], {value})\n"),),
        config.student_files[0])
    grade = grade_path(config, write_bug(config, hostile, tmp_path / "hostile")).grade
    he = _case(grade, "test_he_initialisation")
    assert he.fraction == 0 and he.kind == KIND_WRONG, he.message
    assert "`FullConnectionModel(64).W1` has" in he.message, he.message
    assert not [t.case for p in grade.parts for t in p.tests if t.kind == KIND_GRADER_ERROR]

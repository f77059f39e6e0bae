"""The hidden suites of `keras_mlp`, `keras_cnn` and `alexnet` grade what they should.

Every submission goes through the real pipeline (intake, sandboxed runtime with
TensorFlow, pytest, scoring) on the CPU budget of each assignment. Golden cases live
in assignments/<assignment>/samples/ (see tests/test_hidden_suites.py for the rules):

- the reference scores full marks and the released skeleton scores zero on every part;
- each planted bug loses points in exactly the parts `bugs.toml` lists for it;
- each correct variant in another style scores full marks;
- each hostile submission in tests/files/keras_hostile/ is contained: it earns no points
  where it should not, and the failure says why. Since issue 9 no grader code runs in
  the student's process: a model is graded from its config (plain data), trained and run
  in the grader's evaluator on a private split, so patching Keras, `predict`, `fit` or
  the grader's old tools in the student's process changes nothing, memorised labels earn
  nothing, and a Lambda or custom layer is refused with a reason.

Each grading starts a runtime that imports TensorFlow and trains a model (3 to 20 s on
2 cores), so every test here is slow. By default the references, the skeletons, the samples
in `QUICK` and the quick hostile cases are graded; `NN_GRADER_ALL_KERAS_SAMPLES=1` grades
every planted bug and variant (about 10 minutes on 2 cores), including the multi-gigabyte
model, as `python bench/validity.py` does for the matrix. Each planted bug must also carry
its `diagnosis` (bugs.toml) as data, and a correct variant none.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import tomllib

from grader import data
from grader.config import AssignmentConfig, load_assignment
from grader.grading.run import grade_path
from grader.release.strip import strip_file
from grader.results.records import Grade
from grader.samples import PlantedBug, load_bugs, variants, write_bug

REPO = Path(__file__).resolve().parents[1]
HOSTILE = Path(__file__).resolve().parent / "files" / "keras_hostile"
ASSIGNMENTS = ("keras_mlp", "keras_cnn", "alexnet")
ALL_SAMPLES = os.environ.get("NN_GRADER_ALL_KERAS_SAMPLES") == "1"
# The samples `make test` grades (10 to 20 s each on 2 cores): one per kind of mistake the
# suites must catch and diagnose (layers, compile, Keras 2 spellings, data, pipeline) and a
# correct variant per style. Every sample is graded by `python bench/validity.py` (the matrix
# in bench/results/validity.md) and here with NN_GRADER_ALL_KERAS_SAMPLES=1.
QUICK = {
    "keras_mlp": {"softmax_forgotten", "functional_sparse_loss", "sgd_lr_keras2",
                  "keras2_habits"},
    "keras_cnn": {"padding_valid", "conv_keras1_positional", "flatten_forgotten",
                  "separate_activations"},
    # alexnet's samples take about 40 s each: its reference is graded here, its bugs and
    # variants with NN_GRADER_ALL_KERAS_SAMPLES=1 and in bench/validity.py
    "alexnet": set(),
}
SLOW_HOSTILE = pytest.mark.skipif(not ALL_SAMPLES, reason="30 to 60 s; "
                                  "NN_GRADER_ALL_KERAS_SAMPLES=1 runs it")
DEVICE = "cpu"  # budgets and calibrations of the CPU, also on a machine with a GPU

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(data.FASHION_MNIST not in data.available(), reason="Fashion-MNIST is "
                       "not installed (apt-get install dataset-fashion-mnist); the committed "
                       "calibrations are for it"),
]


@pytest.fixture(autouse=True)
def _cpu_budgets(monkeypatch):
    monkeypatch.setenv("GRADER_DEVICE", DEVICE)


def _config(assignment: str) -> AssignmentConfig:
    return load_assignment(REPO / "assignments" / assignment / "assignment.toml")


def _samples(assignment: str) -> Path:
    return REPO / "assignments" / assignment / "samples"


def _bugs(assignment: str) -> dict[str, PlantedBug]:
    return {bug.name: bug for bug in load_bugs(_config(assignment))}


def _diagnoses(assignment: str) -> dict[str, str]:
    """Each planted bug's `diagnosis` in bugs.toml: the Mistake.id its failure must name."""
    table = tomllib.loads((_samples(assignment) / "bugs.toml").read_text(encoding="utf-8"))
    return {name: entry.get("diagnosis", "") for name, entry in table.items()}


def _selected(assignment: str, names) -> list:
    return [pytest.param(assignment, name, id=f"{assignment}-{name}") for name in sorted(names)
            if ALL_SAMPLES or name in QUICK[assignment]]


def _bug_cases() -> list:
    return [case for assignment in ASSIGNMENTS
            for case in _selected(assignment, _bugs(assignment))]


def _variant_cases() -> list:
    return [case for assignment in ASSIGNMENTS for case in _selected(
        assignment, (p.name for p in variants(_config(assignment))))]


def _by_part(grade: Grade) -> dict[str, tuple[float, float]]:
    return {part.name: (part.points, part.max_points) for part in grade.parts}


def _failures(grade: Grade) -> str:
    return "\n".join(f"{part.name}: {test.case}: {test.message.strip()[-300:]}"
                     for part in grade.parts for test in part.tests
                     if test.fraction < 1 and test.message)


def _messages(grade: Grade, part: str) -> str:
    return "\n".join(test.message for p in grade.parts if p.name == part for test in p.tests)


def _grade(assignment: str, path: Path) -> Grade:
    return grade_path(_config(assignment), path, dataset_name="fashion_mnist").grade


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_reference_scores_full_marks(assignment, tmp_path):
    config = _config(assignment)
    student = tmp_path / config.student_files[0]
    student.write_bytes((REPO / "reference" / student.name).read_bytes())
    grade = _grade(assignment, student)
    assert grade.score == config.total_points, _failures(grade)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_skeleton_scores_zero_on_every_part(assignment, tmp_path):
    config = _config(assignment)
    student = tmp_path / config.student_files[0]
    student.write_text(strip_file(REPO / "reference" / student.name).text, encoding="utf-8")
    grade = _grade(assignment, student)
    earning = {name: points for name, (points, _) in _by_part(grade).items() if points > 0}
    assert not earning, f"the skeleton earns points: {earning}"


@pytest.mark.parametrize("assignment, case", _bug_cases())
def test_planted_bug_loses_only_its_parts(assignment, case, tmp_path):
    config = _config(assignment)
    bug = _bugs(assignment)[case]
    expected = set(bug.parts)
    unknown = expected - {part.name for part in config.parts}
    assert not unknown, f"bugs.toml names parts that do not exist: {sorted(unknown)}"
    grade = _grade(assignment, write_bug(config, bug, tmp_path / case))
    lost = {name for name, (points, maximum) in _by_part(grade).items() if points < maximum}
    assert lost == expected, (
        f"{assignment}/{case}: lost points in {sorted(lost)}; expected {sorted(expected)}\n"
        + _failures(grade))
    # Issue 10: the outcome carries the known mistake's id as data (TestOutcome.diagnosis).
    diagnosis = _diagnoses(assignment).get(case, "")
    named = {test.diagnosis for part in grade.parts if part.name in expected
             for test in part.tests if test.fraction < 1}
    assert diagnosis and diagnosis in named, (
        f"{assignment}/{case}: expected a failing test to be diagnosed as {diagnosis!r}; the "
        f"diagnoses were {sorted(named - {''})}\n" + _failures(grade))


@pytest.mark.parametrize("assignment, variant", _variant_cases())
def test_correct_variant_scores_full_marks(assignment, variant):
    config = _config(assignment)
    grade = _grade(assignment, _samples(assignment) / "variants" / variant)
    assert grade.score == config.total_points, _failures(grade)
    diagnosed = [test.case for part in grade.parts for test in part.tests if test.diagnosis]
    assert not diagnosed, f"a correct variant carries diagnoses: {diagnosed}"


# -- hostile submissions --------------------------------------------------------------------

def test_a_patched_predict_is_never_what_is_graded():
    """Its model is the lecture's CNN with a `predict` that answers class 0: the grader
    trains and runs the CNN its config declares, so it earns what that CNN earns."""
    grade = _grade("keras_cnn", HOSTILE / "constant_predict")
    assert grade.score == _config("keras_cnn").total_points, _failures(grade)


def test_reading_the_test_labels_fails_in_the_sandbox():
    grade = _grade("keras_cnn", HOSTILE / "reads_test_labels")
    points, _ = _by_part(grade)["accuracy"]
    assert points == 0, _failures(grade)
    message = _messages(grade, "accuracy")
    assert "t10k-labels-idx1-ubyte.gz" in message and "FileNotFoundError" in message, message


def test_the_forged_one_layer_model_gets_what_its_config_deserves():
    """Issue 9: replacing the grader's tools and patching Keras in the student's process
    scored 100/100 with one untrained layer; now its config is what is graded."""
    grade = _grade("keras_cnn", HOSTILE / "forged_model")
    parts = _by_part(grade)
    # Missing layers cost the kinds test, not the settings of layers that are not there.
    architecture = {"layers", "dropout"}  # the parameter count is a pointless preview
    lost = {name for name, (points, maximum) in parts.items() if points < maximum}
    assert architecture <= lost, _failures(grade)
    assert all(parts[name][0] == 0 for name in architecture), _failures(grade)
    assert "has 7,850 parameters; expected 82,934" in _messages(grade, "parameters")
    assert "expected Conv2D" in _messages(grade, "layers") or \
        "missing" in _messages(grade, "layers"), _failures(grade)
    assert grade.score <= grade.max_score - sum(parts[name][1] for name in architecture)


def test_memorised_labels_in_dataset_order_earn_no_accuracy(tmp_path):
    """A model that cannot learn (learning rate 0) whose `predict` answers the public test
    labels in dataset order: perfect under the old protocol, chance now."""
    labels = data.load("fashion_mnist").y_test
    source = (REPO / "reference" / "keras_cnn.py").read_text(encoding="utf-8")
    source = source.replace("model = keras.Sequential(", "model = Memorised(", 1)
    source = source.replace('model.compile(optimizer="adam"', 'model.compile(optimizer='
                            'keras.optimizers.SGD(learning_rate=0.0)', 1)
    source = source.replace("def build_cnn():", f"""LABELS = {labels.tolist()!r}


class Memorised(keras.Sequential):
    def predict(self, x, *args, **kwargs):
        return np.eye(NUM_CLASSES, dtype="float32")[np.asarray(LABELS[: len(x)])]


def build_cnn():""", 1)
    student = tmp_path / "keras_cnn.py"
    student.write_text(source, encoding="utf-8")
    grade = _grade("keras_cnn", student)
    points, _ = _by_part(grade)["accuracy"]
    assert points == 0, _failures(grade)
    assert "reached test accuracy 0.0" in _messages(grade, "accuracy") or \
        "reached test accuracy 0.1" in _messages(grade, "accuracy"), _failures(grade)


def test_a_lambda_layer_is_refused_with_a_reason_and_costs_only_what_it_breaks():
    grade = _grade("keras_cnn", HOSTILE / "lambda_layer")
    lost = {name for name, (points, maximum) in _by_part(grade).items() if points < maximum}
    assert lost == {"layers", "behaviour", "accuracy"}, _failures(grade)
    for part in ("parameters", "accuracy"):
        assert "a Lambda layer holds Python code" in _messages(grade, part), _failures(grade)


def test_a_custom_layer_is_refused_with_a_reason():
    """`SlowLayer` would sleep in every training batch; the evaluator rebuilds only Keras's
    own layers, so it never runs there (student code never runs in training)."""
    grade = _grade("keras_cnn", HOSTILE / "sleeps_in_call")
    lost = {name for name, (points, maximum) in _by_part(grade).items() if points < maximum}
    assert lost == {"layers", "behaviour", "accuracy"}, _failures(grade)
    assert "the grader does not rebuild 'SlowLayer' layers" in _messages(grade, "accuracy"), (
        _failures(grade))


@SLOW_HOSTILE
def test_a_multi_gigabyte_model_fails_only_its_own_parts():
    config = _config("keras_mlp")
    grade = _grade("keras_mlp", HOSTILE / "huge_model")
    parts = _by_part(grade)
    functional = {name for name, (_, maximum) in parts.items()
                  if name.startswith("functional_") and maximum > 0}
    lost = {name for name, (points, maximum) in parts.items() if points < maximum}
    assert lost == functional, _failures(grade)
    assert all(parts[name][0] == 0 for name in functional), _failures(grade)
    message = "\n".join(_messages(grade, name) for name in sorted(parts)
                        if name.startswith("functional_"))
    assert "memory" in message.lower(), message
    assert grade.score == config.total_points - sum(parts[name][1] for name in functional)


def test_a_missing_softmax_is_named_and_the_optimizer_is_not_blamed(tmp_path):
    """Issue 10: an MLP without softmax failed "one training step lowers the loss" with a
    message blaming the optimizer, learning rate and loss."""
    bug = _bugs("keras_mlp")["softmax_forgotten"]
    grade = _grade("keras_mlp", write_bug(_config("keras_mlp"), bug, tmp_path / bug.name))
    behaviour = next(part for part in grade.parts if part.name == "sequential_behaviour")
    failed = [test for test in behaviour.tests if test.fraction < 1]
    assert failed, _failures(grade)
    for test in failed:
        assert "softmax" in test.message and "optimizer" not in test.message, test.message
    step = next(test for test in behaviour.tests
                if test.name == "test_sequential_training_step_lowers_loss")
    assert step.fraction == 1 or step.diagnosis == "keras_missing_softmax", step.message


def test_hostile_config_values_are_wrong_results_never_grader_errors(tmp_path):
    """Issue 10: a model whose config claims a NaN kernel, a negative stride, a 31-digit
    pool, unicode padding and filters as text gets clean wrong results (its diagnoses
    included), never a grader error or a crash in the diagnosis code."""
    source = (REPO / "reference" / "keras_cnn.py").read_text(encoding="utf-8")
    source = source.replace("model = keras.Sequential(", "model = Hostile(", 1)
    source = source.replace("def build_cnn():", '''class Hostile(keras.Sequential):
    def get_config(self):
        config = super().get_config()
        values = ([float("nan"), 5], [-3, -3], "\\uff53\\uff41\\uff4d\\uff45", "\\u4e94")
        for layer, value in zip(config["layers"][1:], values):
            for key in ("kernel_size", "strides", "padding", "filters", "pool_size"):
                if key in layer["config"]:
                    layer["config"][key] = value
        config["layers"][2]["config"]["pool_size"] = [10**30, 2]
        return config


def build_cnn():''', 1)
    student = tmp_path / "keras_cnn.py"
    student.write_text(source, encoding="utf-8")
    grade = _grade("keras_cnn", student)
    kinds = {test.case: test.kind for part in grade.parts for test in part.tests}
    assert "grader error" not in kinds.values(), _failures(grade)
    lost = {name for name, (points, maximum) in _by_part(grade).items() if points < maximum}
    assert {"layers", "kernels_pools", "padding"} & lost, _failures(grade)
    assert all(kinds[test.case] == "wrong result" for part in grade.parts
               if part.name in lost for test in part.tests if test.fraction < 1), kinds

"""Hidden checks for `mlp_numpy`: values against the reference, and training under a budget.

Expected values are computed here, in the grader's process, by `reference.mlp_numpy`
from the same inputs the student's code receives. Accuracy is judged from plain data:
`train` runs in the student runtime on the training split, its model's weights come
back as arrays, and the grader's own forward pass (`grader.checks.mlp_weights`)
classifies a private split of the test images (a subset in an order secret to the
runtime); test images and labels never enter the student's process. The latent_dims
search is checked on data built so that the best size on the validation split is
neither the first, the last, nor the best on the training data.
"""

from __future__ import annotations

import numpy as np
import pytest
from babel.lists import format_list

import reference.mlp_numpy as ref
from grader.calibration import NoCalibration, threshold_for
from grader.checks import mlp_diagnoses
from grader.checks.accuracy import score_accuracy
from grader.checks.arrays import as_array, as_number, assert_close, assert_number, assert_shape
from grader.checks.diagnose import Diagnosed, Mistake, fail, matching_mistake
from grader.checks.mlp_composition import Composition, agrees, compose
from grader.checks.mlp_weights import (
    budget_data,
    predict,
    train_under_budget,
    trained_weights,
)
from grader.grading.fixtures import course_messages
from grader.i18n import babel_locale
from grader.results.plugin import describe_exception

SEEDS = (0, 1, 2)
INPUT_DIMS = ref.INPUT_DIMS
NUM_CLASSES = ref.NUM_CLASSES
MODEL_BATCH = 5
MODEL_LATENT = 7
HUGE_LOGIT = 1000.0  # exp(1000) overflows float64: only a shifted softmax survives
HE_STD_TOLERANCE = 0.15  # relative; the sample std of >= 640 normal draws is within ~3%
HE_MEAN_TOLERANCE = 0.2  # in units of the expected std
ACCURACY_EXACT = 1e-12  # an accuracy is a ratio of counts: it matches exactly
LOSS_RTOL = 1e-6
HE_LATENT = 64
# The search check: one epoch on SEARCH_IMAGES synthetic images, where class c is a bright
# band of rows. Every size of 40 or more learns the task perfectly in that epoch; sizes 1
# and 2 cannot (no output bias: a 1-unit network predicts at most two classes). Two cases:
# - "learning_hurts": the validation labels are never the true class, so learning costs
#   validation accuracy. The 1-unit model, second in the list, is best on validation
#   (about 0.1 against 0.0); the others are best on the training data, first and last.
# - "learning_helps": true validation labels; the 40-unit model, in the middle, is best,
#   so always keeping the smallest size fails too. Its weights must also classify the
#   validation images (grader's forward pass): the model returned is the one trained.
SEARCH_CASES = {"learning_hurts": ((40, 1, 100, 60), 1), "learning_helps": ((1, 40, 2), 40)}

_, _n = course_messages(__file__)  # this suite's messages, in the course's catalog
SEARCH_IMAGES = 1000
SEARCH_EPOCHS = 1
SEARCH_SEED = 2026  # the synthetic images and labels: the same for every submission
SEARCH_NOISE = 76  # background pixels uniform in 0..SEARCH_NOISE; bands are 255
# An untrained model classifies ~0.1; the correct variants' trained 40-unit models, over 80
# unseeded initialisations, 0.88 to 1.0 (median 1.0): 0.9 failed a correct variant 1 in 60.
SEARCH_TRAINED_ACCURACY = 0.5
CONSECUTIVE_STEPS = 4  # a learning rate that changes between calls shows by the second
CONSECUTIVE_RATE = 0.1
CURVE_EPOCHS = 1  # the report's learning curve replays the budget's first epoch (~2 s)


def _close(received, expected, what: str, mistakes=(), **tolerances) -> None:
    """`assert_close`, naming the known mistake a wrong answer matches."""
    try:
        assert_close(received, expected, what, **tolerances)
    except AssertionError as error:
        fail(str(error), received, mistakes)


def _number(received, expected: float, what: str, mistakes=(), *, tolerance: float) -> None:
    """`assert_number`, naming the known mistake a wrong number matches."""
    try:
        assert_number(received, expected, what, tolerance=tolerance)
    except AssertionError as error:
        try:  # a one-element array is compared as the number it holds
            value = as_number(received, what)
        except AssertionError:
            value = received
        fail(str(error), value, mistakes)


def _non_finite(received) -> bool:
    try:
        return not np.all(np.isfinite(np.asarray(received, dtype=np.float64)))
    except (TypeError, ValueError):
        return False


def _unless_non_finite(check, received, mistake: Mistake) -> None:
    """Runs `check`; a failure whose answer holds nan or inf is diagnosed as `mistake`."""
    try:
        check()
    except AssertionError as error:
        if _non_finite(received) and not isinstance(error, Diagnosed):
            raise Diagnosed(str(error), mistake) from None
        raise


def _wrong_components(composition: Composition) -> list[str]:
    """The student's components whose outputs differ from the reference's on the same inputs.

    Each is asked with the inputs the student's own composition gave it, so one wrong layer
    is named alone, not the layers after it.
    """
    st, ins = composition.stages, composition.inputs
    see = "{component} (see {part})"  # the msgid below, one per component and its part
    checks = {_("{component} (see {part})", component="`FullConnectionLayer.forward`",
                part="fc_forward"): (lambda: ins["h1"][0] @ ins["h1"][1], "h1"),
              _(see, component="`Relu.forward`", part="relu_forward"): (
                  lambda: ref.Relu().forward(ins["h1_relu"][0]), "h1_relu"),
              _(see, component="`Softmax.forward`", part="softmax_forward"): (
                  lambda: ref.Softmax().forward(ins["h2_soft"][0]), "h2_soft"),
              _(see, component="`CrossEntropy.backward`", part="cross_entropy_backward"): (
                  lambda: -ins["loss_grad"][1] / (ins["loss_grad"][0] + ref.EPSILON)
                  / len(ins["loss_grad"][0]), "loss_grad"),
              _(see, component="`Softmax.backward`", part="softmax_backward"): (
                  lambda: _reference_backward(ref.Softmax(), *ins["h2_soft_grad"]),
                  "h2_soft_grad"),
              _(see, component="`FullConnectionLayer.backward`", part="fc_backward"): (
                  lambda: ins["W2_grad"][0].T @ ins["W2_grad"][2], "W2_grad"),
              _(see, component="`Relu.backward`", part="relu_backward"): (
                  lambda: _reference_backward(ref.Relu(), *ins["h1_relu_grad"]), "h1_relu_grad")}
    return [name for name, (expected, stage) in checks.items()
            if not agrees(st[stage], expected())]


def _reference_backward(layer, forward_input: np.ndarray, upstream: np.ndarray) -> np.ndarray:
    layer.forward(forward_input)
    return layer.backward(upstream)


def _carried_forward(credit, composition: Composition | None, received: dict,
                     what: str) -> bool:
    """Whether the model's values equal the composition of the student's own layers.

    When they do (and the composition learns something), the model check passes and its
    note names the wrong component: that error is charged in its own part.
    """
    if composition is None or not composition.learns:
        return False
    if not all(agrees(value, composition.stages[name]) for name, value in received.items()):
        return False
    wrong = _wrong_components(composition)
    credit.note(_("{what}: your model composes your layers correctly; the error is in "
                  "{components}", what=what, components=_components(wrong)))
    return True


def _accuracy_carried_forward(student, credit, received, expected: float,
                              probabilities: np.ndarray, y: np.ndarray, what: str) -> bool:
    """Whether a wrong accuracy is the student's own `computeAccuracy` on the right inputs.

    A step or `test` that calls a wrong `computeAccuracy` is charged in the accuracy part
    only (error carried forward): its answer is compared with what the student's own
    `computeAccuracy` returns for the model's probabilities (N, 10), computed by the
    reference here, and the labels y (N, 10). A `computeAccuracy` that is right, fails or
    returns something that is not a number carries nothing.
    """
    try:
        own = as_number(student.mlp_numpy.computeAccuracy(probabilities, y),
                        "`computeAccuracy`")
        answer = as_number(received, what)
    except Exception:  # noqa: BLE001 - judged against the reference alone
        return False
    if agrees(own, expected, rtol=0, atol=ACCURACY_EXACT) or not agrees(
            answer, own, rtol=0, atol=ACCURACY_EXACT):
        return False
    credit.note(_("{what}: {own} is what your `computeAccuracy` returns for these "
                  "probabilities and labels (expected {expected}); the error is in "
                  "`computeAccuracy` (see the accuracy part)", what=what, own=f"{own:g}",
                  expected=f"{expected:g}"))
    return True


def _components(wrong: list[str]) -> str:
    """The wrong components as a list in the reader's language, or "one of your layers"."""
    return format_list(wrong, locale=babel_locale()) if wrong else _("one of your layers")


def _one_hot(labels: np.ndarray) -> np.ndarray:
    return np.eye(NUM_CLASSES)[labels]


def _pair(received, what: str):
    if not isinstance(received, (tuple, list)) or len(received) != 2:
        raise AssertionError(_("{what} returned {type}; expected a pair", what=what,
                               type=type(received).__name__))
    return received


def _model_inputs(seed: int):
    """Images, one-hot labels and weights for a tiny model, identical on both sides."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 1.0, size=(MODEL_BATCH, INPUT_DIMS))
    y = _one_hot(rng.integers(0, NUM_CLASSES, size=MODEL_BATCH))
    w1 = rng.normal(size=(INPUT_DIMS + 1, MODEL_LATENT)) / np.sqrt(INPUT_DIMS / 2)
    w2 = rng.normal(size=(MODEL_LATENT, NUM_CLASSES)) / np.sqrt(MODEL_LATENT / 2)
    return x, y, w1, w2


def _reference_model(w1: np.ndarray, w2: np.ndarray) -> ref.FullConnectionModel:
    model = ref.FullConnectionModel(w2.shape[0], rng=0)
    model.W1, model.W2 = w1.copy(), w2.copy()
    return model


def _student_model(student, w1: np.ndarray, w2: np.ndarray):
    model = student.mlp_numpy.FullConnectionModel(w2.shape[0])
    model.W1, model.W2 = w1, w2
    return model




# -- layers: forward against the reference --------------------------------------------

@pytest.mark.parametrize("n, d, m", [(3, 4, 5), (1, 6, 2), (7, 3, 3)])
def test_fc_forward_matches_reference(student, n, d, m):
    rng = np.random.default_rng(n * 100 + d * 10 + m)
    x, w = rng.normal(size=(n, d)), rng.normal(size=(d, m))
    assert_close(student.mlp_numpy.FullConnectionLayer().forward(x, w),
                 ref.FullConnectionLayer().forward(x, w),
                 _("`FullConnectionLayer.forward(X, W)` with X {x_shape} and W {w_shape}",
                   x_shape=x.shape, w_shape=w.shape))


@pytest.mark.parametrize("seed", SEEDS)
def test_relu_forward_matches_reference(student, seed):
    x = np.random.default_rng(seed).normal(size=(4, 6))
    assert_close(student.mlp_numpy.Relu().forward(x), ref.Relu().forward(x),
                 _("`Relu.forward(x)` with x of shape {shape}", shape=x.shape))


@pytest.mark.parametrize("shape", [(3, 10), (1, 10), (6, 4)])
def test_softmax_forward_matches_reference(student, shape):
    x = np.random.default_rng(sum(shape)).normal(scale=3.0, size=shape)
    _close(student.mlp_numpy.Softmax().forward(x), ref.Softmax().forward(x),
           _("`Softmax.forward(x)` with x of shape {shape}", shape=shape),
           mlp_diagnoses.softmax_forward(x))


def test_softmax_forward_huge_logits(student):
    x = np.array([[HUGE_LOGIT, 0.0, -HUGE_LOGIT], [-HUGE_LOGIT, -HUGE_LOGIT, -HUGE_LOGIT],
                  [HUGE_LOGIT, HUGE_LOGIT, 0.0]])
    received = student.mlp_numpy.Softmax().forward(x)
    _unless_non_finite(lambda: _close(
        received, ref.Softmax().forward(x), _("`Softmax.forward(x)` with logits of ±1000 "
                                              "(subtract each row's maximum before exp)"),
        mlp_diagnoses.softmax_forward(x)),
        received, mlp_diagnoses.SOFTMAX_OVERFLOW)


@pytest.mark.parametrize("seed", SEEDS)
def test_cross_entropy_forward_matches_reference(student, seed):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.05, 1.0, size=(6, NUM_CLASSES))
    p /= p.sum(axis=1, keepdims=True)
    y = _one_hot(rng.integers(0, NUM_CLASSES, size=6))
    _number(student.mlp_numpy.CrossEntropy().forward(p, y),
            float(ref.CrossEntropy().forward(p, y)),
            _("`CrossEntropy.forward(p, y)` (the batch mean) with p of shape (6, 10)"),
            mlp_diagnoses.cross_entropy_forward(p, y), tolerance=LOSS_RTOL)


def test_cross_entropy_forward_exact_zeros(student):
    """Exact zeros in p (a softmax that underflowed) must leave the loss finite.

    Two inputs: probabilities with exact zeros, on the labelled class and elsewhere; and a
    correct softmax of logits of ±1000 (exact zeros where exp underflows) fed to the student's
    cross-entropy. The correct softmax, not the student's: an unstable softmax is charged to
    softmax_forward alone.
    """
    p = np.array([[0.0, 1.0, 0.0], [0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    y = np.eye(3)[[0, 1, 2]]
    received = student.mlp_numpy.CrossEntropy().forward(p, y)
    _unless_non_finite(lambda: assert_number(
        received, float(ref.CrossEntropy().forward(p, y)),
        _("`CrossEntropy.forward(p, y)` with exact zeros in p, one on a labelled class "
          "(log(p + EPSILON) keeps log(0) finite; 0 * log(0) is nan)"), tolerance=LOSS_RTOL),
        received, mlp_diagnoses.LOG_OF_ZERO)
    logits = np.array([[HUGE_LOGIT, 0.0, -HUGE_LOGIT], [-HUGE_LOGIT, HUGE_LOGIT, 0.0]])
    labels = np.eye(3)[[2, 1]]
    probabilities = ref.Softmax().forward(logits)
    expected = float(ref.CrossEntropy().forward(probabilities, labels))
    received = student.mlp_numpy.CrossEntropy().forward(probabilities, labels)
    _unless_non_finite(lambda: assert_number(
        received, expected, _("`CrossEntropy.forward(softmax(x), y)` with logits of ±1000 (a "
                              "correct softmax gives exact zeros there; the cross-entropy "
                              "must stay finite)"),
        tolerance=LOSS_RTOL), received, mlp_diagnoses.LOG_OF_ZERO)


# -- the model ---------------------------------------------------------------------------

def test_he_initialisation(student):
    model = student.mlp_numpy.FullConnectionModel(HE_LATENT)
    for name, fan_in, shape in (("W1", INPUT_DIMS + 1, (INPUT_DIMS + 1, HE_LATENT)),
                                ("W2", HE_LATENT, (HE_LATENT, NUM_CLASSES))):
        w = assert_shape(getattr(model, name), shape, f"`FullConnectionModel({HE_LATENT}).{name}`")
        expected_std = np.sqrt(2.0 / fan_in)
        std, mean = float(np.std(w)), float(np.mean(w))
        if not abs(std / expected_std - 1) <= HE_STD_TOLERANCE:  # NaN fails too
            message = _("`FullConnectionModel({latent}).{name}` has standard deviation {std}; "
                        "expected about {expected} (He initialisation: normal(0, 1) / "
                        "sqrt(fan_in / 2) with fan_in = {fan_in})", latent=HE_LATENT,
                        name=name, std=f"{std:.4g}", expected=f"{expected_std:.4g}",
                        fan_in=fan_in)
            # A std, not values: a mistake matches within the check's own tolerance.
            mistake = matching_mistake(std, mlp_diagnoses.he_init_std(name, *shape),
                                       rtol=HE_STD_TOLERANCE)
            if mistake is not None:
                raise Diagnosed(message, mistake)
            raise AssertionError(message)
        assert abs(mean) <= HE_MEAN_TOLERANCE * expected_std, _(
            "`FullConnectionModel({latent}).{name}` has mean {mean}; expected about 0",
            latent=HE_LATENT, name=name, mean=f"{mean:.4g}")


@pytest.mark.parametrize("seed", SEEDS)
def test_model_forward_matches_reference(student, credit, seed):
    x, y, w1, w2 = _model_inputs(seed)
    expected = _reference_model(w1, w2)
    expected.forward(x, y)
    model = _student_model(student, w1, w2)
    model.forward(x, y)
    what = _("`FullConnectionModel.forward` with X {shape} and W1, W2 set", shape=x.shape)
    received = {"h1": model.h1, "h2_soft": model.h2_soft, "loss": model.loss}
    composition = compose(student.mlp_numpy, x, y, w1, w2)
    if (composition is not None and not agrees(composition.stages["h2_soft"], expected.h2_soft)
            and _carried_forward(credit, composition, received, what)):
        return
    assert_close(model.h1, expected.h1,
                 _("{what}: `h1` (did you append the bias column?)", what=what))
    assert_close(model.h2_soft, expected.h2_soft, f"{what}: `h2_soft`")
    assert_number(model.loss, float(expected.loss), f"{what}: `loss`", tolerance=LOSS_RTOL)


@pytest.mark.parametrize("seed", SEEDS)
def test_model_backward_matches_reference(student, credit, seed):
    x, y, w1, w2 = _model_inputs(seed)
    expected = _reference_model(w1, w2)
    expected.forward(x, y)
    expected.backward(y)
    model = _student_model(student, w1, w2)
    model.forward(x, y)
    model.backward(y)
    what = _("`FullConnectionModel.backward` after forward with W1, W2 set")
    received = {"W1_grad": model.W1_grad, "W2_grad": model.W2_grad}
    if not all(agrees(model_value, reference_value) for model_value, reference_value in
               ((model.W1_grad, expected.W1_grad), (model.W2_grad, expected.W2_grad))) and (
            _carried_forward(credit, compose(student.mlp_numpy, x, y, w1, w2), received, what)):
        return
    assert_close(model.W2_grad, expected.W2_grad, f"{what}: `W2_grad`")
    assert_close(model.W1_grad, expected.W1_grad, f"{what}: `W1_grad`")


# -- functions -----------------------------------------------------------------------------

@pytest.mark.parametrize("case", ["probabilities", "scores", "one_row"])
def test_compute_accuracy(student, case):
    rng = np.random.default_rng(7)
    n = 1 if case == "one_row" else 40
    labels = _one_hot(rng.integers(0, NUM_CLASSES, size=n))
    scores = rng.normal(size=(n, NUM_CLASSES)) + 3.0 * labels * (rng.uniform(size=(n, 1)) < 0.6)
    if case != "scores":
        scores = ref.Softmax().forward(scores)
    # One row is right or wrong: both are asked, so a constant answer cannot pass.
    label_sets = [labels, np.roll(labels, 1, axis=1)] if case == "one_row" else [labels]
    for truth in label_sets:
        _number(student.mlp_numpy.computeAccuracy(scores, truth),
                ref.computeAccuracy(scores, truth),
                _("`computeAccuracy(prob, labels)` with {n} rows ({case}, labelled class "
                  "{label})", n=n, case=case, label=int(np.argmax(truth[0]))),
                mlp_diagnoses.accuracy(scores, truth), tolerance=ACCURACY_EXACT)


def test_preprocess(student):
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, size=(6, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, NUM_CLASSES, size=6).astype(np.uint8)
    expected_x, expected_y = ref.preprocess(images, labels)
    x, y = _pair(student.mlp_numpy.preprocess(images, labels), "`preprocess(images, labels)`")
    _close(x, expected_x, _("`preprocess(images, labels)`: x (pixels / 255)"),
           mlp_diagnoses.preprocess(np.asarray(expected_x, dtype=np.float64)), rtol=1e-6,
           atol=1e-6)
    _close(y, expected_y, _("`preprocess(images, labels)`: y (one-hot)"),
           mlp_diagnoses.preprocess_labels(labels))


@pytest.mark.parametrize("learning_rate", [0.05, 0.3])
def test_train_one_step(student, credit, learning_rate):
    x, y, w1, w2 = _model_inputs(11)
    expected = _reference_model(w1, w2)
    expected_loss, expected_accuracy = ref.train_one_step(expected, x, y, learning_rate)
    model = _student_model(student, w1, w2)
    what = f"`train_one_step(model, x, y, learning_rate={learning_rate})`"
    loss, accuracy = _pair(student.mlp_numpy.train_one_step(model, x, y, learning_rate), what)
    after = _reference_model(expected.W1, expected.W2)
    after.forward(x, y)  # what a step that measures again after its update returns
    _number(loss, float(expected_loss), _("{what}: the batch loss (before the update)",
                                          what=what),
            mlp_diagnoses.step_reported_after_update(float(after.loss)), tolerance=LOSS_RTOL)
    if not _accuracy_carried_forward(student, credit, accuracy, float(expected_accuracy),
                                     expected.h2_soft, y,
                                     _("{what}: the batch accuracy", what=what)):
        assert_number(accuracy, float(expected_accuracy),
                      _("{what}: the batch accuracy", what=what),
                      tolerance=ACCURACY_EXACT)
    if not (agrees(model.W1, expected.W1) and agrees(model.W2, expected.W2)):
        composition = compose(student.mlp_numpy, x, y, w1, w2)
        if composition is not None and composition.learns and all(
                agrees(after, before - learning_rate * composition.stages[name])
                for after, before, name in ((model.W1, w1, "W1_grad"), (model.W2, w2, "W2_grad"))):
            wrong = _wrong_components(composition)
            credit.note(_("{what}: your step is right on your own model's gradients; the "
                          "error is in {components}", what=what,
                          components=_components(wrong)))
            return
    _close(model.W1, expected.W1, _("{what}: W1 after the step (W1 - lr * W1_grad)", what=what),
           mlp_diagnoses.train_step(w1, expected.W1_grad, learning_rate, model.W1))
    _close(model.W2, expected.W2, _("{what}: W2 after the step (W2 - lr * W2_grad)", what=what),
           mlp_diagnoses.train_step(w2, expected.W2_grad, learning_rate, model.W2))


def test_train_one_step_consecutive_steps(student):
    """Several steps on one model: each must use the learning rate it is given.

    A step that keeps state between calls (a learning rate decaying with a step counter, a
    momentum kept on the model) passes one step and fails here.
    Each step is judged against the model's own gradients of that step (read back from
    `W1_grad` and `W2_grad`), so a wrong layer is not charged here (error carried forward);
    gradients that are all zero earn nothing.
    """
    x, y, w1, w2 = _model_inputs(13)
    model = _student_model(student, w1, w2)
    for step in range(1, CONSECUTIVE_STEPS + 1):
        # Copies: in the grader's own process (bench baseline) a step updates in place.
        before = {name: np.array(as_array(getattr(model, name), f"`model.{name}`"),
                                 dtype=np.float64) for name in ("W1", "W2")}
        _pair(student.mlp_numpy.train_one_step(model, x, y, CONSECUTIVE_RATE),
              "`train_one_step`")
        what = _n("`train_one_step(model, x, y, learning_rate={rate})` called {n} time on one "
                  "model", "`train_one_step(model, x, y, learning_rate={rate})` called {n} times "
                  "on one model", step, rate=CONSECUTIVE_RATE)
        for name in ("W1", "W2"):
            grad = as_array(getattr(model, f"{name}_grad"), f"{what}: `model.{name}_grad`")
            assert np.any(grad != 0), _(
                "{what}: `model.{name}_grad` is all zeros; expected a gradient", what=what,
                name=name)
            try:
                assert_close(getattr(model, name), before[name] - CONSECUTIVE_RATE * grad,
                             _("{what}: {name} after step {step} (every step is {name} - "
                               "learning_rate * {name}_grad, with the learning rate given)",
                               what=what, name=name, step=step))
            except AssertionError as error:
                if step > 1:  # the first step was right: something changed between the calls
                    raise Diagnosed(str(error), mlp_diagnoses.STEP_KEEPS_STATE) from None
                raise


def test_test_returns_accuracy(student, credit):
    x, _labels, w1, w2 = _model_inputs(5)
    x = np.concatenate([x] * 4)
    rng = np.random.default_rng(5)
    y = _one_hot(rng.integers(0, NUM_CLASSES, size=len(x)))
    probe = _reference_model(w1, w2)
    probe.forward(x, y)
    half = len(x) // 2  # half the labels agree with the model, so the accuracy is not ~0.1
    y[:half] = _one_hot(np.argmax(probe.h2_soft[:half], axis=1))
    expected = ref.test(_reference_model(w1, w2), x, y)
    what = _("`test(model, x, y)` with {n} images and W1, W2 set", n=len(x))
    received = student.mlp_numpy.test(_student_model(student, w1, w2), x, y)
    if not _accuracy_carried_forward(student, credit, received, expected, probe.h2_soft, y,
                                     what):
        assert_number(received, expected, what, tolerance=ACCURACY_EXACT)


# -- training under a budget ---------------------------------------------------------------

def _finite_or_none(value) -> float | None:
    value = as_number(value, "`train_one_step`")
    return value if np.isfinite(value) else None  # NaN and inf are not JSON


def _learning_curve(student, x, y, latent, epochs, batch_size, learning_rate):
    """Batch loss and accuracy of the student's `train_one_step` over the budget's data.

    `train` returns only the model, so the report's curve comes from a second run of the
    student's own step function driven from here, for the first `CURVE_EPOCHS` epochs.
    It is a figure only: a failure here costs no points (the test has already measured
    the model `train` returned).
    """
    losses, accuracies = [], []
    try:
        model = student.mlp_numpy.FullConnectionModel(latent)
        order = np.random.default_rng(0)
        for _epoch in range(epochs):
            batches = order.permutation(len(x))
            for start in range(0, len(x), batch_size):
                batch = batches[start:start + batch_size]
                loss, accuracy = _pair(student.mlp_numpy.train_one_step(
                    model, x[batch], y[batch], learning_rate), "`train_one_step`")
                losses.append(_finite_or_none(loss))
                accuracies.append(_finite_or_none(accuracy))
    except Exception as error:  # noqa: BLE001 - any failure only leaves the curve short
        return {"loss": losses, "accuracy": accuracies, "x": "mini-batch", "epochs": epochs,
                "stopped": describe_exception(error)}
    return {"loss": losses, "accuracy": accuracies, "x": "mini-batch", "epochs": epochs}


def _threshold(assignment, thresholds, dataset, device, credit) -> tuple[float, float]:
    """(threshold, floor): from `grader calibrate mlp_numpy`'s file for this dataset and
    device; else the estimate in [thresholds] (a dataset not calibrated yet)."""
    try:
        calibrated = threshold_for(assignment, "test_train_reaches_threshold", dataset.name,
                                   device)
    except NoCalibration as exc:
        if f"{dataset.name}_accuracy" not in thresholds:
            pytest.skip(_("no accuracy threshold for {dataset} on the {device}: {error}",
                          dataset=dataset.name, device=device, error=exc))
        credit.note(_("threshold from assignment.toml's [thresholds], an estimate ({error})",
                      error=exc))
        return (thresholds[f"{dataset.name}_accuracy"],
                thresholds[f"{dataset.name}_accuracy_floor"])
    credit.note(_("threshold {value} from calibration {source}",
                  value=f"{calibrated.value:.4f}", source=calibrated.source))
    return calibrated.value, calibrated.floor


def test_train_reaches_threshold(student, assignment, dataset, device, budgets, parameters,
                                 thresholds, credit, figure, private_split):
    x, y, _xv, _yv = data = budget_data(dataset, budgets)
    epochs = int(budgets["train_epochs"])
    latent = int(parameters["latent_dims"][0])  # the task's first hidden size
    # The one protocol of this test and of `grader calibrate mlp_numpy`: the trained weights
    # come back as plain arrays; the grader's forward pass classifies test images the
    # runtime never sees, in an order secret to it.
    weights = train_under_budget(student.mlp_numpy, data, budgets, latent=latent, seed=0)
    split = private_split(int(budgets["test_images"]), "test_train_reaches_threshold")
    predicted = predict(weights, split.images)
    accuracy = float(np.mean(predicted == split.labels))
    threshold, floor = _threshold(assignment, thresholds, dataset, device, credit)
    figure("confusion_matrix", {
        "dataset": dataset.name, "labels": [str(c) for c in range(NUM_CLASSES)],
        "matrix": np.bincount(split.labels * NUM_CLASSES + predicted,
                              minlength=NUM_CLASSES ** 2)
        .reshape(NUM_CLASSES, NUM_CLASSES).tolist()})
    figure("learning_curve", _learning_curve(student, x, y, latent, min(epochs, CURVE_EPOCHS),
                                             int(budgets["batch_size"]), budgets["learning_rate"]))
    budget = _n("`train` with latent_dims=({latent},), {n} epoch on {images} {dataset} images",
                "`train` with latent_dims=({latent},), {n} epochs on {images} {dataset} images",
                epochs, latent=latent, images=f"{len(x):,}", dataset=dataset.name)
    score_accuracy(accuracy, threshold=threshold, floor=floor, what=budget, credit=credit,
                   figure=figure, images=len(split.labels), dataset=dataset.name)


def _search_data(case: str) -> tuple[np.ndarray, ...]:
    """Training and validation data of a search case (see `SEARCH_CASES`).

    Returns:
        (x, y, x_validation, y_validation, validation_images): x arrays (SEARCH_IMAGES, 784)
        in [0, 1]; one-hot labels (SEARCH_IMAGES, 10), of the band's class except for the
        validation labels of "learning_hurts" (a random other class); validation_images,
        uint8 (SEARCH_IMAGES, 28, 28), the validation images for the grader's forward pass.
    """
    rng = np.random.default_rng(SEARCH_SEED)

    def banded(n: int) -> tuple[np.ndarray, np.ndarray]:
        classes = rng.integers(0, NUM_CLASSES, size=n)
        images = rng.integers(0, SEARCH_NOISE + 1, size=(n, 28, 28)).astype(np.uint8)
        for image, c in zip(images, classes, strict=True):
            image[4 + 2 * c:6 + 2 * c, 4:24] = 255  # class c: rows 4+2c and 5+2c lit
        return images, classes

    images, classes = banded(SEARCH_IMAGES)
    validation_images, validation_classes = banded(SEARCH_IMAGES)
    wrong = (validation_classes + rng.integers(1, NUM_CLASSES, size=SEARCH_IMAGES)) % NUM_CLASSES
    labels = wrong if case == "learning_hurts" else validation_classes
    x, _y = ref.preprocess(images, classes)
    xv, _yv = ref.preprocess(validation_images, labels)
    return (x.astype(np.float64), _one_hot(classes), xv.astype(np.float64), _one_hot(labels),
            validation_images)


@pytest.mark.parametrize("case", sorted(SEARCH_CASES))
def test_train_keeps_best_latent_dims(student, budgets, case):
    dims, best = SEARCH_CASES[case]
    x, y, xv, yv, validation_images = _search_data(case)
    what = f"`train(..., latent_dims={dims}, epochs={SEARCH_EPOCHS})`"  # code: not translated
    model = student.mlp_numpy.train(x, y, xv, yv, latent_dims=dims, epochs=SEARCH_EPOCHS,
                                    batch_size=int(budgets["batch_size"]),
                                    learning_rate=budgets["learning_rate"], seed=0,
                                    verbose=False)
    w2 = as_array(model.W2, _("{what}: the returned model's `W2`", what=what))
    kept = w2.shape[0] if w2.ndim == 2 and w2.shape[1] == NUM_CLASSES else None
    facts = {"what": what, "shape": w2.shape, "best": best, "classes": NUM_CLASSES}
    message = _(
        "{what} returned a model with W2 of shape {shape}; expected ({best}, {classes}), the "
        "size with the best validation accuracy. On these data the larger sizes are best on "
        "the training split and the 1-unit model is best on the validation split: choose by "
        "validation accuracy and return the best model, not the first, the last or the "
        "smallest one tried", **facts) if case == "learning_hurts" else _(
        "{what} returned a model with W2 of shape {shape}; expected ({best}, {classes}), the "
        "size with the best validation accuracy. On these data the {best}-unit model is best "
        "on the validation split: choose by validation accuracy and return the best model, "
        "not the first, the last or the smallest one tried", **facts)
    if kept != best and kept in dims:
        raise Diagnosed(message, mlp_diagnoses.SEARCH_NOT_BY_VALIDATION)
    assert kept == best, message
    weights = trained_weights(model.W1, w2, hidden=best,
                              what=_("the model {what} returned", what=what))
    if case == "learning_helps":
        accuracy = float(np.mean(predict(weights, validation_images) == np.argmax(yv, axis=1)))
        assert accuracy >= SEARCH_TRAINED_ACCURACY, _(
            "the {best}-unit model {what} returned classifies {accuracy} of the validation "
            "images correctly; expected at least {expected}, as the model trained in the "
            "search does: return the trained model, not a new one", best=best, what=what,
            accuracy=f"{accuracy:.2f}", expected=f"{SEARCH_TRAINED_ACCURACY:g}")

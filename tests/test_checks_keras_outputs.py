"""grader.checks.keras_outputs: the Keras public suites' probability check and step batch."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from grader import i18n
from grader.checks.keras_outputs import assert_probability_rows, step_batch

REPO = Path(__file__).resolve().parents[1]
WHAT = "`build_cnn()`"


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def test_softmax_rows_pass_and_a_row_off_by_the_tolerance_fails():
    probs = _softmax(np.random.default_rng(0).normal(size=(8, 10))).astype(np.float32)
    assert_probability_rows(probs, WHAT)
    probs[3, 0] += 2e-4  # one row sums to 1.0002: beyond float32 rounding
    with pytest.raises(AssertionError, match=r"each row must sum to 1; row sums are \[1\.0, "):
        assert_probability_rows(probs, WHAT)


def test_sigmoid_outputs_and_logits_are_named_with_the_softmax_question():
    logits = np.random.default_rng(1).normal(size=(4, 10))
    with pytest.raises(AssertionError) as raised:
        assert_probability_rows(logits, WHAT)  # logits: negative entries
    assert f"{WHAT} returned negative values (smallest {logits.min():.3g})" in str(raised.value)
    assert "softmax" in str(raised.value)
    with pytest.raises(AssertionError, match="is the last layer's activation softmax"):
        assert_probability_rows(1 / (1 + np.exp(-logits)), WHAT)  # sigmoid: rows sum to ~5


def test_the_messages_read_in_chinese():
    with i18n.in_language("zh_CN"), pytest.raises(AssertionError) as raised:
        assert_probability_rows(np.full((2, 10), 0.5), WHAT)
    assert str(raised.value).startswith(f"{WHAT}：每一行之和必须为 1")


def test_the_step_batch_is_fixed_by_its_seed_and_shaped_for_the_model():
    x, y = step_batch((28, 28, 1), batch=16, seed=2)
    assert (x.shape, x.dtype, y.shape, y.dtype) == ((16, 28, 28, 1), np.float32, (16, 10),
                                                    np.float32)
    assert 0 <= x.min() and x.max() <= 1
    assert np.array_equal(y.sum(axis=1), np.ones(16)) and set(np.unique(y)) == {0.0, 1.0}
    again, _ = step_batch((28, 28, 1), batch=16, seed=2)
    other, _ = step_batch((28, 28, 1), batch=16, seed=3)
    assert np.array_equal(x, again) and not np.array_equal(x, other)


@pytest.mark.parametrize("assignment", ["keras_mlp", "keras_cnn", "alexnet"])
def test_each_public_suite_uses_the_batch_its_loss_check_was_proven_on(assignment):
    """The suites' batches before the helper existed: tests/test_checks_keras_diagnoses.py
    proved every correct model's loss falls on exactly these."""
    path = REPO / "autograde_tests" / assignment / "test_public.py"
    spec = importlib.util.spec_from_file_location(f"_public_{assignment}_outputs", path)
    public = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(public)
    shape = (public.INPUT_DIM,) if assignment == "keras_mlp" else public.INPUT_SHAPE
    rng = np.random.default_rng(public.STEP_SEED)
    x = rng.uniform(0, 1, size=(public.STEP_BATCH, *shape)).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, size=public.STEP_BATCH)]
    received_x, received_y = public.step_batch()
    assert np.array_equal(received_x, x) and np.array_equal(received_y, y)


def test_the_student_kit_imports_it_without_tensorflow():
    blocked = ("import sys; sys.modules['tensorflow'] = sys.modules['keras'] = None; "
               "import grader.checks.keras_outputs, grader.checks.keras_hints")
    done = subprocess.run([sys.executable, "-c", blocked], capture_output=True, text=True,
                          timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr

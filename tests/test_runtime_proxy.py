"""The student proxy against a real sandboxed runtime: values, handles, errors, callables."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from grader.runtime import (
    Callable,
    HandleProxy,
    ImportFailed,
    ProtocolViolation,
    SandboxLimits,
    StudentError,
    StudentRuntime,
    StudentTimeout,
)
from grader.runtime.sandbox import bwrap_usable, fallback_usable

LIMITS = SandboxLimits(call_timeout_s=20, import_timeout_s=30, memory_mb=2048)

STUDENT = textwrap.dedent('''\
    """A small numpy submission."""
    import numpy as np

    SIZES = (100, 200)

    def relu(x):
        return np.maximum(x, 0)

    def identity(x):
        return x

    def describe(x):
        return {"type": type(x).__name__, "dtype": str(getattr(x, "dtype", "")),
                "shape": list(getattr(x, "shape", ()))}

    def numerical_grad(f, x, h=1e-5):
        grad = np.zeros_like(x)
        for i in range(x.size):
            step = np.zeros_like(x)
            step.flat[i] = h
            grad.flat[i] = (np.sum(f(x + step)) - np.sum(f(x - step))) / (2 * h)
        return grad

    class Layer:
        def __init__(self, n_in, n_out):
            self.W = np.ones((n_in, n_out))
            self.mem = {}

        def forward(self, X):
            self.mem["X"] = X
            return X @ self.W

        def __len__(self):
            return self.W.shape[1]

        def __getitem__(self, i):
            return self.W[:, i]

    def same_object(a, b):
        return a is b

    def fail(n):
        return helper(n)

    def helper(n):
        raise ValueError(f"expected a positive n, received {n}")

    train()
    print("trained")
    ''')


def make_workspace(root: Path, files: dict[str, str]) -> Path:
    workspace = root / "ws"
    workspace.mkdir()
    for name, text in files.items():
        (workspace / name).write_text(text)
    return workspace


@pytest.fixture(scope="module", params=["bwrap", "fallback"])
def runtime(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[StudentRuntime]:
    use_bwrap = request.param == "bwrap"
    if use_bwrap and not bwrap_usable():
        pytest.skip("bubblewrap cannot build a sandbox here")
    if not use_bwrap and not fallback_usable():
        pytest.skip("the grader is root and no other uid reaches the interpreter: the "
                    "fallback refuses to run student code "
                    "(test_sandbox.py::test_fallback_never_runs_student_code_as_root)")
    workspace = make_workspace(tmp_path_factory.mktemp(request.param),
                               {"student.py": STUDENT})
    with StudentRuntime(workspace, ["student"], limits=LIMITS, use_bwrap=use_bwrap) as rt:
        yield rt


@pytest.mark.parametrize("value", [
    np.arange(12, dtype=np.float64).reshape(3, 4), np.arange(5, dtype=np.int32),
    np.array([True, False]), np.zeros((0, 3), dtype=np.float32), np.array(2.5),
    np.ones((2, 1, 3), dtype=np.uint8),
])
def test_arrays_come_back_with_dtype_and_shape(runtime: StudentRuntime, value: np.ndarray) -> None:
    back = runtime.student.student.identity(value)
    assert type(back) is np.ndarray and back.dtype == value.dtype and back.shape == value.shape
    np.testing.assert_array_equal(back, value)


def test_plain_values_round_trip(runtime: StudentRuntime) -> None:
    student = runtime.student.student
    value = {"a": [1, 2.5, None, True], "t": (1, "x"), "n": {"m": []}}
    assert student.identity(value) == value
    assert student.identity(np.float32(1.5)) == 1.5 and student.identity(None) is None
    assert student.SIZES == (100, 200)
    assert student.describe(np.ones((2, 3), np.float32)) == \
        {"type": "ndarray", "dtype": "float32", "shape": [2, 3]}


def test_relu_matches(runtime: StudentRuntime) -> None:
    x = np.array([-1.0, 0.5, 2.0])
    np.testing.assert_array_equal(runtime.student.student.relu(x), [0.0, 0.5, 2.0])


def test_handles_methods_attributes_len_and_items(runtime: StudentRuntime) -> None:
    layer = runtime.student.student.Layer(3, 2)
    assert isinstance(layer, HandleProxy) and layer.type_name == "Layer"
    np.testing.assert_array_equal(layer.forward(np.ones((4, 3))), np.full((4, 2), 3.0))
    layer.W = np.eye(3, 2) * 2
    np.testing.assert_array_equal(layer.W, np.eye(3, 2) * 2)
    np.testing.assert_array_equal(layer.forward(np.eye(3)), np.eye(3, 2) * 2)
    assert layer.mem["X"].shape == (3, 3)
    assert len(layer) == 2
    np.testing.assert_array_equal(layer[1], [0.0, 2.0, 0.0])
    assert not hasattr(layer, "no_such_attribute")


def test_handle_passed_back_as_an_argument(runtime: StudentRuntime) -> None:
    student = runtime.student.student
    layer = student.Layer(2, 2)
    assert student.same_object(layer, layer) is True
    assert student.same_object(layer, student.Layer(2, 2)) is False


def test_named_grader_callable_is_passed_to_student_code(runtime: StudentRuntime) -> None:
    x = np.array([1.0, -2.0, 3.0])
    grad = runtime.student.student.numerical_grad(Callable("square"), x)
    np.testing.assert_allclose(grad, 2 * x, rtol=1e-6)
    with pytest.raises(ProtocolViolation, match="no grader callable"):
        runtime.student.student.numerical_grad(Callable("os.system"), x)


def test_grader_refuses_to_send_arbitrary_objects(runtime: StudentRuntime) -> None:
    with pytest.raises(TypeError, match="cannot send"):
        runtime.student.student.identity(object())
    with pytest.raises(TypeError, match="dtype object"):
        runtime.student.student.identity(np.array([None]))


def test_student_exception_keeps_student_frames_only(runtime: StudentRuntime) -> None:
    with pytest.raises(StudentError) as info:
        runtime.student.student.fail(-1)
    error = info.value
    assert error.type_name == "ValueError" and "received -1" in error.message
    lines = STUDENT.splitlines()
    fail_line = lines.index("    return helper(n)") + 1
    raise_line = lines.index('    raise ValueError(f"expected a positive n, received {n}")') + 1
    assert [(f.filename, f.line, f.function) for f in error.student_traceback] == \
        [("student.py", fail_line, "fail"), ("student.py", raise_line, "helper")]
    assert "server.py" not in str(error) and "runtime" not in str(error)
    assert f'File "student.py", line {raise_line}, in helper' in str(error)


def test_skipped_statements_and_output(runtime: StudentRuntime) -> None:
    skipped = runtime.skipped["student"]
    assert [s.text for s in skipped] == ["train()", 'print("trained")']
    assert "trained" not in runtime.output()


def test_missing_module_and_syntax_error_fail_import(tmp_path: Path) -> None:
    workspace = make_workspace(tmp_path, {"good.py": "A = 1\n", "bad.py": "def f(:\n"})
    with StudentRuntime(workspace, ["good", "bad", "absent"], limits=LIMITS) as runtime:
        assert runtime.student.good.A == 1
        with pytest.raises(ImportFailed, match="bad.py, line 1"):
            runtime.student.bad  # noqa: B018
        with pytest.raises(ImportFailed, match="absent.py was not found.*bad.py, good.py"):
            runtime.student.absent  # noqa: B018


def test_exception_at_import_is_reported_with_traceback(tmp_path: Path) -> None:
    source = "import numpy as np\n\nclass Model:\n    size = 1 / 0\n"
    workspace = make_workspace(tmp_path, {"m.py": source})
    with StudentRuntime(workspace, ["m"], limits=LIMITS) as runtime:
        with pytest.raises(ImportFailed) as info:
            runtime.student.m  # noqa: B018
    assert "ZeroDivisionError" in str(info.value)
    assert [(f.filename, f.line) for f in info.value.student_traceback][-1] == ("m.py", 4)


def test_seed_makes_student_randomness_repeatable(tmp_path: Path) -> None:
    source = "import numpy as np\ndef draw():\n    return np.random.rand(3)\n"
    workspace = make_workspace(tmp_path, {"r.py": source})
    with StudentRuntime(workspace, ["r"], limits=LIMITS) as runtime:
        runtime.seed(7)
        first = runtime.student.r.draw()
        runtime.seed(7)
        np.testing.assert_array_equal(runtime.student.r.draw(), first)


def test_time_limit_overrides_the_call_timeout(tmp_path: Path) -> None:
    source = "import time\ndef nap(s):\n    time.sleep(s)\n    return s\n"
    workspace = make_workspace(tmp_path, {"n.py": source})
    with StudentRuntime(workspace, ["n"], limits=LIMITS) as runtime:
        with runtime.time_limit(0.5), pytest.raises(StudentTimeout) as info:
            runtime.student.n.nap(5)
        assert info.value.limit_s == 0.5
        assert runtime.student.n.nap(0.01) == 0.01  # a fresh runtime answers


def test_tensorflow_gradient_with_a_named_callable(tmp_path: Path) -> None:
    source = textwrap.dedent('''\
        import tensorflow as tf

        def tf_gradient(f, x):
            x = tf.Variable(x)
            with tf.GradientTape() as tape:
                y = f(x)
            return tape.gradient(y, x)
        ''')
    workspace = make_workspace(tmp_path, {"tfb.py": source})
    limits = SandboxLimits(call_timeout_s=60, import_timeout_s=90, memory_mb=4096)
    with StudentRuntime(workspace, ["tfb"], limits=limits) as runtime:
        runtime.seed(0)
        x = np.array([0.1, -0.4, 1.2])
        grad = runtime.student.tfb.tf_gradient(Callable("sin_sum"), x)
        assert isinstance(grad, HandleProxy)  # a tf.Tensor stays in the runtime
        np.testing.assert_allclose(np.asarray(grad), np.cos(x), rtol=1e-6)
        np.testing.assert_allclose(
            np.asarray(runtime.student.tfb.tf_gradient(Callable("sigmoid_sum"), x)),
            np.exp(-x) / (1 + np.exp(-x)) ** 2, rtol=1e-6)

"""Definitions-only import: what is kept, what is skipped and reported, syntax errors."""

from __future__ import annotations

import textwrap

from grader.runtime.definitions import definitions_only

SCRIPT = textwrap.dedent('''\
    """A student's script."""
    import numpy as np
    from math import pi
    try:
        import tensorflow as tf
    except ImportError:
        tf = None

    LEARNING_RATE = 0.1
    SIZES = (100, 200, 300)
    TWO_PI = 2 * pi
    relu = lambda x: np.maximum(x, 0)
    EPOCHS = int(3.0)

    def train(epochs=EPOCHS):
        return epochs

    class Model:
        scale = LEARNING_RATE * 2

    (x_train, y_train), (x_test, y_test) = load_data()
    x_train = x_train / 255.0
    model = Model()
    model.fit(x_train)
    print("accuracy", 0.9); train()
    for epoch in range(3):
        train(epoch)
    if __name__ == "__main__":
        train()
    ''')


def _run(source: str) -> dict:
    result = definitions_only(source, "student.py")
    assert result.error is None and result.source is not None
    namespace: dict = {"__name__": "student"}
    exec(compile(result.source, "student.py", "exec"), namespace)  # noqa: S102
    return namespace


def test_definitions_are_kept_and_runs_are_skipped() -> None:
    namespace = _run(SCRIPT)
    assert namespace["LEARNING_RATE"] == 0.1 and namespace["SIZES"] == (100, 200, 300)
    assert namespace["train"]() == 3 and namespace["Model"].scale == 0.2
    assert namespace["relu"](-1.0) == 0 and namespace["EPOCHS"] == 3
    assert "tf" in namespace and "np" in namespace and abs(namespace["TWO_PI"] - 6.283) < 1e-3
    for name in ("x_train", "model", "epoch"):
        assert name not in namespace


def test_skipped_statements_are_listed_with_their_lines() -> None:
    skipped = definitions_only(SCRIPT, "student.py").skipped
    assert [(s.line, s.text) for s in skipped] == [
        (21, "(x_train, y_train), (x_test, y_test) = load_data()"),
        (22, "x_train = x_train / 255.0"),  # reads a name that was never defined
        (23, "model = Model()"),
        (24, "model.fit(x_train)"),
        (25, 'print("accuracy", 0.9); train()'),
        (25, 'print("accuracy", 0.9); train()'),
        (26, "for epoch in range(3):"),
        (28, 'if __name__ == "__main__":'),
    ]


def test_line_numbers_are_preserved_for_tracebacks() -> None:
    source = "train()\nprint(1)\n\ndef f():\n    raise ValueError('x')\n"
    result = definitions_only(source, "student.py")
    assert result.source is not None
    assert result.source.splitlines()[3:5] == source.splitlines()[3:5]
    assert len(result.source.splitlines()) == len(source.splitlines())


def test_multiline_statement_is_blanked_entirely() -> None:
    source = "model.fit(\n    x,\n    epochs=3,\n)\nA = 1\n"
    namespace = _run(source)
    assert namespace["A"] == 1
    assert definitions_only(source, "s.py").source.splitlines()[4] == "A = 1"


def test_dropped_block_binds_no_names() -> None:
    source = "if True:\n    data = load()\nsize = len(data)\nB = 2\n"
    namespace = _run(source)
    assert "size" not in namespace and namespace["B"] == 2


def test_syntax_error_is_reported_with_its_line() -> None:
    result = definitions_only("import numpy as np\n\ndef f(:\n    pass\n", "mlp_numpy.py")
    assert result.source is None and result.error is not None
    assert result.error.filename == "mlp_numpy.py" and result.error.line == 3
    assert "mlp_numpy.py, line 3" in str(result.error)


def test_null_bytes_are_a_structured_error() -> None:
    result = definitions_only("x = 1\0\n", "s.py")
    assert result.error is not None and result.source is None


# --- hostile and honest files: parsing in the grader's process never raises ---------------


def test_a_200000_term_expression_is_a_recorded_problem() -> None:
    source = "import numpy as np\n\nx = 1\nY = " + " + ".join(["1"] * 200_000) + "\n"
    result = definitions_only(source, "mlp_numpy.py")
    assert result.source is None and result.error is not None
    assert str(result.error) == (
        "the grader could not parse mlp_numpy.py: the statement on line 4 is too deeply "
        "nested for Python's parser (a very long chain of operators or brackets); Python "
        "itself could not run it")


def test_deep_brackets_nul_bytes_and_huge_files_are_recorded_problems() -> None:
    nested = definitions_only("x = " + "[" * 5000 + "]" * 5000 + "\n", "s.py")
    assert nested.error is not None and "s.py, line 1: too many nested parentheses" in str(
        nested.error)
    nul = definitions_only(b"x = 1\0\n", "s.py")
    assert str(nul.error) == "SyntaxError in s.py: the file holds NUL bytes"
    huge = definitions_only(b"x = 1\n" * 300_000, "s.py")
    assert str(huge.error) == ("the grader could not parse s.py: the file is 1,800,000 bytes "
                               "long; the limit is 1,048,576")


def test_every_exception_of_the_parser_becomes_an_error(monkeypatch) -> None:
    import grader.runtime.definitions as definitions

    for error in (MemoryError(), ValueError("odd"), RecursionError(), KeyError("k")):
        def boom(*args, error=error, **kwargs):
            raise error
        monkeypatch.setattr(definitions.ast, "parse", boom)
        result = definitions_only("x = 1\n", "s.py")
        assert result.source is None and result.error is not None
        assert str(result.error).startswith("the grader could not parse s.py: ")


def test_bom_and_coding_lines_read_as_python_reads_them() -> None:
    utf8 = '"""模型."""\nNAME = "多层感知机"\ntrain()\n'
    twin = definitions_only(utf8.encode("utf-8"), "s.py")
    bom = definitions_only(b"\xef\xbb\xbf" + utf8.encode("utf-8"), "s.py")
    gbk_text = "# -*- coding: gbk -*-\n" + utf8
    gbk = definitions_only(gbk_text.encode("gbk"), "s.py")
    assert twin.error is None and bom.error is None and gbk.error is None
    assert bom.source == twin.source and gbk.source == "# -*- coding: gbk -*-\n" + twin.source
    assert [s.line for s in gbk.skipped] == [4] and [s.line for s in twin.skipped] == [3]
    namespace: dict = {}
    exec(compile(gbk.source, "s.py", "exec"), namespace)  # noqa: S102
    assert namespace["NAME"] == "多层感知机"


def test_undeclared_non_utf8_bytes_say_how_to_fix_them() -> None:
    result = definitions_only('x = "多层"\n'.encode("gbk"), "s.py")
    assert str(result.error) == (
        "the grader could not parse s.py: s.py is not valid utf-8 text (byte 5: invalid "
        "start byte); save it as UTF-8 or declare its encoding on the first line, e.g. "
        "`# -*- coding: gbk -*-`")


def test_the_overflowing_statement_is_named_after_comments_and_blocks() -> None:
    source = ("def f(x):\n    return x\n    # a trailing comment\n\n"
              "Y = (\n    " + " + ".join(["1"] * 200_000) + ")\n")
    result = definitions_only(source, "s.py")
    assert result.error is not None and result.error.line == 5

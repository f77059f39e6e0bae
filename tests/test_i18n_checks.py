"""The checks' and the course's messages in Chinese and English (issue 12, engineer C).

- The same planted bug graded in ``en`` and in ``zh_CN`` earns the same points, the same
  outcome kinds and diagnosis ids and the same figures; only the words change: Chinese in
  zh_CN (with the numbers of the English message unchanged), English in en.
- A student's text inside a message (an exception's text, a repr) is shown literally in
  both languages, braces and ``%(x)s`` included.
- A message id used in code but missing from the catalog fails the i18n test (for the
  ``checks`` domain and for the course's ``course`` domain).
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from grader import i18n
from grader.checks.arrays import assert_close, assert_shape
from grader.checks.diagnose import Diagnosed, Mistake
from grader.checks.gradients import check_gradient, failure_message
from grader.checks.keras_hints import KERAS2_SPELLINGS
from grader.config import load_assignment
from grader.grading.fixtures import course_messages
from grader.grading.run import run_suite, suite_dir
from grader.intake import intake
from grader.results.records import Grade
from grader.samples import load_bugs, write_bug

REPO = Path(__file__).resolve().parents[1]
CJK = re.compile(r"[\u4e00-\u9fff]")
NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:e[+-]?\d+)?(?![\w.])")
HOSTILE = "{0} {what} %(x)s {{}} }{"  # a student's text that looks like a format string


def _grade(assignment: str, bug: str, language: str, tmp_path: Path, *,
           public_only: bool) -> Grade:
    """The planted `bug` graded through intake, the sandboxed runtime and pytest."""
    config = load_assignment(REPO / "assignments" / assignment / "assignment.toml")
    planted = next(b for b in load_bugs(config) if b.name == bug)
    folder = write_bug(config, planted, tmp_path / f"{bug}-{language}")
    suite = suite_dir(config)
    files = [suite / "test_public.py"] if public_only else None
    with i18n.speaking(language), tempfile.TemporaryDirectory(dir=tmp_path) as scratch:
        submission = intake(folder, Path(scratch), expected_files=config.student_files,
                            assignment=config.id)
        return run_suite(config, submission, test_files=files)


def _outcomes(grade: Grade) -> dict[str, tuple]:
    """Everything but the words: points, status, credit, kind, diagnosis, figures."""
    return {test.case: (part.name, part.points, test.status, test.fraction, test.kind,
                        test.diagnosis, _numbers_only(test.figures))
            for part in grade.parts for test in part.tests}


def _numbers_only(value):
    """A figure with its floats rounded to 12 significant digits (same computation twice)."""
    if isinstance(value, dict):
        return {key: _numbers_only(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_numbers_only(item) for item in value]
    if isinstance(value, float):
        return float(f"{value:.12g}")
    return value


def _failed(grade: Grade, diagnosis: str):
    return next(test for part in grade.parts for test in part.tests
                if test.fraction < 1 and test.diagnosis == diagnosis)


def _same_facts(english: str, chinese: str) -> None:
    """The Chinese message carries every number of the English one, and reads Chinese."""
    assert CJK.search(chinese), chinese
    assert not CJK.search(english), english
    missing = [n for n in NUMBER.findall(english) if n not in chinese]
    assert not missing, f"numbers lost in translation: {missing}\nen: {english}\nzh: {chinese}"


def test_softmax_backward_bug_graded_alike_in_both_languages(tmp_path):
    """mlp_numpy's public suite on the diagonal-only Softmax.backward (a diagnosed bug)."""
    english = _grade("mlp_numpy", "softmax_backward_diagonal_only", "en", tmp_path,
                     public_only=True)
    chinese = _grade("mlp_numpy", "softmax_backward_diagonal_only", "zh_CN", tmp_path,
                     public_only=True)
    assert english.score == chinese.score < english.max_score
    assert _outcomes(english) == _outcomes(chinese)
    en = _failed(english, "softmax_backward_diagonal_only").message
    zh = _failed(chinese, "softmax_backward_diagonal_only").message
    assert "does not match the numerical gradient of your own forward" in en
    assert "Diagnosis: your Softmax.backward keeps only the diagonal" in en
    assert "与你自己的前向传播的数值梯度不一致" in zh and "相对误差" in zh
    assert "诊断：你的 Softmax.backward 只保留了雅可比矩阵的对角线" in zh
    assert "ds_i/dx_j = s_i (delta_ij - s_j)" in zh  # the lecture's formula kept as it is
    _same_facts(en, zh)


def test_tf_basics_diagnosis_speaks_the_language_in_effect(monkeypatch):
    """tf_basics' hidden `_check` on a sigmoid with the sign slip, in process (no runtime)."""
    monkeypatch.syspath_prepend(str(REPO))  # the suite imports the course's reference package
    spec = importlib.util.spec_from_file_location(
        "tf_basics_hidden_i18n", REPO / "autograde_tests" / "tf_basics" / "test_hidden.py")
    suite = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(suite)
    x = np.linspace(-3.0, 3.0, 12).reshape(3, 4)
    messages = {}
    for language in ("en", "zh_CN"):
        with i18n.speaking(language), pytest.raises(Diagnosed) as raised:
            suite._check(1 - suite.ref.sigmoid(x), suite.ref.sigmoid(x),
                         suite._("`sigmoid(x)` with x of shape {shape}", shape=x.shape),
                         suite.SIGMOID_MISTAKES(x))
        assert raised.value.mistake == "sigmoid_sign_slip"
        messages[language] = str(raised.value)
    assert "`sigmoid(x)` with x of shape (3, 4): " in messages["en"]
    assert "Your `sigmoid` computes 1 / (1 + exp(x))" in messages["en"]
    assert "`sigmoid(x)`，x 的形状为 (3, 4)" in messages["zh_CN"]
    assert "你的 `sigmoid` 计算的是 1 / (1 + exp(x))" in messages["zh_CN"]
    _same_facts(messages["en"], messages["zh_CN"])


@pytest.mark.slow
def test_tf_basics_bug_graded_alike_in_both_languages(tmp_path):
    """The whole tf_basics hidden suite (every runtime imports TensorFlow: slow)."""
    english = _grade("tf_basics", "sigmoid_sign_slip", "en", tmp_path, public_only=False)
    chinese = _grade("tf_basics", "sigmoid_sign_slip", "zh_CN", tmp_path, public_only=False)
    assert english.score == chinese.score < english.max_score
    assert _outcomes(english) == _outcomes(chinese)
    _same_facts(_failed(english, "sigmoid_sign_slip").message,
                _failed(chinese, "sigmoid_sign_slip").message)


@pytest.mark.parametrize("language", ["en", "zh_CN"])
def test_a_students_text_is_shown_literally(language):
    with i18n.speaking(language):
        # a string where an array was expected: its repr goes into the message
        with pytest.raises(AssertionError) as raised:
            assert_close(HOSTILE, np.zeros(3), "`relu(x)`")
        assert HOSTILE[:20] in str(raised.value)
        # the checked call's own name holding braces
        with pytest.raises(AssertionError) as raised:
            assert_shape(np.zeros(2), (3,), f"`f` {HOSTILE}")
        assert f"`f` {HOSTILE}" in str(raised.value) and "(2,)" in str(raised.value)
        # an exception's text re-raised with a Keras 3 hint (keras_hints' path)
        diagnosed = Diagnosed(f"ValueError: {HOSTILE}", KERAS2_SPELLINGS["keras2_nb_epoch"])
        assert str(diagnosed).startswith(f"ValueError: {HOSTILE}\n")
        assert "`nb_epoch=`" in str(diagnosed)
        # a course message quoting the student's exception
        _, _n = course_messages(REPO / "autograde_tests" / "tf_basics" / "test_hidden.py")
        text = _("{what} raised {error_type}: {error}; expected zeros of shape (2, 3)",
                 what="`tf_gradient(f, x)`", error_type="TypeError", error=HOSTILE)
        assert HOSTILE in text and "TypeError" in text
        # a gradient check naming what the student's layer is called
        report = check_gradient("x", np.ones(3), np.zeros(3) + 2.0)
        assert HOSTILE in failure_message(report, HOSTILE)


def test_diagnosis_sentences_follow_the_language_of_the_moment():
    """A module-level mistake (marked with `lazy`) is translated when raised, not imported."""
    from grader.checks.mlp_diagnoses import SOFTMAX_OVERFLOW
    with i18n.speaking("zh_CN"):
        chinese = str(Diagnosed("x", SOFTMAX_OVERFLOW))
    with i18n.speaking("en"):
        english = str(Diagnosed("x", SOFTMAX_OVERFLOW))
    assert "诊断：你的 Softmax.forward 溢出了" in chinese
    assert english == f"x\n{SOFTMAX_OVERFLOW.sentence}"
    unknown = Mistake("not_in_any_catalog", "A sentence no catalog holds {0}.", lambda: None)
    with i18n.speaking("zh_CN"):
        assert str(Diagnosed("x", unknown)) == "x\nA sentence no catalog holds {0}."


def test_a_course_without_a_catalog_reads_english(tmp_path):
    (tmp_path / "course.toml").write_text('title = "c"\n', encoding="utf-8")
    suite = tmp_path / "autograde_tests" / "a1" / "test_hidden.py"
    suite.parent.mkdir(parents=True)
    suite.write_text("", encoding="utf-8")
    _, _n = course_messages(suite)
    with i18n.speaking("zh_CN"):
        assert _("`relu(x)` with x of shape {shape}", shape=(2, 3)) == \
            "`relu(x)` with x of shape (2, 3)"
        assert _n("{n} epoch", "{n} epochs", 3) == "3 epochs"
    _, _n = course_messages(REPO / "autograde_tests" / "tf_basics" / "test_hidden.py")
    with i18n.speaking("zh_CN"):  # the built-in course has its catalog
        assert _("`relu(x)` with x of shape {shape}", shape=(2, 3)) == \
            "`relu(x)`，x 的形状为 (2, 3)"


def _i18n_test_module():
    spec = importlib.util.spec_from_file_location("test_i18n_ci", REPO / "tests" / "test_i18n.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("domain, source, known", [
    ("checks", "grader/checks/new_check.py",
     '_("{what} returned {received}; expected a numpy array", what=1, received=2)'),
    ("course", "autograde_tests/a1/test_hidden.py",
     '_("{what} has shape {shape}; expected a single number", what=1, shape=2)'),
], ids=["checks", "course"])
def test_a_message_missing_from_the_catalog_fails_the_i18n_test(tmp_path, monkeypatch,
                                                                 domain, source, known):
    """The CI check (tests/test_i18n.py) run on a copy with one new, untranslated message."""
    shutil.copyfile(REPO / "babel.cfg", tmp_path / "babel.cfg")
    shutil.copytree(REPO / "locale", tmp_path / "locale")  # the course's catalog
    path = tmp_path / source
    path.parent.mkdir(parents=True)
    path.write_text(f'{known}\n_("A message nobody translated yet: {{name}}", name="x")\n',
                    encoding="utf-8")
    ci = _i18n_test_module()
    monkeypatch.setattr(ci, "ROOT", tmp_path)
    monkeypatch.setattr(i18n, "DOMAIN_SOURCES", {domain: (str(Path(source).parent),)})
    with pytest.raises(AssertionError, match="A message nobody translated yet"):
        ci.test_catalog_is_complete_and_current(domain)
    path.write_text(known + "\n", encoding="utf-8")  # every message in the catalog: passes
    ci.test_catalog_is_complete_and_current(domain)


def test_a_ray_batch_passes_the_language_to_every_node(monkeypatch):
    """Ray starts its workers itself (on other machines too): the language travels in the
    runtime environment with the other variables, so remote suites speak it."""
    from grader.batch import run_ray

    started = {}

    class FakeRay:
        def is_initialized(self) -> bool:
            return False

        def init(self, **options) -> None:
            started.update(options)

        def remote(self, **_options):
            return lambda function: function

        def shutdown(self) -> None:
            pass

    monkeypatch.setitem(sys.modules, "ray", FakeRay())
    with i18n.speaking("zh_CN"):
        run_ray([], on_result=lambda graded: None)
    assert started["runtime_env"]["env_vars"][i18n.ENV_VAR] == "zh_CN"

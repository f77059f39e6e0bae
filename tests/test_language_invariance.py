"""Switching the language changes no grade, no points and no figure.

The same class is graded once in English and once in Chinese (the hidden suite's process
inherits ``GRADER_LANG``): part and test points, fractions, statuses, kinds, diagnoses and
the figures' data must agree. The grades are then reported in each language: the numbers
the pages show and their pictures must agree too. Only the words may differ (and must, for
a failing test: otherwise nothing was translated and the comparison proves nothing).
"""

from __future__ import annotations

import dataclasses
import math
import re
import shutil
from collections import Counter
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from grader import data, i18n
from grader.config import AssignmentConfig, load_assignment
from grader.grading.run import grade_path
from grader.release.strip import strip_file
from grader.reports import (
    ReportInput,
    class_summary,
    render_class_summary,
    render_student_report,
)
from grader.reports.inputs import late_terms
from grader.results.records import Grade, PartGrade, TestOutcome
from grader.samples import load_bugs, write_bug

ROOT = Path(__file__).resolve().parents[1]
FILES = Path(__file__).parent / "files" / "grading"
ACT = load_assignment(FILES / "repo" / "assignments" / "act" / "assignment.toml")
LANGUAGES = ("en", "zh_CN")
SUBMITTED = datetime(2026, 12, 1, 23, 50, tzinfo=timezone.utc)
_CJK = re.compile(r"[\u4e00-\u9fff]")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def _same(a: Any, b: Any, where: str) -> None:
    """`a` and `b` hold the same data; floats (the same code run twice) to 1e-9 relative."""
    if isinstance(a, float) or isinstance(b, float):
        assert isinstance(a, (int, float)) and isinstance(b, (int, float)), where
        assert (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9,
                                                                 abs_tol=1e-12), \
            f"{where}: {a!r} != {b!r}"
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), f"{where}: keys differ"
        for key in a:
            _same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), f"{where}: lengths differ"
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{index}]")
    elif isinstance(a, str) and isinstance(b, str) and a != b:
        # Words in a figure (what was trained) are translated; their numbers must not change.
        assert Counter(_NUMBER.findall(a)) == Counter(_NUMBER.findall(b)), \
            f"{where}: the numbers of {a!r} and {b!r} differ"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def _numbers_of(grade: Grade) -> dict[str, Any]:
    """Everything in a grade but its words and its timings."""
    def outcome(test: TestOutcome) -> dict[str, Any]:
        return {"case": test.case, "status": test.status, "fraction": test.fraction,
                "kind": test.kind, "diagnosis": test.diagnosis,
                "figures": _run_independent(test.figures)}

    return {"score": grade.score, "max_score": grade.max_score,
            "parts": [{"name": part.name, "points": part.points, "max": part.max_points,
                       "tests": [outcome(test) for test in part.tests]}
                      for part in grade.parts],
            "unassigned": [outcome(test) for test in grade.unassigned]}


def _run_independent(figures: dict[str, Any]) -> dict[str, Any]:
    """The figures with a learning curve's series reduced to their lengths: the losses a
    training run records vary from run to run in any one language (two English runs of the
    mlp_numpy reference differ in their first mini-batch losses, not in their accuracy)."""
    curve = figures.get("learning_curve")
    if not isinstance(curve, dict):
        return figures
    shape = {key: len(value) if isinstance(value, list) else value
             for key, value in curve.items()}
    return {**figures, "learning_curve": shape}


def _untimed(grade: Grade) -> Grade:
    """The grade with its (run-dependent) timings set to 1 s, so reports can be compared."""
    def test(t: TestOutcome) -> TestOutcome:
        return dataclasses.replace(t, duration_s=1.0)

    return dataclasses.replace(
        grade, execution_time_s=1.0,
        parts=tuple(PartGrade(p.name, p.points, p.max_points, tuple(map(test, p.tests)))
                    for p in grade.parts),
        unassigned=tuple(map(test, grade.unassigned)))


class _Shown(HTMLParser):
    """A page's visible text and its pictures."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.images: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "script", "title"):
            self._skip += 1
        if tag == "img":
            self.images.append(dict(attrs).get("src") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script", "title"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.text.append(data)


def _shown(html: str) -> tuple[Counter, list[str], str]:
    page = _Shown()
    page.feed(html)
    text = " ".join(page.text)
    return Counter(_NUMBER.findall(text)), page.images, text


class _Frozen(datetime):
    @classmethod
    def now(cls, tz=None):  # the class summary's "generated": the same in both languages
        return SUBMITTED


def _grade_class(config: AssignmentConfig, submissions: dict[str, Path],
                 language: str) -> dict[str, Grade]:
    with i18n.speaking(language):  # the hidden suite's pytest process inherits GRADER_LANG
        return {who: grade_path(config, path).grade for who, path in submissions.items()}


def _compare_class(config: AssignmentConfig, submissions: dict[str, Path],
                   monkeypatch) -> None:
    graded = {language: _grade_class(config, submissions, language) for language in LANGUAGES}
    english, chinese = graded["en"], graded["zh_CN"]
    for who in submissions:
        _same(_numbers_of(english[who]), _numbers_of(chinese[who]), who)
    failing = [t.message for g in chinese.values() for p in g.parts for t in p.tests
               if t.fraction < 1 and t.message]
    assert failing and any(_CJK.search(m) for m in failing), \
        "no failing test spoke Chinese: the comparison would prove nothing"

    # The same grades (timings fixed) rendered in each language: the same numbers and the
    # very same pictures.
    monkeypatch.setattr(class_summary, "datetime", _Frozen)
    multiplier, days = late_terms(config, SUBMITTED)
    rows = [ReportInput(student_id=grade.student_id, grade=grade, submitted_at=SUBMITTED,
                        late_days=days, late_multiplier=multiplier)
            for grade in map(_untimed, chinese.values())]
    pages: dict[str, dict[str, str]] = {}
    for language in LANGUAGES:
        pages[language] = {row.student_id: render_student_report(
            row, config=config, language=language).html for row in rows}
        pages[language]["summary"] = render_class_summary(rows, config=config,
                                                          language=language)
    for page in pages["en"]:
        numbers_en, images_en, text_en = _shown(pages["en"][page])
        numbers_zh, images_zh, text_zh = _shown(pages["zh_CN"][page])
        assert images_en == images_zh, f"{page}: a figure changed with the language"
        assert numbers_en == numbers_zh, (
            f"{page}: numbers differ: only in English {numbers_en - numbers_zh}, only in "
            f"Chinese {numbers_zh - numbers_en}")
        assert "Generated by nn-grader" in text_en and "由 nn-grader 生成" in text_zh, page


def test_act_class_grades_and_reports_alike_in_both_languages(tmp_path, monkeypatch):
    """A small class of the test course (reference, a wrong relu, a syntax error): seconds."""
    reference = tmp_path / "reference"
    reference.mkdir()
    shutil.copyfile(FILES / "repo" / "solutions" / "act.py", reference / "act.py")
    submissions = {"reference": reference,
                   "wrong_relu": FILES / "submissions" / "wrong_relu",
                   "syntax_error": FILES / "submissions" / "syntax_error"}
    _compare_class(ACT, submissions, monkeypatch)


@pytest.mark.slow
@pytest.mark.skipif(not data.available(), reason="no dataset installed (apt-get install "
                    "dataset-fashion-mnist)")
def test_mlp_numpy_class_grades_alike_in_both_languages(tmp_path, monkeypatch):
    """mlp_numpy: the reference, the bare skeleton and two planted bugs (it trains: ~3 min)."""
    config = load_assignment(ROOT / "assignments" / "mlp_numpy" / "assignment.toml")
    student = config.student_files[0]
    (tmp_path / "reference").mkdir()
    shutil.copyfile(ROOT / "reference" / student, tmp_path / "reference" / student)
    (tmp_path / "skeleton").mkdir()
    (tmp_path / "skeleton" / student).write_text(
        strip_file(ROOT / "reference" / student).text, encoding="utf-8")
    bugs = {bug.name: bug for bug in load_bugs(config)}
    chosen = ["cross_entropy_grad_sign", "accuracy_counts_not_fraction"]
    submissions = {"reference": tmp_path / "reference", "skeleton": tmp_path / "skeleton"}
    for name in chosen:
        submissions[name] = write_bug(config, bugs[name], tmp_path / name)
    _compare_class(config, submissions, monkeypatch)

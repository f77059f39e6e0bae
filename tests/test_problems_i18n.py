"""The grader's own failures, stored in English, read in the student's language.

A grader problem (`grader_problem`, "the grader could not <step>: <reason>") is stored in
English; `grader.reports.problems.shown_problem` translates it where a report or a page
shows it. These tests take every step from the writers' source, so a new step without a
translation fails here, and build each reason with the code that writes it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from grader import batch, i18n
from grader.feedback import fallback_report
from grader.reports import ReportInput
from grader.reports.problems import STEPS, shown_problem
from grader.results.records import (
    GRADER_PROBLEM,
    KIND_GRADER_ERROR,
    TestOutcome,
    grader_problem,
    is_grader_problem,
)
from grader.scoring import grader_error_problem
from grader.service import worker

GRADER = Path(__file__).resolve().parents[1] / "grader"
# Functions whose first argument is a grader problem's step.
STEP_TAKERS = {"grader_problem", "_isolated"}


def _steps_in_source() -> set[tuple[str, str]]:
    """Every literal step the tool's code passes to a grader problem: (file, step)."""
    found = set()
    for path in GRADER.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and node.args:
                name = getattr(node.func, "id", getattr(node.func, "attr", ""))
                first = node.args[0]
                if name in STEP_TAKERS and isinstance(first, ast.Constant) \
                        and isinstance(first.value, str):
                    found.add((path.name, first.value))
            if isinstance(node, ast.JoinedStr) and len(node.values) >= 2:
                head, after = node.values[0], node.values[1]
                if isinstance(head, ast.FormattedValue) and \
                        getattr(head.value, "id", "") == "GRADER_PROBLEM" and \
                        isinstance(after, ast.Constant) and after.value.strip():
                    step = after.value.strip().split(":")[0].strip()
                    found.add((path.name, step))
    return found


def test_the_source_scan_finds_the_writers() -> None:
    steps = {step for _file, step in _steps_in_source()}
    # Seen from each kind of writer: a call, an f-string, the report renderer.
    assert {"run the hidden suite", "grade it", "render the report"} <= steps
    assert "judge" in steps  # scoring.py's f-string; its case is a variable


def test_every_step_the_code_writes_has_a_translation() -> None:
    missing = sorted((file, step) for file, step in _steps_in_source()
                     if step not in STEPS and step != "judge")
    assert not missing, f"add these steps to grader/reports/problems.py STEPS: {missing}"
    with i18n.speaking("zh_CN"):
        untranslated = sorted(step for step in STEPS if i18n.Domain("reports").gettext(step)
                              == step)
    assert not untranslated, f"no zh_CN translation in the reports catalog: {untranslated}"


def _reasons() -> dict[str, str]:
    """One recorded problem per writer, built by the writer's own code."""
    report = batch.BatchReport()
    job = batch.Job(Path("a"), Path("b"), Path("s1"), None)
    batch._count_retries([job], {}, 0, report)
    died = report.failed[0][1]
    case = TestOutcome(name="test_grad", case="test_grad[W1]", status="error", fraction=0.0,
                       message="KeyError: 'W1'", kind=KIND_GRADER_ERROR)
    return {
        "exception": grader_problem("run the hidden suite", RuntimeError("boom {n} {step}")),
        "judge": grader_error_problem(case),
        "worker stopped": worker.STOPPED_PROBLEM,
        "batch worker died": f"{GRADER_PROBLEM} grade it: {died}",
        "ray worker died": f"{GRADER_PROBLEM} grade it: the Ray worker died: lost node 3",
    }


@pytest.mark.parametrize("kind", ["exception", "judge", "worker stopped", "batch worker died",
                                  "ray worker died"])
def test_each_grader_problem_reads_as_chinese(kind: str) -> None:
    problem = _reasons()[kind]
    assert is_grader_problem(problem)
    with i18n.speaking("zh_CN"):
        shown = shown_problem(problem)
    assert "评分程序" in shown and "the grader could not" not in shown
    for english in ("grade it", "worker", "grader error", "provisionally", "times"):
        assert english not in shown.replace("Ray", ""), shown
    with i18n.speaking("en"):
        assert shown_problem(problem) == problem  # English stays exactly as stored


def test_the_exception_text_and_the_case_are_kept_as_raised() -> None:
    reasons = _reasons()
    with i18n.speaking("zh_CN"):
        # Braces in a raised text are shown, never formatted (a student can raise anything).
        assert "RuntimeError: boom {n} {step}" in shown_problem(reasons["exception"])
        judged = shown_problem(reasons["judge"])
    assert "test_grad[W1]" in judged and "KeyError: 'W1'" in judged


@pytest.mark.parametrize("problem", [
    "the grader could not reticulate splines: ValueError: x",  # a step nobody translated
    "the grader could not",  # no step, no reason
    "main.py: line 3: SyntaxError (the grader could not grade it: x)",  # not at the start
    "",
])
def test_anything_else_is_shown_as_stored(problem: str) -> None:
    with i18n.speaking("zh_CN"):
        assert shown_problem(problem) == problem


def test_a_chinese_report_shows_the_grader_problem_in_chinese(tmp_path: Path) -> None:
    from grader.config import load_assignment
    from grader.feedback import write_feedback
    from grader.results.records import Grade

    act = Path(__file__).parent / "files" / "grading" / "repo" / "assignments" / "act"
    config = load_assignment(act / "assignment.toml")
    grade = Grade(student_id="s1", assignment=config.id, parts=(), execution_time_s=0.0,
                  problems=(worker.STOPPED_PROBLEM,))
    write_feedback([ReportInput(student_id="s1", grade=grade)], config=config, out=tmp_path,
                   language="zh_CN")
    for name in ("report.html", "report.md"):
        text = (tmp_path / "s1" / name).read_text(encoding="utf-8")
        assert "评分程序" in text and "its worker stopped" not in text


def test_the_fallback_report_speaks_the_course_language() -> None:
    problem = grader_problem("render the report", RuntimeError("template <b>"))
    report = fallback_report(ReportInput(student_id="s1"), problem, "zh_CN")
    assert 'lang="zh-CN"' in report.html and "could not be produced" not in report.html
    assert "评分程序" in report.html and "template &lt;b&gt;" in report.html
    english = fallback_report(ReportInput(student_id="s1"), problem)
    assert "could not be produced" in english.html and 'lang="en"' in english.html
    # A language nn-grader does not speak (maybe why rendering failed) still gives a report.
    assert "could not be produced" in fallback_report(ReportInput(student_id="s1"), problem,
                                                      "xx-YY").markdown


def test_the_service_shows_a_public_results_grader_problem_in_chinese() -> None:
    from grader.gradebook.models import JobModel
    from grader.service import queue
    from grader.service.student import _result

    job = JobModel(state=queue.DONE, result={"score": 0, "max_score": 10, "tests": [],
                                             "problems": [worker.STOPPED_PROBLEM]})
    with i18n.speaking("zh_CN"):
        shown = _result(job)["problems"]
    assert len(shown) == 1 and "评分程序" in shown[0] and "worker" not in shown[0]

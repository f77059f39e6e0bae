"""Feedback reports: renderers, plots, hints and `grader feedback`, on real grades.

Grades come from the golden `act` assignment (tests/files/grading) and from a planted bug
of `mlp_numpy` (`grader.samples`), graded once per module with the real sandbox.
"""

from __future__ import annotations

import base64
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from grader import feedback
from grader.config import load_assignment
from grader.grading.run import grade_path, write_results
from grader.ids import file_name
from grader.reports import (
    ReportInput,
    from_grade_row,
    from_graded,
    from_results_json,
    hints,
    plots,
    render_class_summary,
    render_student_report,
)
from grader.results import records
from grader.results.records import FAILED, Grade, PartGrade, TestOutcome
from grader.samples import load_bugs, write_bug

ROOT = Path(__file__).resolve().parents[1]
FILES = Path(__file__).parent / "files" / "grading"
ACT = load_assignment(FILES / "repo" / "assignments" / "act" / "assignment.toml")
MLP = load_assignment(ROOT / "assignments" / "mlp_numpy" / "assignment.toml")
# Fails gradient, shape and training tests (training stops at its first step, so grading
# takes seconds): messages, tracebacks of the student's own code, gradient tables.
LEAK_BUG = "fc_grad_w_transposed"
MIN_LEAK_LINE = 20  # characters: shorter lines ("return x") say nothing about the source


@pytest.fixture(scope="module")
def act_grades() -> dict:
    names = ("wrong_relu", "train_at_top", "syntax_error", "exits")
    return {name: grade_path(ACT, FILES / "submissions" / name) for name in names}


@pytest.fixture(scope="module")
def mlp_bug(tmp_path_factory) -> tuple:
    bug = next(b for b in load_bugs(MLP) if b.name == LEAK_BUG)
    folder = write_bug(MLP, bug, tmp_path_factory.mktemp("bug") / LEAK_BUG)
    return folder, grade_path(MLP, folder)


def training_figures(accuracy: float = 0.62) -> dict:
    """The figures `test_train_reaches_threshold` attaches, in its format."""
    steps = 100
    return {
        "accuracy": {"dataset": "fashion_mnist", "accuracy": accuracy, "threshold": 0.758,
                     "floor": 0.6},
        "learning_curve": {"loss": [2.3 * 0.98 ** i for i in range(steps)],
                           "accuracy": [min(0.9, 0.1 + 0.007 * i) for i in range(steps)],
                           "x": "mini-batch", "epochs": 1},
        "confusion_matrix": {"dataset": "fashion_mnist", "labels": [str(c) for c in range(10)],
                             "matrix": [[40 if i == j else (3 if j == (i + 1) % 10 else 0)
                                         for j in range(10)] for i in range(10)]},
    }


def with_training_figures(grade: Grade) -> Grade:
    """The grade with its accuracy test replaced by a partial-credit run carrying figures."""
    parts = []
    for part in grade.parts:
        tests = tuple(TestOutcome(t.name, t.case, FAILED, 0.1,
                                  "`train` reached test accuracy 0.6200, below 0.7580: partial "
                                  "credit (none at 0.6000)", 3.0, training_figures())
                      if t.name == "test_train_reaches_threshold" else t for t in part.tests)
        parts.append(PartGrade(part.name, part.points, part.max_points, tests))
    return Grade(grade.student_id, grade.assignment, tuple(parts), grade.execution_time_s,
                 grade.problems, grade.skipped_statements, grade.unassigned)


def _text(html: str) -> str:
    """The visible text of an HTML page, roughly: tags dropped, entities kept decoded."""
    import html as html_module

    body = re.sub(r"<style>.*?</style>", " ", html, flags=re.S)
    text = html_module.unescape(re.sub(r"<[^>]+>", "", body))
    return re.sub(r"\s+", " ", text)


# -- plots ---------------------------------------------------------------------------------

def test_plots_draw_pngs_from_plain_data():
    curve = {"loss": [2.3, 1.5, None, 0.9, 0.7] * 10, "accuracy": [0.1, 0.5, 0.6, None, 0.8] * 10,
             "x": "mini-batch", "epochs": 2}
    pngs = [plots.learning_curve_png(curve, threshold=0.75),
            plots.learning_curve_png({"loss": [], "accuracy": []}),
            plots.learning_curve_png({"loss": [2.0, 1.0], "val_accuracy": [0.5, 0.7]}),
            plots.confusion_matrix_png([[5, 1], [0, 4]], ["cat", "dog"]),
            plots.confusion_matrix_png([[1] * 10] * 10, [str(i) for i in range(10)],
                                       dataset="fashion_mnist"),
            plots.score_histogram_png([3.0, 7.5, 10.0], 10.0, missing=2),
            plots.score_histogram_png([], 0.0)]
    for png in pngs:
        width, height = plots.png_size(png)
        assert width > 100 and height > 100
    assert plots.data_uri(pngs[0]).startswith("data:image/png;base64,iVBOR")
    assert plots.learning_curve_png(curve) == plots.learning_curve_png(curve)  # no timestamps
    with pytest.raises(ValueError, match="not a PNG"):
        plots.png_size(b"GIF89a")


# -- hints and reasons -------------------------------------------------------------------------

@pytest.mark.parametrize("kind, hint", [
    (records.KIND_TIME_LIMIT, "training running at import"),
    (records.KIND_TIME_BUDGET, "total time"),
    (records.KIND_MEMORY, "more memory"),
    (records.KIND_CRASH, "exit()"),
    (records.KIND_UNREADABLE, "could not be imported"),
    (records.KIND_EXCEPTION, "NotImplementedError"),
    (records.KIND_REFUSED, "cannot be checked"),
    (records.KIND_WRONG, "what was expected"),
    (records.KIND_GRADER_ERROR, "the grader's fault"),
])
def test_reasons_and_hints_come_from_the_kind(kind, hint):
    # The message claims another kind: only the recorded kind counts, never the text.
    outcome = TestOutcome("t", "t", FAILED, 0.0, "StudentTimeout: MemoryError: sys.exit",
                          kind=kind)
    assert hints.failure_reason(outcome) == kind
    assert hint in hints.hint_for(outcome)


def test_a_diagnosis_chooses_the_hint():
    outcome = TestOutcome("t", "t", FAILED, 0.0, "grad_W differs\nyour gradient is "
                          "transposed", kind=records.KIND_WRONG, diagnosis="grad_transposed")
    assert hints.hint_for(outcome) == hints.DIAGNOSIS_HINT


def test_passed_partial_and_kindless_cases_have_their_own_reasons():
    assert hints.failure_reason(TestOutcome("t", "t", "passed", 1.0, kind="passed")) is None
    assert hints.failure_reason(TestOutcome("t", "t", FAILED, 0.4, "below 0.75",
                                            kind=records.KIND_PARTIAL)) == hints.PARTIAL
    # Records older than kinds: read from status and fraction, never from the message.
    assert hints.failure_reason(TestOutcome("t", "t", "error", 0.0, "StudentTimeout: x")) == \
        hints.NOT_RUN
    assert hints.failure_reason(TestOutcome("t", "t", FAILED, 0.0, "MemoryError")) == \
        hints.WRONG
    assert hints.failure_reason(TestOutcome("t", "t", FAILED, 0.5, "")) == hints.PARTIAL


# -- the student report -------------------------------------------------------------------------

def test_report_shows_parts_scores_messages_and_hints(act_grades):
    report = render_student_report(from_graded(act_grades["wrong_relu"], config=ACT),
                                   config=ACT)
    text = _text(report.html)
    assert "wrong_relu" in text and "Two activations" in text
    assert "relu" in text and "sigmoid" in text
    assert re.search(r"\b7\s*/\s*10\b", text)  # the final score
    assert re.search(r"\b3\s*/\s*6\b", text)  # the relu part
    assert "2 of 4 values differ from the expected ones" in text
    assert "Hint:" in text
    assert "Relu values" in text  # the test's name, made readable
    for needle in ("wrong\\_relu", "2 of 4 values differ", "*Hint:*", "| relu |"):
        assert needle in report.markdown


def test_report_html_is_self_contained(act_grades, mlp_bug):
    for graded in (act_grades["wrong_relu"], mlp_bug[1]):
        html = render_student_report(from_graded(graded), config=graded_config(graded)).html
        assert "<style>" in html and "<link" not in html and "<script" not in html
        for ref in re.findall(r'(?:src|href)="([^"]*)"', html):
            assert ref.startswith(("data:image/png;base64,", "#")), ref


def graded_config(graded):
    return MLP if graded.grade.assignment == "mlp_numpy" else ACT


def test_skipped_statements_and_unreadable_files_are_reported(act_grades):
    skipped = render_student_report(from_graded(act_grades["train_at_top"]), config=ACT)
    assert "Statements skipped at import" in skipped.html
    assert "act.py line 15: while True:" in _text(skipped.html)
    assert "act.py line 15" in skipped.markdown
    broken = render_student_report(from_graded(act_grades["syntax_error"]), config=ACT)
    assert "SyntaxError in act.py, line 4" in _text(broken.html)
    assert "does not parse" in broken.html
    crashed = _text(render_student_report(from_graded(act_grades["exits"]), config=ACT).html)
    assert "the runtime exited" in crashed and "crash" in crashed


def test_time_limits_late_penalty_and_override_are_shown():
    timeout = TestOutcome("test_relu_values", "test_relu_values", FAILED, 0.0,
                          "StudentTimeout: act.relu(...) did not finish within 5 s; the "
                          "runtime was stopped", 5.0, kind=records.KIND_TIME_LIMIT)
    grade = Grade("s1", "act", (PartGrade("relu", 0.0, 6.0, (timeout,)),
                                PartGrade("sigmoid", 4.0, 4.0, ())), 6.0)
    row = ReportInput(student_id="s1", display_name="Ada", grade=grade,
                      submitted_at=ACT.due + timedelta(days=1, hours=2), late_days=2,
                      late_multiplier=0.8, override_points=9.0, override_reason="regrade")
    report = render_student_report(row, config=ACT)
    text = _text(report.html)
    assert "Limits hit" in text and "time limit" in text and "did not finish within 5 s" in text
    assert "Late submission" in text and "2 days after the due date" in text
    assert "3.2" in text  # 4 points x 0.8
    assert "set your final score to 9" in text and "regrade" in text
    assert "Ada" in text
    assert "Instructor override" in report.markdown


def test_students_without_a_submission_get_a_report_saying_so():
    report = render_student_report(ReportInput(student_id="s404", display_name="Bo"), config=ACT)
    assert "No submission" in report.html and "s404" in report.html
    assert "every part scores 0" in _text(report.html)
    assert "No submission" in report.markdown


def test_mlp_report_has_gradient_tables_and_pictures(mlp_bug):
    graded = mlp_bug[1]
    report = render_student_report(
        ReportInput(student_id="s1", grade=with_training_figures(graded.grade)), config=MLP)
    text = _text(report.html)
    assert "Relative error" in text and "Softmax.backward" in text
    assert "returned shape (6, 785); expected (785, 6)" in text
    # The hint comes from the outcome's kind (a wrong result), not from the message's text;
    # naming the transposition is the check's diagnosis (`grader.checks.diagnose`).
    assert hints.HINTS[hints.WRONG] in text
    pictures = re.findall(r'<img src="data:image/png;base64,([^"]+)"', report.html)
    # The learning curve and the confusion matrix of `train`, and the heat map of the
    # gradient that differs.
    assert len(pictures) == 3
    for picture in pictures:
        width, height = plots.png_size(base64.b64decode(picture))
        assert width > 300 and height > 200
    assert "Learning curve" in text and "Confusion matrix" in text


def test_report_never_contains_hidden_tests_or_reference_code(mlp_bug):
    folder, graded = mlp_bug
    report = render_student_report(from_graded(graded, config=MLP), config=MLP)
    shown = report.html + "\n" + _text(report.html) + "\n" + report.markdown
    hidden = (ROOT / "autograde_tests" / "mlp_numpy" / "test_hidden.py").read_text()
    leaked = [line.strip() for line in hidden.splitlines()
              if len(line.strip()) > MIN_LEAK_LINE and line.strip() in shown]
    assert not leaked, leaked
    # A solution line may show only where the student's own traceback quotes their own file
    # (a planted bug is the reference with one edit, so their file holds most of them).
    quoted = {line.strip() for p in graded.grade.parts for t in p.tests
              if 'File "mlp_numpy.py"' in t.message for line in t.message.splitlines()}
    own = {line.strip() for line in (folder / "mlp_numpy.py").read_text().splitlines()}
    solution, inside = [], False
    for line in (ROOT / "reference" / "mlp_numpy.py").read_text().splitlines():
        if "### BEGIN SOLUTION" in line or "### END SOLUTION" in line:
            inside = "BEGIN" in line
        elif inside and len(line.strip()) > MIN_LEAK_LINE:
            solution.append(line.strip())
    shown_solution = [line for line in solution if line in shown]
    assert all(line in quoted and line in own for line in shown_solution), shown_solution
    assert set(solution) - own, "the bug should change at least one solution line"


# -- the class summary ----------------------------------------------------------------------------

def test_class_summary_counts_failures_and_links_every_report(act_grades):
    rows = [from_graded(graded) for graded in act_grades.values()]
    html = render_class_summary(rows, config=ACT, roster=[("absent1", "Cy")],
                                report_links={"wrong_relu": "wrong_relu/report.html",
                                              "absent1": "absent1/report.html"})
    text = _text(html)
    assert "5" in text and "did not submit" in text  # 5 students, one missing
    assert html.count('src="data:image/png;base64,') == 1  # the histogram
    assert "Pass rate per part" in text and "Pass rate per test" in text
    assert "test_relu_values" in text
    assert "Most often failed" in text and "values differ from the expected ones" in text
    for reason in (hints.UNREADABLE, hints.CRASH, hints.WRONG):
        assert reason in text
    assert "Slowest submissions" in text
    assert 'href="wrong_relu/report.html"' in html and 'href="absent1/report.html"' in html
    assert "Cy" in text


# -- grader feedback ----------------------------------------------------------------------------

def test_feedback_from_results_json_folder(act_grades, tmp_path):
    results = tmp_path / "graded"
    for graded in act_grades.values():
        write_results(graded, results)
    back = from_results_json(results / "wrong_relu" / "results.json", config=ACT)
    assert back.grade.score == act_grades["wrong_relu"].grade.score
    assert [p.points for p in back.grade.parts] == [
        p.points for p in act_grades["wrong_relu"].grade.parts]
    out = tmp_path / "feedback"
    assert feedback.main(assignment=str(ACT.root), results=results, out=out) == 0
    assert (out / "index.html").is_file()
    for name in act_grades:
        assert (out / name / "report.html").is_file() and (out / name / "report.md").is_file()


def test_feedback_reports_speak_the_course_language(act_grades, tmp_path):
    """`grader feedback` declares course.toml's language (zh_CN -> <html lang="zh-CN">)."""
    import shutil

    course = tmp_path / "course"
    shutil.copytree(FILES / "repo", course)
    toml = course / "course.toml"
    toml.write_text(toml.read_text().replace('language = "en"', 'language = "zh_CN"'))
    results = tmp_path / "graded"
    write_results(act_grades["wrong_relu"], results)
    out = tmp_path / "feedback"
    assert feedback.main(assignment=str(course / "assignments" / "act"), results=results,
                         out=out) == 0
    for page in (out / "wrong_relu" / "report.html", out / "index.html"):
        assert page.read_text().startswith('<!DOCTYPE html>\n<html lang="zh-CN">'), page
    assert "各部分得分" in (out / "wrong_relu" / "report.html").read_text()
    assert "全班汇总" in (out / "index.html").read_text()


@pytest.mark.parametrize("argv_lang, tag, words", [
    ([], "zh-CN", "各部分得分"),              # the course's language
    (["--lang", "en"], "en", "Score per part"),  # --lang wins for this run
])
def test_grader_feedback_writes_in_the_run_language(act_grades, tmp_path, monkeypatch,
                                                    argv_lang, tag, words):
    import shutil

    from grader import cli, i18n

    monkeypatch.delenv(i18n.ENV_VAR, raising=False)
    course = tmp_path / "course"
    shutil.copytree(FILES / "repo", course)
    toml = course / "course.toml"
    toml.write_text(toml.read_text().replace('language = "en"', 'language = "zh_CN"'))
    results = tmp_path / "graded"
    write_results(act_grades["wrong_relu"], results)
    out = tmp_path / "feedback"
    assert cli.main(["--course", str(course), *argv_lang, "feedback", "act", "--results",
                     str(results), "--out", str(out)]) == 0
    html = (out / "wrong_relu" / "report.html").read_text()
    assert html.startswith(f'<!DOCTYPE html>\n<html lang="{tag}">') and words in html


def test_feedback_from_the_gradebook_reports_every_roster_student(act_grades, tmp_path, capsys):
    from grader.gradebook import open_gradebook

    db = tmp_path / "gradebook.db"
    with open_gradebook(db) as book:
        book.add_students([("wrong_relu", "Wren"), ("absent 1/x", "Abe")])
        graded = act_grades["wrong_relu"]
        book.record(ACT, graded.submission, graded.grade)
        book.set_override(ACT.id, "wrong_relu", 8.5, "late registration")
        rows = book.latest(ACT.id)
    report = from_grade_row(rows[0])
    assert report.override_points == 8.5 and report.override_reason == "late registration"
    out = tmp_path / "feedback"
    assert feedback.main(assignment=str(ACT.root), db=str(db), out=out) == 0
    printed = capsys.readouterr().out
    assert "index.html" in printed
    assert "8.5" in _text((out / "wrong_relu" / "report.html").read_text())
    absent = out / file_name("absent 1/x") / "report.html"
    assert "No submission" in absent.read_text()
    index = (out / "index.html").read_text()
    assert f'href="{file_name("absent 1/x")}/report.html"' in index


def test_unknown_gradebook_is_an_error_not_a_traceback(tmp_path, capsys):
    status = feedback.main(assignment=str(ACT.root), db=tmp_path / "no" / "such" / "g.db",
                           out=tmp_path)
    assert status == 2
    assert "grader feedback:" in capsys.readouterr().err


def test_report_folders_are_grader_ids_file_names(tmp_path):
    """`..`, absolute and escaped ids get a folder inside `out`, named by `file_name`."""
    hostile = ["../../escaped", "/etc/cron.d/x", "\x1b[31mred", "plain-id"]
    out = tmp_path / "deep" / "feedback"
    written = feedback.write_feedback([], config=ACT, out=out, roster=hostile)
    assert written.problems == []
    folders = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert folders == sorted(file_name(ident) for ident in hostile)
    assert "plain-id" in folders  # a safe id keeps its name
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file() and out not in p.parents
                  ) == []  # nothing outside out


def test_results_json_without_extras_still_renders(tmp_path):
    data = {"score": 1, "execution_time": 0.5, "tests": [
        {"name": "relu: test_relu_values", "score": 0, "max_score": 3, "status": "failed",
         "output": "wrong"}], "extra": {"student_id": "x", "assignment": "act",
                                        "parts": [{"name": "relu", "points": 0,
                                                   "max_points": 3}],
                                        "submitted_at": datetime(2027, 1, 1, tzinfo=timezone.utc)
                                        .isoformat()}}
    report = from_results_json(data, config=ACT)
    assert report.late_days > 0 and report.late_multiplier == ACT.late.multiplier(
        report.submitted_at, ACT.due)
    assert "wrong" in render_student_report(report, config=ACT).html

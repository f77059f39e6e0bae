"""Output that cannot attack its reader (issue 9, item 6): hostile numbers and text.

Student-controlled values (figure data from what their code returned, ids, names,
messages) go through every writer: results.json stays strict JSON inside ``--out``,
plots never hand matplotlib a non-finite or absurd axis, report.md renders no HTML,
link or image, report.html stays escaped, CSV cells are never formulas, and one
report that cannot be rendered costs that student only.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from grader import feedback
from grader.config import load_assignment
from grader.export import csv_cell, csv_rows, parse_columns
from grader.grading.run import GradedSubmission, write_results
from grader.ids import file_name
from grader.intake import Submission
from grader.reports import ReportInput, plots, render_student_report
from grader.reports.templates_env import markdown_text
from grader.results import records
from grader.results.records import FAILED, PASSED, Grade, PartGrade, TestOutcome

FILES = Path(__file__).parent / "files" / "grading"
ACT = load_assignment(FILES / "repo" / "assignments" / "act" / "assignment.toml")
NAN, INF = float("nan"), float("inf")
HOSTILE_NUMBERS = [1e308, NAN, INF, -INF, 1e300 * 10, -1e308, 1e-320]
HOSTILE_FIGURES = {
    "learning_curve": {"loss": HOSTILE_NUMBERS, "accuracy": HOSTILE_NUMBERS,
                       "val_loss": HOSTILE_NUMBERS, "val_accuracy": HOSTILE_NUMBERS,
                       "x": "mini-batch", "epochs": 1e308, "stopped": "<b>never</b>"},
    "accuracy": {"accuracy": NAN, "threshold": INF, "floor": 1e308},
    "confusion_matrix": {"matrix": [[1e308, NAN], [INF, -INF]], "labels": ["<i>", "b"]},
    "gradient_errors": {"W": {"relative_error": NAN, "tolerance": 1e308}},
}
INJECTIONS = ['<img src=x onerror="alert(1)">', "[click](javascript:alert(1))",
              "![pic](http://evil.example/p.png)", "<script>alert(2)</script>",
              "<https://evil.example>", "&#106;avascript:alert(3)", "\n# heading\n<b>x</b>"]


def _strict(text: str) -> object:
    """Parses JSON the way a strict parser does: NaN and Infinity are errors."""
    def refuse(constant: str) -> None:
        raise ValueError(f"non-standard JSON constant {constant}")
    return json.loads(text, parse_constant=refuse)


def _grade(student_id: str = "s1", figures: dict | None = None, message: str = "") -> Grade:
    figures = HOSTILE_FIGURES if figures is None else figures
    tests = (TestOutcome("test_relu_shape", "test_relu_shape", PASSED, 1.0, "", 0.1, figures),
             TestOutcome("test_relu_values", "test_relu_values", FAILED, 0.0, message, 0.1,
                         figures))
    return Grade(student_id, "act", (PartGrade("relu", 3.0, 6.0, tests),
                                     PartGrade("sigmoid", 0.0, 4.0, ())), 1.0)


def _graded(student_id: str, tmp_path: Path) -> GradedSubmission:
    submission = Submission(student_id=student_id, source=tmp_path, workspace=tmp_path,
                            files={}, problems=(), submitted_at=None)
    return GradedSubmission(submission, _grade(student_id))


# -- results.json --------------------------------------------------------------------------------

def test_figures_and_credit_become_strict_json_where_outcomes_are_built():
    outcome = records.outcome_from_phases(
        "test_curve", {"call": ("passed", "")}, 0.5,
        [(records.FIGURE_KEY, (name, value)) for name, value in HOSTILE_FIGURES.items()]
        + [(records.CREDIT_KEY, (NAN, "accuracy nan"))])
    assert outcome.fraction == 0.0  # NaN credit earns nothing
    text = json.dumps(outcome.figures, allow_nan=False)  # would raise on NaN or inf
    curve = outcome.figures["learning_curve"]["loss"]
    assert curve == [1e308, None, None, None, 1e301, -1e308, 1e-320]  # 1e300 * 10 is finite
    assert _strict(text) == outcome.figures


@pytest.mark.parametrize("student_id", ["../../outside", "/tmp/absolute", "a\x00b",
                                        "\x1b[31mred\x1b[0m", "..", "con"])
def test_results_json_stays_inside_out_and_is_strict(tmp_path, student_id):
    out = tmp_path / "deep" / "out"
    path = write_results(_graded(student_id, tmp_path), out)
    assert path.parent.parent == out and path.parent.name == file_name(student_id)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == [path]  # nothing else written
    data = _strict(path.read_text())
    assert data["extra_data"]["student_id"] == student_id
    assert data["tests"][0]["extra_data"]["figures"]["accuracy"]["accuracy"] is None


def test_strict_json_handles_numpy_tuples_keys_and_depth():
    np = pytest.importorskip("numpy")
    deep: list = []
    node = deep
    for _ in range(200):
        node.append([])
        node = node[0]
    value = {1: np.float32("nan"), "a": np.array([1.0, np.inf]), "t": (1, 2), "d": deep,
             "o": object}
    plain = records.strict_json(value)
    json.dumps(plain, allow_nan=False)
    assert plain["1"] is None and plain["a"] == [1.0, None] and plain["t"] == [1, 2]


# -- plots ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("curve", [
    HOSTILE_FIGURES["learning_curve"],
    {"loss": [1.0] * 40, "x": "mini-batch", "epochs": 1e308},  # once 1e308 boundary lines
    {"loss": [1.0] * 40, "x": "mini-batch", "epochs": NAN},
    {"loss": [1.0, 2.0], "val_loss": [1e308, -1e308]},
    {"loss": "not a list", "accuracy": 7},
    {"loss": [NAN, NAN], "accuracy": [INF]},
])
def test_learning_curves_with_hostile_numbers_draw(curve):
    for threshold in (None, NAN, INF, 1e308, 0.5):
        png = plots.learning_curve_png(curve, threshold=threshold)
        assert plots.png_size(png) == (760, 270)


def test_confusion_matrices_and_histograms_with_hostile_numbers_draw():
    png = plots.confusion_matrix_png(HOSTILE_FIGURES["confusion_matrix"]["matrix"], ["a"])
    assert png.startswith(plots.PNG_SIGNATURE)
    assert plots.clean_matrix([[1e308, NAN], [INF, 3]]) == [[0.0, 0.0], [0.0, 3.0]]
    for bad in ([[1, 2], [3]], "matrix", [["x"]] * 101, []):
        with pytest.raises(plots.FigureError):
            plots.clean_matrix(bad)
    assert plots.score_histogram_png([NAN, INF, 1e308, 5.0], NAN).startswith(
        plots.PNG_SIGNATURE)


# -- reports -------------------------------------------------------------------------------------

def _rendered_markdown(markdown: str) -> str:
    """report.md as an LMS that allows raw HTML would show it."""
    return MarkdownIt("commonmark", {"html": True}).render(markdown)


def test_a_report_with_hostile_figures_renders_with_notes():
    report = render_student_report(ReportInput(student_id="s1", grade=_grade()), config=ACT)
    assert "Learning curve" in report.html and "classified correctly" not in report.html
    assert "Test accuracy" not in report.html  # a NaN accuracy is not shown as a number


def test_a_malformed_figure_costs_its_picture_only():
    figures = {"confusion_matrix": {"matrix": [[1, 2], [3]]}, "learning_curve": {
        "loss": [1.0, 0.5]}}
    report = render_student_report(ReportInput(student_id="s1", grade=_grade(
        figures=figures)), config=ACT)
    assert "could not be drawn" in report.html and "must be square" in report.html
    assert "Relu values" in report.html


@pytest.mark.parametrize("text", INJECTIONS)
def test_report_md_renders_student_text_as_text(text):
    grade = _grade(student_id="s1", figures={"gradient_errors": {text: {
        "relative_error": 1.0, "tolerance": 1e-7}}}, message=text)
    grade = Grade(grade.student_id, grade.assignment, grade.parts, 1.0, problems=(text,),
                  skipped_statements=(f"act.py line 3: {text}",))
    report = render_student_report(ReportInput(student_id="s1", display_name=text,
                                               grade=grade), config=ACT)
    html = _rendered_markdown(report.markdown)
    assert not re.search(r"<(img|a|script|b|i)[\s>]", html), html
    assert html.count("<h1>") == 1  # the report's own title; "# heading" stays text
    assert "javascript:" not in re.sub(r">[^<]*<", "><", html)  # only ever inside text
    assert "<script" not in report.html and "<img src=x" not in report.html
    assert 'onerror="alert(1)"' not in report.html


def test_markdown_text_escapes_every_markdown_and_html_character():
    assert markdown_text("a_b *c* [d](e) <f> &g; `h` # | ! ~") == (
        r"a\_b \*c\* \[d\]\(e\) \<f\> \&g; \`h\` \# \| \! \~")
    assert markdown_text("two\nlines") == "two lines"


# -- feedback ------------------------------------------------------------------------------------

@pytest.mark.parametrize("error", [RecursionError("maximum recursion depth exceeded"),
                                   MemoryError(), ValueError("bad figure")])
def test_one_report_that_cannot_render_costs_that_student_only(tmp_path, monkeypatch, error):
    real = feedback.render_student_report

    def render(report, *, config, **options):
        if report.student_id == "s2":
            raise error
        return real(report, config=config, **options)

    monkeypatch.setattr(feedback, "render_student_report", render)
    inputs = [ReportInput(student_id=ident, grade=_grade(ident)) for ident in ("s1", "s2", "s3")]
    written = feedback.write_feedback(inputs, config=ACT, out=tmp_path)
    assert [(who, problem.split(":")[0]) for who, problem in written.problems] == [
        ("s2", "the grader could not render the report")]
    assert type(error).__name__ in written.problems[0][1]
    for ident in ("s1", "s3"):
        assert "Relu values" in (tmp_path / ident / "report.html").read_text()
    assert "could not be produced" in (tmp_path / "s2" / "report.html").read_text()
    assert "s2/report.html" in written.index.read_text()


def test_feedback_exits_3_and_renders_the_others_when_a_results_json_is_broken(tmp_path,
                                                                                capsys):
    results = tmp_path / "graded"
    for ident in ("s1", "\x1b[2Jwipe"):
        write_results(_graded(ident, tmp_path), results)
    (results / "broken").mkdir()
    (results / "broken" / "results.json").write_text('{"score": NaN, "tests": [')
    status = feedback.main(assignment=str(ACT.root), results=results, out=tmp_path / "fb")
    captured = capsys.readouterr()
    assert status == feedback.PROBLEMS_EXIT
    assert "broken/results.json: the grader could not read results.json" in captured.err
    assert "\x1b" not in captured.out + captured.err
    assert (tmp_path / "fb" / "s1" / "report.html").is_file()
    assert (tmp_path / "fb" / file_name("\x1b[2Jwipe") / "report.md").is_file()


# -- CSV -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("cell", "shown"), [
    ("=HYPERLINK(\"http://evil\")", "'=HYPERLINK(\"http://evil\")"), ("+1+1", "'+1+1"),
    ("-2+3", "'-2+3"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"), ("\rx", "'\rx"),
    ("-3", "-3"), ("7.5", "7.5"), ("1e-05", "1e-05"), ("2023001", "2023001"), ("Ada", "Ada"),
    ("-inf", "'-inf"), ("-nan", "'-nan")])
def test_csv_cells_follow_owasps_rule(cell, shown):
    assert csv_cell(cell) == shown


def test_every_csv_cell_and_header_is_neutralised(tmp_path):
    from grader.export import write_csv

    columns = parse_columns("student_id==Formula,name,final_score=@title", parts=["relu"])
    table = csv_rows(columns, [], [("=1+2", "@cmd|' /C calc'!A0"), ("-5", "+ok")], {},
                     max_points=10)
    write_csv(columns, table, tmp_path / "grades.csv", "x.csv")
    lines = (tmp_path / "grades.csv").read_text(encoding="utf-8-sig").splitlines()
    assert lines[0] == "'=Formula,name,'@title"
    assert lines[1:] == ["-5,'+ok,0", "'=1+2,'@cmd|' /C calc'!A0,0"]
    assert math.isfinite(float(lines[1].split(",")[-1]))


@pytest.mark.parametrize("error", [RecursionError(), MemoryError(), ValueError("odd row")],
                         ids=lambda e: type(e).__name__)
def test_one_row_that_cannot_be_exported_costs_that_student_only(monkeypatch, error):
    from grader.export import csv as export
    from grader.gradebook import GradeRow

    real = export.graded_values

    def values(row):
        if row.student_id == "s2":
            raise error
        return real(row)

    monkeypatch.setattr(export, "graded_values", values)
    rows = [GradeRow(ident, "", None, 0, 1.0, _grade(ident), None, score, 1)
            for ident, score in (("s1", 3.0), ("s2", 3.0), ("s3", NAN))]
    problems: list = []
    columns = parse_columns("student_id,final_score,status", parts=["relu"])
    table = csv_rows(columns, rows, [], {}, max_points=10, problems=problems)
    assert table == [["s1", "3", "graded"], ["s2", "", "not exported"], ["s3", "", "graded"]]
    assert [(who, text.split(":")[0]) for who, text in problems] == [
        ("s2", "the grader could not export its row")]


def test_the_class_summary_escapes_ids_names_and_messages():
    from grader.reports import render_class_summary

    inputs = [ReportInput(student_id=f"s{n}", display_name=text,
                          grade=_grade(f"s{n}", message=text))
              for n, text in enumerate(INJECTIONS)]
    html = render_class_summary(inputs, config=ACT, roster=[("<b>absent</b>", INJECTIONS[0])],
                                report_links={"s0": "s0/report.html"})
    assert "<script>alert" not in html and "<img src=x" not in html and "<b>absent" not in html
    assert not re.search(r'href="(?!s0/report\.html|#)', html)  # our one link, nothing else

"""Feedback reports: grades -> a student's HTML and Markdown report, the class summary.

Pure renderers over `ReportInput` (no database); `grader.feedback` does the I/O.

- `inputs`: what a report is rendered from (`ReportInput`, from a gradebook row, a
  grading run or a results.json);
- `student`: one student's report; `figures` turns a test's figure data into what it shows
  (gradient tables, difference heat maps, learning curves, the accuracy line);
- `class_summary`: the instructor's page of class statistics;
- `hints`: why a test failed and what to look at, from the outcome's data;
- `plots`: the pictures; `templates_env`: the jinja2 environments and filters.
"""

from grader.reports.class_summary import render_class_summary
from grader.reports.inputs import (
    ReportInput,
    from_grade_row,
    from_graded,
    from_results_json,
)
from grader.reports.student import StudentReport, render_student_report

__all__ = [
    "ReportInput",
    "StudentReport",
    "from_grade_row",
    "from_graded",
    "from_results_json",
    "render_class_summary",
    "render_student_report",
]

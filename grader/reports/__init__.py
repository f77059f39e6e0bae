"""Feedback reports: grades -> a student's HTML and Markdown report, the class summary.

Pure renderers over `ReportInput` (no database); `grader.feedback` does the I/O.
"""

from grader.reports.inputs import (
    ReportInput,
    from_grade_row,
    from_graded,
    from_results_json,
)
from grader.reports.render import StudentReport, render_class_summary, render_student_report

__all__ = [
    "ReportInput",
    "StudentReport",
    "from_grade_row",
    "from_graded",
    "from_results_json",
    "render_class_summary",
    "render_student_report",
]

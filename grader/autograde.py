"""`grader autograde`: grade one submission or a class folder with the hidden suite.

Each submission's results go to ``<out>/<student>/results.json`` and into the gradebook
(``--db``; default ``gradebook.db`` in the course folder) as soon as it is graded, each in
its own transaction: stopping a batch half way keeps everything graded so far.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tqdm import tqdm

from grader.config import AssignmentConfig, load_assignment
from grader.gradebook import DEFAULT_DB, database_url, open_gradebook
from grader.grading.run import GradedSubmission, grade_path, write_results
from grader.intake import MANIFEST_NAME, discover


def submissions_in(path: Path, config: AssignmentConfig) -> list[Path]:
    """One submission (a file, or a folder holding the student files) or a class folder's."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such submission file or folder")
    own = [*config.student_files, MANIFEST_NAME]
    if any((path / name).exists() for name in own):
        return [path]
    return discover(path)


def score_table(graded: list[GradedSubmission]) -> str:
    if not graded:
        return "no submissions"
    parts = [part.name for part in graded[0].grade.parts]
    header = ["student", *parts, "total"]
    rows = [[g.grade.student_id,
             *(f"{round(p.points, 2):g}/{p.max_points:g}" for p in g.grade.parts),
             f"{round(g.grade.score, 2):g}/{g.grade.max_score:g}"] for g in graded]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True))
             for row in [header, *rows]]
    return "\n".join(lines)


def main(*, assignment: str, submissions: Path, out: Path | None = None,
         dataset: str | None = None, db: str | Path | None = None) -> int:
    """Grades submissions, writes their results.json and records them in the gradebook.

    Args:
        assignment: the assignment id (or its folder or assignment.toml).
        submissions: a submission (folder, zip, .py, .ipynb) or a class folder.
        out: where results.json files go; default: ``graded/<id>``.
        dataset: the dataset for data-driven tests; default: `grader.data`'s.
        db: a SQLAlchemy URL or a SQLite path; default: ``gradebook.db`` in the course
            folder (the folder holding ``assignments/``).

    Returns:
        0.
    """
    config = load_assignment(assignment)
    out = out or Path("graded") / config.id
    paths = submissions_in(submissions, config)
    url = database_url(db if db is not None else config.repo_root / DEFAULT_DB)
    graded = []
    with open_gradebook(url) as gradebook:
        for path in tqdm(paths, desc=f"grading {config.id}", unit="submission",
                         disable=len(paths) < 2 or not sys.stderr.isatty()):
            result = grade_path(config, path, dataset_name=dataset)
            write_results(result, out)
            gradebook.record(config, result.submission, result.grade)
            graded.append(result)
        shown = gradebook.engine.url.render_as_string(hide_password=True)
    print(score_table(graded))
    print(f"\nresults.json for each student in {out}/; grades recorded in {shown}")
    return 0

"""`grader autograde`: grade one submission or a class folder with the hidden suite."""

from __future__ import annotations

import sys
from pathlib import Path

from tqdm import tqdm

from grader.config import AssignmentConfig, load_assignment
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
    rows = [[g.grade.student_id, *(f"{round(p.points, 2):g}/{p.max_points:g}" for p in g.grade.parts),
             f"{round(g.grade.score, 2):g}/{g.grade.max_score:g}"] for g in graded]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True))
             for row in [header, *rows]]
    return "\n".join(lines)


def main(*, assignment: str, submissions: Path, out: Path | None = None,
         dataset: str | None = None) -> int:
    config = load_assignment(assignment)
    out = out or Path("graded") / config.id
    paths = submissions_in(submissions, config)
    graded = []
    for path in tqdm(paths, desc=f"grading {config.id}", unit="submission",
                     disable=len(paths) < 2 or not sys.stderr.isatty()):
        result = grade_path(config, path, dataset_name=dataset)
        write_results(result, out)
        graded.append(result)
    print(score_table(graded))
    print(f"\nresults.json for each student in {out}/")
    return 0

"""`grader autograde`: grade one submission or a class folder with the hidden suite.

Each submission's results go to ``<out>/<student>/results.json`` and into the gradebook
(``--db``; default ``gradebook.db`` in the course folder) as soon as it is graded, each in
its own transaction: stopping a batch half way keeps everything graded so far.

One submission never stops the others: whatever a per-submission step raises (intake
and the suite in `grader.batch`; here writing results.json and recording in the
gradebook) is recorded as that submission's problem where it still can be, the batch
goes on, the summary on stderr lists every submission with a problem (who, what, what to
do), and the exit status is 3. Student-controlled text reaches the terminal only through
`grader.ids.printable`.
"""

from __future__ import annotations

import sys
import tempfile
import textwrap
from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from tqdm import tqdm

from grader.batch import ENGINES, Job, default_workers, not_graded, passing, run_local, run_ray
from grader.config import AssignmentConfig, load_assignment
from grader.grade_record import GradeRecord, submission_lateness
from grader.gradebook import DEFAULT_DB, content_hash, database_url, open_gradebook
from grader.grading.run import GradedSubmission
from grader.i18n import Domain
from grader.ids import file_name, printable
from grader.intake import MANIFEST_NAME, at_instructor_time, discover, intake, survey
from grader.reports.hints import (
    CRASH,
    GRADER_ERROR,
    MEMORY,
    TIME_BUDGET,
    TIME_LIMIT,
    failure_reason,
)
from grader.results.records import (
    GRADER_PROBLEM,
    grader_problem,
    is_grader_problem,
    json_text,
    to_results_json,
)

_, _n = Domain("cli").functions()

PROBLEMS_EXIT = 3  # exit status when some submissions had problems (listed on stderr)
INTERRUPTED_EXIT = 130  # the shell's status for a command stopped by Ctrl-C (128 + SIGINT)
GRADER_TODO = ("the grader failed, not the student: it is graded again on the next "
               "`grader autograde` run; if it fails again, report the message")
STUDENT_TODO = ("once it is fixed, grade it again with --force (its results.json and report "
                "say the same)")


@dataclass(frozen=True)
class Attention:
    """A submission the instructor must look at: whose, what happened, what to do."""

    student_id: str
    source: Path
    problem: str
    todo: str

    def line(self) -> str:
        """One terminal line, control characters shown as escapes."""
        facts = {"who": printable(self.student_id, limit=80),
                 "file": printable(self.source.name, limit=80),
                 "problem": printable(self.problem, limit=400)}
        if self.todo == GRADER_TODO:  # one whole sentence per kind, in the reader's language
            return "  " + _("{who} ({file}): {problem}; the grader failed, not the student: it "
                            "is graded again on the next `grader autograde` run; if it fails "
                            "again, report the message", **facts)
        if self.todo == STUDENT_TODO:
            return "  " + _("{who} ({file}): {problem}; once it is fixed, grade it again with "
                            "--force (its results.json and report say the same)", **facts)
        return f"  {facts['who']} ({facts['file']}): {facts['problem']}; {self.todo}"


def write_results(graded: GradedSubmission, out: Path, config: AssignmentConfig | None = None,
                  gradebook=None) -> Path:
    """Writes ``<out>/<file_name(student id)>/results.json`` with the one serializer
    (`grader.results.records.to_results_json`) and the submission's grade record.

    Args:
        graded: the graded submission.
        out: the results folder.
        config: the assignment: lateness under its policy (`grade_record`), its public
            parts; None: the tests' score as it is.
        gradebook: where the student's extension is read from; None: no extension.
    """
    grade, submission = graded.grade, graded.submission
    record, public = None, ()
    if config is not None:
        extension = gradebook.extension(config.id, grade.student_id) if gradebook else None
        late = submission_lateness(config, submission, extension.days if extension else 0.0)
        record = GradeRecord(score=grade.score, max_score=grade.max_score,
                             submitted_at=submission.submitted_at, charged_at=late.charged_at,
                             late_days=late.late_days, late_multiplier=late.multiplier,
                             extension_days=late.extension_days,
                             extension_reason=extension.reason if extension else "")
        public = tuple(part.name for part in config.parts if part.public)
    folder = out / file_name(grade.student_id)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "results.json"
    # The name the gradebook will show: the roster's when it has one (`Gradebook.record`).
    name = (gradebook.display_name(grade.student_id) if gradebook else "") or \
        submission.display_name
    path.write_text(json_text(to_results_json(
        grade, record, public_parts=public, display_name=name, notes=submission.notes)),
        encoding="utf-8")
    return path


def submissions_in(path: Path, config: AssignmentConfig) -> list[Path]:
    """One submission (a file, or a folder holding the student files) or a class folder's."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such submission file or folder")
    own = [*config.student_files, MANIFEST_NAME]
    if any((path / name).exists() for name in own):
        return [path]
    return discover(path, assignment=config.id)


TABLE_WIDTH = 100  # the score table fits a standard terminal
ID_WIDTH = 20  # longer student ids are cut in the table (the CSV export has them whole)


def score_table(graded: list[GradedSubmission], *, width: int = TABLE_WIDTH) -> str:
    """The class's scores as text at most `width` columns wide.

    One column per part with "points/max" when that fits; else the parts get letters
    (A, B, ...), several consecutive parts share a letter when even that is too wide,
    cells hold points only, and a legend after a blank line names each letter's parts and
    their maximum, and the export that has every part in full.
    """
    if not graded:
        return "no submissions"
    parts = [(part.name, part.max_points) for part in graded[0].grade.parts]
    ids = [printable(g.grade.student_id, limit=ID_WIDTH) for g in graded]
    totals = [f"{round(g.grade.score, 2):g}/{g.grade.max_score:g}" for g in graded]
    full = _columns(["student", *(name for name, _ in parts), "total"],
                    [[who, *(f"{round(p.points, 2):g}/{p.max_points:g}" for p in g.grade.parts),
                      total] for who, g, total in zip(ids, graded, totals, strict=True)])
    if max(map(len, full)) <= width:
        return "\n".join(full)
    for size in range(1, len(parts) + 1):  # parts per lettered column, fewest first
        groups = [range(i, min(i + size, len(parts))) for i in range(0, len(parts), size)]
        letters = [_letter(i) for i in range(len(groups))]
        rows = [[who, *(f"{round(sum(g.grade.parts[i].points for i in group), 2):g}"
                        for group in groups), total]
                for who, g, total in zip(ids, graded, totals, strict=True)]
        table = _columns(["student", *letters, "total"], rows)
        if max(map(len, table)) <= width or size == len(parts):
            break
    legend = "; ".join(
        f"{letter} = {' + '.join(parts[i][0] for i in group)} "
        f"(max {sum(parts[i][1] for i in group):g})"
        for letter, group in zip(letters, groups, strict=True))
    export = (f"every part in full: grader export {graded[0].grade.assignment} --format csv "
              "(with this run's --db, if any)")
    return "\n".join([*table, "", *textwrap.wrap(f"parts: {legend}", width=width,
                                                  subsequent_indent="  "),
                      *textwrap.wrap(export, width=width, subsequent_indent="  ")])


def _columns(header: list[str], rows: list[list[str]]) -> list[str]:
    """Rows of cells as left-aligned columns two spaces apart (trailing spaces dropped)."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            for row in [header, *rows]]


def _letter(index: int) -> str:
    """A, B, ..., Z, AA, AB, ...: a short column name."""
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(ord("A") + rest) + name
    return name


def progress_line(done: int, total: int, graded: GradedSubmission) -> str:
    """One line per graded submission, for a log or a pipe (a terminal gets a bar)."""
    grade = graded.grade
    return (f"[{done}/{total}] {printable(grade.student_id, limit=80)} "
            f"({printable(Path(graded.submission.source).name, limit=80)}): "
            f"{round(grade.score, 2):g}/{grade.max_score:g}, {outcome(graded)}")


def outcome(graded: GradedSubmission) -> str:
    """A word for the progress bar: passed, failed, crashed, timeout, unreadable, grader error."""
    grade = graded.grade
    if grade.problems and not graded.submission.files:
        return "unreadable"
    reasons = {failure_reason(t) for part in grade.parts for t in part.tests}
    reasons.discard(None)
    if not reasons:
        return "passed"
    if GRADER_ERROR in reasons:
        return "grader error"
    if reasons & {TIME_LIMIT, TIME_BUDGET}:
        return "timeout"
    if reasons & {CRASH, MEMORY}:
        return "crashed"
    return "failed"


def already_graded(config: AssignmentConfig, paths: list[Path], gradebook) -> list[Path]:
    """The submissions whose exact files the gradebook already holds grades for.

    A student whose latest grade carries a grader problem is never "already graded": the
    grader failed there, so it tries again. A submission that cannot even be peeked at is
    left to the batch, which records why.
    """
    troubled = _grader_troubled(config, gradebook)
    done = []
    with tempfile.TemporaryDirectory(prefix="nn-grader-peek-") as scratch:
        for path in paths:
            try:
                peek = intake(path, Path(scratch), expected_files=config.student_files,
                              assignment=config.id)
                if (peek.files and peek.student_id not in troubled
                        and gradebook.is_graded(config.id, peek.student_id,
                                                content_hash(peek.files))):
                    done.append(path)
            except BaseException as error:  # noqa: BLE001 - graded (and recorded) below
                passing(error)
    return done


def _grader_troubled(config: AssignmentConfig, gradebook) -> set[str]:
    """Students whose latest grade records a failure of the grader itself."""
    try:
        rows = gradebook.latest(config.id)
    except Exception:  # noqa: BLE001 - an assignment not graded yet has no rows
        return set()
    return {row.student_id for row in rows
            if any(is_grader_problem(problem) for problem in row.grade.problems)}


def with_problems(result: GradedSubmission, problems: list[str]) -> GradedSubmission:
    """`result` with `problems` added to its submission's and its grade's problems."""
    if not problems:
        return result
    return replace(result,
                   submission=replace(result.submission,
                                      problems=(*result.submission.problems, *problems)),
                   grade=replace(result.grade, problems=(*result.grade.problems, *problems)))


def attention(result: GradedSubmission) -> list[Attention]:
    """What the instructor must look at for one recorded submission (one per problem)."""
    return [Attention(result.grade.student_id, Path(result.submission.source), problem,
                      GRADER_TODO if is_grader_problem(problem) else STUDENT_TODO)
            for problem in result.grade.problems]


def duplicate_notes(path: Path, config: AssignmentConfig) -> dict[Path, str]:
    """Reports each student's duplicate submissions in a class folder (stderr).

    Returns:
        The counting submission's path → a note for its record naming the superseded ones.
    """
    if not path.is_dir() or submissions_in(path, config) == [path]:
        return {}
    notes: dict[Path, str] = {}
    for duplicate in survey(path, assignment=config.id).duplicates:
        print(f"duplicate: {duplicate}", file=sys.stderr)
        notes[duplicate.counting] = " ".join(filter(None, [notes.get(duplicate.counting),
                                                           str(duplicate)]))
    return notes


def instructor_side(result: GradedSubmission, notes: dict[Path, str],
                    submitted_at: datetime | None) -> GradedSubmission:
    """The graded submission with what only the instructor knows: --submitted-at, duplicates."""
    submission = result.submission
    if submitted_at is not None:
        submission = at_instructor_time(submission, submitted_at)
    if submission.source in notes:
        submission = replace(submission, notes=(*submission.notes, notes[submission.source]))
    return replace(result, submission=submission)


def main(*, assignment: str, submissions: Path, out: Path | None = None,
         dataset: str | None = None, db: str | Path | None = None, workers: int | None = None,
         engine: str = "local", address: str | None = None, force: bool = False,
         gpus_per_submission: float = 0.0, submitted_at: datetime | None = None) -> int:
    """Grades submissions in parallel, writes results.json and records them in the gradebook.

    Args:
        assignment: the assignment id (or its folder or assignment.toml).
        submissions: a submission (folder, zip, .py, .ipynb) or a class folder.
        out: where results.json files go; default: ``<course>/graded/<id>``.
        dataset: the dataset for data-driven tests; default: `grader.data`'s.
        db: a SQLAlchemy URL or a SQLite path; default: ``gradebook.db`` in the course
            folder (the folder holding ``assignments/``).
        workers: parallel grader workers (local engine); default: one per core.
        engine: "local" (worker processes) or "ray" (tasks on a Ray cluster).
        address: the Ray cluster to join; default: start a local Ray instance.
        force: grade again submissions whose files are already graded.
        gpus_per_submission: with Ray, the GPU share each submission reserves.
        submitted_at: the submission time of every submission of this run (timezone
            aware), instead of each one's receipt time; lateness is computed from it.

    Returns:
        0; 3 (`PROBLEMS_EXIT`) when some submissions had problems (the grader failed on
        them, or they could not be read or identified: each is listed on stderr); 130
        (`INTERRUPTED_EXIT`) when Ctrl-C stopped the batch (one line says what was kept).
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; expected one of: {', '.join(ENGINES)}")
    config = load_assignment(assignment)
    out = out or config.repo_root / "graded" / config.id  # in the course, never the tool
    paths = submissions_in(submissions, config)
    try:
        notes = duplicate_notes(submissions, config)
    except BaseException as error:  # noqa: BLE001 - duplicates unreported, nothing else lost
        print(printable(grader_problem("look for duplicate submissions", passing(error))),
              file=sys.stderr)
        notes = {}
    url = database_url(db if db is not None else config.repo_root / DEFAULT_DB)
    with open_gradebook(url, create=True) as gradebook:
        if gradebook.created:
            shown = gradebook.engine.url.render_as_string(hide_password=True)
            print(_("no gradebook at {db} yet: created a new one", db=shown), file=sys.stderr)
        if not force:
            skipped = set(already_graded(config, paths, gradebook))
            if skipped:
                print(_n("{n} submission already graded with the same files: skipped "
                         "(--force grades it again)",
                         "{n} submissions already graded with the same files: skipped "
                         "(--force grades them again)", len(skipped)), file=sys.stderr)
            paths = [path for path in paths if path not in skipped]
        counts: Counter[str] = Counter()
        on_terminal = sys.stderr.isatty()
        bar = tqdm(total=len(paths), desc=f"grading {config.id}", unit="submission",
                   disable=len(paths) < 2 or not on_terminal)

        listed: list[Attention] = []

        def record(result: GradedSubmission) -> None:
            """Writes and records one result; each step's failure is the submission's problem."""
            failures: list[str] = []
            try:
                result = instructor_side(result, notes, submitted_at)
            except BaseException as error:  # noqa: BLE001 - this submission only
                failures.append(grader_problem("apply the instructor's time and notes",
                                               passing(error)))
            try:
                write_results(with_problems(result, failures), out, config, gradebook)
            except BaseException as error:  # noqa: BLE001 - this submission only
                failures.append(grader_problem("write its results.json", passing(error)))
            result = with_problems(result, failures)
            try:
                gradebook.record(config, result.submission, result.grade)
            except BaseException as error:  # noqa: BLE001 - this submission only
                problem = grader_problem("record it in the gradebook", passing(error))
                result = with_problems(result, [problem])
                try:  # the problem alone, without what could not be stored, in both places
                    bare = not_graded(config, Path(result.submission.source), problem,
                                      result.submission)
                    write_results(bare, out, config, gradebook)
                    gradebook.record(config, bare.submission, bare.grade)
                except BaseException as again:  # noqa: BLE001 - listed on stderr below
                    passing(again)
            listed.extend(attention(result))
            counts[outcome(result)] += 1
            bar.set_postfix(counts, refresh=False)
            bar.update()
            if not on_terminal:  # a log or a pipe: one line each, as it happens
                print(progress_line(sum(counts.values()), len(paths), result),
                      file=sys.stderr, flush=True)

        jobs = [Job(config.root / "assignment.toml", config.repo_root, path, dataset)
                for path in paths]
        if engine == "ray":
            report = run_ray(jobs, on_result=record, address=address,
                             num_gpus=gpus_per_submission)
        else:
            report = run_local(jobs, workers=workers or default_workers(), on_result=record)
        for path, reason in report.failed:  # the worker kept dying, or the result was lost
            problem = (reason if is_grader_problem(reason)
                       else f"{GRADER_PROBLEM} grade it: {reason}")
            try:
                record(not_graded(config, path, problem))
            except BaseException as error:  # noqa: BLE001 - listed, never recorded
                passing(error)
                listed.append(Attention(path.name, path, problem, GRADER_TODO))
        bar.close()
        shown = gradebook.engine.url.render_as_string(hide_password=True)
    if report.interrupted:
        print(_n("grader: stopped by Ctrl-C: {graded} of {n} submission graded and recorded "
                 "in {db}; run the same command again to grade the rest",
                 "grader: stopped by Ctrl-C: {graded} of {n} submissions graded and recorded "
                 "in {db}; run the same command again to grade the rest", len(paths),
                 graded=len(report.graded), db=shown), file=sys.stderr)
        return INTERRUPTED_EXIT
    print(score_table(sorted(report.graded, key=lambda g: g.grade.student_id)))
    if listed:
        students = len({(item.student_id, item.source) for item in listed})
        print("\n" + _n("{n} submission had problems:", "{n} submissions had problems:",
                        students), file=sys.stderr)
        for item in sorted(listed, key=lambda item: (item.student_id, item.problem)):
            print(item.line(), file=sys.stderr)
    print("\n" + _("{counts}; results.json for each student in {out}/; grades recorded in "
                   "{db}", counts=dict(counts) or _("nothing to grade"), out=out, db=shown))
    return PROBLEMS_EXIT if listed else 0

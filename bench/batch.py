"""A class of `mlp_numpy` submissions graded by nn-grader (1 and 2 workers, Ray) and nbgrader.

Usage:
    python bench/batch.py [--size 40] [--quick] [--skip-ray] [--skip-nbgrader]

The class (`generate_class`) is correct submissions (the reference and the correct
variants of ``assignments/mlp_numpy/samples/variants/``, repeated), the planted bugs of
``assignments/mlp_numpy/samples/bugs.toml`` (`grader.samples`), and three hostile ones
made from the reference here (`HOSTILE`): an endless loop in `train`, ``os._exit`` in
`Relu.forward`, and a memory bomb in `train_model`. The same class is graded, in this
order, by:

1. nn-grader, `grader.batch.run_local` with 1 worker;
2. nn-grader, `run_local` with 2 workers;
3. nn-grader, `grader.batch.run_ray` on a local Ray instance (its start timed apart);
4. nbgrader: the same student code as the solution cell of a notebook released with
   ``nbgrader generate_assignment``, one grade cell per hidden test function worth that
   test's share of its part (``run_test(name, globals())`` from `bench/nbgrader_shim.py`,
   which runs the same test function in the kernel), graded by ``nbgrader autograde`` in
   a temporary course folder with ``ExecutePreprocessor.timeout`` = ``call_timeout_s``.

Scores of correct and planted-bug submissions must agree between nbgrader and nn-grader
(the comparison is only fair if both grade the same); the run exits 1 when they do not.
Writes ``bench/results/batch.md`` (``--quick``: 4 submissions, ``batch-quick.md``).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import nbformat

from grader.batch import Job, _import_roots, run_local, run_ray
from grader.config import AssignmentConfig, load_assignment
from grader.data import load as load_data
from grader.grading.run import sandbox_limits
from grader.samples import bug_source, load_bugs, reference_without_markers, variants

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results"
ASSIGNMENT = "mlp_numpy"
REFERENCE = REPO / "reference" / f"{ASSIGNMENT}.py"

SIZE = 40
QUICK_SIZE = 4
HOSTILE_PER_CLASS = 3  # one of each kind in a class of 20 or more
PLANTED_SHARE = 0.45  # of what is not hostile (all 16 bugs in a class of 40); the rest is correct
SHUFFLE_SEED = 6  # the class's order: the same for every engine
LOAD_WARNING = 0.5  # per core: a busier machine makes the times meaningless
SCORE_TOLERANCE = 1e-3  # points; both sides round part points to 1e-6
MEMORY_BOMB_GB = 8  # twice the sandbox's 4 GB, and bounded: the machine is shared
QUICK_PLANTED = "softmax_unstable"  # overflows in exp: warnings on stderr, partial marks
QUICK_HOSTILE = "os_exit_in_forward"

# Hostile submissions: (function whose solution body gets the code first, the code).
HOSTILE = {
    "endless_loop_in_train": ("def train(", [
        "while True:  # hostile: never returns",
        "    pass",
    ]),
    "os_exit_in_forward": ("    def forward(self, x):", [
        "import os  # hostile: ends the process that runs it",
        "os._exit(3)",
    ]),
    "memory_bomb_in_train": ("def train_model(", [
        f"hoard = [np.ones(2**26) for _ in range({MEMORY_BOMB_GB * 2})]  "
        f"# hostile: {MEMORY_BOMB_GB} GB, touched",
    ]),
}
SOLUTION_BEGIN = "### BEGIN SOLUTION"
SOLUTION_END = "### END SOLUTION"


# -- the class ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Student:
    """One generated submission.

    Attributes:
        student_id: the folder name (nn-grader) and nbgrader's student id.
        kind: "correct", "planted" or "hostile".
        source: the reference, a variant's or a sample's folder name, or a `HOSTILE` key.
        code: the student's ``mlp_numpy.py``.
    """

    student_id: str
    kind: str
    source: str
    code: str


def student_code(text: str) -> str:
    """A solution as a student hands it in: without the solution markers."""
    return "".join(line for line in text.splitlines(keepends=True)
                   if line.strip() not in (SOLUTION_BEGIN, SOLUTION_END))


def hostile_code(name: str, reference: str | None = None) -> str:
    """The reference with `HOSTILE[name]`'s code first in the chosen function's body."""
    reference = reference if reference is not None else REFERENCE.read_text(encoding="utf-8")
    anchor, body = HOSTILE[name]
    start = reference.index(anchor)
    marker = reference.index(SOLUTION_BEGIN, start)
    line_end = reference.index("\n", marker) + 1
    indent = reference[reference.rindex("\n", 0, marker) + 1:marker]
    inserted = "".join(f"{indent}{line}\n" for line in body)
    return student_code(reference[:line_end] + inserted + reference[line_end:])


def _config() -> AssignmentConfig:
    return load_assignment(REPO / "assignments" / ASSIGNMENT / "assignment.toml", repo_root=REPO)


def _planted(config: AssignmentConfig) -> dict[str, str]:
    """Planted-bug name -> its code (``samples/bugs.toml``'s edits of the reference)."""
    return {bug.name: bug_source(config, bug) for bug in load_bugs(config)}


def _correct(config: AssignmentConfig) -> list[tuple[str, str]]:
    """(name, code): the reference as a student hands it in, then each correct variant."""
    student_file = config.student_files[0]
    return [("reference", reference_without_markers(config, student_file))] + [
        (folder.name, (folder / student_file).read_text(encoding="utf-8"))
        for folder in variants(config)]


def class_counts(size: int, planted_available: int) -> dict[str, int]:
    """How many correct, planted-bug and hostile submissions a class of `size` has."""
    hostile = min(HOSTILE_PER_CLASS, size // 10)
    planted = min(planted_available, round((size - hostile) * PLANTED_SHARE))
    return {"correct": size - hostile - planted, "planted": planted, "hostile": hostile}


def generate_class(size: int = SIZE, *, quick: bool = False,
                   config: AssignmentConfig | None = None) -> list[Student]:
    """The class, in a fixed shuffled order (the same for every engine).

    Args:
        size: the number of submissions (ignored with `quick`).
        quick: the smoke class: the reference, one correct variant, one planted bug
            (`QUICK_PLANTED`) and one hostile submission (`QUICK_HOSTILE`).
        config: the assignment; default: `mlp_numpy` in this checkout.

    Returns:
        The students; ids are ``sNN_<kind>_<source>``.
    """
    config = config or _config()
    correct, planted = _correct(config), _planted(config)
    entries: list[tuple[str, str, str]] = []
    if quick:
        entries += [("correct", name, code) for name, code in correct[:2]]
        entries.append(("planted", QUICK_PLANTED, planted[QUICK_PLANTED]))
        entries.append(("hostile", QUICK_HOSTILE, hostile_code(QUICK_HOSTILE)))
    else:
        counts = class_counts(size, len(planted))
        entries += [("correct", *correct[i % len(correct)]) for i in range(counts["correct"])]
        entries += [("planted", name, planted[name])
                    for name in sorted(planted)[:counts["planted"]]]
        entries += [("hostile", name, hostile_code(name))
                    for name in list(HOSTILE)[:counts["hostile"]]]
        random.Random(SHUFFLE_SEED).shuffle(entries)
    return [Student(f"s{i:02d}_{kind}_{source}", kind, source, code)
            for i, (kind, source, code) in enumerate(entries, start=1)]


def write_class(students: Sequence[Student], folder: Path) -> list[Path]:
    """``folder/<student_id>/mlp_numpy.py`` for each student: nn-grader's class folder."""
    paths = []
    for student in students:
        path = folder / student.student_id
        path.mkdir(parents=True, exist_ok=True)
        (path / f"{ASSIGNMENT}.py").write_text(student.code, encoding="utf-8")
        paths.append(path)
    return paths


# -- the class as nbgrader notebooks ------------------------------------------------------

def notebook_code(code: str) -> str:
    """A module's code as a notebook cell: no ``__future__`` import, no ``__main__`` block.

    In a kernel ``__name__`` is ``"__main__"``: the module's command-line entry point would
    run (and fail on the kernel's argv). nn-grader skips it as a top-level statement.
    """
    tree = ast.parse(code)
    drop: set[int] = set()
    for node in tree.body:
        is_future = isinstance(node, ast.ImportFrom) and node.module == "__future__"
        is_main = (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
                   and isinstance(node.test.left, ast.Name) and node.test.left.id == "__name__")
        if is_future or is_main:
            drop.update(range(node.lineno, node.end_lineno + 1))
    lines = code.splitlines(keepends=True)
    return "".join(line for number, line in enumerate(lines, start=1)
                   if number not in drop).rstrip() + "\n"


def grade_cells(config: AssignmentConfig) -> list[tuple[str, float]]:
    """(test function, points) per grade cell: each part's points split between its tests."""
    return [(test, float(part.points) / len(part.tests))
            for part in config.parts for test in part.tests]


def _nbgrader_meta(grade_id: str, *, grade: bool = False, solution: bool = False,
                   locked: bool = False, points: float | None = None) -> dict:
    meta = {"grade": grade, "solution": solution, "locked": locked, "grade_id": grade_id,
            "schema_version": 3}
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


def source_notebook(config: AssignmentConfig, solution: str) -> nbformat.NotebookNode:
    """The instructor's notebook: the solution cell, the shim import, one grade cell per test.

    Args:
        config: the assignment.
        solution: the reference's code with its solution markers.
    """
    nb = nbformat.v4.new_notebook()
    nb.metadata.update({
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    })
    cells = [
        nbformat.v4.new_markdown_cell(f"# {config.title}\n\nWrite your code in the cell below."),
        nbformat.v4.new_code_cell(notebook_code(solution),
                                  metadata=_nbgrader_meta("solution", solution=True)),
        nbformat.v4.new_code_cell("from nbgrader_shim import run_test",
                                  metadata=_nbgrader_meta("import_checks", locked=True)),
    ]
    for test, points in grade_cells(config):
        cells.append(nbformat.v4.new_code_cell(
            f'run_test("{test}", globals())',
            metadata=_nbgrader_meta(test, grade=True, locked=True, points=points)))
    nb.cells = cells
    return nb


def student_notebook(released: nbformat.NotebookNode, code: str) -> nbformat.NotebookNode:
    """The released notebook with the student's code as the solution cell."""
    nb = nbformat.from_dict(json.loads(json.dumps(released)))  # a deep copy
    solution_cells = [cell for cell in nb.cells
                      if cell.get("metadata", {}).get("nbgrader", {}).get("solution")]
    assert len(solution_cells) == 1, "the released notebook has one solution cell"
    solution_cells[0].source = notebook_code(code)
    return nb


NBGRADER_CONFIG = """\
c = get_config()
c.CourseDirectory.root = {root!r}
c.CourseDirectory.course_id = "nn_grader_bench"
c.Autograde.create_student = True
# The per-cell limit is nn-grader's per-call limit (assignment.toml call_timeout_s).
c.ExecutePreprocessor.timeout = {timeout}
c.Execute.timeout = {timeout}
"""


# -- engines -------------------------------------------------------------------------------

@dataclass
class EngineRun:
    """One engine's pass over the class.

    Attributes:
        name: how the report names the engine.
        wall_s: the batch's wall time (for Ray: without starting Ray).
        scores: student id -> total points; missing where nothing was recorded.
        seconds: student id -> that submission's grading time.
        outcomes: student id -> a line on what happened (failures, crashes).
        start_s: Ray's start, timed apart.
        notes: anything the report should say.
    """

    name: str
    wall_s: float = 0.0
    scores: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    outcomes: dict[str, str] = field(default_factory=dict)
    start_s: float | None = None
    notes: list[str] = field(default_factory=list)


def _summary(grade) -> str:
    failed = [test for part in grade.parts for test in part.tests if test.fraction < 1.0]
    if not failed:
        return "full marks"
    lines = [(t.message.splitlines() or [t.status])[0] for t in failed]
    kinds = Counter(line.split(":")[0][:40] for line in lines)
    return (f"{len(failed)} test cases lost points ("
            + ", ".join(f"{n} x {kind}" for kind, n in kinds.most_common())
            + f"); first: {failed[0].case}: {lines[0][:160]}")


def _record(run: EngineRun):
    def on_result(graded) -> None:
        grade = graded.grade
        run.scores[grade.student_id] = grade.score
        run.seconds[grade.student_id] = grade.execution_time_s
        run.outcomes[grade.student_id] = _summary(grade)
        print(f"  {run.name}: {grade.student_id} {grade.score:g}/{grade.max_score:g} "
              f"({grade.execution_time_s:.1f} s)", flush=True)
    return on_result


def _finish(run: EngineRun, report) -> EngineRun:
    for path, reason in report.failed:
        run.outcomes[path.name] = f"not graded: {reason}"
    if report.retried:
        retried = ", ".join(p.name for p in report.retried)
        run.notes.append(f"retried after a worker died: {retried}")
    if report.interrupted:
        run.notes.append("interrupted")
    return run


def grade_local(jobs: Sequence[Job], workers: int) -> EngineRun:
    run = EngineRun(f"nn-grader, {workers} worker{'s' if workers > 1 else ''}")
    start = time.perf_counter()
    report = run_local(jobs, workers=workers, on_result=_record(run))
    run.wall_s = time.perf_counter() - start
    return _finish(run, report)


def grade_ray(jobs: Sequence[Job], cpus: int) -> EngineRun:
    import ray

    run = EngineRun(f"nn-grader, Ray (local, {cpus} CPUs)")
    start = time.perf_counter()
    # run_ray's own ray.init arguments; started here so that the start is timed apart.
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(_import_roots())}})
    run.start_s = time.perf_counter() - start
    try:
        start = time.perf_counter()
        report = run_ray(jobs, on_result=_record(run), num_cpus=1.0)
        run.wall_s = time.perf_counter() - start
    finally:
        ray.shutdown()
    return _finish(run, report)


def _autograded_outcome(path: Path) -> str:
    """What the kernel did in the grade cells of one autograded notebook."""
    nb = nbformat.read(path, as_version=4)
    errors = Counter()
    for cell in nb.cells:
        if not cell.get("metadata", {}).get("nbgrader", {}).get("grade"):
            continue
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                errors[output.get("ename", "error")] += 1
    if not errors:
        return "no errors in grade cells"
    return "errors in grade cells: " + ", ".join(f"{n} x {e}" for e, n in errors.most_common())


def grade_nbgrader(students: Sequence[Student], config: AssignmentConfig, dataset: str,
                   course: Path) -> EngineRun:
    """Releases the notebook, submits every student's, and runs ``nbgrader autograde``."""
    run = EngineRun("nbgrader autograde")
    timeout = int(sandbox_limits(config).call_timeout_s)
    course.mkdir(parents=True, exist_ok=True)
    (course / "nbgrader_config.py").write_text(
        NBGRADER_CONFIG.format(root=str(course), timeout=timeout), encoding="utf-8")
    source = course / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    source.parent.mkdir(parents=True)
    nbformat.write(source_notebook(config, REFERENCE.read_text(encoding="utf-8")), source)
    env = {**os.environ,
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
           # The kernels import the shim (bench/) and, through it, grader and the suite.
           "PYTHONPATH": os.pathsep.join([str(BENCH), str(REPO)]),
           "GRADER_DATASET": dataset}
    nbgrader = [sys.executable, "-m", "nbgrader"]
    start = time.perf_counter()
    subprocess.run([*nbgrader, "generate_assignment", ASSIGNMENT, "--force"], cwd=course,
                   env=env, check=True, capture_output=True, text=True)
    run.notes.append(f"`nbgrader generate_assignment` (not in the wall time): "
                     f"{time.perf_counter() - start:.1f} s")
    released = nbformat.read(course / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb",
                             as_version=4)
    for student in students:
        path = course / "submitted" / student.student_id / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
        path.parent.mkdir(parents=True)
        nbformat.write(student_notebook(released, student.code), path)

    # Each student's time and log: from the line that starts it to the next (or the end).
    ids = {s.student_id for s in students}
    started: dict[str, float] = {}
    segments: dict[str, list[str]] = {}
    log_lines: list[str] = []
    current = None
    start = time.perf_counter()
    with subprocess.Popen([*nbgrader, "autograde", ASSIGNMENT], cwd=course, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        for line in proc.stdout:
            now = time.perf_counter()
            log_lines.append(line)
            match = re.search(r"student with ID '([^']+)'|submitted/([^/\s]+)/" + ASSIGNMENT,
                              line)
            sid = match and (match.group(1) or match.group(2))
            if sid in ids and sid not in started:
                started[sid], current = now, sid
            if current:
                segments.setdefault(current, []).append(line)
    end = time.perf_counter()
    run.wall_s = end - start
    (course / "autograde.log").write_text("".join(log_lines), encoding="utf-8")
    if proc.returncode:
        run.notes.append(f"`nbgrader autograde` exited {proc.returncode} (it does when any "
                         "submission failed to autograde)")
    order = sorted(started, key=started.get)
    for sid, following in zip(order, order[1:] + [None], strict=True):
        run.seconds[sid] = (started[following] if following else end) - started[sid]

    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for student in students:
            sid = student.student_id
            notebook = course / "autograded" / sid / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
            try:
                submission = gradebook.find_submission(ASSIGNMENT, sid)
            except MissingEntry:
                submission = None
            if submission is not None and notebook.exists():
                run.scores[sid] = float(submission.score)
                run.outcomes[sid] = _autograded_outcome(notebook)
            else:
                errors = [line.strip() for line in segments.get(sid, [])
                          if "ERROR" in line and "There was an error processing" not in line
                          and "Traceback" not in line]
                run.outcomes[sid] = ("not graded (autograde failed, no grade recorded)"
                                     + (f": {errors[0][:160]}" if errors else ""))
    return run


# -- the report -------------------------------------------------------------------------------

def _median(values) -> float | None:
    values = list(values)
    return statistics.median(values) if values else None


def _fmt(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gb() -> float | None:
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        return kb / 2**20
    except (OSError, AttributeError):
        return None


def score_mismatches(students: Sequence[Student], reference: EngineRun,
                     other: EngineRun) -> list[str]:
    """Correct and planted-bug students whose scores differ between two engines."""
    problems = []
    for student in students:
        if student.kind == "hostile":
            continue
        a, b = reference.scores.get(student.student_id), other.scores.get(student.student_id)
        if a is None or b is None or abs(a - b) > SCORE_TOLERANCE:
            problems.append(f"{student.student_id}: {reference.name} {a}, {other.name} {b}")
    return problems


def report_lines(students: Sequence[Student], runs: list[EngineRun], *, command: str,
                 dataset: str, config: AssignmentConfig, quick: bool,
                 mismatches: list[str], load: tuple[float, float]) -> list[str]:
    one = next((r for r in runs if r.name.endswith("1 worker")), None)
    two = next((r for r in runs if r.name.endswith("2 workers")), None)
    ray_run = next((r for r in runs if "Ray" in r.name), None)
    nbg = next((r for r in runs if r.name.startswith("nbgrader")), None)
    cores = len(os.sched_getaffinity(0))
    memory = _memory_gb()
    import nbgrader

    versions = [f"Python {platform.python_version()}", f"nbgrader {nbgrader.__version__}"]
    try:
        import ray

        versions.append(f"Ray {ray.__version__}")
    except ImportError:
        pass
    lines = [
        f"# Grading a class of `{config.id}` submissions: nn-grader and nbgrader"
        + (" (smoke run)" if quick else ""),
        "",
        f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {cores} cores "
        f"({_cpu_model()}), {_fmt(memory)} GiB memory, {sys.platform}; "
        f"{', '.join(versions)}; dataset `{dataset}`. Command: `python bench/batch.py"
        f"{' ' + command if command else ''}`. Load average (1 min) before the run "
        f"{load[0]:.2f}, at its end {load[1]:.2f} (the benchmark's own load included)"
        + ("; **other work was running: these times are not those of a quiet machine**."
           if load[0] > LOAD_WARNING * cores else "."),
        "",
        "## The class",
        "",
        "| kind | source | submissions |",
        "| --- | --- | ---: |",
    ]
    counts = Counter((s.kind, s.source) for s in students)
    for (kind, source), n in sorted(counts.items()):
        lines.append(f"| {kind} | `{source}` | {n} |")
    totals = Counter(s.kind for s in students)
    composition = ", ".join(f"{totals[k]} {k}" for k in ("correct", "planted", "hostile"))
    lines += [f"| **all** | {composition} | **{len(students)}** |", ""]
    lines += [
        "## Wall times",
        "",
        "| engine | wall s | per-submission median s | sum of per-submission s |",
        "| --- | ---: | ---: | ---: |",
    ]
    for run in runs:
        wall = _fmt(run.wall_s)
        if run.start_s is not None:
            wall += f" (+ {run.start_s:.1f} s Ray start)"
        lines.append(f"| {run.name} | {wall} | {_fmt(_median(run.seconds.values()), 2)} | "
                     f"{_fmt(sum(run.seconds.values()))} |")
    lines += ["", "Ratios:", ""]
    if one and two:
        lines.append(f"- 1 worker / 2 workers: **{one.wall_s / two.wall_s:.2f}x** "
                     f"(ideal {min(2, cores)}x).")
        longest = max(two.seconds.values(), default=0.0)
        bound = max(sum(two.seconds.values()) / 2, longest)
        lines.append(f"- 2 workers can finish no sooner than max(sum / 2, longest submission) = "
                     f"{bound:.1f} s; measured {two.wall_s:.1f} s "
                     f"({bound / two.wall_s:.0%} of that bound).")
    if ray_run and two:
        lines.append(f"- Ray / 2 workers: {ray_run.wall_s / two.wall_s:.2f}x "
                     "(Ray's start not included).")
    if nbg and two:
        lines.append(f"- nbgrader / nn-grader 2 workers: **{nbg.wall_s / two.wall_s:.2f}x**.")
    if nbg and one:
        lines.append(f"- nbgrader / nn-grader 1 worker: {nbg.wall_s / one.wall_s:.2f}x "
                     "(both sequential).")
    lines += ["", "## Scores", ""]
    header = "| student | kind | " + " | ".join(run.name for run in runs) + " |"
    lines += [header, "| --- | --- |" + " ---: |" * len(runs)]
    for student in students:
        cells = [_fmt(run.scores.get(student.student_id), 2) for run in runs]
        lines.append(f"| `{student.student_id}` | {student.kind} | " + " | ".join(cells) + " |")
    lines += [""]
    if nbg and (one or two):
        base = one or two
        if mismatches:
            lines += ["**Scores differ** between nbgrader and nn-grader for correct or "
                      "planted-bug submissions:", "", *(f"- {m}" for m in mismatches), ""]
        else:
            lines += [f"Correct and planted-bug submissions score the same on nbgrader and "
                      f"{base.name} (within {SCORE_TOLERANCE:g} points).", ""]
    hostile = [s for s in students if s.kind == "hostile"]
    if hostile:
        lines += ["## Hostile submissions", ""]
        for student in hostile:
            lines.append(f"- `{student.student_id}`:")
            for run in runs:
                score = run.scores.get(student.student_id)
                shown = _fmt(score, 2) if score is not None else "no score"
                lines.append(f"  - {run.name}: {shown}, "
                             f"{_fmt(run.seconds.get(student.student_id))} s; "
                             f"{run.outcomes.get(student.student_id, '—')}")
        lines.append("")
    lines += [
        "## How",
        "",
        "- Both sides grade the same student code with the same test functions: nn-grader "
        "runs the hidden suite against the submission in its sandbox; the nbgrader notebook "
        "has the code as its solution cell and one grade cell per test function, "
        "`run_test(name, globals())` (`bench/nbgrader_shim.py`), worth the test's share of "
        "its part, partial credit returned as nbgrader's numeric cell output.",
        "- In the notebooks the module's `from __future__` import and `if __name__ == "
        "\"__main__\"` block are dropped (a kernel's `__name__` is `__main__`); nn-grader "
        "skips that block as a top-level statement.",
        f"- nbgrader: `ExecutePreprocessor.timeout` = "
        f"{int(sandbox_limits(config).call_timeout_s)} s,"
        " nn-grader's `call_timeout_s`; nbgrader's defaults otherwise (one kernel per "
        "notebook, sequential). Its per-submission time runs from the log line that starts a "
        "student to the next one (kernel start included); nn-grader's is the suite's time "
        "with the runtime's start (`execution_time` in results.json).",
        f"- The memory bomb allocates and touches {MEMORY_BOMB_GB} GB in 512 MB blocks, "
        "bounded so that the benchmark cannot take a shared machine down; nn-grader's "
        "sandbox stops it at 4 GB.",
        "- numpy's BLAS threads are left at their defaults everywhere (OpenBLAS: one per "
        "core): with 2 workers, 2 runtimes' BLAS threads share the cores.",
        "- Run order: 1 worker, 2 workers, Ray, nbgrader; each engine grades the class in the "
        f"same shuffled order (seed {SHUFFLE_SEED}).",
    ]
    for run in runs:
        for note in run.notes:
            lines.append(f"- {run.name}: {note}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=SIZE, help="submissions in the class")
    parser.add_argument("--quick", action="store_true",
                        help=f"a {QUICK_SIZE}-submission smoke run (writes batch-quick.md)")
    parser.add_argument("--skip-ray", action="store_true")
    parser.add_argument("--skip-nbgrader", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args(argv)

    config = _config()
    dataset = load_data(None).name  # the default, named, so every engine uses the same
    students = generate_class(args.size, quick=args.quick, config=config)
    print(f"class: {len(students)} submissions "
          f"({dict(Counter(s.kind for s in students))}); dataset {dataset}", flush=True)
    load_before = os.getloadavg()[0]
    scratch = Path(tempfile.mkdtemp(prefix="nn-grader-bench-batch-"))
    runs: list[EngineRun] = []
    try:
        folders = write_class(students, scratch / "class")
        toml = REPO / "assignments" / ASSIGNMENT / "assignment.toml"
        jobs = [Job(toml, REPO, folder, dataset_name=dataset) for folder in folders]
        for workers in (1, 2):
            print(f"nn-grader, {workers} worker(s)...", flush=True)
            runs.append(grade_local(jobs, workers))
        if not args.skip_ray:
            print("nn-grader, Ray...", flush=True)
            runs.append(grade_ray(jobs, cpus=min(2, len(os.sched_getaffinity(0)))))
        if not args.skip_nbgrader:
            print("nbgrader autograde...", flush=True)
            runs.append(grade_nbgrader(students, config, dataset, scratch / "course"))
    finally:
        if args.keep:
            print(f"kept {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)

    mismatches = []
    for run in runs[1:]:
        mismatches += score_mismatches(students, runs[0], run)
    command = " ".join(sys.argv[1:] if argv is None else argv)
    lines = report_lines(students, runs, command=command, dataset=dataset, config=config,
                         quick=args.quick, mismatches=mismatches,
                         load=(load_before, os.getloadavg()[0]))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / ("batch-quick.md" if args.quick else "batch.md")
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    print(f"\nwrote {out}")
    if mismatches:
        print("scores differ between engines for correct or planted-bug submissions:\n  "
              + "\n  ".join(mismatches), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

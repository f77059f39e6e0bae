"""`grader audit <id>`: the suite proves itself on its own samples before a release.

Grades the reference, the bare skeleton, every planted bug of ``samples/bugs.toml``
and every correct variant through the real pipeline, and prints a bug x part matrix:
one row per sample, one column per part, each cell the points the sample lost in that
part. A cell a bug is expected to cost (its `parts` in bugs.toml) is marked ``*``; a
cell that breaks the expectation is marked ``!``. The audit is unfair, and exits
non-zero saying why, when a bug costs a part it does not list, costs nothing in a part
it lists, a variant or the reference loses a point, or the skeleton earns one.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from grader.config import AssignmentConfig
from grader.results.records import Grade
from grader.samples import load_bugs, variants, write_bug

WIDTH = 100  # the matrix fits a terminal of this many columns
CELL = 4  # characters per part column: "12*" at most (points lost are rounded)
EPSILON = 1e-6  # points below this are rounding, not a loss

GradeFn = Callable[[AssignmentConfig, Path], Grade]


@dataclass(frozen=True)
class Row:
    """One graded sample.

    Attributes:
        name: The sample, e.g. ``bug softmax_axis_zero`` or ``variant tensorflow_activations``.
        kind: ``reference``, ``skeleton``, ``bug`` or ``variant``.
        expected: The parts it must lose points in (a bug's listed parts; every part with
            points for the skeleton; none for the reference and variants).
        lost: Points lost per part name (0 where none).
        diagnoses: The known-mistake ids its test outcomes carry (`TestOutcome.diagnosis`).
    """

    name: str
    kind: str
    expected: frozenset[str]
    lost: dict[str, float] = field(default_factory=dict)
    diagnoses: tuple[str, ...] = ()


def row_for(name: str, kind: str, expected: Sequence[str], grade: Grade) -> Row:
    """The row of one graded sample."""
    lost = {part.name: round(part.max_points - part.points, 6) for part in grade.parts}
    diagnoses = tuple(sorted({test.diagnosis for part in grade.parts for test in part.tests
                              if getattr(test, "diagnosis", "")}))
    return Row(name, kind, frozenset(expected), lost, diagnoses)


def audit_rows(config: AssignmentConfig, grade: GradeFn, scratch: Path,
               skeleton: Path | None = None, only: Sequence[str] = ()) -> list[Row]:
    """Grades every sample of an assignment.

    Args:
        config: The assignment.
        grade: Grades a folder of student files (`grader.grading.run.grade_path`).
        scratch: A folder for the sample submissions.
        skeleton: A folder holding the bare skeleton; None: the skeleton is not graded.
        only: Sample names (bugs or variants) to grade; empty: all of them.

    Returns:
        One row per sample: the reference first, the skeleton, the bugs, the variants.
    """
    scored = [part.name for part in config.parts if part.points > 0]
    reference = scratch / "reference"
    reference.mkdir(parents=True, exist_ok=True)
    for file in config.files:
        (reference / file.student).write_bytes(file.reference.read_bytes())
    rows = [row_for("reference", "reference", (), grade(config, reference))]
    if skeleton is not None:
        rows.append(row_for("bare skeleton", "skeleton", scored, grade(config, skeleton)))
    for bug in load_bugs(config):
        if not only or bug.name in only:
            folder = write_bug(config, bug, scratch / f"bug-{bug.name}")
            rows.append(row_for(f"bug {bug.name}", "bug", bug.parts, grade(config, folder)))
    for folder in variants(config):
        if not only or folder.name in only:
            rows.append(row_for(f"variant {folder.name}", "variant", (), grade(config, folder)))
    return rows


def unfair(rows: Sequence[Row]) -> list[str]:
    """Why the matrix is unfair, one sentence per broken expectation; [] when it is fair."""
    reasons = []
    for row in rows:
        costs = {part for part, points in row.lost.items() if points > EPSILON}
        for part in sorted(costs - row.expected):
            what = {"bug": "which bugs.toml does not list for it",
                    "skeleton": "a part that carries no points"}.get(
                        row.kind, "though it is correct and must keep full marks")
            reasons.append(f"{row.name} costs {row.lost[part]:g} points in `{part}`, {what}")
        for part in sorted(row.expected - costs):
            reasons.append(f"{row.name} costs nothing in `{part}`; expected it to lose points "
                           "there" + (" (bugs.toml lists it)" if row.kind == "bug" else
                                      " (the bare skeleton must earn nothing)"))
        if row.kind == "bug" and not row.expected:
            reasons.append(f"{row.name} lists no parts in bugs.toml; a planted bug must cost "
                           "at least one")
    return reasons


def abbreviations(parts: Sequence[str]) -> list[str]:
    """Column headers: p1, p2, ... (the legend below the matrix names each part)."""
    return [f"p{index}" for index in range(1, len(parts) + 1)]


def render(parts: Sequence[str], rows: Sequence[Row], points: dict[str, float]) -> str:
    """The matrix as text at most `WIDTH` columns wide, with its legend.

    Args:
        parts: The part names, in assignment.toml's order.
        rows: The graded samples.
        points: Each part's points.
    """
    label_width = max(12, WIDTH - CELL * len(parts) - 3)
    heads = abbreviations(parts)

    def label(text: str) -> str:
        return text if len(text) <= label_width else text[:label_width - 1] + "~"

    lines = [f"{'sample':<{label_width}}" + "".join(f"{h:>{CELL}}" for h in heads) + " dx"]
    for row in rows:
        cells = []
        for part in parts:
            lost, expected = row.lost.get(part, 0.0), part in row.expected
            costs = lost > EPSILON
            mark = "*" if costs and expected else "!" if costs != expected else ""
            text = f"{_shown(lost)}{mark}" if costs or expected else "."
            cells.append(f"{text:>{CELL}}")
        dx = ("y" if row.diagnoses else "-") if row.kind == "bug" else ""
        lines.append(f"{label(row.name):<{label_width}}" + "".join(cells) + f"{dx:>3}")
    lines.append("")
    lines.append("cells: points lost (rounded); * expected (bugs.toml); ! unexpected; "
                 ". nothing lost")
    lines.append("dx: y when the bug's outcomes carry a specific diagnosis (TestOutcome.diagnosis)")
    legend = [f"{head} = {part} ({points[part]:g})" for head, part in zip(heads, parts,
                                                                          strict=True)]
    line = ""
    for entry in legend:
        if line and len(line) + 3 + len(entry) > WIDTH:
            lines.append(line)
            line = ""
        line = f"{line}   {entry}" if line else entry
    lines.append(line)
    return "\n".join(lines)


def _shown(lost: float) -> str:
    """Points lost, rounded to a whole number; a loss under half a point shows as "<1"."""
    if lost <= EPSILON:
        return "0"
    return "<1" if lost < 0.5 else f"{lost:.0f}"


def diagnosed_share(rows: Sequence[Row]) -> tuple[int, int, list[str]]:
    """(bugs with a specific diagnosis, bugs, names of the undiagnosed ones)."""
    bugs = [row for row in rows if row.kind == "bug"]
    missing = [row.name for row in bugs if not row.diagnoses]
    return len(bugs) - len(missing), len(bugs), missing


def audit(config: AssignmentConfig, grade: GradeFn, *, skeleton: Path | None = None,
          only: Sequence[str] = ()) -> tuple[str, list[str], list[Row]]:
    """Grades the samples; returns (the rendered matrix, the unfairness reasons, the rows)."""
    with tempfile.TemporaryDirectory(prefix="nn-grader-audit-") as scratch:
        rows = audit_rows(config, grade, Path(scratch), skeleton=skeleton, only=only)
    parts = [part.name for part in config.parts]
    text = render(parts, rows, {part.name: part.points for part in config.parts})
    return text, unfair(rows), rows


def main(*, assignment: str, only: Sequence[str] = ()) -> int:
    """`grader audit <id>`: print the matrix; exit 1 and say why when it is unfair."""
    from grader.config import load_assignment
    from grader.grading.run import grade_path
    from grader.release.build import skeleton_texts

    config = load_assignment(assignment)
    print(f"auditing {config.id}: grading the reference, the bare skeleton, "
          f"{len(load_bugs(config))} planted bugs and {len(variants(config))} variants...",
          flush=True)
    with tempfile.TemporaryDirectory(prefix="nn-grader-skeleton-") as folder:
        skeleton = Path(folder)
        for name, text in skeleton_texts(config).items():
            (skeleton / name).write_text(text, encoding="utf-8")
        text, reasons, rows = audit(config, lambda cfg, path: grade_path(cfg, path).grade,
                                    skeleton=skeleton, only=only)
    print(text)
    done, total, missing = diagnosed_share(rows)
    if total:
        print(f"\nspecific diagnoses: {done} of {total} planted bugs"
              + (f"; undiagnosed: {', '.join(m.removeprefix('bug ') for m in missing)}"
                 if missing else ""))
    if reasons:
        print(f"\nthe audit of {config.id} is unfair:\n- " + "\n- ".join(reasons))
        return 1
    print(f"\nthe audit of {config.id} is fair: every bug costs exactly its parts, every "
          "variant keeps full marks")
    return 0

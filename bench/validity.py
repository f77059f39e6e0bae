"""The validity benchmark: does each planted bug cost exactly its parts, and is it diagnosed?

Usage:
    python bench/validity.py --assignment mlp_numpy tf_basics [--note "2 shared cores"]
    python bench/validity.py            # all five assignments

For each assignment named, `grader.audit` grades the reference, the bare skeleton, every
planted bug of ``samples/bugs.toml`` (whatever it holds when this runs) and every
correct variant through the real pipeline, and that assignment's section of
``bench/results/validity.md`` is replaced by the new measurement (after each assignment,
so a partial run keeps what it measured). The sections of assignments not named are kept
as they were measured, each with its own date; the overall share and the list of
undiagnosed bugs are recomputed from every section present. A bug is diagnosed when one
of its test outcomes carries a known mistake's id (`TestOutcome.diagnosis`, set from
`grader.checks.diagnose.Diagnosed`), never from message text. Target: at least 80 %
(issue 10).
"""

from __future__ import annotations

import argparse
import platform
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from grader.audit import audit, diagnosed_share  # noqa: E402
from grader.config import load_assignment  # noqa: E402
from grader.grading.run import grade_path  # noqa: E402
from grader.release.build import skeleton_texts  # noqa: E402

ASSIGNMENTS = ("mlp_numpy", "tf_basics", "keras_mlp", "keras_cnn", "alexnet")
RESULT = REPO / "bench" / "results" / "validity.md"
TARGET = 0.8  # issue 10: at least 80 % of planted bugs get a specific diagnosis


@dataclass(frozen=True)
class Section:
    """One assignment's measurement, as written in (and read back from) validity.md.

    Attributes:
        id: The assignment.
        bugs: Planted bugs graded; diagnosed: those with a specific diagnosis.
        variants: Correct variants graded.
        fair: Whether the audit found the suite fair.
        seconds: Wall time of the audit.
        measured: When, where and under what load, one sentence.
        body: The section's text below its heading and measured line (matrix, reasons,
            the undiagnosed bugs).
        undiagnosed: The planted bugs without a diagnosis.
    """

    id: str
    bugs: int
    diagnosed: int
    variants: int
    fair: bool
    seconds: float
    measured: str
    body: str
    undiagnosed: tuple[str, ...]


def measure(assignment: str, note: str = "") -> Section:
    """The audit of one assignment, through the real pipeline."""
    config = load_assignment(REPO / "assignments" / assignment / "assignment.toml")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="nn-grader-validity-") as folder:
        skeleton = Path(folder)
        for name, text in skeleton_texts(config).items():
            (skeleton / name).write_text(text, encoding="utf-8")
        text, reasons, rows = audit(config, lambda cfg, path: grade_path(cfg, path).grade,
                                    skeleton=skeleton)
    seconds = time.perf_counter() - start
    done, total, missing = diagnosed_share(rows)
    undiagnosed = tuple(m.removeprefix("bug ") for m in missing)
    body = ["```", text, "```", ""]
    if reasons:
        body += ["Unfair:", *[f"- {reason}" for reason in reasons], ""]
    if undiagnosed:
        body += ["Undiagnosed: " + ", ".join(undiagnosed), ""]
    measured = (f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on "
                f"{platform.node()} ({platform.machine()}, Python "
                f"{platform.python_version()}) with `python bench/validity.py --assignment "
                f"{assignment}`{'; ' + note if note else ''}.")
    return Section(assignment, total, done, sum(row.kind == "variant" for row in rows),
                   not reasons, seconds, measured, "\n".join(body).rstrip("\n"), undiagnosed)


_ROW = re.compile(r"^\| (\w+) \| (\d+) \| (\d+) \| (\d+) \| (yes|NO) \| (\d+) \|$")


def read_sections(text: str) -> dict[str, Section]:
    """The sections of an existing validity.md (an empty dict for none or another format).

    A section written before sections carried their own measured line takes the file's
    first "Measured ..." sentence.
    """
    rows = {m.group(1): m for m in map(_ROW.match, text.splitlines()) if m}
    header = re.search(r"^Measured [^\n]*?\.(?= |$)", text, re.MULTILINE)
    sections: dict[str, Section] = {}
    for chunk in re.split(r"^## ", text, flags=re.MULTILINE)[1:]:
        name, _, rest = chunk.partition("\n")
        name = name.strip()
        if name not in rows:
            continue
        rest = rest.strip("\n")
        measured = header.group(0) if header else "Measured earlier."
        if rest.startswith("Measured "):
            measured, _, rest = rest.partition("\n")
            rest = rest.strip("\n")
        undiagnosed = re.search(r"^Undiagnosed: (.*)$", rest, re.MULTILINE)
        row = rows[name]
        sections[name] = Section(
            name, int(row.group(2)), int(row.group(3)), int(row.group(4)),
            row.group(5) == "yes", float(row.group(6)), measured, rest,
            tuple(undiagnosed.group(1).split(", ")) if undiagnosed else ())
    return sections


def render(sections: dict[str, Section]) -> str:
    """validity.md from every section present, in teaching order."""
    ordered = [sections[a] for a in (*ASSIGNMENTS, *sorted(sections)) if a in sections]
    ordered = list({s.id: s for s in ordered}.values())
    done = sum(s.diagnosed for s in ordered)
    total = sum(s.bugs for s in ordered)
    share = done / total if total else 0.0
    missing = [a for a in ASSIGNMENTS if a not in sections]
    undiagnosed = [f"{s.id}/{bug}" for s in ordered for bug in s.undiagnosed]
    lines = ["# Validity: planted bugs x parts, and specific diagnoses", "",
             "Every sample is graded through the real pipeline (`grader audit`) by "
             "`python bench/validity.py --assignment ID [ID ...]`, which replaces those "
             "assignments' sections and keeps the others; each section says when and where "
             "it was measured.", "",
             f"**Specific diagnoses: {done} of {total} planted bugs ({share:.0%}) over the "
             f"sections below; target >= {TARGET:.0%}.** Counted from `TestOutcome.diagnosis` "
             "(data), not from message text.", ""]
    if missing:
        lines += [f"Not measured: {', '.join(missing)}.", ""]
    lines += ["Undiagnosed: " + (", ".join(undiagnosed) if undiagnosed else "none") + ".", "",
              "| assignment | bugs | diagnosed | variants | fair | seconds |",
              "|---|---|---|---|---|---|"]
    for s in ordered:
        lines.append(f"| {s.id} | {s.bugs} | {s.diagnosed} | {s.variants} | "
                     f"{'yes' if s.fair else 'NO'} | {s.seconds:.0f} |")
    for s in ordered:
        lines += ["", f"## {s.id}", "", s.measured, "", s.body]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignment", "--assignments", dest="assignments", nargs="+",
                        default=list(ASSIGNMENTS), metavar="ID",
                        help="the assignments to measure (default: all five); the other "
                        "sections of the result are kept")
    parser.add_argument("--note", default="", help="a sentence about the conditions, e.g. "
                        "'the 2 cores were shared with other work'")
    parser.add_argument("--out", type=Path, default=RESULT, help="the result file")
    args = parser.parse_args(argv)
    unknown = [a for a in args.assignments
               if not (REPO / "assignments" / a / "assignment.toml").is_file()]
    if unknown:
        parser.error(f"no assignment {', '.join(unknown)}; expected some of "
                     f"{', '.join(ASSIGNMENTS)}")
    sections = read_sections(args.out.read_text(encoding="utf-8")) if args.out.is_file() else {}
    fair = True
    for assignment in args.assignments:
        print(f"auditing {assignment}...", flush=True)
        sections[assignment] = measure(assignment, args.note)
        fair = fair and sections[assignment].fair
        args.out.write_text(render(sections), encoding="utf-8")
    print(args.out.read_text(encoding="utf-8"))
    return 0 if fair else 1


if __name__ == "__main__":
    sys.exit(main())

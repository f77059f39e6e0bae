"""What the hardened sandbox costs per submission, by piece, robust to a busy machine.

Usage:
    python bench/sandbox_overhead.py [--assignment mlp_numpy] [--repeats 7]

``bench/grading.py`` subtracts an in-process run from a sandboxed one; on a shared machine
both vary by seconds. This measures the pieces instead, taking the minimum of several
repeats (the cost without interference): starting a runtime and importing the reference
(bubblewrap, seccomp, staging, ``python -I``, the workspace copy), one call's round trip,
and moving 10 MB of arrays each way. With the number of replies and bytes one reference
submission exchanges (counted while grading it once), their sum is the grader's fixed cost
per submission. Writes ``bench/results/sandbox-overhead-<assignment>.md``.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import tempfile
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from grader.config import load_assignment
from grader.grading.run import grade_path
from grader.runtime import StudentRuntime, protocol

RESULTS = Path(__file__).parent / "results"
ECHO = "def echo(x):\n    return x\n"


def _best(repeats: int, work) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignment", default="mlp_numpy")
    parser.add_argument("--repeats", type=int, default=7)
    options = parser.parse_args()
    warnings.simplefilter("ignore")
    config = load_assignment(options.assignment)
    module = Path(config.student_files[0]).stem
    scratch = Path(tempfile.mkdtemp(prefix="nn-grader-bench-"))
    shutil.copy(Path("reference") / f"{module}.py", scratch / f"{module}.py")
    (scratch / "echo.py").write_text(ECHO)

    def start() -> None:
        with StudentRuntime(scratch, [module, "echo"]) as runtime:
            runtime.start()

    start_s = _best(options.repeats, start)
    with StudentRuntime(scratch, [module, "echo"]) as runtime:
        echo = runtime.student.echo.echo
        call_s = _best(options.repeats, lambda: [echo(1) for _ in range(200)]) / 200
        payload = np.ones((10 << 20) // 8)
        per_mb_s = _best(options.repeats, lambda: echo(payload)) / 20  # 10 MB each way
        isolation = runtime._process.command.isolation
        notes = "; ".join(runtime.notes) or "none"

    replies: list[int] = []
    sent: list[int] = []
    original_read, original_write = protocol.read_message, protocol.write_message

    def counting_read(*args, **kwargs):
        header, frames = original_read(*args, **kwargs)
        replies.append(sum(len(frame) for frame in frames))
        return header, frames

    def counting_write(fd, header, frames, deadline=None):
        sent.append(sum(len(frame) for frame in frames))
        return original_write(fd, header, frames, deadline)

    protocol.read_message, protocol.write_message = counting_read, counting_write
    graded = grade_path(config, Path("reference") / f"{module}.py")
    protocol.read_message, protocol.write_message = original_read, original_write
    moved_mb = (sum(replies) + sum(sent)) / 2**20
    fixed = start_s + len(replies) * call_s + moved_mb * per_mb_s
    shutil.rmtree(scratch, ignore_errors=True)
    lines = [
        f"# The sandbox's cost per `{options.assignment}` submission, by piece",
        "",
        f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC by "
        f"`python bench/sandbox_overhead.py --assignment {options.assignment} --repeats "
        f"{options.repeats}` on {platform.machine()}, Python {platform.python_version()}; "
        f"minimum of {options.repeats} repeats each. Isolation: `{isolation}`; missing "
        f"protections: {notes}. The reference graded once: "
        f"{graded.grade.score:g}/{graded.grade.max_score:g}.",
        "",
        "| piece | seconds |",
        "| --- | ---: |",
        f"| start a runtime and import the submission (bwrap, seccomp, staging, `python -I`) "
        f"| {start_s:.3f} |",
        f"| one call's round trip | {call_s * 1000:.3f} ms |",
        f"| moving 1 MB of arrays one way | {per_mb_s * 1000:.2f} ms |",
        f"| replies in one graded submission | {len(replies)} |",
        f"| arrays sent and received in one graded submission | {moved_mb:.1f} MB |",
        f"| **fixed cost per submission** (start + replies x round trip + MB x per MB) "
        f"| **{fixed:.2f}** |",
        "",
        "Before the hardening (bench/results/grading-mlp_numpy.md, 2026-11-25): runtime start "
        "and import 0.11 s; fixed cost 0.69 s by subtraction. Target: at most 1.5 s.",
        "",
    ]
    RESULTS.mkdir(exist_ok=True)
    target = RESULTS / f"sandbox-overhead-{options.assignment}.md"
    target.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

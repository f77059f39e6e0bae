"""The largest messages the reference suites receive from the runtime: what the caps must allow.

Usage:
    python bench/protocol_sizes.py [ASSIGNMENT ...]   # default: every assignment

Grades each reference solution (as a submission, through the real sandbox) while recording
every reply the grader reads: its JSON header's size and its arrays' total size. The caps
(``protocol.MAX_HEADER_BYTES`` and each assignment's ``max_message_mb``) must sit above the
largest; writes ``bench/results/protocol-sizes.md``.
"""

from __future__ import annotations

import json
import platform
import sys
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

from grader.grading.run import grade_path, sandbox_limits
from grader.runtime import protocol

RESULTS = Path(__file__).parent / "results"
ASSIGNMENTS = ("tf_basics", "mlp_numpy", "keras_mlp", "keras_cnn", "alexnet")


def main() -> None:
    warnings.simplefilter("ignore")
    names = sys.argv[1:] or list(ASSIGNMENTS)
    seen: list[tuple[int, int]] = []
    original = protocol.read_message

    def recording(*args, **kwargs):
        header, frames = original(*args, **kwargs)
        size = len(json.dumps(header, separators=(",", ":")))
        seen.append((size, sum(len(frame) for frame in frames)))
        return header, frames

    protocol.read_message = recording  # the proxy calls it through the module
    rows = []
    for name in names:
        seen.clear()
        started = time.perf_counter()
        graded = grade_path(name, Path("reference") / f"{name}.py")
        limits = sandbox_limits(graded_config(name))
        biggest = max(seen, key=lambda pair: pair[0] + pair[1])
        rows.append((name, f"{graded.grade.score:g}/{graded.grade.max_score:g}", len(seen),
                     max(size for size, _ in seen), max(total for _, total in seen),
                     sum(biggest), limits.max_message_mb, time.perf_counter() - started))
        print(rows[-1], flush=True)
    lines = [
        "# Messages the reference suites receive from the runtime",
        "",
        f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC by "
        f"`python bench/protocol_sizes.py` on {platform.machine()}, Python "
        f"{platform.python_version()}; each reference graded as a submission.",
        "",
        "| assignment | score | replies | largest JSON header | largest arrays in one reply "
        "| largest reply | cap (`max_message_mb`) | seconds |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, score, count, header, arrays, whole, cap, seconds in rows:
        lines.append(f"| {name} | {score} | {count} | {header / 1024:.1f} KiB | "
                     f"{arrays / 2**20:.2f} MB | {whole / 2**20:.2f} MB | {cap} MB | "
                     f"{seconds:.1f} |")
    lines += ["", f"JSON header cap: {protocol.MAX_HEADER_BYTES >> 10} KiB "
              "(`protocol.MAX_HEADER_BYTES`).", ""]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "protocol-sizes.md").write_text("\n".join(lines))
    print("\n".join(lines))


def graded_config(name: str):
    from grader.config import load_assignment

    return load_assignment(name)


if __name__ == "__main__":
    main()

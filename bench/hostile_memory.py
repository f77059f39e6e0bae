"""The grader's peak memory when a runtime lies in the protocol, against an honest one.

Usage:
    python bench/hostile_memory.py

Each scenario runs in a fresh grader process: a StudentRuntime (real sandbox) over
``tests/hostile/forger.py``, one call, and the grader's peak resident memory (VmHWM)
growth over that call. The forger writes straight into the runtime's response pipe:

- honest: a 60 MB float64 array, the legitimate answer of about the cap's size;
- forged header: a prefix claiming a 64 MB JSON header, then 64 MB of ``[`` (issue 9: this
  grew the grader to 2.3 GB before the header cap);
- forged frames: a small header declaring three 60 MB frames, then the bytes;
- forged frame within the cap: one 60 MB frame, accepted and read (the most a liar can cost).

Writes ``bench/results/hostile-memory.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import warnings
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"
SCENARIOS = {
    "honest": ("honest", (60,)),
    "forged header (64 MB declared)": ("forge_header", (64,)),
    "forged frames (3 x 60 MB declared)": ("forge_frames", (3, 60)),
    "forged frame within the cap (1 x 60 MB)": ("forge_frames", (1, 60)),
}
MAX_MESSAGE_MB = 64


def _peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def run_scenario(name: str) -> dict:
    """One call in this process; the grader's peak memory growth over it."""
    sys.path.insert(0, str(REPO))
    from grader.runtime import SandboxLimits, StudentFailure, StudentRuntime

    call, args = SCENARIOS[name]
    with tempfile.TemporaryDirectory() as scratch:
        workspace = Path(scratch, "ws")
        workspace.mkdir()
        shutil.copy(REPO / "tests" / "hostile" / "forger.py", workspace / "forger.py")
        limits = SandboxLimits(max_message_mb=MAX_MESSAGE_MB, call_timeout_s=60)
        with StudentRuntime(workspace, ["forger"], limits=limits) as runtime:
            runtime.ping()
            Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
            before = _peak_mb()
            try:
                value = getattr(runtime.student.forger, call)(*args)
                outcome = f"accepted ({type(value).__name__})"
            except StudentFailure as exc:
                outcome = f"{type(exc).__name__}: {str(exc)[:120]}"
            grown = _peak_mb() - before
    return {"scenario": name, "grown_mb": round(max(grown, 0.0), 1), "outcome": outcome}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.scenario:
        warnings.simplefilter("ignore")
        print(json.dumps(run_scenario(options.scenario)))
        return
    rows = []
    for name in SCENARIOS:
        done = subprocess.run([sys.executable, __file__, "--scenario", name], check=True,
                              capture_output=True, text=True, cwd=REPO)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    honest = rows[0]["grown_mb"]
    lines = [
        "# The grader's memory against a runtime that lies in the protocol",
        "",
        f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC by "
        f"`python bench/hostile_memory.py` on {platform.machine()}, Python "
        f"{platform.python_version()}; `max_message_mb` = {MAX_MESSAGE_MB}, JSON header cap "
        "1 MiB. Growth of the grader's peak resident memory (VmHWM) over one call, each "
        "scenario in a fresh grader process, through the real sandbox.",
        "",
        "| scenario | grader's peak growth | vs honest | outcome |",
        "| --- | ---: | ---: | --- |",
    ]
    for row in rows:
        ratio = row["grown_mb"] / honest if honest > 0 else float("nan")
        outcome = row["outcome"].replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {row['scenario']} | {row['grown_mb']:.1f} MB | {ratio:.2f}x | "
                     f"{outcome} |")
    lines += ["", "Before the caps (issue 9), the forged 64 MB header grew the grader to 2.3 GB.",
              ""]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "hostile-memory.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

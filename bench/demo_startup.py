"""How long the service's demo takes to open: from the command until ``GET /login`` answers.

Usage:
    python bench/demo_startup.py [--out bench/results/demo-startup.md]

Measures, in the lecture's course (this checkout), one after another:

1. ``grader demo``'s service step alone (`grader.demo.print_service` into a temporary
   folder: the course copied, the sample class uploaded and graded by the service's own
   workers) — until it returns;
2. ``grader serve --demo <that folder>`` (the kept class: nothing left to grade) — until
   ``GET /login`` answers 200;
3. ``grader serve --demo`` (a throwaway copy, graded before the server starts) — until
   ``GET /login`` answers 200.

Each figure is one run, with the 1-minute load average when it started (other work on the
machine slows every step). Writes a Markdown table with the command, the machine and the date.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx

from grader.testing.net import free_port

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
START_TIMEOUT_S = 600.0  # a throwaway demo grades 11 uploads first: minutes on a busy machine


def _load() -> float:
    return os.getloadavg()[0]


def time_print_service(folder: Path) -> float:
    """Seconds `grader.demo.print_service(folder)` takes, in a child process."""
    started = time.perf_counter()
    subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-c", "import sys; from pathlib import Path; "
         "from grader.demo import print_service; print_service(Path(sys.argv[1]))",
         str(folder)], cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def time_serve(demo_args: list[str]) -> float:
    """Seconds from starting ``grader serve --demo ...`` until ``GET /login`` answers 200."""
    port = free_port()
    started = time.perf_counter()
    server = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "grader", "serve", "--port", str(port), "--demo", *demo_args],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.perf_counter() - started < START_TIMEOUT_S:
            if server.poll() is not None:
                raise RuntimeError(f"grader serve --demo exited with {server.returncode}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/login", timeout=2).status_code == 200:
                    return time.perf_counter() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"no answer on /login within {START_TIMEOUT_S:.0f} s")
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "demo-startup.md")
    args = parser.parse_args(argv)
    rows = []
    scratch = Path(tempfile.mkdtemp(prefix="demo-startup-"))
    try:
        kept = scratch / "service"
        load = _load()
        rows.append(("`grader demo`'s service step alone (`grader.demo.print_service`: the "
                     "course copied, 11 uploads and 22 jobs graded by 2 workers)",
                     time_print_service(kept), load))
        load = _load()
        rows.append(("`grader serve --demo DIR` (the kept class: nothing graded)",
                     time_serve([str(kept)]), load))
        load = _load()
        rows.append(("`grader serve --demo` (a throwaway copy, graded, then the server)",
                     time_serve([]), load))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    lines = [
        "# The service's demo: time to open", "",
        f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.node()} "
        f"({os.cpu_count()} CPUs, Python {platform.python_version()}) with "
        f"`python bench/demo_startup.py`: from the command until `GET /login` answers "
        "(the first row: until it returns). One run each; the 1-minute load average when it "
        "started in the last column.", "",
        "| command | seconds | load |", "| --- | ---: | ---: |",
        *(f"| {what} | {seconds:.1f} | {load:.1f} |" for what, seconds, load in rows), "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

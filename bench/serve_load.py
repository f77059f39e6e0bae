"""A bounded load test of `grader serve` on the loopback interface.

Usage:
    python bench/serve_load.py [--students 300] [--minutes 10] [--rush-share 0.5]
                               [--rush-minutes M] [--workers 2] [--db URL | --postgres]
                               [--out FILE]

What it does:

1. makes a course in a temporary folder (`grader init` + `grader new layer`: a small numpy
   assignment whose public tests run in about a second), N students with access codes
   (`auth.issue_codes`) in the gradebook (SQLite in the course folder; ``--postgres``: a
   throwaway PostgreSQL server started as tests/conftest.py starts one; or ``--db URL`` of
   a fresh, empty database: the benchmark empties nothing);
2. starts the real service, ``grader serve --workers 2`` under uvicorn on 127.0.0.1 (a child
   process; the course folder as its current course);
3. every simulated student (httpx, one cookie jar each) at their moment signs in, then
   uploads a correct or a buggy ``layer.py`` (every fourth one is buggy), then polls the
   attempt's status fragment as ``static/status.js`` does (after 1 s, then every 2 s) until
   the public result is on it. The schedule: ``1 - rush_share`` of the students upload uniformly
   over ``--minutes``, the others uniformly over the last ``--rush-minutes`` (the rush);
4. meanwhile a sampler counts the jobs table's queued and running jobs every second;
5. after the last public result it waits for the hidden jobs to finish, then checks the
   database: each accepted upload has exactly one attempt, and each of its two jobs is
   done after exactly one claim (hidden ones with one gradebook record).

Measured per upload: upload→"received" (the POST until its 303 to the attempt page) and
upload→public result (the POST until the first poll that shows the result). Writes a
Markdown report (default ``bench/results/serve.md``) with the figures, the targets and
whether they were met, the command, the machine and the date, and beside it a PNG of the
queue length over time (``serve-<database>.png``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import platform
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import httpx
from sqlalchemy import func, select

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results"
ASSIGNMENT = "layer"
POLL_FIRST_S, POLL_S = 1.0, 2.0  # static/status.js: first poll after 1 s, then every 2 s
SAMPLE_S = 1.0  # the queue length is sampled this often
BUGGY_EVERY = 4  # every fourth student uploads a wrong relu
START_TIMEOUT_S = 60.0  # the service must answer /login within this
RESULT_TIMEOUT_S = 600.0  # a public result later than this after the last upload: lost
TARGET_RECEIVED_P95_S = 0.2
TARGET_PUBLIC_P95_S = 30.0
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
PUBLIC_SHOWN = re.compile(r'class="state (done|failed)"')
TEST_ROW = re.compile(r'<tr class="(passed|failed)">')  # the page's language aside
ATTEMPT = re.compile(r"^/attempts/(\d+)$")


@dataclass
class Upload:
    """One student's upload and what the service answered."""

    student: str
    buggy: bool
    at_s: float  # scheduled moment, seconds from the schedule's start
    rush: bool
    status: int | None = None
    sign_in_s: float | None = None
    attempt: int | None = None
    received_s: float | None = None
    public_s: float | None = None
    public_state: str | None = None
    all_passed: bool | None = None  # every public test passed (None: no result shown)
    error: str | None = None


@dataclass
class Run:
    """Everything measured in one run."""

    uploads: list[Upload]
    # (t, queued public, queued hidden, running) on the sampler's clock
    samples: list[tuple[float, int, int, int]] = field(default_factory=list)
    checks: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0
    schedule_start_s: float = 0.0  # the schedule's start on the samples' clock
    hidden_wait_s: float = 0.0


# --- the course and the service -----------------------------------------------------------

def make_course(root: Path) -> Path:
    """A blank course with the scaffolded `layer` assignment at `root`."""
    from grader import scaffold
    from grader.course import load_course

    original = scaffold.lecture_course
    scaffold.lecture_course = lambda: None  # an empty course, not a copy of the lecture
    try:
        scaffold.init_course(root)
    finally:
        scaffold.lecture_course = original
    scaffold.new_assignment(ASSIGNMENT, course=load_course(root))
    return root


def add_students(db_url: str, n: int) -> dict[str, str]:
    """Students s001… in the gradebook at `db_url` (created and migrated), by access code."""
    from sqlalchemy.orm import sessionmaker

    from grader.gradebook import open_gradebook
    from grader.service.auth import issue_codes

    gradebook = open_gradebook(db_url, create=True)
    try:
        ids = [f"s{i:03d}" for i in range(1, n + 1)]
        gradebook.add_students([(sid, f"Student {sid}") for sid in ids])
        with sessionmaker(gradebook.engine)() as session:
            codes = dict(issue_codes(session, ids))
            session.commit()
    finally:
        gradebook.close()
    return codes


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str]:
    """grader.testing.postgres's throwaway server, as the tests start one (fsync left on: a
    benchmark of the real thing); the URL of its `postgres` database."""
    from grader.testing import postgres

    if postgres.postgres_bindir() is None:
        raise SystemExit(f"--postgres: {postgres.NOT_INSTALLED}; or give a server's URL "
                         "with --db")
    with postgres.throwaway_postgres(fsync=True) as url:
        yield f"{url}/postgres"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_service(course: Path, db_url: str, port: int, workers: int,
                  log: Path) -> subprocess.Popen:
    """``grader serve`` for `course` in a child process (its own process group)."""
    env = dict(os.environ, GRADER_COURSE=str(course))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "grader", "serve", "--port", str(port),
               "--workers", str(workers), "--db", db_url]
    with log.open("wb") as out:
        return subprocess.Popen(command, cwd=course, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def wait_until_up(base: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"grader serve exited with {process.returncode} before it "
                               f"answered; its log:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(f"{base}/login", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    tail = log.read_text(errors="replace")[-3000:]
    raise RuntimeError(f"grader serve did not answer {base}/login within "
                       f"{START_TIMEOUT_S:.0f} s; its log:\n{tail}")


def stop_service(process: subprocess.Popen) -> None:
    """SIGINT (what Ctrl-C sends: workers finish their job), then SIGKILL the group."""
    import signal

    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(40)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


# --- the students ---------------------------------------------------------------------------

def schedule(n: int, minutes: float, rush_share: float, rush_minutes: float,
             seed: int = 0) -> list[tuple[float, bool]]:
    """(moment in seconds, in the rush) per student, sorted by moment."""
    rng = random.Random(seed)
    span, rush_span = minutes * 60.0, rush_minutes * 60.0
    rushing = round(n * rush_share)
    moments = [(rng.uniform(0, span), False) for _ in range(n - rushing)]
    moments += [(rng.uniform(span - rush_span, span), True) for _ in range(rushing)]
    return sorted(moments)


async def sign_in(client: httpx.AsyncClient, student: str, code: str) -> str:
    """Signs `student` in; returns the CSRF token of the session."""
    form = await client.get("/login")
    reply = await client.post("/login", data={"name": student, "secret": code,
                                              "csrf_token": TOKEN.search(form.text).group(1)},
                              follow_redirects=True)
    found = TOKEN.search(reply.text)
    if reply.status_code != 200 or found is None:
        raise RuntimeError(f"{student} could not sign in: HTTP {reply.status_code}")
    return found.group(1)


async def student_run(client: httpx.AsyncClient, code: str, upload: Upload, source: bytes,
                      start: float, give_up_at: float) -> None:
    """At the upload's moment signs in, uploads, polls until the public result shows."""
    await asyncio.sleep(max(0.0, start + upload.at_s - time.monotonic()))
    began = time.monotonic()
    try:
        csrf = await sign_in(client, upload.student, code)
    except (httpx.HTTPError, RuntimeError, AttributeError) as error:
        upload.error = f"sign-in: {type(error).__name__}: {error}"
        return
    sent = time.monotonic()
    upload.sign_in_s = sent - began
    try:
        reply = await client.post(f"/assignments/{ASSIGNMENT}/upload",
                                  data={"csrf_token": csrf},
                                  files={"file": ("layer.py", source, "text/x-python")})
    except httpx.HTTPError as error:
        upload.error = f"upload: {type(error).__name__}: {error}"
        return
    upload.received_s = time.monotonic() - sent
    upload.status = reply.status_code
    found = ATTEMPT.match(reply.headers.get("location", ""))
    if reply.status_code != 303 or found is None:
        upload.error = f"upload answered HTTP {reply.status_code}"
        return
    upload.attempt = int(found.group(1))
    wait = POLL_FIRST_S
    while time.monotonic() < give_up_at:
        await asyncio.sleep(wait)
        wait = POLL_S
        try:
            page = await client.get(f"/attempts/{upload.attempt}/status")
        except httpx.HTTPError:
            continue  # a slow poll is retried, as the page's script does
        shown = PUBLIC_SHOWN.search(page.text)
        if shown:
            upload.public_s = time.monotonic() - sent
            upload.public_state = shown.group(1)
            rows = TEST_ROW.findall(page.text)
            upload.all_passed = bool(rows) and "failed" not in rows
            return
    upload.error = "no public result before the benchmark gave up"


async def drive(base: str, codes: dict[str, str], uploads: list[Upload],
                sources: dict[bool, bytes], minutes: float) -> float:
    """Runs the schedule (each student a browser of their own); returns its start."""
    limits = httpx.Limits(max_connections=2)
    clients = {u.student: httpx.AsyncClient(base_url=base, timeout=60, limits=limits)
               for u in uploads}
    try:
        start = time.monotonic()
        give_up = start + minutes * 60 + RESULT_TIMEOUT_S
        await asyncio.gather(*(student_run(clients[u.student], codes[u.student], u,
                                           sources[u.buggy], start, give_up)
                               for u in uploads))
        return start
    finally:
        await asyncio.gather(*(client.aclose() for client in clients.values()))


class Sampler(threading.Thread):
    """Counts queued and running jobs every `SAMPLE_S` seconds until stopped."""

    def __init__(self, db_url: str, samples: list) -> None:
        super().__init__(daemon=True)
        from sqlalchemy import create_engine

        self.engine = create_engine(db_url)
        self.samples, self.halt, self.t0 = samples, threading.Event(), time.monotonic()

    def run(self) -> None:
        from grader.gradebook.models import JobModel

        while not self.halt.is_set():
            with self.engine.connect() as connection:
                counts = {(state, kind): n for state, kind, n in connection.execute(
                    select(JobModel.state, JobModel.kind, func.count())
                    .group_by(JobModel.state, JobModel.kind))}
            self.samples.append((time.monotonic() - self.t0, counts.get(("queued", "public"), 0),
                                 counts.get(("queued", "hidden"), 0),
                                 sum(n for (state, _), n in counts.items()
                                     if state == "running")))
            self.halt.wait(SAMPLE_S)

    def stop(self) -> None:
        self.halt.set()
        self.join(10)
        self.engine.dispose()


def wait_for_hidden(db_url: str, timeout_s: float) -> float:
    """Seconds waited until no job is queued or running (at most `timeout_s`)."""
    from sqlalchemy import create_engine

    from grader.gradebook.models import JobModel

    engine = create_engine(db_url)
    start = time.monotonic()
    try:
        while time.monotonic() - start < timeout_s:
            with engine.connect() as connection:
                open_jobs = connection.scalar(select(func.count()).select_from(JobModel).where(
                    JobModel.state.in_(("queued", "running"))))
            if not open_jobs:
                break
            time.sleep(1.0)
    finally:
        engine.dispose()
    return time.monotonic() - start


def check_database(db_url: str, uploads: list[Upload]) -> dict[str, int]:
    """Lost and duplicated submissions, from the gradebook itself.

    lost: an upload without an attempt, or whose public or hidden job is missing or ended
    without a result (failed, cancelled); a job still queued or running is counted apart;
    duplicated: a student with more attempts than uploads, a job claimed more than once,
    or a hidden job's upload recorded more than once in the gradebook.
    """
    from sqlalchemy import create_engine

    from grader.gradebook.models import AttemptModel, JobModel, SubmissionModel

    engine = create_engine(db_url)
    try:
        with engine.connect() as connection:
            attempts = connection.execute(select(
                AttemptModel.id, AttemptModel.student_id, AttemptModel.public_job_id,
                AttemptModel.hidden_job_id)).all()
            jobs = {row.id: row for row in connection.execute(select(
                JobModel.id, JobModel.state, JobModel.attempts, JobModel.record_id))}
            records = connection.scalar(select(func.count()).select_from(SubmissionModel))
    finally:
        engine.dispose()
    by_student: dict[str, int] = {}
    for row in attempts:
        by_student[row.student_id] = by_student.get(row.student_id, 0) + 1
    lost = sum(1 for u in uploads if by_student.get(u.student, 0) == 0)
    own = [jobs.get(job) for row in attempts for job in (row.public_job_id, row.hidden_job_id)]
    # still queued or running when the benchmark stopped waiting: not lost, not done either
    waiting = sum(1 for job in own if job is not None and job.state in ("queued", "running"))
    unfinished = sum(1 for job in own if job is None or job.state != "done") - waiting
    hidden = [jobs[row.hidden_job_id] for row in attempts if row.hidden_job_id in jobs]
    recorded = [job.record_id for job in hidden if job.record_id is not None]
    return {
        "uploads": len(uploads),
        "attempts": len(attempts),
        "lost": lost + unfinished,
        "duplicated": (sum(n - 1 for n in by_student.values() if n > 1)
                       + sum(1 for job in jobs.values() if job.attempts > 1)
                       + (len(recorded) - len(set(recorded)))),
        "jobs": len(jobs),
        "jobs_waiting": waiting,
        "jobs_done": sum(1 for job in jobs.values() if job.state == "done"),
        "gradebook_records": records or 0,
    }


# --- the run and its report ------------------------------------------------------------------

def run(*, students: int, minutes: float, rush_share: float, rush_minutes: float,
        workers: int, db: str | None, folder: Path, seed: int = 0,
        drain_minutes: float = 10.0) -> Run:
    """One whole benchmark run in `folder` (the course and the service's log go there)."""
    from grader.gradebook import database_url

    course = make_course(folder / "course")
    db_url = database_url(db) if db else database_url(course / "gradebook.db")
    codes = add_students(db_url, students)
    reference = (course / "reference" / f"{ASSIGNMENT}.py").read_bytes()
    buggy = reference.replace(b"np.maximum(x, 0.0)", b"np.minimum(x, 0.0)")
    assert buggy != reference, "the scaffold's relu changed: plant the bug elsewhere"
    moments = schedule(students, minutes, rush_share, rush_minutes, seed)
    ids = sorted(codes)
    uploads = [Upload(student=sid, buggy=i % BUGGY_EVERY == BUGGY_EVERY - 1, at_s=at, rush=rush)
               for i, (sid, (at, rush)) in enumerate(zip(ids, moments, strict=True))]
    port = free_port()
    log = folder / "serve.log"
    process = start_service(course, db_url, port, workers, log)
    result = Run(uploads)
    try:
        wait_until_up(f"http://127.0.0.1:{port}", process, log)
        sampler = Sampler(db_url, result.samples)
        sampler.start()
        began = time.monotonic()
        try:
            start = asyncio.run(drive(f"http://127.0.0.1:{port}", codes, uploads,
                                      {False: reference, True: buggy}, minutes))
            result.schedule_start_s = start - sampler.t0
            result.wall_s = time.monotonic() - began
            result.hidden_wait_s = wait_for_hidden(db_url, drain_minutes * 60)
        finally:
            sampler.stop()
    finally:
        stop_service(process)
    result.checks = check_database(db_url, uploads)
    return result


def percentiles(values: list[float]) -> tuple[str, str, str, str]:
    """(n, p50, p95, max) as text; p95 by the nearest-rank method."""
    if not values:
        return ("0", "—", "—", "—")
    ordered = sorted(values)
    p95 = ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]
    return (str(len(ordered)), f"{statistics.median(ordered):.3f}", f"{p95:.3f}",
            f"{ordered[-1]:.3f}")


def p95(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def plot(result: Run, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.5))
    times = [s[0] / 60 for s in result.samples]
    ax.plot(times, [s[1] for s in result.samples], label="queued public jobs")
    ax.plot(times, [s[2] for s in result.samples], label="queued hidden jobs")
    ax.plot(times, [s[3] for s in result.samples], label="running jobs")
    rush = [(result.schedule_start_s + u.at_s) / 60 for u in result.uploads if u.rush]
    if rush:
        ax.axvspan(min(rush), max(rush), alpha=0.15, color="tab:red", label="rush uploads")
    ax.set_xlabel("minutes since the schedule's start")
    ax.set_ylabel("jobs")
    ax.set_title(title)
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def report(result: Run, *, command: str, database: str, args: argparse.Namespace,
           png: Path, load_before: float, load_after: float) -> str:
    uploads = result.uploads
    signed = [u.sign_in_s for u in uploads if u.sign_in_s is not None]
    received = [u.received_s for u in uploads if u.received_s is not None and u.attempt]
    calm = [u.public_s for u in uploads if u.public_s is not None and not u.rush]
    rush = [u.public_s for u in uploads if u.public_s is not None and u.rush]
    checks = result.checks
    failed_public = sum(1 for u in uploads if u.public_state == "failed")
    errors = [f"{u.student}: {u.error}" for u in uploads if u.error]
    correct = [u for u in uploads if not u.buggy]
    wrong = [u for u in uploads if u.buggy]

    def verdict(ok: bool | None) -> str:
        return "—" if ok is None else ("met" if ok else "**not met**")

    p95_received, p95_calm = p95(received), p95(calm)
    rows = [
        ("lost submissions", "0", str(checks["lost"]), verdict(checks["lost"] == 0)),
        ("duplicated submissions", "0", str(checks["duplicated"]),
         verdict(checks["duplicated"] == 0)),
        ("p95 upload → received", f"< {TARGET_RECEIVED_P95_S * 1000:.0f} ms",
         "—" if p95_received is None else f"{p95_received * 1000:.0f} ms",
         verdict(None if p95_received is None else p95_received < TARGET_RECEIVED_P95_S)),
        ("p95 upload → public result, outside the rush", f"< {TARGET_PUBLIC_P95_S:.0f} s",
         "—" if p95_calm is None else f"{p95_calm:.1f} s",
         verdict(None if p95_calm is None else p95_calm < TARGET_PUBLIC_P95_S)),
    ]
    peak = max(result.samples, key=lambda s: s[1], default=(0.0, 0, 0, 0))
    peak_hidden = max(result.samples, key=lambda s: s[2], default=(0.0, 0, 0, 0))
    lines = [
        f"## {database}: {args.students} students over {args.minutes:g} min",
        "",
        f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores "
        f"({platform.processor() or platform.machine()}), {platform.system().lower()}; Python "
        f"{platform.python_version()}; database {database}; {args.workers} local workers. "
        f"Command: `{command}`. Load average (1 min) before the run {load_before:.2f}, at "
        f"its end {load_after:.2f} (the benchmark's own load included).",
        "",
        f"{args.students} students, each at their moment signing in, then uploading one "
        f"`layer.py` (a "
        f"scaffolded numpy assignment: `grader new layer`; every {BUGGY_EVERY}th upload has a "
        f"wrong `relu`) and polling the attempt's status as `static/status.js` does (after "
        f"{POLL_FIRST_S:g} s, then every {POLL_S:g} s: a public result's latency includes up "
        f"to {POLL_S:g} s of waiting for the next poll) until the public result shows. "
        f"Schedule: {1 - args.rush_share:.0%} uniformly over "
        f"{args.minutes:g} min, {args.rush_share:.0%} in a rush over the last "
        f"{args.rush_minutes:g} min. The driver (httpx) runs on the same machine as the "
        f"service and its workers.",
        "",
        "### Targets",
        "",
        "| figure | target | measured | |",
        "| --- | --- | ---: | --- |",
        *(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows),
        "",
        "### Latencies (seconds)",
        "",
        "| measure | n | p50 | p95 | max |",
        "| --- | ---: | ---: | ---: | ---: |",
        "| upload → received (the POST until its redirect to the attempt) | "
        + " | ".join(percentiles(received)) + " |",
        "| sign-in (login form, POST, assignments page; before the upload) | "
        + " | ".join(percentiles(signed)) + " |",
        "| upload → public result, outside the rush | " + " | ".join(percentiles(calm)) + " |",
        "| upload → public result, in the rush | " + " | ".join(percentiles(rush)) + " |",
        "| upload → public result, all | "
        + " | ".join(percentiles(calm + rush)) + " |",
        "",
        "### The queue",
        "",
        f"![queued and running jobs over time]({png.name})",
        "",
        f"Longest public queue: {peak[1]} jobs waiting at {peak[0] / 60:.1f} min; longest "
        f"hidden queue: {peak_hidden[2]} at {peak_hidden[0] / 60:.1f} min (public jobs are "
        f"taken first). Uploads and public results "
        f"took {result.wall_s:.0f} s from the schedule's start; the hidden jobs still queued "
        f"then took {result.hidden_wait_s:.0f} s more.",
        "",
        "| minute | public queued (max) | hidden queued (max) | running (max) |",
        "| ---: | ---: | ---: | ---: |",
    ]
    for minute in range(int(max((s[0] for s in result.samples), default=0) // 60) + 1):
        inside = [s for s in result.samples if minute * 60 <= s[0] < (minute + 1) * 60]
        if inside:
            lines.append(f"| {minute} | {max(s[1] for s in inside)} | "
                         f"{max(s[2] for s in inside)} | {max(s[3] for s in inside)} |")
    lines += [
        "",
        "### Exactly once",
        "",
        f"From the database after the run: {checks['uploads']} uploads, {checks['attempts']} "
        f"attempts, {checks['jobs']} jobs of which {checks['jobs_done']} done, "
        f"{checks['gradebook_records']} gradebook records, {checks['jobs_waiting']} jobs still "
        f"queued or running when the benchmark stopped waiting ({args.drain_minutes:g} min "
        f"after the last public result); lost {checks['lost']} (an upload without an "
        f"attempt, or a job of it missing, failed or cancelled), duplicated {checks['duplicated']} "
        f"(a second attempt, a job claimed twice, a hidden run recorded twice). Public runs "
        f"that failed on the grader's side: {failed_public}. Graded as expected: "
        f"{sum(1 for u in correct if u.all_passed)} of {len(correct)} correct uploads passed "
        f"every public test, {sum(1 for u in wrong if u.all_passed is False)} of {len(wrong)} "
        f"buggy ones failed one.",
    ]
    if errors:
        lines += ["", "Errors seen by the students:", "",
                  *(f"- {e}" for e in errors[:20])]
    return "\n".join(lines) + "\n"


TITLE = "# `grader serve` under load: uploads on the loopback interface"
INTRO = ("One section per database, each from its latest run of `bench/serve_load.py` "
         "(the command is in it). A run replaces its own database's section only.")


def write_report(path: Path, database: str, section: str) -> None:
    """Writes `section` as `database`'s part of the report at `path`, keeping the others."""
    begin, end = f"<!-- serve_load: {database} -->", f"<!-- /serve_load: {database} -->"
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    sections = re.findall(r"<!-- serve_load: \w+ -->\n.*?<!-- /serve_load: \w+ -->\n", old,
                          flags=re.S)
    ours = f"{begin}\n{section}{end}\n"
    kept = [ours if part.startswith(begin) else part for part in sections]
    if ours not in kept:
        kept.append(ours)
    path.write_text("\n".join([TITLE, "", INTRO, "", *kept]), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=300)
    parser.add_argument("--minutes", type=float, default=10.0,
                        help="the whole upload window")
    parser.add_argument("--rush-share", type=float, default=0.5,
                        help="share of the students who upload in the rush")
    parser.add_argument("--rush-minutes", type=float, default=None,
                        help="the rush: the last part of the window (default: a fifth)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--drain-minutes", type=float, default=10.0,
                        help="how long to wait for the hidden jobs after the last public "
                             "result (those still waiting then are reported, not lost)")
    parser.add_argument("--db", help="the gradebook's URL (e.g. postgresql+psycopg://…, a "
                                     "fresh database); default: SQLite in the course folder")
    parser.add_argument("--postgres", action="store_true",
                        help="start a throwaway PostgreSQL server for the run (as the tests do)")
    parser.add_argument("--out", type=Path, default=RESULTS / "serve.md")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.students < 1 or args.minutes <= 0 or not 0 <= args.rush_share <= 1:
        parser.error("--students must be at least 1, --minutes above 0 and --rush-share "
                     f"between 0 and 1. Received: {args.students}, {args.minutes}, "
                     f"{args.rush_share}")
    if args.rush_minutes is None:
        args.rush_minutes = args.minutes / 5
    if not 0 < args.rush_minutes <= args.minutes:
        parser.error(f"--rush-minutes must be above 0 and at most --minutes ({args.minutes}). "
                     f"Received: {args.rush_minutes}")
    if args.postgres and args.db:
        parser.error("give --postgres (a throwaway server) or --db URL, not both. Received: "
                     "both")
    database = ("PostgreSQL" if args.postgres or (args.db and args.db.startswith("postgres"))
                else "SQLite")
    folder = Path(tempfile.mkdtemp(prefix="nn-grader-serve-load-"))
    load_before = os.getloadavg()[0]
    try:
        with (throwaway_postgres() if args.postgres else contextlib.nullcontext(args.db)) as db:
            result = run(students=args.students, minutes=args.minutes,
                         rush_share=args.rush_share, rush_minutes=args.rush_minutes,
                         workers=args.workers, db=db, folder=folder, seed=args.seed,
                         drain_minutes=args.drain_minutes)
    except Exception:
        print(f"the service's log is kept in {folder}", file=sys.stderr)
        raise
    args.out.parent.mkdir(parents=True, exist_ok=True)
    png = args.out.with_name(f"{args.out.stem}-{database.lower()}.png")
    plot(result, png, f"grader serve, {args.students} students, {database}")
    shown = [a if not a.startswith("postgres") else re.sub(r"//[^@/]*@", "//…@", a)
             for a in (argv if argv is not None else sys.argv[1:])]
    command = " ".join(["python bench/serve_load.py", *shown])
    section = report(result, command=command, database=database, args=args, png=png,
                     load_before=load_before, load_after=os.getloadavg()[0])
    write_report(args.out, database, section)
    shutil.rmtree(folder, ignore_errors=True)
    checks = result.checks
    print(f"wrote {args.out} and {png}: lost {checks['lost']}, duplicated "
          f"{checks['duplicated']}")
    return 0 if checks["lost"] == 0 and checks["duplicated"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

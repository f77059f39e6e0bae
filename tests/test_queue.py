"""The queue of `grader serve` and `grader worker`, on SQLite and on a real PostgreSQL server.

Queue-only tests move jobs by hand with short leases; the worker tests grade a tiny
scaffolded assignment (`grader new`'s dense layer: four tests, no training) with real
worker processes: two side by side, one SIGKILLed mid-job, hostile uploads.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from grader import cli, scaffold
from grader.course import COURSE_ENV, load_course
from grader.gradebook import open_gradebook
from grader.gradebook.models import JobModel, SubmissionModel
from grader.runtime.process import process_tree
from grader.service import queue, worker

LEASE_S = 1.5
SHORT_LEASE_S = 0.3  # queue-only tests: expires while the test sleeps a little longer
WAIT_S = 150  # the most a grading test waits for its jobs (2 shared cores, loaded)
# The sandbox's limits for the hostile uploads: a looping call is stopped within seconds.
LIMITS = "\n[sandbox]\ncall_timeout_s = 2\ntotal_time_s = 6\n"
WRONG = "import numpy as np\n\ndef relu(x):\n    return np.abs(x)\n\n" \
        "def dense_relu(x, w, b):\n    return relu(x @ w + b)\n"
LOOPS = "def relu(x):\n    while True:\n        pass\n\n" \
        "def dense_relu(x, w, b):\n    while True:\n        pass\n"
FLOODS = "import sys\n\ndef relu(x):\n    while True:\n        sys.stdout.write('x' * 65536)\n" \
         "        sys.stderr.write('<script>' * 8192)\n\n" \
         "def dense_relu(x, w, b):\n    return relu(x)\n"


@pytest.fixture(autouse=True)
def _no_course_from_the_environment(monkeypatch):
    monkeypatch.delenv(COURSE_ENV, raising=False)


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    """A course with `grader new`'s `layer` and uploads: right, wrong, looping, flooding."""
    root = tmp_path_factory.mktemp("queue") / "course"
    lecture = scaffold.lecture_course
    scaffold.lecture_course = lambda: None  # an empty course, then one small assignment
    try:
        scaffold.init_course(root)
    finally:
        scaffold.lecture_course = lecture
    scaffold.new_assignment("layer", course=load_course(root))
    toml = root / "assignments" / "layer" / "assignment.toml"
    toml.write_text(toml.read_text() + LIMITS)
    sources = {"right": (root / "reference" / "layer.py").read_text(), "wrong": WRONG,
               "loops": LOOPS, "floods": FLOODS}
    for name, source in sources.items():
        (root / "uploads" / name).mkdir(parents=True)
        (root / "uploads" / name / "layer.py").write_text(source)
    return root


@pytest.fixture
def book(db_url):
    gradebook = open_gradebook(db_url)
    yield gradebook, sessionmaker(gradebook.engine, expire_on_commit=False)
    gradebook.close()


def _enqueue(sessions, upload: str, kind: str, priority: int = 0, student: str = "s1") -> int:
    with sessions() as session:
        job_id = queue.enqueue(session, upload, kind, priority, assignment_id="layer",
                               student_id=student)
        session.commit()
    return job_id


def _claim(sessions, worker_id: str, lease_s: float = LEASE_S) -> queue.Job | None:
    with sessions() as session:
        return queue.claim(session, worker_id, lease_s)


def _jobs(sessions) -> dict[int, JobModel]:
    with sessions() as session:
        return {job.id: job for job in session.scalars(select(JobModel))}


# --- the queue alone ---------------------------------------------------------------------


def test_public_checks_come_first_then_priority_then_age(book):
    _, sessions = book
    hidden_old = _enqueue(sessions, "uploads/a", "hidden")
    public_old = _enqueue(sessions, "uploads/b", "public")
    hidden_urgent = _enqueue(sessions, "uploads/c", "hidden", priority=9)
    public_new = _enqueue(sessions, "uploads/d", "public")
    public_urgent = _enqueue(sessions, "uploads/e", "public", priority=5)
    order = [_claim(sessions, "w").id for _ in range(5)]
    assert order == [public_urgent, public_old, public_new, hidden_urgent, hidden_old]
    assert _claim(sessions, "w") is None


def test_two_workers_racing_never_take_the_same_job(book):
    _, sessions = book
    queued = {_enqueue(sessions, f"uploads/{i}", "public" if i % 2 else "hidden")
              for i in range(24)}
    taken: dict[str, list[int]] = {"a": [], "b": []}
    start = threading.Barrier(2)

    def take(name: str) -> None:
        start.wait()
        while (job := _claim(sessions, name)) is not None:
            taken[name].append(job.id)

    threads = [threading.Thread(target=take, args=(name,)) for name in taken]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    together = taken["a"] + taken["b"]
    assert sorted(together) == sorted(queued)  # each once: none twice, none left
    assert {job.lease_owner for job in _jobs(sessions).values()} <= {"a", "b"}


def test_an_expired_lease_is_taken_again_and_the_old_worker_changes_nothing(book):
    _, sessions = book
    job_id = _enqueue(sessions, "uploads/a", "hidden")
    first = _claim(sessions, "dead", SHORT_LEASE_S)
    with sessions() as session:
        assert queue.heartbeat(session, first, SHORT_LEASE_S)  # still its own
    assert _claim(sessions, "other") is None  # a live lease is never taken
    time.sleep(SHORT_LEASE_S * 2)
    second = _claim(sessions, "alive")
    assert (second.id, second.attempts, second.lease_owner) == (job_id, 2, "alive")
    with sessions() as session:  # the dead worker wakes up: it lost the job
        assert not queue.heartbeat(session, first)
        assert not queue.complete(session, first, {"score": 0.0})
        assert not queue.fail(session, first, "too late")
    with sessions() as session:
        assert queue.complete(session, second, {"score": 7.0})
        assert not queue.complete(session, second, {"score": 1.0})  # a second time: nothing
    row = _jobs(sessions)[job_id]
    assert (row.state, row.result, row.lease_owner, row.error) == ("done", {"score": 7.0},
                                                                   "alive", None)


def test_a_completion_writes_its_record_once_and_a_failing_record_rolls_back(book):
    _, sessions = book
    job_id = _enqueue(sessions, "uploads/a", "hidden")
    job = _claim(sessions, "w")
    calls = []

    def broken(session):
        calls.append("broken")
        raise RuntimeError("disk full")

    with sessions() as session, pytest.raises(RuntimeError, match="disk full"):
        queue.complete(session, job, {"score": 1.0}, record=broken)
    assert _jobs(sessions)[job_id].state == "running"  # rolled back: still this worker's
    with sessions() as session:
        assert queue.complete(session, job, {"score": 1.0},
                              record=lambda s: calls.append("record") or None)
        assert not queue.complete(session, job, {"score": 1.0},
                                  record=lambda s: calls.append("again") or None)
    assert calls == ["broken", "record"]
    assert _jobs(sessions)[job_id].state == "done"


def test_a_job_whose_worker_keeps_dying_is_failed_after_max_attempts(book):
    _, sessions = book
    job_id = _enqueue(sessions, "uploads/a", "hidden")
    for attempt in range(1, queue.MAX_ATTEMPTS + 1):
        job = _claim(sessions, f"w{attempt}", SHORT_LEASE_S)
        assert (job.id, job.attempts) == (job_id, attempt)
        time.sleep(SHORT_LEASE_S * 2)
    assert _claim(sessions, "next") is None  # out of attempts
    with sessions() as session:
        assert queue.requeue_expired(session) == (0, 1)
    row = _jobs(sessions)[job_id]
    assert row.state == "failed" and f"{queue.MAX_ATTEMPTS} times" in row.error


def test_a_hidden_job_out_of_attempts_is_recorded_as_not_graded_once(course, book):
    gradebook, sessions = book
    hidden = _enqueue(sessions, "uploads/right", "hidden", student="s_dies")
    public = _enqueue(sessions, "uploads/right", "public", student="s_dies")
    for attempt in range(1, queue.MAX_ATTEMPTS + 1):  # public first, then hidden
        for _ in range(2):
            _claim(sessions, f"w{attempt}", SHORT_LEASE_S)
        time.sleep(SHORT_LEASE_S * 2)
    assert worker.sweep(sessions, load_course(course)) == (0, 2)
    assert worker.sweep(sessions, load_course(course)) == (0, 0)  # nothing twice
    rows = _jobs(sessions)
    assert rows[public].state == rows[hidden].state == "failed"
    assert rows[public].record_id is None  # a public run records nothing
    assert rows[hidden].record_id is not None
    graded = {row.student_id: row for row in gradebook.latest("layer")}
    assert graded["s_dies"].grade.score == 0
    problems = graded["s_dies"].grade.problems
    assert len(problems) == 1 and problems[0].startswith("the grader could not grade it")
    assert f"{queue.MAX_ATTEMPTS} times" in problems[0]


def test_a_hidden_job_the_worker_fails_is_recorded_as_not_graded(course, book, db_url):
    gradebook, sessions = book
    with sessions() as session:
        job_id = queue.enqueue(session, "uploads/right", "hidden", assignment_id="layer",
                               student_id="s_grader_fails")
        session.commit()
    job = _claim(sessions, "w")
    worker._fail(sessions, load_course(course), job, "the grader could not run it: OSError")
    row = _jobs(sessions)[job_id]
    assert row.state == "failed" and row.record_id is not None
    graded = {row.student_id: row for row in gradebook.latest("layer")}
    assert list(graded["s_grader_fails"].grade.problems) == [
        "the grader could not run it: OSError"]


def test_requeue_expired_puts_a_dead_workers_job_back_and_cancel_stops_a_queued_one(book):
    _, sessions = book
    running = _enqueue(sessions, "uploads/a", "public")
    waiting = _enqueue(sessions, "uploads/b", "hidden")
    _claim(sessions, "dead", SHORT_LEASE_S)
    time.sleep(SHORT_LEASE_S * 2)
    with sessions() as session:
        assert queue.requeue_expired(session) == (1, 0)
        assert queue.cancel(session, waiting)
        assert not queue.cancel(session, waiting)  # already cancelled
    rows = _jobs(sessions)
    assert (rows[running].state, rows[running].lease_owner) == ("queued", None)
    assert rows[waiting].state == "cancelled"
    assert _claim(sessions, "w").id == running and _claim(sessions, "w") is None


@pytest.mark.parametrize(("field", "value", "says"), [
    ("kind", "secret", "unknown job kind"),
    ("submission_id", "../../etc/passwd", "inside the course folder"),
    ("submission_id", "/etc/passwd", "inside the course folder"),
    ("submission_id", "uploads\\..\\..\\x", "inside the course folder"),
    ("submission_id", "uploads/a\x00b", "relative to the course folder"),
    ("submission_id", "", "relative to the course folder"),
    ("student_id", "../../x", "cannot queue a job"),
    ("student_id", "s1\u202e", "cannot queue a job"),
    ("assignment_id", "layer/../../x", "cannot queue a job"),
    ("priority", "9", "priority is an integer"),
    ("priority", True, "priority is an integer"),
])
def test_enqueue_refuses_hostile_fields_and_says_what_was_wrong(book, field, value, says):
    _, sessions = book
    fields = {"submission_id": "uploads/a", "kind": "public", "priority": 0,
              "assignment_id": "layer", "student_id": "s1", field: value}
    with sessions() as session, pytest.raises(queue.QueueError, match=says):
        queue.enqueue(session, **fields)
    assert _jobs(sessions) == {}


# --- workers grading ------------------------------------------------------------------------


def _wait_until_finished(sessions, count: int, workers=None) -> dict[int, JobModel]:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        rows = _jobs(sessions)
        if sum(row.state in ("done", "failed") for row in rows.values()) == count:
            return rows
        if workers is not None:
            assert workers.alive(), "a worker process ended while jobs were left"
        time.sleep(0.3)
    raise AssertionError(f"the jobs did not finish in {WAIT_S} s: "
                         f"{[(r.id, r.state, r.error) for r in _jobs(sessions).values()]}")


def _records(sessions) -> dict[str, int]:
    with sessions() as session:
        return dict(session.execute(select(SubmissionModel.student_id, func.count())
                                    .group_by(SubmissionModel.student_id)).all())


def test_a_students_later_upload_stays_the_grade_whichever_job_finishes_first(course, book):
    from grader import batch

    gradebook, sessions = book
    the_course = load_course(course)
    start = queue.now()
    with sessions() as session:  # "right" uploaded first, "wrong" a minute later
        for upload, minutes in (("uploads/right", 0), ("uploads/wrong", 1)):
            queue.enqueue(session, upload, "hidden", assignment_id="layer",
                          student_id="s_order", submitted_at=start + timedelta(minutes=minutes))
        session.commit()
    first, second = _claim(sessions, "w1"), _claim(sessions, "w2")
    assert (first.submission, second.submission) == ("uploads/right", "uploads/wrong")
    for job in (second, first):  # the later upload's worker finishes first
        config, bjob = worker.batch_job(the_course, job)
        assert worker.finish(sessions, the_course, job, config, batch.grade_one(bjob))
    [row] = [row for row in gradebook.latest("layer") if row.student_id == "s_order"]
    assert row.grade.score < 10  # the later ("wrong") upload is the grade
    history = gradebook.history("layer", "s_order")
    assert len(history) == 2 and sum(not item.superseded for item in history) == 1


def test_two_workers_grade_every_submission_once_and_hostile_ones_fail_alone(course, book,
                                                                           db_url):
    gradebook, sessions = book
    uploads = ("right", "wrong", "loops", "floods")
    for upload in uploads:  # the student is the service's, whatever the upload says
        _enqueue(sessions, f"uploads/{upload}", "hidden", student=f"s_{upload}")
        _enqueue(sessions, f"uploads/{upload}", "public", student=f"s_{upload}")
    workers = worker.start_local_workers(db_url, course, 2, lease_s=LEASE_S * 2)
    try:
        rows = _wait_until_finished(sessions, 2 * len(uploads), workers)
    finally:
        workers.stop(timeout=10)
    assert workers.alive() == 0
    assert {row.state for row in rows.values()} == {"done"}, \
        [(row.id, row.state, row.error) for row in rows.values()]
    assert _records(sessions) == {f"s_{upload}": 1 for upload in uploads}  # once each
    by = {(row.student_id, row.kind): row for row in rows.values()}
    # public results first: every public job started before any hidden job finished
    assert max(by[(f"s_{u}", "public")].started_at for u in uploads) <= \
        min(by[(f"s_{u}", "hidden")].finished_at for u in uploads)
    assert by[("s_right", "public")].result["score"] == by[("s_right", "public")].result[
        "max_score"] == 4  # the two public parts only
    assert by[("s_wrong", "public")].result["score"] < 4
    scores = {row.student_id: row.grade.score for row in gradebook.latest("layer")}
    assert scores["s_right"] == 10 and scores["s_wrong"] < 10
    assert scores["s_loops"] == 0 and scores["s_floods"] == 0
    for hostile in ("loops", "floods"):
        messages = " ".join(test["message"] for test in
                            by[(f"s_{hostile}", "hidden")].result["tests"])
        assert messages, f"{hostile}: the student is told what happened"
        assert all(len(test["message"]) <= worker.MESSAGE_CHARS for test in
                   by[(f"s_{hostile}", "hidden")].result["tests"])
    loops = by[("s_loops", "hidden")].result["tests"]
    assert {test["kind"] for test in loops} <= {"time limit", "time budget exhausted"}
    assert "did not finish within 2 s" in " ".join(test["message"] for test in loops)
    floods = by[("s_floods", "public")].result["tests"]
    assert all("output limit exceeded" in test["message"] for test in floods)
    for row in rows.values():
        if row.kind == "hidden":
            assert row.record_id is not None
    assert (course / "graded" / "layer" / "s_right" / "results.json").is_file()


def test_a_worker_killed_mid_job_loses_it_to_another_and_the_record_is_written_once(
        course, book, db_url):
    _, sessions = book
    job_id = _enqueue(sessions, "uploads/right", "hidden", student="s_killed")
    doomed = worker.start_local_workers(db_url, course, 1, lease_s=LEASE_S)
    try:
        deadline = time.monotonic() + WAIT_S
        while _jobs(sessions)[job_id].state != "running":  # the worker holds it: kill it
            assert time.monotonic() < deadline, "the worker never took the job"
            time.sleep(0.1)
        time.sleep(0.3)  # mid-job: its sandbox alone takes longer to start
        for pid in reversed(process_tree(doomed.processes[0].pid)):
            os.kill(pid, signal.SIGKILL)
        doomed.processes[0].join(10)
    finally:
        doomed.stop(timeout=1)
    held = _jobs(sessions)[job_id]
    assert held.state == "running" and held.attempts == 1  # the dead worker's lease
    completed = worker.work(db_url, course, worker_id="rescuer", lease_s=LEASE_S, max_jobs=1)
    assert completed == 1
    row = _jobs(sessions)[job_id]
    assert (row.state, row.attempts, row.lease_owner) == ("done", 2, "rescuer")
    assert row.result["score"] == 10 and row.record_id is not None
    assert _records(sessions) == {"s_killed": 1}


class _InlineRay:
    """Just enough of Ray for `run_ray`: each task runs at once, here; results in order."""

    class exceptions:  # noqa: N801 - mirrors ray.exceptions
        class WorkerCrashedError(Exception):
            pass

    def __init__(self):
        self.results, self.batches = {}, []

    def is_initialized(self) -> bool:
        return True  # joined, not started here: never shut down

    def remote(self, **_options):
        def wrap(function):
            def remote(job):
                self.results[len(self.results)] = function(job)
                self.batches[-1].append(job.path.name)
                return len(self.results) - 1
            return type("Remote", (), {"remote": staticmethod(remote)})
        self.batches.append([])
        return wrap

    def wait(self, refs, num_returns, timeout):
        return refs[:num_returns], refs[num_returns:]

    def get(self, ref):
        return self.results[ref]


def test_the_ray_engine_grades_claimed_jobs_as_tasks_and_records_each_once(course, book,
                                                                         db_url, monkeypatch):
    gradebook, sessions = book
    fake = _InlineRay()
    monkeypatch.setitem(sys.modules, "ray", fake)
    for upload in ("right", "wrong"):
        _enqueue(sessions, f"uploads/{upload}", "hidden", student=f"s_{upload}")
        _enqueue(sessions, f"uploads/{upload}", "public", student=f"s_{upload}")
    assert worker.work(db_url, course, engine="ray", concurrency=3, lease_s=LEASE_S,
                       max_jobs=4) == 4
    # up to --concurrency jobs at a time; one task per upload in each round
    assert fake.batches == [["right", "wrong"], ["right"], ["wrong"]]
    rows = _jobs(sessions)
    assert {row.state for row in rows.values()} == {"done"}
    assert _records(sessions) == {"s_right": 1, "s_wrong": 1}
    scores = {row.student_id: row.grade.score for row in gradebook.latest("layer")}
    assert scores["s_right"] == 10 and scores["s_wrong"] < 10


def test_a_job_for_a_missing_upload_or_assignment_fails_with_a_reason(course, book, db_url):
    _, sessions = book
    missing = _enqueue(sessions, "uploads/nothing-here", "public")
    with sessions() as session:
        no_assignment = queue.enqueue(session, "uploads/right", "public",
                                      assignment_id="no_such", student_id="s1")
        session.commit()
    assert worker.work(db_url, course, lease_s=LEASE_S, max_jobs=2) == 1
    rows = _jobs(sessions)
    assert rows[no_assignment].state == "failed"
    assert "could not find the job's assignment" in rows[no_assignment].error
    assert rows[missing].state == "done"  # an unreadable upload is the student's 0, said why
    assert rows[missing].result["score"] == 0 and rows[missing].result["problems"]


def test_grader_worker_grades_the_queue_and_stops_cleanly_on_sigterm(course, tmp_path):
    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    gradebook = open_gradebook(url)
    sessions = sessionmaker(gradebook.engine, expire_on_commit=False)
    job_id = _enqueue(sessions, "uploads/right", "public", student="s_cli")
    command = [sys.executable, "-m", "grader", "worker", "--db", url, "--course", str(course),
               "--concurrency", "2", "--lease", "5"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + WAIT_S
        while _jobs(sessions)[job_id].state != "done":
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.3)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
        gradebook.close()
    assert process.returncode == 0, err
    assert "2 local worker(s)" in err and "stopping after the current jobs" in err
    assert _jobs(sessions)[job_id].result["score"] == 4


def test_worker_cli_refuses_bad_counts_and_leases(capsys, monkeypatch):
    monkeypatch.setenv("GRADER_LANG", "en")  # the English below; the lecture's course is zh_CN
    for argv in (["worker", "--concurrency", "0"], ["worker", "--lease", "nan"],
                 ["worker", "--lease", "-5"], ["worker", "--engine", "gpu"]):
        with pytest.raises(SystemExit) as stopped:
            cli.main(argv)
        assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "at least 1. Received: '0'" in err and "between 1 and 86400" in err


def test_worker_cli_on_an_unreachable_database_says_so(course, capsys):
    code = cli.main(["worker", "--course", str(course), "--db", "postgresql+psycopg://nobody@"
                     "127.0.0.1:1/none"])
    assert code == 2
    assert "cannot open the gradebook" in capsys.readouterr().err


def test_uploads_outside_the_course_are_refused_by_the_worker_too(course, tmp_path):
    outside = tmp_path / "elsewhere"
    shutil.copytree(course / "uploads" / "right", outside)
    link = course / "uploads" / "link"
    link.symlink_to(outside, target_is_directory=True)
    try:
        job = queue.Job(1, "uploads/link", "layer", "s1", "public", 0, 1, "w",
                        queue.now(), queue.now())
        with pytest.raises(ValueError, match="not inside the course folder"):
            worker.batch_job(load_course(course), job)
    finally:
        link.unlink()

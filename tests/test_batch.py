"""Parallel grading on both engines, with a grader worker killed mid-batch."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from grader.batch import Job, run_local, run_ray

FILES = Path(__file__).parent / "files" / "grading"
REPO = FILES / "repo"
TOML = REPO / "assignments" / "act" / "assignment.toml"
EXPECTED = {"wrong_relu": 7.0, "exits": 6.0, "train_at_top": 10.0, "syntax_error": 0.0}


@pytest.fixture
def jobs(tmp_path) -> list[Job]:
    klass = tmp_path / "class"
    for name in EXPECTED:
        shutil.copytree(FILES / "submissions" / name, klass / name)
    return [Job(TOML, REPO, klass / name) for name in sorted(EXPECTED)]


def _scores(graded) -> dict[str, float]:
    return {g.grade.student_id: g.grade.score for g in graded}


def test_local_pool_grades_every_submission_once(jobs):
    seen = []
    report = run_local(jobs, workers=2, on_result=seen.append)
    assert _scores(report.graded) == EXPECTED
    assert [g.grade.student_id for g in seen] == [g.grade.student_id for g in report.graded]
    assert not report.failed and not report.retried


def test_a_killed_worker_means_its_submission_is_graded_again(jobs, tmp_path, monkeypatch):
    marker = tmp_path / "killed-once"
    monkeypatch.setenv("NN_GRADER_TEST_KILL_ONCE", str(marker))
    report = run_local(jobs, workers=2, on_result=lambda graded: None)
    assert marker.exists()  # a worker really died
    assert report.retried  # and what it held went again
    assert _scores(report.graded) == EXPECTED  # each graded once, nothing lost
    assert len(report.graded) == len(EXPECTED) and not report.failed


def test_a_submission_whose_worker_always_dies_is_reported(jobs, monkeypatch):
    monkeypatch.setenv("NN_GRADER_TEST_KILL_ALWAYS", "1")
    report = run_local(jobs[:1], workers=1, on_result=lambda graded: None, retries=1)
    assert report.graded == []
    assert report.failed == [(jobs[0].path, "the grader's worker died 2 times while grading it")]


ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'nn-grader[ray]'")


@pytest.mark.slow
def test_ray_grades_every_submission_once_even_when_a_worker_dies(jobs, tmp_path, monkeypatch):
    marker = tmp_path / "killed-once"
    monkeypatch.setenv("NN_GRADER_TEST_KILL_ONCE", str(marker))
    seen = []
    report = run_ray(jobs, on_result=seen.append, num_cpus=1)
    assert marker.exists()
    assert _scores(report.graded) == EXPECTED
    assert len(seen) == len(EXPECTED) and not report.failed


def test_each_runtime_gets_its_share_of_the_cores(tmp_path, monkeypatch):
    from grader.config import load_assignment
    from grader.grading.run import THREADS_ENV, sandboxed_runtime, thread_env
    from grader.intake import intake

    assert thread_env(None) == {}
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "act.py").write_text(
        "import os\n\ndef relu(x):\n    return os.environ.get('OPENBLAS_NUM_THREADS', 'unset')\n")
    config = load_assignment(TOML, repo_root=REPO)
    submission = intake(tmp_path / "s", tmp_path, expected_files=["act.py"])
    monkeypatch.setenv(THREADS_ENV, "1")  # what a batch worker sets for its runtimes
    with sandboxed_runtime(config, submission) as runtime:
        assert runtime.student.act.relu(0) == "1"


@pytest.mark.parametrize("content", [None, b"these are my answers"], ids=["empty", "text"])
def test_a_submission_with_no_usable_file_scores_0_at_once_without_a_runtime(
        tmp_path, monkeypatch, content):
    """An empty folder, or a text file named .zip: no suite run, every test unreadable."""
    from grader import batch
    from grader.batch import grade_one
    from grader.results.records import KIND_UNREADABLE

    def no_suite(*args, **kwargs):
        raise AssertionError("the suite ran on a submission with no usable file")

    monkeypatch.setattr(batch, "run_suite", no_suite)
    if content is None:
        path = tmp_path / "2023001"
        path.mkdir()
    else:
        path = tmp_path / "2023001.zip"
        path.write_bytes(content)
    graded = grade_one(Job(TOML, REPO, path))
    tests = [t for part in graded.grade.parts for t in part.tests]
    assert graded.grade.student_id == "2023001" and graded.grade.score == 0
    assert tests and {t.kind for t in tests} == {KIND_UNREADABLE}
    [problem] = graded.grade.problems
    assert ("holds no files; hand in act.py" if content is None else "is damaged") in problem
    assert all(problem in t.message for t in tests)


class _FakeRay:
    """Just enough of Ray's API for `run_ray`'s loop: tasks finish in order, one per wait."""

    class exceptions:  # noqa: N801 - mirrors ray.exceptions
        class WorkerCrashedError(Exception):
            pass

    def __init__(self, results: dict[str, object], signal_after: int):
        self.results, self.signal_after = results, signal_after
        self.cancelled: list[tuple[str, bool]] = []
        self.waits = 0

    def is_initialized(self) -> bool:
        return True  # joined, not started here: never shut down

    def remote(self, **_options):
        return lambda function: type("Remote", (), {"remote": staticmethod(
            lambda job: job.path.name)})

    def wait(self, refs, num_returns, timeout):
        self.waits += 1
        if self.waits == self.signal_after:  # Ctrl-C while the batch waits
            import os
            import signal
            os.kill(os.getpid(), signal.SIGINT)
        return refs[:num_returns], refs[num_returns:]

    def get(self, ref):
        return self.results[ref]

    def cancel(self, ref, force):
        self.cancelled.append((ref, force))


def test_ctrl_c_in_a_ray_batch_cancels_the_rest_with_force_and_keeps_the_finished(
        monkeypatch, tmp_path):
    import sys

    from grader.batch import run_ray

    names = ["a", "b", "c", "d"]
    fake = _FakeRay({name: f"graded {name}" for name in names}, signal_after=2)
    monkeypatch.setitem(sys.modules, "ray", fake)
    kept = []
    report = run_ray([Job(TOML, REPO, tmp_path / name) for name in names],
                     on_result=kept.append)
    assert report.interrupted
    assert kept == ["graded a", "graded b"]  # the one being delivered as Ctrl-C came is kept
    assert fake.cancelled == [("c", True), ("d", True)]

"""`bench/serve_load.py` at a tiny scale: the real `grader serve` with 2 workers on SQLite,
3 students uploading within 3 seconds; the report is written and counts no lost or
duplicated submission. Plus the schedule and the refusal of impossible options.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _load():
    spec = importlib.util.spec_from_file_location("bench_serve_load", BENCH / "serve_load.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_serve_load"] = module
    spec.loader.exec_module(module)
    return module


serve_load = _load()


def test_a_tiny_run_writes_the_report_with_nothing_lost_or_duplicated(tmp_path):
    out = tmp_path / "serve.md"
    code = serve_load.main(["--students", "3", "--minutes", "0.05", "--out", str(out)])
    text = out.read_text(encoding="utf-8")
    assert code == 0, text
    assert "| lost submissions | 0 | 0 | met |" in text
    assert "| duplicated submissions | 0 | 0 | met |" in text
    assert "3 uploads, 3 attempts, 6 jobs of which 6 done, 3 gradebook records" in text
    # the uploads were really graded: the 3 correct ones passed their public tests
    assert "3 of 3 correct uploads passed every public test" in text
    assert "python bench/serve_load.py --students 3 --minutes 0.05" in text
    png = tmp_path / "serve-sqlite.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_schedule_puts_the_rush_share_in_the_last_minutes():
    moments = serve_load.schedule(100, minutes=10, rush_share=0.3, rush_minutes=2)
    rush = [at for at, in_rush in moments if in_rush]
    assert len(moments) == 100 and len(rush) == 30
    assert all(8 * 60 <= at <= 10 * 60 for at in rush)
    assert all(0 <= at <= 10 * 60 for at, _ in moments)
    assert [at for at, _ in moments] == sorted(at for at, _ in moments)


@pytest.mark.parametrize("argv", [["--students", "0"], ["--rush-share", "1.5"],
                                  ["--minutes", "2", "--rush-minutes", "3"]])
def test_impossible_options_are_refused_with_what_was_received(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        serve_load.main(argv)
    assert exit_.value.code == 2
    assert "Received:" in capsys.readouterr().err


def test_a_run_replaces_only_its_own_database_section(tmp_path):
    out = tmp_path / "serve.md"
    serve_load.write_report(out, "SQLite", "## SQLite: first\n")
    serve_load.write_report(out, "PostgreSQL", "## PostgreSQL: only\n")
    serve_load.write_report(out, "SQLite", "## SQLite: second\n")
    text = out.read_text(encoding="utf-8")
    assert text.startswith(serve_load.TITLE)
    assert "SQLite: second" in text and "SQLite: first" not in text
    assert "PostgreSQL: only" in text
    assert text.index("SQLite: second") < text.index("PostgreSQL: only")  # order kept


def test_the_database_check_counts_a_lost_and_a_duplicated_submission(tmp_path):
    from datetime import datetime, timezone

    from sqlalchemy.orm import Session

    from grader.gradebook import open_gradebook
    from grader.gradebook.models import AttemptModel, JobModel

    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    gradebook = open_gradebook(url, create=True)
    gradebook.add_students([("s001", "A"), ("s002", "B"), ("s003", "C")])
    now = datetime.now(timezone.utc)

    def job(kind: str, state: str, claims: int) -> JobModel:
        return JobModel(submission="uploads/x.py", assignment_id="layer", student_id="s001",
                        kind=kind, priority=0, state=state, attempts=claims,
                        submitted_at=now, created_at=now)

    with Session(gradebook.engine) as session:
        jobs = [job("public", "done", 1), job("hidden", "done", 2),  # claimed twice
                job("public", "done", 1), job("hidden", "failed", 1),  # ended without result
                job("public", "done", 1), job("hidden", "queued", 0)]  # still waiting
        session.add_all(jobs)
        session.flush()
        for student, (public, hidden) in [("s001", jobs[0:2]), ("s001", jobs[2:4]),
                                          ("s002", jobs[4:6])]:
            session.add(AttemptModel(assignment_id="layer", student_id=student, uploaded_at=now,
                                     file_name="layer.py", counted=True,
                                     public_job_id=public.id, hidden_job_id=hidden.id))
        session.commit()
    gradebook.close()
    uploads = [serve_load.Upload(student=s, buggy=False, at_s=0.0, rush=False)
               for s in ("s001", "s002", "s003")]  # s003's upload left no attempt
    checks = serve_load.check_database(url, uploads)
    assert checks["lost"] == 2  # s003 without an attempt, the failed hidden job
    assert checks["duplicated"] == 2  # s001's second attempt, the job claimed twice
    assert checks["jobs_waiting"] == 1

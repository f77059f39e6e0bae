"""The staff side of `grader serve` (`grader.service.staff`) through the real app.

A copy of the small `act` course (tests/files/grading/repo), its SQLite gradebook seeded with
two graded students and their uploads; users signed in through the sign-in form. Nothing is
graded here: regrades are checked as jobs in the queue, which the worker tests cover.
"""

from __future__ import annotations

import csv
import functools
import io
import re
import shutil
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from grader import scoring
from grader.config import load_assignment
from grader.gradebook.models import (
    AssignmentSettingModel,
    AttemptModel,
    AuditModel,
    JobModel,
    StudentModel,
    UserModel,
)
from grader.intake import Submission
from grader.results.records import TestOutcome
from grader.service import queue
from grader.service.app import create_app
from grader.service.auth import hash_secret

COURSE = Path(__file__).parent / "files" / "grading" / "repo"
HOSTILE_NAME = "<script>alert('x')</script>=HYPERLINK(\"http://evil\")"
PASSWORDS = {"prof": "prof-password-1", "ta1": "ta-password-1", "s1": "aaaa-bbbb-cccc",
             "s2": "dddd-eeee-ffff"}
CASES = ("test_relu_shape", "test_relu_values", "test_sigmoid_values[0]",
         "test_sigmoid_values[1]", "test_sigmoid_large")


def _grade(student: str, failing: tuple[str, ...] = ()):
    outcomes = [TestOutcome(case.split("[")[0], case, "failed" if case in failing else "passed",
                            0.0 if case in failing else 1.0,
                            f"`{case}` values differ" if case in failing else "")
                for case in CASES]
    return scoring.score(CONFIG.parts, outcomes, student_id=student, assignment="act",
                         execution_time_s=0.5)


CONFIG = load_assignment(COURSE / "assignments" / "act" / "assignment.toml")


@pytest.fixture()
def app(tmp_path):
    return seeded_app(tmp_path)


def seeded_app(tmp_path: Path, db_url: str | None = None):
    """The app on a copy of the act course: s1 (a hostile name) and s2 graded, s3 on the
    roster only; users prof (instructor), ta1 (TA), s1 and s2; s1 uploaded twice, s2 once
    plus one refused upload. `db_url`: another gradebook (PostgreSQL)."""
    root = tmp_path / "course"
    shutil.copytree(COURSE, root)
    app = create_app(root, db_url)  # default: the course's SQLite gradebook
    gradebook = app.state.gradebook
    config = load_assignment(root / "assignments" / "act" / "assignment.toml", repo_root=root)
    gradebook.add_students([("s1", HOSTILE_NAME), ("s2", "Bo"), ("s3", "No Upload")])
    uploaded = datetime.now(timezone.utc) - timedelta(hours=1)
    for student, failing in (("s1", ("test_relu_values",)), ("s2", ())):
        submission = Submission(student_id=student, source=root / "uploads" / student,
                                workspace=Path("/nonexistent"), files={"act.py": student * 8},
                                problems=(), submitted_at=uploaded, expected=("act.py",))
        gradebook.record(config, submission, _grade(student, failing))
    with app.state.sessions.begin() as session:
        for name, role in (("prof", "instructor"), ("ta1", "ta")):
            session.add(UserModel(name=name, role=role, password_hash=_hashed(name),
                                  created_at=uploaded))
        for name in ("s1", "s2"):
            session.add(UserModel(name=name, role="student", student_id=name,
                                  code_hash=_hashed(name), created_at=uploaded))
        for student in ("s1", "s1", "s2"):  # s1 uploaded twice: the latest is regraded
            session.add(AttemptModel(assignment_id="act", student_id=student,
                                     uploaded_at=uploaded, file_name="act.py", size=10,
                                     stored=f"uploads/act/{student}/act.py", counted=True))
        session.add(AttemptModel(assignment_id="act", student_id="s2", uploaded_at=uploaded,
                                 file_name="notes.txt", size=3, stored=None,
                                 refused="not a .py, .ipynb or .zip"))
    return app


@functools.cache
def _hashed(name: str) -> str:
    """The argon2 hash of a user's secret, made once per run (hashing is slow on purpose)."""
    return hash_secret(PASSWORDS[name])


def _token(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "no CSRF token on the page"
    return found.group(1)


def signed_in(app, name: str) -> TestClient:
    client = TestClient(app)
    form = client.get("/login")
    reply = client.post("/login", data={"name": name, "secret": PASSWORDS[name],
                                        "csrf_token": _token(form.text)},
                        follow_redirects=False)
    assert reply.status_code == 303, reply.text
    return client


def post(client: TestClient, url: str, data: dict | None = None, *, page: str = "/staff/act"):
    token = _token(client.get(page).text)
    return client.post(url, data={**(data or {}), "csrf_token": token}, follow_redirects=False)


def audit_rows(app, action: str) -> list[AuditModel]:
    with app.state.sessions() as session:
        return list(session.scalars(select(AuditModel).where(AuditModel.action == action)))


def jobs(app) -> list[JobModel]:
    with app.state.sessions() as session:
        return list(session.scalars(select(JobModel).order_by(JobModel.id)))


STAFF_GETS = ["/staff", "/staff/act", "/staff/act/queue", "/staff/act/summary",
              "/staff/act/students/s1", "/staff/act/students/s1/report",
              "/staff/act/export.csv", "/staff/act/export-gradescope.zip", "/staff/audit"]
POSTS = ["/staff/act/regrade", "/staff/act/release", "/staff/act/students/s1/regrade",
         "/staff/act/students/s1/override", "/staff/act/students/s1/extension"]


def test_a_student_reaches_no_staff_page_and_no_staff_action(app):
    student = signed_in(app, "s1")
    token = _token(student.get("/assignments").text)
    for url in STAFF_GETS:
        reply = student.get(url)
        assert reply.status_code == 403, url
        assert "This page is for" in reply.text and "s1 (student)" in reply.text
    for url in POSTS:
        reply = student.post(url, data={"csrf_token": token, "action": "now", "points": "10",
                                        "reason": "mine", "days": "30"})
        assert reply.status_code == 403, url
    assert jobs(app) == [] and audit_rows(app, "override") == []
    assert app.state.gradebook.overrides("act") == {}


def test_nobody_signed_in_is_sent_to_sign_in(app):
    client = TestClient(app)
    for url in STAFF_GETS:
        for accept in ("text/html", "text/csv", "*/*"):
            reply = client.get(url, follow_redirects=False, headers={"Accept": accept})
            assert reply.status_code in (303, 401), (url, accept)
            assert reply.headers.get("location", "/login") == "/login"
            assert "act" not in reply.text  # nothing of the assignment's data
    for url in POSTS:
        reply = client.post(url, data={"action": "now", "points": "1", "reason": "r"},
                            follow_redirects=False)
        assert reply.status_code in (401, 403), url
    assert jobs(app) == [] and audit_rows(app, "release") == []


def test_a_ta_reads_everything_but_may_not_release_override_extend_or_regrade_all(app):
    ta = signed_in(app, "ta1")
    for url in STAFF_GETS[:-1]:
        assert ta.get(url).status_code == 200, url
    assert ta.get("/staff/audit").status_code == 403
    page = ta.get("/staff/act").text
    assert "Release now" not in page and "are the instructor's" in page
    for url in ("/staff/act/regrade", "/staff/act/release", "/staff/act/students/s1/override",
                "/staff/act/students/s1/extension"):
        reply = post(ta, url, {"action": "now", "points": "10", "reason": "r", "days": "3"})
        assert reply.status_code == 403, url
    with app.state.sessions() as session:
        assert session.get(AssignmentSettingModel, "act") is None
    assert app.state.gradebook.overrides("act") == {} and jobs(app) == []
    reply = post(ta, "/staff/act/students/s2/regrade", page="/staff/act/students/s2")
    assert reply.status_code == 303  # a TA may regrade one student
    [job] = jobs(app)
    assert (job.student_id, job.kind, job.state) == ("s2", "hidden", "queued")
    [row] = audit_rows(app, "regrade")
    assert row.actor == "ta1" and row.detail == {"assignment": "act", "student": "s2",
                                                 "queued": 1}


def test_regrade_all_queues_each_students_latest_upload_once(app):
    prof = signed_in(app, "prof")
    reply = post(prof, "/staff/act/regrade")
    assert reply.status_code == 303 and reply.headers["location"] == "/staff/act"
    queued = jobs(app)
    assert sorted((j.student_id, j.kind, j.priority) for j in queued) == [
        ("s1", "hidden", -1), ("s2", "hidden", -1)]
    with app.state.sessions() as session:
        latest_s1 = max(session.scalars(select(AttemptModel.id).where(
            AttemptModel.student_id == "s1")))
        attempt = session.get(AttemptModel, latest_s1)
        assert attempt.hidden_job_id in {j.id for j in queued}  # the newest upload
    fragment = prof.get("/staff/act/queue")  # polled meanwhile: leaves the message be
    assert fragment.status_code == 200 and "hidden" in fragment.text
    assert "2 upload(s) queued for hidden grading" in prof.get("/staff/act").text
    post(prof, "/staff/act/regrade")  # again while both still wait: no second job
    assert len(jobs(app)) == 2
    [first, second] = audit_rows(app, "regrade all")
    assert first.actor == "prof" and first.detail["queued"] == 2
    assert second.detail == {"assignment": "act", "queued": 0, "already queued": 2}
    with app.state.sessions() as session:  # once the jobs ran, a regrade queues again
        for job in session.scalars(select(JobModel)):
            job.state = queue.DONE
        session.commit()
    post(prof, "/staff/act/regrade")
    assert len(jobs(app)) == 4


def test_grader_errors_come_first_on_the_dashboard(app):
    outcomes = [TestOutcome(case.split("[")[0], case, "passed", 1.0) for case in CASES[:-1]]
    outcomes.append(TestOutcome("test_sigmoid_large", "test_sigmoid_large", "error", 0.0,
                                "KeyError: '<b>suite bug</b>'", kind="grader error"))
    grade = scoring.score(CONFIG.parts, outcomes, student_id="s3", assignment="act",
                          execution_time_s=0.1)
    submission = Submission(student_id="s3", source=Path("/class/s3"),
                            workspace=Path("/nonexistent"), files={"act.py": "s3" * 8},
                            problems=(), submitted_at=datetime.now(timezone.utc),
                            expected=("act.py",))
    app.state.gradebook.record(CONFIG, submission, grade)
    page = signed_in(app, "ta1").get("/staff/act").text
    errors = page.index("Grader errors: resolve these first")
    assert errors < page.index("<h2>Queue</h2>") < page.index("Failures by reason")
    section = page[errors:page.index("<h2>Queue</h2>")]
    assert "s3" in section and "&lt;b&gt;suite bug&lt;/b&gt;" in section
    assert "<b>suite bug" not in page


def test_an_upload_that_cannot_be_queued_does_not_stop_the_others(app):
    with app.state.sessions.begin() as session:  # a stored path leaving the course
        session.add(AttemptModel(assignment_id="act", student_id="s3",
                                 uploaded_at=datetime.now(timezone.utc), file_name="x.py",
                                 size=1, stored="../../etc/passwd", counted=True))
    prof = signed_in(app, "prof")
    post(prof, "/staff/act/regrade")
    assert sorted(job.student_id for job in jobs(app)) == ["s1", "s2"]
    shown = prof.get("/staff/act").text
    assert "2 upload(s) queued" in shown and "Not queued (1): s3:" in shown
    [row] = audit_rows(app, "regrade all")
    assert row.detail["queued"] == 2 and row.detail["not queued"][0].startswith("s3: ")


def test_release_by_hand_makes_the_hidden_report_visible_to_the_student(app):
    with app.state.sessions.begin() as session:  # s1's upload graded by a hidden job
        record = app.state.gradebook.latest("act")[0].submission_id
        job = JobModel(submission="uploads/act/s1/act.py", assignment_id="act", student_id="s1",
                       kind="hidden", state="done", priority=0, attempts=1,
                       submitted_at=datetime.now(timezone.utc),
                       created_at=datetime.now(timezone.utc), record_id=record,
                       result={"score": 6.0, "max_score": 10.0})
        session.add(job)
        session.flush()
        attempt = session.scalars(select(AttemptModel).where(
            AttemptModel.student_id == "s1")).first()
        attempt.hidden_job_id = job.id
        attempt_id = attempt.id
    student = signed_in(app, "s1")
    before = student.get(f"/attempts/{attempt_id}/report")
    assert before.status_code == 403 and "not released yet" in before.text
    prof = signed_in(app, "prof")
    reply = post(prof, "/staff/act/release", {"action": "now"})
    assert reply.status_code == 303
    assert "Grades released on" in prof.get("/staff/act").text
    after = student.get(f"/attempts/{attempt_id}/report")
    assert after.status_code == 200 and "sigmoid" in after.text
    [row] = audit_rows(app, "release")
    assert row.actor == "prof" and row.detail["action"] == "now"
    with app.state.sessions() as session:  # releasing keeps the default attempt limit
        settings = session.get(AssignmentSettingModel, "act")
        assert settings.released_by == "prof" and settings.attempts_per_hour is not None
    post(prof, "/staff/act/release", {"action": "withhold"})
    assert student.get(f"/attempts/{attempt_id}/report").status_code == 403
    refused = post(prof, "/staff/act/release", {"action": "<b>soon</b>"})
    assert refused.status_code == 400 and "<b>soon" not in refused.text
    assert "Unknown release action" in refused.text


def test_override_is_recorded_audited_and_reaches_the_export(app):
    prof = signed_in(app, "prof")
    page = "/staff/act/students/s1"
    reply = post(prof, page + "/override", {"points": "9.5", "reason": "regrade of part 2"},
                 page=page)
    assert reply.status_code == 303 and reply.headers["location"] == page
    override = app.state.gradebook.overrides("act")["s1"]
    assert (override.points, override.reason, override.set_by) == (9.5, "regrade of part 2",
                                                                   "prof")
    assert "Override saved: s1 gets 9.5 points" in prof.get(page).text
    [row] = audit_rows(app, "override")
    assert row.actor == "prof" and row.detail["points"] == 9.5
    exported = prof.get("/staff/act/export.csv")
    table = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    [s1] = [r for r in table if r["student_id"] == "s1"]
    assert (s1["score"], s1["final_score"]) == ("7", "9.5")
    post(prof, page + "/override", {"clear": "1"}, page=page)
    assert app.state.gradebook.overrides("act") == {}


BAD_OVERRIDES = [("11", "too many", "between 0 and 10"), ("nan", "x", "between 0 and 10"),
                 ("-1", "x", "between 0 and 10"), ("1e308", "x", "between 0 and 10"),
                 ("ten", "x", "points must be a number"), ("5", "   ", "needs a reason")]


def test_a_bad_override_is_refused_with_a_sentence_and_not_saved(app):
    prof = signed_in(app, "prof")
    page = "/staff/act/students/s1"
    for points, reason, expected in BAD_OVERRIDES:
        post(prof, page + "/override", {"points": points, "reason": reason}, page=page)
        assert app.state.gradebook.overrides("act") == {}, points
        assert audit_rows(app, "override") == []
        shown = prof.get(page).text
        assert "The override was not saved" in shown and expected in shown, points


def test_extension_is_recorded_audited_and_bounded(app):
    prof = signed_in(app, "prof")
    page = "/staff/act/students/s2"
    post(prof, page + "/extension", {"days": "3", "reason": "medical"}, page=page)
    [granted] = app.state.gradebook.extensions("act", "s2")
    assert (granted.days, granted.reason, granted.granted_by) == (3.0, "medical", "prof")
    assert audit_rows(app, "extension")[0].detail == {"assignment": "act", "student": "s2",
                                                      "days": 3.0, "reason": "medical"}
    assert "Extension saved: s2 has 3 more day(s)" in prof.get(page).text
    post(prof, page + "/extension", {"days": "100000", "reason": "typo"}, page=page)
    assert len(app.state.gradebook.extensions("act", "s2")) == 1
    assert "The extension was not saved" in prof.get(page).text


def test_exports_download_csv_and_gradescope_zip_and_are_audited(app):
    ta = signed_in(app, "ta1")
    reply = ta.get("/staff/act/export.csv")
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/csv")
    assert 'filename="act-grades.csv"' in reply.headers["content-disposition"]
    text = reply.content.decode("utf-8-sig")
    assert "s1" in text and "s2" in text and "s3" in text  # s3: missing, still a row
    assert "\n=HYPERLINK" not in text and ",=HYPERLINK" not in text  # formula neutralised
    canvas = ta.get("/staff/act/export.csv?preset=canvas")
    assert canvas.status_code == 200
    bad = ta.get("/staff/act/export.csv?preset=../../etc")
    assert bad.status_code == 400 and "Unknown preset" in bad.text
    bundle = ta.get("/staff/act/export-gradescope.zip")
    assert bundle.headers["content-type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(bundle.content)).namelist()
    assert sorted(n for n in names if n.endswith("results.json")) == [
        "s1/results.json", "s2/results.json"]
    formats = sorted(row.detail["format"] for row in audit_rows(app, "export"))
    assert formats == ["csv", "csv", "gradescope"]


def test_pages_escape_student_text_and_show_grader_data(app):
    prof = signed_in(app, "prof")
    dashboard = prof.get("/staff/act")
    assert dashboard.status_code == 200
    assert "<script>alert" not in dashboard.text and "&lt;script&gt;alert" in dashboard.text
    assert "Failures by reason" in dashboard.text and 'id="queue"' in dashboard.text
    assert "script-src 'self'" in dashboard.headers["content-security-policy"]
    student = prof.get("/staff/act/students/s1")
    assert "<script>alert" not in student.text and "current" in student.text
    report = prof.get("/staff/act/students/s1/report")
    assert report.status_code == 200 and "<script>alert" not in report.text
    assert "'sha256-" in report.headers["content-security-policy"]  # its inline CSS, by hash
    summary = prof.get("/staff/act/summary")
    assert summary.status_code == 200 and "<script>alert" not in summary.text


HOSTILE_URLS = [
    "/staff/..%2F..%2Fetc", "/staff/act%00", "/staff/nope", "/staff/act/students/..%2Fs1",
    "/staff/act/students/s9", "/staff/act/students/%3Cscript%3E",
    "/staff/act/students/s3/report", "/staff/act/students/" + "x" * 5000,
    "/staff/act/students/s1%2F..%2Fs2/report"]


def test_guessed_and_hostile_urls_get_a_404_sentence(app):
    prof = signed_in(app, "prof")
    for url in HOSTILE_URLS:
        reply = prof.get(url)
        assert reply.status_code == 404, url
        assert "<script>" not in reply.text
        assert re.search(r"no assignment|no student|no graded submission|no such page",
                         reply.text), url


def test_a_staff_post_without_the_csrf_token_is_refused(app):
    prof = signed_in(app, "prof")
    reply = prof.post("/staff/act/release", data={"action": "now"}, follow_redirects=False)
    assert reply.status_code == 403 and "security token" in reply.text
    reply = prof.post("/staff/act/regrade", data={"csrf_token": "forged" * 8},
                      follow_redirects=False)
    assert reply.status_code == 403
    with app.state.sessions() as session:
        assert session.get(AssignmentSettingModel, "act") is None
    assert jobs(app) == []


def test_the_audit_log_lists_actions_for_instructors(app):
    prof = signed_in(app, "prof")
    post(prof, "/staff/act/release", {"action": "due"})
    page = prof.get("/staff/audit").text
    assert "release" in page and "prof" in page and "sign-in" in page


def test_a_student_row_in_the_gradebook_is_not_a_staff_account(app):
    with app.state.sessions() as session:
        assert session.get(StudentModel, "s3") is not None
    client = TestClient(app)
    form = client.get("/login")
    reply = client.post("/login", data={"name": "s3", "secret": "x",
                                        "csrf_token": _token(form.text)})
    assert reply.status_code == 401
    refused = client.get("/staff", follow_redirects=False)
    assert refused.status_code in (303, 401) and refused.headers.get("location",
                                                                     "/login") == "/login"


def test_the_staff_actions_on_both_databases(tmp_path, db_url):
    """Regrade all, release, override and export on SQLite and on the real PostgreSQL."""
    app = seeded_app(tmp_path, db_url)
    prof = signed_in(app, "prof")
    post(prof, "/staff/act/regrade")
    post(prof, "/staff/act/regrade")  # still waiting: not queued twice
    assert sorted(job.student_id for job in jobs(app)) == ["s1", "s2"]
    post(prof, "/staff/act/release", {"action": "now"})
    assert "Grades released on" in prof.get("/staff/act").text
    page = "/staff/act/students/s2"
    post(prof, page + "/override", {"points": "4", "reason": "plagiarism hearing"}, page=page)
    exported = prof.get("/staff/act/export.csv").content.decode("utf-8-sig")
    [s2] = [row for row in csv.DictReader(io.StringIO(exported)) if row["student_id"] == "s2"]
    assert (s2["score"], s2["final_score"]) == ("10", "4")
    assert [row.action for row in audit_rows(app, "override")] == ["override"]

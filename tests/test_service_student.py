"""The student's side of `grader serve` (`grader.service.student`, `auth`, `security`)
through the real app and FastAPI's TestClient.

A course made by `grader init` + `grader new layer` (a tiny numpy assignment: its public
and hidden suites run in about a second), a fresh SQLite gradebook per test, students
signed in with access codes from `auth.issue_codes`. The one flow that grades runs the
queue's own worker (`grader.service.worker.work`) in this process; every other test
checks what the service stores and shows without grading.
"""

from __future__ import annotations

import io
import re
import shutil
import stat
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from grader import scaffold
from grader.course import load_course
from grader.gradebook.models import (
    AssignmentSettingModel,
    AttemptModel,
    AuditModel,
    JobModel,
    UserModel,
)
from grader.service import security
from grader.service.app import create_app
from grader.service.auth import add_staff, issue_codes

HOSTILE = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def course_template(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("course") / "c"
    original = scaffold.lecture_course
    scaffold.lecture_course = lambda: None  # an empty course, not a copy of the lecture
    try:
        scaffold.init_course(root)
    finally:
        scaffold.lecture_course = original
    scaffold.new_assignment("layer", course=load_course(root))
    return root


@pytest.fixture()
def service(course_template, tmp_path):
    """(app, access codes): students s1 (a hostile display name) and s2."""
    return make_service(course_template, tmp_path)


def make_service(course_template: Path, tmp_path: Path, db_url: str | None = None):
    root = tmp_path / "c"
    shutil.copytree(course_template, root)
    app = create_app(root, db_url, upload_limit=64 * 1024)
    app.state.gradebook.add_students([("s1", HOSTILE), ("s2", "Bo")])
    with app.state.sessions() as session:
        codes = dict(issue_codes(session, ["s1", "s2"]))
        session.commit()
    return app, codes


def token(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "no CSRF token on the page"
    return found.group(1)


def sign_in(app, name: str, secret: str) -> tuple[TestClient, str]:
    """A client signed in as `name`, and its CSRF token."""
    client = TestClient(app)
    reply = client.post("/login", data={"name": name, "secret": secret,
                                        "csrf_token": token(client.get("/login").text)},
                        follow_redirects=True)
    assert reply.status_code == 200, reply.text
    return client, token(reply.text)


def reference(app) -> bytes:
    return (app.state.course.root / "reference" / "layer.py").read_bytes()


def upload(client: TestClient, csrf: str, name: str, data: bytes, assignment: str = "layer"):
    return client.post(f"/assignments/{assignment}/upload", data={"csrf_token": csrf},
                       files={"file": (name, data)}, follow_redirects=False)


def attempts(app, student: str) -> list[AttemptModel]:
    with app.state.sessions() as session:
        return list(session.scalars(select(AttemptModel).where(
            AttemptModel.student_id == student).order_by(AttemptModel.id)))


def release_now(app) -> None:
    with app.state.sessions() as session:
        session.merge(AssignmentSettingModel(
            assignment_id="layer", release_mode="manual",
            released_at=datetime.now(timezone.utc) - timedelta(seconds=1), released_by="test",
            attempts_per_hour=10))
        session.commit()


def test_a_student_uploads_sees_the_public_result_and_the_report_only_after_release(service):
    from grader.service.worker import work

    app, codes = service
    client, csrf = sign_in(app, "s1", codes["s1"])
    listing = client.get("/assignments").text
    assert "/assignments/layer" in listing and "CST" in listing  # due in Asia/Shanghai
    reply = upload(client, csrf, "my layer.py", reference(app))
    assert reply.status_code == 303, reply.text
    page = client.get(reply.headers["location"])
    assert "Queued" in page.text and 'data-poll="1"' in page.text
    attempt = attempts(app, "s1")[0]
    assert attempt.counted and attempt.stored.startswith("uploads/layer/")
    assert "my layer" not in attempt.stored  # the service names the stored file

    assert work(app.state.db_url, app.state.course.root, max_jobs=2) == 2
    status = client.get(f"/attempts/{attempt.id}/status").text
    assert "Public tests: <strong>" in status and "passed" in status
    assert "appear at the due date" in status
    refused = client.get(f"/attempts/{attempt.id}/report")
    assert refused.status_code == 403 and "not released yet" in refused.text

    release_now(app)
    status = client.get(f"/attempts/{attempt.id}/status").text
    assert "Read the full report" in status and 'data-final="1"' in status
    report = client.get(f"/attempts/{attempt.id}/report")
    assert report.status_code == 200
    assert HOSTILE not in report.text and "&lt;script&gt;" in report.text
    policy = report.headers["content-security-policy"]
    assert "'sha256-" in policy and "unsafe-inline" not in policy


def test_a_student_sees_only_their_own_attempts(service):
    app, codes = service
    one, csrf = sign_in(app, "s1", codes["s1"])
    assert upload(one, csrf, "only-s1.py", reference(app)).status_code == 303
    mine = attempts(app, "s1")[0].id
    two, _ = sign_in(app, "s2", codes["s2"])
    for path in (f"/attempts/{mine}", f"/attempts/{mine}/status", f"/attempts/{mine}/report",
                 f"/attempts/{mine + 1}", "/attempts/0", "/attempts/-1"):
        reply = two.get(path)
        assert reply.status_code == 404, path
        assert "only-s1" not in reply.text
    assert "only-s1" not in two.get("/assignments/layer").text
    assert two.get("/attempts/abc").status_code == 400  # not an id at all
    for path in ("/assignments/..%2f..%2fetc", "/assignments/missing", "/../../etc/passwd",
                 "/static/../app.py", "/no/such/page"):
        reply = two.get(path)
        assert reply.status_code == 404 and reply.headers["content-type"].startswith(
            "text/html"), path
        assert "not yours to see" in reply.text or "no such assignment" in reply.text
    release_now(app)
    assert two.get(f"/attempts/{mine}/report").status_code == 404
    anonymous = TestClient(app)
    assert anonymous.get(f"/attempts/{mine}", follow_redirects=False).headers[
        "location"] == "/login"


def test_staff_and_students_are_kept_to_their_pages(service):
    app, codes = service
    with app.state.sessions() as session:
        add_staff(session, "prof", "instructor", "a-long-password")
        session.commit()
    staff, _ = sign_in(app, "prof", "a-long-password")
    assert staff.get("/assignments").status_code == 403  # a student's page


def test_every_post_needs_the_sessions_csrf_token(service):
    app, codes = service
    client = TestClient(app)
    client.get("/login")
    for sent in ({}, {"csrf_token": "forged" * 8}):
        reply = client.post("/login", data={"name": "s1", "secret": codes["s1"], **sent})
        assert reply.status_code == 403 and "security token" in reply.text
    client, csrf = sign_in(app, "s1", codes["s1"])
    for sent in ({}, {"csrf_token": csrf[:-2] + "xx"}):
        reply = client.post("/assignments/layer/upload", data=sent,
                            files={"file": ("layer.py", reference(app))})
        assert reply.status_code == 403
    assert attempts(app, "s1") == []
    other = TestClient(app)  # another session's token does not do either
    other.get("/login")
    assert other.post("/logout", data={"csrf_token": csrf}).status_code == 403


def test_sign_in_is_rate_limited_and_failures_say_what_to_do(service):
    app, codes = service
    client = TestClient(app)
    csrf = token(client.get("/login").text)
    for _ in range(security.MAX_FAILURES_PER_NAME):
        reply = client.post("/login", data={"name": "s1", "secret": "wrong-code",
                                            "csrf_token": csrf})
        assert reply.status_code == 401 and "do not match" in reply.text
    reply = client.post("/login", data={"name": "s1", "secret": codes["s1"],
                                        "csrf_token": csrf})
    assert reply.status_code == 429 and "Too many failed sign-ins" in reply.text
    assert sign_in(app, "s2", codes["s2"])  # another account is not locked out
    unknown = client.post("/login", data={"name": "nobody", "secret": "x", "csrf_token": csrf})
    assert unknown.status_code == 401


def test_a_new_access_code_ends_the_old_code_and_its_sessions(service):
    app, codes = service
    client, _ = sign_in(app, "s1", codes["s1"])
    with app.state.sessions() as session:
        fresh = dict(issue_codes(session, ["s1"]))["s1"]
        session.commit()
        stored = session.scalar(select(UserModel).where(UserModel.name == "s1"))
        assert fresh not in (stored.code_hash or "") and stored.code_hash.startswith("$argon2")
    assert client.get("/assignments", follow_redirects=False).status_code == 303
    refused = TestClient(app)
    reply = refused.post("/login", data={"name": "s1", "secret": codes["s1"],
                                         "csrf_token": token(refused.get("/login").text)})
    assert reply.status_code == 401
    assert sign_in(app, "s1", fresh.upper().replace("-", " - "))  # as read off a sheet


def _bomb() -> bytes:
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("layer.py", b"x = 1\n" + b" " * (40 * 1024 * 1024))
    return data.getvalue()


def _zip(entries: dict[str, bytes]) -> bytes:
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    return data.getvalue()


@pytest.mark.parametrize(("name", "data", "status", "says"), [
    ("layer.exe", b"MZ", 415, "is not a .py, .ipynb, .zip file"),
    ("layer.py", b"x" * (65 * 1024), 413, "larger than"),
    ("layer.zip", b"not a zip", 415, "not a zip archive"),
    ("layer.py", b"\xff\xfe bad", 415, "not UTF-8"),
    ("layer.zip", _bomb(), 422, "cannot be graded"),
    ("layer.zip", _zip({"../../../evil.py": b"x = 1\n"}), 422, "cannot be graded"),
    ("layer.py", b"def relu(x:\n    return x\n", 422, "syntax error on line 1"),
    ("notes.zip", _zip({"notes.txt": b"hello"}), 422, "layer.py is missing"),
    ("layer.ipynb", b"{not json", 422, "cannot be graded"),
])
def test_uploads_that_cannot_be_graded_say_why_and_cost_no_attempt(service, name, data,
                                                                   status, says):
    app, codes = service
    client, csrf = sign_in(app, "s1", codes["s1"])
    reply = upload(client, csrf, name, data)
    assert reply.status_code == status, reply.text
    assert says in reply.text
    assert "10 graded attempts left" in reply.text
    (row,) = attempts(app, "s1")
    assert not row.counted and row.stored is None and row.public_job_id is None
    with app.state.sessions() as session:
        assert session.scalars(select(JobModel)).all() == []
    uploads = app.state.course.root / "uploads"
    assert not uploads.exists() or not any(p.name.startswith(".staging")
                                           for p in uploads.iterdir())


def test_a_request_far_over_the_limit_is_refused_before_it_is_read(service):
    app, codes = service
    client, csrf = sign_in(app, "s1", codes["s1"])
    reply = upload(client, csrf, "layer.py", b"#" * (1024 * 1024))
    assert reply.status_code == 413 and "larger than" in reply.text
    chunked = client.post("/assignments/layer/upload", content=iter([b"x" * 65536] * 4),
                          headers={"content-type": "multipart/form-data; boundary=b"})
    assert chunked.status_code == 413
    assert attempts(app, "s1") == []


def test_hostile_file_names_are_shown_escaped_and_never_used_on_disk(service):
    app, codes = service
    client, csrf = sign_in(app, "s1", codes["s1"])
    name = f"../../{HOSTILE}\x1b[31m.py"
    assert upload(client, csrf, name, reference(app)).status_code == 303
    (row,) = attempts(app, "s1")
    assert "script" not in row.stored and ".." not in row.stored and "\x1b" not in row.file_name
    page = client.get("/assignments/layer").text
    assert HOSTILE not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    stored = app.state.course.root / row.stored
    assert stored.is_file() and stored.read_bytes() == reference(app)
    assert stored.resolve().is_relative_to((app.state.course.root / "uploads").resolve())


def test_the_attempt_limit_refuses_an_upload_until_the_hour_passes(service):
    app, codes = service
    with app.state.sessions() as session:
        session.add(AssignmentSettingModel(assignment_id="layer", release_mode="due",
                                           attempts_per_hour=1))
        session.commit()
    client, csrf = sign_in(app, "s1", codes["s1"])
    assert upload(client, csrf, "layer.py", reference(app)).status_code == 303
    reply = upload(client, csrf, "layer.py", reference(app))
    assert reply.status_code == 429 and "the next one frees up at" in reply.text
    assert [row.counted for row in attempts(app, "s1")] == [True, False]
    other, csrf2 = sign_in(app, "s2", codes["s2"])  # a limit per student
    assert upload(other, csrf2, "layer.py", reference(app)).status_code == 303


def test_pages_carry_the_security_headers_and_a_signed_http_only_cookie(service):
    app, codes = service
    client = TestClient(app)
    reply = client.get("/login")
    policy = reply.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy and "<script>" not in reply.text.replace(
        '<script src="/static/status.js" defer></script>', "")
    assert reply.headers["x-frame-options"] == "DENY"
    assert reply.headers["x-content-type-options"] == "nosniff"
    assert reply.headers["referrer-policy"] == "same-origin"
    signed = client.post("/login", data={"name": "s1", "secret": codes["s1"],
                                         "csrf_token": token(reply.text)},
                         follow_redirects=False)
    cookie = signed.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert client.get("/static/status.js").headers["content-security-policy"]
    secret = app.state.course.root / security.SECRET_FILE
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    with app.state.sessions() as session:
        actions = [row.action for row in session.scalars(select(AuditModel))]
    assert "sign-in" in actions


def test_cli_adds_staff_and_issues_codes_that_sign_in(service, tmp_path, monkeypatch,
                                                      capsys):
    from grader import cli

    app, _ = service
    root = app.state.course.root
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert cli.main(["--course", str(root), "user", "add", "prof", "--role", "instructor",
                     "--password-stdin"]) == 2
    assert "密码至少需要 10 个字符" in capsys.readouterr().err  # the course speaks zh_CN
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-password\n"))
    assert cli.main(["--course", str(root), "user", "add", "prof", "--role", "instructor",
                     "--password-stdin"]) == 0
    out = tmp_path / "codes.csv"
    assert cli.main(["--course", str(root), "roster", "--issue-codes", "--out",
                     str(out)]) == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    rows = out.read_text(encoding="utf-8-sig").splitlines()
    assert rows[0] == "id,name,access_code" and len(rows) == 3
    code = rows[2].split(",")[-1]
    assert sign_in(app, "s2", code) and sign_in(app, "prof", "a-long-password")
    stored = [root / name for name in ("gradebook.db", "gradebook.db-wal")]  # WAL mode
    assert stored[0].is_file()
    assert not any(code in path.read_bytes().decode("latin-1")
                   for path in stored if path.is_file())


def test_uploads_limits_and_isolation_hold_on_sqlite_and_postgresql(course_template, tmp_path,
                                                                    db_url):
    app, codes = make_service(course_template, tmp_path, db_url)
    one, csrf = sign_in(app, "s1", codes["s1"])
    assert upload(one, csrf, "layer.py", reference(app)).status_code == 303
    assert upload(one, csrf, "layer.py", b"def f(:\n").status_code == 422
    counted = [row.counted for row in attempts(app, "s1")]
    assert counted == [True, False]
    with app.state.sessions() as session:
        jobs = session.scalars(select(JobModel).order_by(JobModel.id)).all()
        assert [(job.kind, job.student_id) for job in jobs] == [("public", "s1"),
                                                                ("hidden", "s1")]
    two, _ = sign_in(app, "s2", codes["s2"])
    assert two.get(f"/attempts/{attempts(app, 's1')[0].id}").status_code == 404
    client = TestClient(app)
    csrf = token(client.get("/login").text)
    for _ in range(security.MAX_FAILURES_PER_NAME):
        client.post("/login", data={"name": "s2", "secret": "nope", "csrf_token": csrf})
    assert client.post("/login", data={"name": "s2", "secret": codes["s2"],
                                       "csrf_token": csrf}).status_code == 429


def test_a_notebook_is_graded_as_its_code_cells(service):
    import nbformat

    app, codes = service
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# my layer"),
        nbformat.v4.new_code_cell(reference(app).decode())])
    client, csrf = sign_in(app, "s1", codes["s1"])
    reply = upload(client, csrf, "作业 layer.ipynb", nbformat.writes(notebook).encode())
    assert reply.status_code == 303, reply.text
    (row,) = attempts(app, "s1")
    assert row.counted and row.stored.endswith("/layer.ipynb") and row.file_name.startswith("作业")


def test_uploads_of_any_kind_are_bounded_per_hour(service, monkeypatch):
    from grader.service import student

    app, codes = service
    monkeypatch.setattr(student, "MAX_UPLOADS_PER_HOUR", 2)
    client, csrf = sign_in(app, "s1", codes["s1"])
    for _ in range(2):
        assert upload(client, csrf, "notes.txt", b"x").status_code == 415
    reply = upload(client, csrf, "layer.py", reference(app))
    assert reply.status_code == 429 and "within the last hour" in reply.text
    assert len(attempts(app, "s1")) == 2  # the refusal over the bound is not stored


def test_student_text_from_a_result_is_escaped(service):
    app, codes = service
    client, csrf = sign_in(app, "s1", codes["s1"])
    assert upload(client, csrf, "layer.py", reference(app)).status_code == 303
    (row,) = attempts(app, "s1")
    with app.state.sessions() as session:
        job = session.get(JobModel, row.public_job_id)
        job.state = "done"
        job.result = {"score": "1e308", "max_score": None, "problems": [HOSTILE],
                      "tests": [{"name": HOSTILE, "status": "failed", "message": HOSTILE},
                                {"status": "passed"}, "not a test"]}
        session.commit()
    page = client.get(f"/attempts/{row.id}").text
    assert HOSTILE not in page and page.count("&lt;script&gt;") == 3
    assert "1 of 2 passed" in page

"""`grader serve --demo` (`grader.service.demo.setup_demo`, `app.serve_main(demo=True)`):
the demo class's accounts sign in through TestClient and find a sample class graded by the
service's own workers; uvicorn is never started.

The default demo class is graded once per module (a minute or two on 2 busy cores); the
tests about accounts, copies and `grader demo`'s kept folder use a demo without a class.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from grader import i18n
from grader.demo import print_service
from grader.gradebook import open_gradebook
from grader.gradebook.models import AttemptModel, JobModel
from grader.samples import SampleError
from grader.scaffold import ScaffoldRefused, lecture_course
from grader.service import app as service_app
from grader.service import demo as demo_module
from grader.service.app import create_app
from grader.service.demo import (
    INSTRUCTOR,
    SAMPLE_CLASS,
    STUDENT,
    NotADemo,
    load_demo,
    setup_demo,
)

# what the demo could write into the course it copies; none of it may change there
COURSE_OUTPUTS = ("gradebook.db", "uploads", "graded", "demo-sign-ins.txt",
                  ".grader-serve-secret")


def course_outputs(root: Path) -> dict[str, str]:
    """Each of `COURSE_OUTPUTS` in `root`: absent, or a digest of its files."""
    state = {}
    for name in COURSE_OUTPUTS:
        path = root / name
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else (
            [path] if path.is_file() else [])
        digest = hashlib.sha256()
        for file in files:
            digest.update(str(file.relative_to(root)).encode() + file.read_bytes())
        state[name] = digest.hexdigest() if path.exists() else "absent"
    return state


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The default demo class, graded in English; the lecture course's outputs before."""
    before = course_outputs(lecture_course())
    with i18n.speaking("en"):
        demo = setup_demo(tmp_path_factory.mktemp("demo") / "course")
    return demo, before


def expected_scores() -> dict[str, str]:
    """Each sample student's current grade as SAMPLE_CLASS implies: its last graded upload."""
    kinds = {}
    for student, _name, uploads in SAMPLE_CLASS:
        last = [sample for sample, _hours in uploads if sample != "typo"][-1:]
        kinds[student] = last[0].split(":")[0] if last else "none"
    return kinds


def token(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "no CSRF token on the page"
    return found.group(1)


def sign_in(app, name: str, secret: str):
    client = TestClient(app)
    return client, client.post("/login", data={"name": name, "secret": secret,
                                               "csrf_token": token(client.get("/login").text)},
                               follow_redirects=True)


def test_the_demo_class_has_an_instructor_and_a_student_who_sign_in(tmp_path):
    demo = setup_demo(tmp_path / "demo", sample_class=())
    assert demo.course.root == (tmp_path / "demo").resolve()
    assert "mlp_numpy" in demo.course.assignment_ids()  # a copy of the lecture's course
    assert demo.sample_assignment is None and "No sample class" in demo.sign_ins()
    app = create_app(demo.course, language="en")
    staff, page = sign_in(app, demo.instructor, demo.password)
    assert page.status_code == 200 and page.url.path == "/staff", page.text
    assert f"{INSTRUCTOR} (instructor)" in page.text
    student, page = sign_in(app, demo.student, demo.access_code)
    assert page.status_code == 200 and page.url.path == "/assignments", page.text
    assert "mlp_numpy" in page.text
    # the secrets are the demo's own: swapped, or guessed, they do not sign in
    _client, wrong = sign_in(app, demo.student, demo.password)
    assert wrong.status_code == 401 and "Sign-in failed" in wrong.text
    assert demo.password in demo.sign_ins() and demo.access_code in demo.sign_ins()


def test_two_demos_have_different_secrets_and_a_folder_in_use_is_refused(tmp_path):
    one = setup_demo(tmp_path / "one", sample_class=())
    two = setup_demo(tmp_path / "two", sample_class=())
    assert one.password != two.password and one.access_code != two.access_code
    with pytest.raises(ScaffoldRefused, match="not empty"):
        setup_demo(tmp_path / "one", sample_class=())  # a course in use is never overwritten


def test_serve_demo_prints_sign_ins_that_work_and_removes_its_copy(monkeypatch, capsys):
    # no class: the throwaway copy is `setup_demo`'s, whose class the module's tests grade
    monkeypatch.setattr(demo_module, "SAMPLE_CLASS", ())
    served = {}

    def fake_run(app, **options):  # the app uvicorn would serve, signed in to instead
        served["app"], served["options"] = app, options
        served["root"] = app.state.course.root
        printed = capsys.readouterr().err
        password = re.search(rf"{INSTRUCTOR}\s+password: (\S+)", printed).group(1)
        code = re.search(rf"{STUDENT}\s+access code: (\S+)", printed).group(1)
        _c, page = sign_in(app, INSTRUCTOR, password)
        served["staff"] = page.status_code, page.url.path
        _c, page = sign_in(app, STUDENT, code)
        served["student"] = page.status_code, page.url.path, page.text
        served["banner"] = printed

    monkeypatch.setattr(uvicorn, "run", fake_run)
    with i18n.speaking(None):
        assert service_app.serve_main(port=8123, workers=0, demo="") == 0
    assert served["options"]["port"] == 8123
    assert served["staff"] == (200, "/staff")
    status, path, text = served["student"]
    assert (status, path) == (200, "/assignments")
    assert "你的作业" in text  # no --lang: the demo course's language (zh_CN)
    assert "没有示例班级" in served["banner"]  # the banner says there is no class to see
    assert not served["root"].exists()  # the throwaway copy is gone after the service


def test_grader_demo_ends_with_how_to_open_the_service_and_those_sign_ins_work(
        tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(demo_module, "SAMPLE_CLASS", ())  # the class: see the tests below
    folder = tmp_path / "demo-out" / "service"
    print_service(folder)
    printed = capsys.readouterr().out
    assert f"grader serve --demo {folder}" in printed
    password = re.search(rf"{INSTRUCTOR}\s+password: (\S+)", printed).group(1)
    code = re.search(rf"{STUDENT}\s+access code: (\S+)", printed).group(1)
    assert (folder / "demo-sign-ins.txt").stat().st_mode & 0o077 == 0  # owner-only
    served = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: served.update(app=app))
    with i18n.speaking("en"):
        assert service_app.serve_main(workers=0, demo=str(folder)) == 0
    assert password in capsys.readouterr().err  # serve prints the same sign-ins again
    _c, page = sign_in(served["app"], INSTRUCTOR, password)
    assert (page.status_code, page.url.path) == (200, "/staff")
    _c, page = sign_in(served["app"], STUDENT, code)
    assert (page.status_code, page.url.path) == (200, "/assignments")
    assert folder.is_dir()  # a kept demo class stays after the service
    # a second demo replaces its own class: the old secrets stop working
    print_service(folder)
    assert password not in capsys.readouterr().out
    assert load_demo(folder).password != password


def test_a_folder_that_is_not_a_demo_class_is_left_alone_with_a_reason(tmp_path, capsys):
    folder = tmp_path / "service"
    folder.mkdir()
    (folder / "mine.txt").write_text("keep me")
    print_service(folder)
    assert "is not a demo class" in capsys.readouterr().out
    assert (folder / "mine.txt").read_text() == "keep me"
    with pytest.raises(NotADemo, match="run `grader demo`"):
        load_demo(folder)


def test_a_sign_ins_file_naming_another_sample_assignment_is_not_a_demo(tmp_path):
    demo = setup_demo(tmp_path / "demo", sample_class=())
    sign_ins = demo.course.root / "demo-sign-ins.txt"
    for hostile in ("../../etc", "no_such_assignment"):
        sign_ins.write_text(f"{demo.password}\n{demo.access_code}\n{hostile}\n")
        with pytest.raises(NotADemo, match="does not have"):
            load_demo(demo.course.root)  # its line is never followed as a path
    sign_ins.write_text(f"{demo.password}\n{demo.access_code}\n")  # a demo made before
    assert load_demo(demo.course.root).sample_assignment is None


def student_rows(page: str) -> dict[str, tuple[str, str]]:
    """The dashboard's students table: id -> (name, grade)."""
    return {ident: (name, grade) for ident, name, grade in re.findall(
        r'<tr><td><a href="/staff/mlp_numpy/students/[^"]+">([^<]+)</a></td>\s*'
        r'<td>([^<]*)</td>\s*<td>([^<]+)</td></tr>', page)}


def test_the_instructor_dashboard_shows_the_graded_sample_class(graded):
    demo, _before = graded
    app = create_app(demo.course, language="en")
    staff, _page = sign_in(app, demo.instructor, demo.password)
    page = staff.get("/staff/mlp_numpy").text
    rows = student_rows(page)
    assert set(rows) == {student for student, _name, _uploads in SAMPLE_CLASS}
    for student, kind in expected_scores().items():
        name, grade = rows[student]
        assert name == dict((s, n) for s, n, _u in SAMPLE_CLASS)[student]
        if kind == "none":
            assert grade == "not graded", (student, grade)
            continue
        score = float(re.fullmatch(r"(\S+) of 100", grade).group(1))
        # a correct variant earns full marks, a planted bug loses some, the skeleton all
        assert {"variant": score == 100, "bug": 0 < score < 100,
                "skeleton": score == 0}[kind], (student, kind, score)
    graded_uploads = sum(1 for _s, _n, uploads in SAMPLE_CLASS for sample, _h in uploads
                         if sample != "typo")
    assert f"Hidden: 0 queued, 0 running, {graded_uploads} done, 0 failed." in page
    assert "Grades released on" in page  # the demo released it: the student reads reports
    failures = page[page.index('id="failures"'):page.index('id="summary"')]
    assert "No failures recorded" not in failures and failures.count("<tr>") >= 3
    assert f"{len(SAMPLE_CLASS)} students, {len(SAMPLE_CLASS) - 1} graded, 1 without" in page

    # a student who fixed a bug: both uploads, the first superseded, the second current
    history = staff.get("/staff/mlp_numpy/students/2026003").text
    assert history.count("mlp_numpy.py") == 2
    assert "superseded" in history and "current" in history
    report = staff.get("/staff/mlp_numpy/students/2026003/report")
    assert report.status_code == 200 and "train" in report.text
    # the student whose upload had a syntax error: refused, with the upload page's reason
    refused = staff.get("/staff/mlp_numpy/students/2026005").text
    assert "syntax error on line" in refused
    # the class summary page, with a link to every graded student's report
    summary = staff.get("/staff/mlp_numpy/summary").text
    assert "students/2026002/report" in summary and "students/2026008/report" not in summary


def test_the_demo_student_reads_their_attempts_and_reports_and_no_one_elses(graded):
    demo, _before = graded
    app = create_app(demo.course, language="en")
    student, _page = sign_in(app, demo.student, demo.access_code)
    with app.state.sessions() as session:
        attempts = session.scalars(select(AttemptModel).order_by(AttemptModel.id)).all()
        mine = [a.id for a in attempts if a.student_id == STUDENT]
        others = [a.id for a in attempts if a.student_id != STUDENT]
    assert len(mine) == 2 and others
    listing = student.get("/assignments/mlp_numpy").text
    assert all(f"/attempts/{n}" in listing for n in mine)
    scores = []
    for n in mine:
        page = student.get(f"/attempts/{n}")
        assert page.status_code == 200 and "Public tests: <strong>" in page.text
        report = student.get(f"/attempts/{n}/report")
        assert report.status_code == 200, report.text
        scores.append(re.search(r'id="final-score">([^<]+)<', report.text).group(1))
    # the first attempt had the cross-entropy gradient's sign wrong; the second is correct
    first = student.get(f"/attempts/{mine[0]}/report").text
    assert "cross_entropy_backward" in first
    assert float(scores[0]) < 100 == float(scores[1]), scores
    # guessing: every other student's attempt and report is a 404, as a missing one is
    for n in [*others, max(mine + others) + 1]:
        assert student.get(f"/attempts/{n}").status_code == 404
        assert student.get(f"/attempts/{n}/report").status_code == 404
    assert student.get("/staff/mlp_numpy").status_code in (403, 404)


def test_the_banner_says_what_the_class_holds_and_follows_a_withheld_release(graded):
    demo, _before = graded
    graded_students = sum(1 for _s, _n, uploads in SAMPLE_CLASS
                          if any(sample != "typo" for sample, _h in uploads))
    assert demo.sample_assignment == "mlp_numpy"
    banner = demo.sign_ins()
    assert f"mlp_numpy, {graded_students} student(s) graded" in banner
    assert "grades are released" in banner and STUDENT in banner
    assert load_demo(demo.course.root).sign_ins() == banner  # `serve --demo DIR` prints it
    with i18n.speaking("zh_CN"):
        assert "已发布" in demo.sign_ins()
    app = create_app(demo.course, language="en")
    staff, _page = sign_in(app, demo.instructor, demo.password)
    form = staff.get("/staff/mlp_numpy").text
    try:
        staff.post("/staff/mlp_numpy/release", data={"action": "withhold",
                                                     "csrf_token": token(form)})
        assert "grades are not released" in demo.sign_ins()
        student, _page = sign_in(app, demo.student, demo.access_code)
        with app.state.sessions() as session:
            first = session.scalar(select(func.min(AttemptModel.id))
                                   .where(AttemptModel.student_id == STUDENT))
        assert student.get(f"/attempts/{first}/report").status_code == 403
    finally:  # the other tests read the released class
        staff.post("/staff/mlp_numpy/release", data={"action": "now",
                                                     "csrf_token": token(form)})
    assert "grades are released" in demo.sign_ins()


def test_serve_demo_dir_serves_the_kept_class_as_graded_without_grading_again(
        graded, monkeypatch, capsys):
    demo, _before = graded

    def jobs() -> list[tuple[int, str]]:
        with open_gradebook(demo.course.gradebook, create=False) as book, \
                Session(book.engine) as session:
            return [(job.id, job.state) for job in session.scalars(select(JobModel))]

    before = jobs()
    served = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: served.update(app=app))
    with i18n.speaking(None):  # no --lang: the course's language, as `grader serve` does
        assert service_app.serve_main(workers=0, demo=str(demo.course.root)) == 0
        printed = capsys.readouterr().err
    assert "mlp_numpy" in printed and "成绩已发布" in printed  # the banner, in Chinese
    assert jobs() == before and {state for _id, state in before} == {"done"}
    staff, _page = sign_in(served["app"], demo.instructor, demo.password)
    rows = student_rows(staff.get("/staff/mlp_numpy").text)
    name, grade = rows["2026001"]  # a correct variant, as the module's class graded it
    assert name == "王芳" and grade.startswith("100"), grade


def test_the_demo_writes_only_into_its_copy(graded):
    demo, before = graded
    assert course_outputs(lecture_course()) == before  # the real course is untouched
    with open_gradebook(demo.course.gradebook, create=False) as book, \
            Session(book.engine) as session:
        stored = session.scalars(select(AttemptModel.stored)
                                 .where(AttemptModel.stored.is_not(None))).all()
    assert stored and all((demo.course.root / path).is_file() for path in stored)
    assert all(path.startswith("uploads/mlp_numpy/") for path in stored)



def test_a_class_naming_a_sample_the_course_lacks_fails_before_grading_and_leaves_nothing(
        tmp_path):
    folder = tmp_path / "demo"
    broken = ((STUDENT, "Demo Student", (("bug:no_such_bug", 1),)),)
    with pytest.raises(SampleError, match="no_such_bug.*bugs: .*cross_entropy_grad_sign"):
        setup_demo(folder, sample_class=broken)
    assert not folder.exists()  # no half-made class for `grader demo` to trip over later

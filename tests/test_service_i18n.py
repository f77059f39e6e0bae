"""`grader serve` in the students' language: the ``service`` catalog, through the real app.

The same course as tests/test_service_student.py (`grader init` + `grader new layer`), one
app per language (``create_app(language=...)``; `grader serve` passes the course's, or
``--lang``). Nothing is graded: sign-in, the assignments list and refused uploads only.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from grader import i18n, scaffold
from grader.course import load_course
from grader.service.app import create_app
from grader.service.auth import issue_codes

# A student-controlled value that looks like markup and like both placeholder syntaxes.
HOSTILE = "<b>x</b>{name}%(role)s"
ESCAPED = "&lt;b&gt;x&lt;/b&gt;{name}%(role)s"


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


def make_app(course_template: Path, tmp_path: Path, language: str | None):
    root = tmp_path / "c"
    shutil.copytree(course_template, root)
    app = create_app(root, None, upload_limit=64 * 1024, language=language)
    app.state.gradebook.add_students([("s1", HOSTILE)])
    with app.state.sessions() as session:
        codes = dict(issue_codes(session, ["s1"]))
        session.commit()
    return app, codes["s1"]


def token(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "no CSRF token on the page"
    return found.group(1)


def sign_in(app, code: str) -> tuple[TestClient, str, str]:
    """A client signed in as s1, its CSRF token and the page it landed on."""
    client = TestClient(app)
    reply = client.post("/login", data={"name": "s1", "secret": code,
                                        "csrf_token": token(client.get("/login").text)},
                        follow_redirects=True)
    assert reply.status_code == 200, reply.text
    return client, token(reply.text), reply.text


def upload(client: TestClient, csrf: str, name: str, data: bytes):
    return client.post("/assignments/layer/upload", data={"csrf_token": csrf},
                       files={"file": (name, data)}, follow_redirects=False)


def test_the_pages_and_a_refusal_read_in_chinese(course_template, tmp_path):
    app, code = make_app(course_template, tmp_path, "zh_CN")
    login = TestClient(app).get("/login").text
    assert '<html lang="zh-CN">' in login
    assert "登录" in login and "访问码" in login and "Sign in" not in login
    client, csrf, assignments = sign_in(app, code)
    assert "你的作业" in assignments and "截止时间" in assignments
    assert "Your assignments" not in assignments
    refused = upload(client, csrf, "layer.txt", b"print(1)\n")
    assert refused.status_code == 415
    assert "不是 .py、.ipynb、.zip 文件" in refused.text, refused.text
    assert "未评分（不占用提交次数）" in refused.text
    assert "is not a" not in refused.text


def test_the_same_pages_read_in_english(course_template, tmp_path):
    app, code = make_app(course_template, tmp_path, "en")
    login = TestClient(app).get("/login").text
    assert '<html lang="en">' in login and "Sign in" in login and "登录" not in login
    client, csrf, assignments = sign_in(app, code)
    assert "Your assignments" in assignments and "你的作业" not in assignments
    refused = upload(client, csrf, "layer.txt", b"print(1)\n")
    assert refused.status_code == 415
    assert "is not a .py, .ipynb, .zip file" in refused.text
    assert "Not graded (no attempt used)" in refused.text


def test_a_service_started_without_a_language_speaks_the_one_in_effect(course_template,
                                                                       tmp_path):
    # `grader serve` runs inside the CLI's language (the course's, or --lang)
    with i18n.speaking("zh_CN"):
        app, _code = make_app(course_template, tmp_path, None)
    assert i18n.current_language() == "en"  # the test's own language is untouched
    assert "登录" in TestClient(app).get("/login").text


def test_hostile_student_values_inside_translated_messages_stay_literal(course_template,
                                                                        tmp_path):
    app, code = make_app(course_template, tmp_path, "zh_CN")
    client, csrf, assignments = sign_in(app, code)
    assert "s1（学生）" in assignments  # the account line: "%(name)s（%(role)s）"
    # a file name (the student's own text) inside a Python-side message ("{name}"), shown
    # escaped, its braces and %-placeholders never filled
    refused = upload(client, csrf, f"{HOSTILE}.txt", b"print(1)\n")
    assert refused.status_code == 415
    assert f"文件 &#39;{ESCAPED}.txt&#39; 不是" in refused.text, refused.text
    assert "<b>x</b>" not in refused.text
    # the stored refusal inside the template's "Not graded ...: %(reason)s", escaped once
    page = client.get("/assignments/layer").text
    assert f"未评分（不占用提交次数）：文件 &#39;{ESCAPED}.txt&#39; 不是" in page
    assert "<b>x</b>" not in page and "&amp;lt;" not in page


def test_refusals_outside_the_pages_read_in_chinese(course_template, tmp_path):
    app, code = make_app(course_template, tmp_path, "zh_CN")
    client, csrf, _page = sign_in(app, code)
    # the body limit answers before any route: still in the service's language
    too_big = upload(client, csrf, "layer.py", b"#" * (1024 * 1024))
    assert too_big.status_code == 413 and "请求大于" in too_big.text
    missing = client.get("/attempts/999")
    assert missing.status_code == 404 and "你的提交中没有这一次" in missing.text
    forged = client.post("/logout", data={"csrf_token": "forged"})
    assert forged.status_code == 403 and "安全令牌" in forged.text
    staff_only = client.get("/staff")
    assert staff_only.status_code == 403 and "只供助教和教师使用" in staff_only.text


def test_the_staff_pages_read_in_chinese_and_show_a_students_file_name_literally(
        course_template, tmp_path):
    from grader.service.auth import add_staff

    app, code = make_app(course_template, tmp_path, "zh_CN")
    client, csrf, _page = sign_in(app, code)
    assert upload(client, csrf, f"{HOSTILE}.txt", b"x").status_code == 415
    with app.state.sessions() as session:
        add_staff(session, "prof", "instructor", "a-long-password")
        session.commit()
    staff = TestClient(app)
    staff.post("/login", data={"name": "prof", "secret": "a-long-password",
                               "csrf_token": token(staff.get("/login").text)})
    dashboard = staff.get("/staff/layer").text
    assert "立即公布" in dashboard and "全部重新评分" in dashboard and "队列" in dashboard
    assert "Release now" not in dashboard
    page = staff.get("/staff/layer/students/s1").text
    assert "上传" in page and "修改成绩" in page
    assert ESCAPED in page and "<b>x</b>" not in page  # the refused upload's file name
    # a refused form value inside a translated flash sentence: literal, escaped
    refused = staff.post("/staff/layer/students/s1/override", follow_redirects=False,
                         data={"points": HOSTILE, "reason": "r", "csrf_token": token(page)})
    assert refused.status_code == 303, refused.text
    shown = staff.get("/staff/layer/students/s1").text
    assert "成绩修改没有保存：分数必须是数字；得到的是：" in shown, shown
    assert "&lt;b&gt;x&lt;/b&gt;" in shown and "<b>x</b>" not in shown

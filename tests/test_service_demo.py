"""`grader serve --demo` (`grader.service.demo.setup_demo`, `app.serve_main(demo=True)`):
the demo class's two accounts sign in through TestClient; uvicorn is never started."""

from __future__ import annotations

import re

import pytest
import uvicorn
from fastapi.testclient import TestClient

from grader import i18n
from grader.demo import print_service
from grader.scaffold import ScaffoldRefused
from grader.service import app as service_app
from grader.service.app import create_app
from grader.service.demo import INSTRUCTOR, STUDENT, NotADemo, load_demo, setup_demo


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
    demo = setup_demo(tmp_path / "demo")
    assert demo.course.root == (tmp_path / "demo").resolve()
    assert "mlp_numpy" in demo.course.assignment_ids()  # a copy of the lecture's course
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
    one, two = setup_demo(tmp_path / "one"), setup_demo(tmp_path / "two")
    assert one.password != two.password and one.access_code != two.access_code
    with pytest.raises(ScaffoldRefused, match="not empty"):
        setup_demo(tmp_path / "one")  # nothing of a course in use is overwritten


def test_serve_demo_prints_sign_ins_that_work_and_removes_its_copy(monkeypatch, capsys):
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

    monkeypatch.setattr(uvicorn, "run", fake_run)
    with i18n.speaking(None):
        assert service_app.serve_main(port=8123, workers=0, demo="") == 0
    assert served["options"]["port"] == 8123
    assert served["staff"] == (200, "/staff")
    status, path, text = served["student"]
    assert (status, path) == (200, "/assignments")
    assert "你的作业" in text  # no --lang: the demo course's language (zh_CN)
    assert not served["root"].exists()  # the throwaway copy is gone after the service


def test_grader_demo_ends_with_how_to_open_the_service_and_those_sign_ins_work(
        tmp_path, capsys, monkeypatch):
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

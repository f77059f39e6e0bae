"""An instructor's day in a real browser: sign in, regrade all, release, export.

Playwright drives Debian's Chromium (``/usr/bin/chromium`` as the executable: no browser is
downloaded) against the service under uvicorn on the loopback interface, the staff tests'
seeded course behind it. Screenshots are kept under ``test-artifacts/service/``.
"""

from __future__ import annotations

import csv
import io
import shutil
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from grader.gradebook.models import JobModel
from grader.service import queue
from grader.testing.net import free_port

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "service"
START_TIMEOUT_S = 20
STEP_TIMEOUT_MS = 15_000


@pytest.fixture()
def served(tmp_path, serve_in_thread):
    """(base URL, app): the seeded app under uvicorn in a thread, stopped afterwards."""
    import test_service_staff as staff_tests

    app = staff_tests.seeded_app(tmp_path)
    return serve_in_thread(app), app


def test_an_instructor_regrades_all_releases_and_exports(open_page, served):
    base, app = served
    import test_service_staff as staff_tests

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page, errors = open_page(STEP_TIMEOUT_MS, accept_downloads=True,
                             viewport={"width": 1200, "height": 1400})

    page.goto(base + "/staff/act")  # not signed in: the sign-in form
    assert page.url.endswith("/login")
    page.fill("input[name=name]", "prof")
    page.fill("input[name=secret]", staff_tests.PASSWORDS["prof"])
    page.click("button[type=submit]")
    page.wait_for_url(base + "/staff")
    page.click("text=Two activations")
    page.wait_for_url(base + "/staff/act")
    assert "appear at the due date" in page.inner_text("#release-state")
    page.screenshot(path=str(ARTIFACTS / "staff-dashboard.png"), full_page=True)

    page.click("text=Regrade all")
    page.wait_for_url(base + "/staff/act")
    assert "2 upload(s) queued for hidden grading" in page.inner_text(".flash")
    page.wait_for_selector("#queue >> text=hidden")  # the live queue shows them
    with app.state.sessions() as session:
        assert len(list(session.scalars(select(JobModel)))) == 2

    page.click("text=Release now")
    page.wait_for_url(base + "/staff/act")
    assert "Grades released on" in page.inner_text("#release-state")
    with app.state.sessions.begin() as session:  # a student uploads meanwhile
        queue.enqueue(session, "uploads/act/s2/act.py", queue.PUBLIC,
                      assignment_id="act", student_id="s2")
    page.wait_for_selector("#queue >> text=public")  # appears without a reload
    page.screenshot(path=str(ARTIFACTS / "staff-released.png"), full_page=True)

    with page.expect_download() as download_info:
        page.click("a[href='/staff/act/export.csv']")
    download = download_info.value
    assert download.suggested_filename == "act-grades.csv"
    saved = ARTIFACTS / "act-grades.csv"
    download.save_as(str(saved))
    rows = list(csv.reader(io.StringIO(saved.read_text(encoding="utf-8-sig"))))
    assert any("s2" in row for row in rows) and any("s1" in row for row in rows)

    page.click("text=s2")
    page.wait_for_url(base + "/staff/act/students/s2")
    page.fill("input[name=days]", "2")
    page.fill("#extensions input[name=reason]", "medical")
    page.click("text=Grant extension")
    assert "Extension saved: s2 has 2 more day(s)" in page.inner_text(".flash")
    page.screenshot(path=str(ARTIFACTS / "staff-student.png"), full_page=True)
    for report in ("/staff/act/students/s1/report", "/staff/act/summary"):
        page.goto(base + report)  # self-contained pages: their CSS allowed by hash
        page.wait_for_load_state("load")
        widths = page.eval_on_selector_all(
            ".bar > span", "spans => spans.map(s => s.getBoundingClientRect().width)")
        assert widths and max(widths) > 0, (report, widths)  # style attributes applied
    page.screenshot(path=str(ARTIFACTS / "staff-summary.png"), full_page=True)
    assert not [e for e in errors if "Content Security Policy" in e], errors
    actions = [row.action for row in staff_tests.audit_rows(app, "release")]
    assert actions == ["release"]


NGINX = shutil.which("nginx") or (Path("/usr/sbin/nginx") if Path("/usr/sbin/nginx").is_file()
                                  else None)
OPENSSL = shutil.which("openssl")
DEPLOY = Path(__file__).resolve().parents[1] / "docs" / "deploy" / "nginx.conf"


@pytest.mark.skipif(NGINX is None or OPENSSL is None,
                    reason="nginx and openssl are not installed (Debian: apt-get install "
                           "nginx-light openssl)")
def test_the_nginx_example_terminates_https_and_passes_the_real_client(tmp_path,
                                                                      serve_in_thread):
    """docs/deploy/nginx.conf as shipped (ports and certificate swapped for the test) in
    front of uvicorn with the proxy settings the README gives."""
    import subprocess
    from urllib.parse import parse_qs, urlsplit

    import httpx
    import test_lti
    import test_service_staff as staff_tests

    from grader.gradebook.models import LoginAttemptModel
    from grader.service.lti.routes import LtiState

    app = staff_tests.seeded_app(tmp_path)
    app.state.lti = LtiState(test_lti.PlatformRegistry([test_lti.platform()]),
                             test_lti.TOOL_KEY, app.state.sessions)
    upstream, plain, tls = free_port(), free_port(), free_port()
    serve_in_thread(app, port=upstream, proxy_headers=True, forwarded_allow_ips="127.0.0.1")
    subprocess.run([OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem"),
                    "-subj", "/CN=grader.example.edu"], check=True, capture_output=True)
    site = (DEPLOY.read_text()
            .replace("/etc/letsencrypt/live/grader.example.edu/fullchain.pem",
                     str(tmp_path / "cert.pem"))
            .replace("/etc/letsencrypt/live/grader.example.edu/privkey.pem",
                     str(tmp_path / "key.pem"))
            .replace("127.0.0.1:8000", f"127.0.0.1:{upstream}")
            .replace("listen 80;", f"listen 127.0.0.1:{plain};")
            .replace("listen 443 ssl http2;", f"listen 127.0.0.1:{tls} ssl http2;"))
    site = "\n".join(line for line in site.splitlines() if "listen [::]" not in line)
    (tmp_path / "site.conf").write_text(site)
    temp = " ".join(f"{kind}_temp_path {tmp_path / kind};"
                    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path / 'nginx.pid'};\nerror_log {tmp_path / 'error.log'};\n"
        f"events {{}}\nhttp {{ access_log off; {temp} include {tmp_path / 'site.conf'}; }}\n")
    nginx = subprocess.Popen([str(NGINX), "-p", str(tmp_path), "-c",
                              str(tmp_path / "nginx.conf"), "-g", "daemon off;"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        base = f"https://127.0.0.1:{tls}"
        headers = {"Host": "grader.example.edu"}
        with httpx.Client(verify=False, timeout=10) as client:
            deadline = time.monotonic() + START_TIMEOUT_S
            while True:
                try:
                    reply = client.get(base + "/login", headers=headers)
                    break
                except httpx.TransportError:
                    assert nginx.poll() is None, nginx.stdout.read().decode()
                    assert time.monotonic() < deadline, "nginx did not start"
                    time.sleep(0.1)
            assert reply.status_code == 200 and "Sign in" in reply.text
            assert "max-age=63072000" in reply.headers["strict-transport-security"]
            assert "default-src 'self'" in reply.headers["content-security-policy"]
            insecure = client.get(f"http://127.0.0.1:{plain}/login", headers=headers)
            assert insecure.status_code == 301
            assert insecure.headers["location"] == "https://grader.example.edu/login"
            # the service sees https and the public host: LTI's redirect_uri is right
            login = client.get(base + "/lti/login", headers=headers, params={
                "iss": test_lti.ISSUER, "login_hint": "x"})
            query = parse_qs(urlsplit(login.headers["location"]).query)
            assert query["redirect_uri"] == ["https://grader.example.edu/lti/launch"]
            cookie = login.headers["set-cookie"].lower()  # rides the LMS's cross-site POST
            assert "secure" in cookie and "samesite=none" in cookie and "httponly" in cookie
            # a client cannot choose its address for the sign-in limit
            token = staff_tests._token(reply.text)
            client.post(base + "/login", headers={**headers, "X-Forwarded-For": "6.6.6.6"},
                        data={"name": "prof", "secret": "wrong", "csrf_token": token})
            with app.state.sessions() as session:
                clients = set(session.scalars(select(LoginAttemptModel.client)))
            assert clients == {"127.0.0.1"}
            # an upload far over the limit stops at nginx
            huge = client.post(base + "/assignments/act/upload", headers=headers,
                               content=b"x" * (7 * 1024 * 1024))
            assert huge.status_code == 413
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)

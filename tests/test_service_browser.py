"""A student's deadline night in a real browser: sign in, upload, watch the public result
arrive, be refused the report before release, read it after.

Playwright drives Debian's Chromium (``/usr/bin/chromium`` as the executable: no browser is
downloaded) against the service under uvicorn on the loopback interface, the student tests'
tiny `layer` course behind it and the queue's own worker in a thread. The page's live status
is the static ``status.js`` under the strict CSP: any CSP violation is a console error and
fails the test. Screenshots are kept under ``test-artifacts/service/``.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
from test_service_student import course_template, release_now, service  # noqa: F401

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install chromium)")
sync_api = pytest.importorskip("playwright.sync_api")
uvicorn = pytest.importorskip("uvicorn")

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "service"
START_TIMEOUT_S = 20
STEP_TIMEOUT_MS = 30_000


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture()
def served(service):  # noqa: F811 - the student tests' fixture
    """(base URL, app, codes): the app under uvicorn in a thread, stopped afterwards."""
    app, codes = service
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", app, codes
    server.should_exit = True
    thread.join(timeout=START_TIMEOUT_S)


def test_a_student_uploads_watches_the_result_and_reads_the_report_after_release(served):
    from grader.service.worker import work

    base, app, codes = served
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    solution = app.state.course.root / "reference" / "layer.py"
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM,
                                             args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_context(viewport={"width": 1100, "height": 1200}).new_page()
            page.set_default_timeout(STEP_TIMEOUT_MS)
            errors: list[str] = []
            page.on("console", lambda message: errors.append(message.text)
                    if message.type == "error" else None)

            page.goto(base + "/assignments")  # not signed in: the sign-in form
            assert page.url.endswith("/login")
            page.fill("input[name=name]", "s1")
            page.fill("input[name=secret]", codes["s1"])
            page.click("button[type=submit]:has-text('Sign in')")
            page.wait_for_url(base + "/assignments")
            page.screenshot(path=str(ARTIFACTS / "student-1-assignments.png"), full_page=True)

            page.click("a[href='/assignments/layer']")
            page.set_input_files("input[type=file]", str(solution))
            page.click("button:has-text('Upload and grade')")
            page.wait_for_url("**/attempts/*")
            assert "Queued" in page.inner_text("#status")
            page.screenshot(path=str(ARTIFACTS / "student-2-queued.png"), full_page=True)

            worker = threading.Thread(target=work, args=(app.state.db_url,
                                                         app.state.course.root),
                                      kwargs={"max_jobs": 2}, daemon=True)
            worker.start()
            # status.js replaces the status in place: no reload
            page.wait_for_selector("text=Public tests: ", timeout=120_000)
            assert "passed" in page.inner_text("#status")
            page.screenshot(path=str(ARTIFACTS / "student-3-public-result.png"),
                            full_page=True)
            worker.join(timeout=120)

            attempt_url = page.url
            page.goto(attempt_url + "/report")
            assert "not released yet" in page.inner_text("main")
            page.screenshot(path=str(ARTIFACTS / "student-4-report-refused.png"))

            release_now(app)
            page.goto(attempt_url)
            page.click("text=Read the full report")
            page.wait_for_url("**/report")
            assert "layer" in page.content()
            # the report's own CSS applied under the CSP (its inline style, by hash)
            assert page.evaluate("document.styleSheets.length") >= 1
            page.screenshot(path=str(ARTIFACTS / "student-5-report.png"), full_page=True)
            refused_report = "status of 403"  # the refusal before release, on purpose
            assert [e for e in errors if refused_report not in e] == [], errors
        finally:
            browser.close()

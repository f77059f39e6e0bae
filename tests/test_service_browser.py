"""A student's deadline night in a real browser: sign in, upload, watch the public result
arrive, be refused the report before release, read it after.

Playwright drives Debian's Chromium (``/usr/bin/chromium`` as the executable: no browser is
downloaded) against the service under uvicorn on the loopback interface, the student tests'
tiny `layer` course behind it and the queue's own worker in a thread. The page's live status
is the static ``status.js`` under the strict CSP: any CSP violation is a console error and
fails the test. Screenshots are kept under ``test-artifacts/service/``.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from test_service_student import course_template, release_now, service  # noqa: F401

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "service"
STEP_TIMEOUT_MS = 30_000


@pytest.fixture()
def served(service, serve_in_thread):  # noqa: F811 - the student tests' fixture
    """(base URL, app, codes): the app under uvicorn in a thread, stopped afterwards."""
    app, codes = service
    return serve_in_thread(app), app, codes


def test_a_student_uploads_watches_the_result_and_reads_the_report_after_release(
        open_page, served):
    from grader.service.worker import work

    base, app, codes = served
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    solution = app.state.course.root / "reference" / "layer.py"
    page, errors = open_page(STEP_TIMEOUT_MS, viewport={"width": 1100, "height": 1200})

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

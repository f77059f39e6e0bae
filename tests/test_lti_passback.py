"""LTI across processes and grade passback at release, against the platform emulator of
test_lti.py, on the real app and database (SQLite; the launch table and outbox on PostgreSQL
too).

- Launches are rows of ``lti_launches``; login states and nonces are rows every process
  shares: a state from another app instance works once, a replay is refused by any
  instance, and after a restart.
- Passback: nothing leaves before release; the release queues each linked student's final
  score (the override when there is one) and `tick` (what `grader worker` runs) sends it
  once; a failing LMS is recorded, shown and retried; the button resends.
"""

from __future__ import annotations

import os
import threading
from datetime import datetime, timedelta, timezone

import httpx
import pytest
import test_service_staff as staff_tests
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from test_lti import (
    CLAIM,
    DEPLOYMENT,
    INSTRUCTOR,
    ISSUER,
    LINEITEM,
    TOOL_KEY,
    Emulator,
    _launch_form,
    _service,
    platform,
)

from grader.gradebook.models import (
    LtiLaunchModel,
    LtiNonceModel,
    LtiPassbackModel,
    LtiStateModel,
)
from grader.service.app import create_app
from grader.service.lti import Lms, PlatformRegistry, latest_launches, tick
from grader.service.lti import passback as passback_module
from grader.service.lti.routes import STATE_COOKIE

SUBJECTS = {"s1": "lms-user-17", "s2": "lms-user-18"}


class FlakyLms(Emulator):
    """The emulator whose score endpoint answers 503 to the next `failures` scores."""

    def __init__(self, failures: int = 0) -> None:
        super().__init__()
        self.failures = failures

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/scores") and self.failures > 0:
            self.failures -= 1
            self.requests.append(request)
            return httpx.Response(503, text="<b>maintenance</b>")
        return super().handler(request)


def launched(app, student: str) -> TestClient:
    """A browser of `student` signed in by an LTI launch of the act activity."""
    browser = TestClient(app)
    form = _launch_form(browser, sub=SUBJECTS[student],
                        **{CLAIM + "lis": {"person_sourcedid": student}})
    reply = browser.post("/lti/launch", data=form, follow_redirects=False)
    assert reply.status_code == 303, reply.text
    return browser


@pytest.fixture()
def lms() -> FlakyLms:
    return FlakyLms()


@pytest.fixture()
def linked(tmp_path, lms):
    """The staff tests' app with LTI on, s1 and s2 launched from the LMS, grades withheld
    (mode manual, whatever today's date)."""
    app = _service(staff_tests.seeded_app(tmp_path), lms)
    for student in ("s1", "s2"):
        launched(app, student)
    prof = staff_tests.signed_in(app, "prof")
    staff_tests.post(prof, "/staff/act/release", {"action": "withhold"})
    return app, prof


def run_tick(app, lms: Emulator, now: datetime | None = None) -> tuple[int, int]:
    """What `grader worker` does between jobs, against the emulator."""
    return tick(app.state.sessions, app.state.course,
                Lms(PlatformRegistry([platform()], lms.client()), TOOL_KEY),
                worker_id="test-worker", now=now)


def outbox(app) -> dict[str, LtiPassbackModel]:
    with app.state.sessions() as session:
        return {row.student_id: row for row in session.scalars(select(LtiPassbackModel))}


def sent(lms: Emulator) -> list[tuple[str, float, float]]:
    return [(s["userId"], s["scoreGiven"], s["scoreMaximum"]) for s in lms.scores]


# --- launches, states and nonces in the database -------------------------------------------

def test_a_launch_is_stored_with_platform_user_link_and_line_item(tmp_path, lms):
    app = _service(staff_tests.seeded_app(tmp_path), lms)
    launched(app, "s1")
    with app.state.sessions() as session:
        [row] = session.scalars(select(LtiLaunchModel)).all()
        links = latest_launches(session, "act")
    assert (row.issuer, row.client_id, row.deployment_id, row.subject) == (
        ISSUER, "tool-client-1", DEPLOYMENT, "lms-user-17")
    assert (row.student_id, row.role, row.context_id, row.resource_link_id) == (
        "s1", "student", "course-7", "link-9")
    assert row.assignment_id == "act" and row.lineitem == LINEITEM
    assert row.ags_scopes == ["https://purl.imsglobal.org/spec/lti-ags/scope/score"]
    assert row.user_id is not None and row.at <= datetime.now(timezone.utc)
    assert list(links) == ["s1"] and links["s1"].id == row.id
    [audited] = staff_tests.audit_rows(app, "lti-launch")  # who/what/when stays audited
    assert audited.actor == "s1" and audited.detail["launch"] == row.id


def test_a_state_from_another_process_works_once_and_replays_fail_everywhere(tmp_path, lms):
    first = _service(staff_tests.seeded_app(tmp_path), lms)
    url = first.state.db_url
    second = _service(create_app(first.state.course, url), lms)  # a second `grader serve`
    browser = TestClient(first)
    form = _launch_form(browser, **{CLAIM + "lis": {"person_sourcedid": "s1"}})
    other = TestClient(second, cookies=browser.cookies)  # the proxy sent the POST elsewhere
    assert other.post("/lti/launch", data=form, follow_redirects=False).status_code == 303
    assert other.get("/assignments").status_code == 200  # signed in on the second

    # the same form again: the first process still has the cookie, but the state is used
    replayed = browser.post("/lti/launch", data=form)
    assert replayed.status_code == 400 and "already used" in replayed.text
    restarted = _service(create_app(first.state.course, url), lms)  # a restart
    again = TestClient(restarted, cookies=browser.cookies).post("/lti/launch", data=form)
    assert again.status_code == 400 and "already used" in again.text
    with first.state.sessions() as session:
        assert session.scalar(select(func.count()).select_from(LtiLaunchModel)) == 1

    # a nonce used in one process is used in every other
    assert first.state.lti.store.use_nonce("n-1") is True
    assert second.state.lti.store.use_nonce("n-1") is False
    assert restarted.state.lti.store.use_nonce("n-1") is False


def test_two_processes_taking_one_state_at_once_get_it_once(tmp_path, lms):
    first = _service(staff_tests.seeded_app(tmp_path), lms)
    second = _service(create_app(first.state.course, first.state.db_url), lms)
    stores = [first.state.lti.store, second.state.lti.store]
    for _round in range(5):
        state, nonce = stores[0].new_state(ISSUER, "tool-client-1")
        barrier, taken = threading.Barrier(2), []

        def take(store, barrier=barrier, taken=taken, state=state):
            barrier.wait()
            taken.append(store.take_state(state))

        threads = [threading.Thread(target=take, args=(store,)) for store in stores]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(taken, key=lambda t: t is not None) == [
            None, (nonce, ISSUER, "tool-client-1")]


def test_a_refused_launch_uses_its_state_up(tmp_path, lms):
    app = _service(staff_tests.seeded_app(tmp_path), lms)
    staff = TestClient(app)
    form = _launch_form(staff, **{CLAIM + "roles": [INSTRUCTOR], "email": "nobody@x"})
    assert staff.post("/lti/launch", data=form).status_code == 403  # no staff account
    staff.cookies.set(STATE_COOKIE + form["state"], "1", path="/lti/")
    again = staff.post("/lti/launch", data=form)
    assert again.status_code == 400 and "already used" in again.text


def test_expired_states_are_refused_and_pruned(tmp_path, lms):
    app = _service(staff_tests.seeded_app(tmp_path), lms)
    store = app.state.lti.store
    start = datetime.now(timezone.utc)
    store.clock = lambda: start
    old, _nonce = store.new_state(ISSUER, None)
    store.clock = lambda: start + timedelta(seconds=store.ttl_s + 1)
    assert store.take_state(old) is None  # too late: refused (and deleted)
    stale, _nonce = store.new_state(ISSUER, None)
    store.use_nonce("late")
    store.clock = lambda: start + timedelta(days=1)
    store.new_state(ISSUER, None)  # a new login prunes what expired
    with app.state.sessions() as session:
        assert session.get(LtiStateModel, stale) is None
        assert session.get(LtiNonceModel, "late") is None
    assert store.take_state("x" * 10_000) is None  # not ours: not even looked up


# --- passback at release ------------------------------------------------------------------

def test_nothing_is_sent_before_release(linked, lms):
    app, prof = linked
    assert run_tick(app, lms) == (0, 0)
    assert outbox(app) == {} and lms.scores == []
    staff_tests.post(prof, "/staff/act/lti-passback")  # the button before release
    assert run_tick(app, lms) == (0, 0) and lms.scores == []
    assert "release them first" in prof.get("/staff/act").text
    (app.state.course.root / "lti.toml").touch()  # what the dashboard looks for (LTI is on)
    assert 'href="/staff/act/lti"' in prof.get("/staff/act").text  # the outbox's page
    # released, then withheld again before a worker came by: still nothing leaves
    staff_tests.post(prof, "/staff/act/release", {"action": "now"})
    assert set(outbox(app)) == {"s1", "s2"}
    staff_tests.post(prof, "/staff/act/release", {"action": "withhold"})
    assert run_tick(app, lms) == (0, 0) and lms.scores == []
    assert {row.state for row in outbox(app).values()} == {"pending"}


def test_release_now_sends_each_linked_final_score_once_and_the_override(linked, lms):
    app, prof = linked
    staff_tests.post(prof, "/staff/act/release", {"action": "now"})
    [release] = [row for row in staff_tests.audit_rows(app, "release")
                 if row.detail["action"] == "now"]
    assert release.detail["lti_queued"] == 2
    assert lms.scores == []  # the request thread sent nothing: the workers do
    assert run_tick(app, lms) == (2, 0)
    # s1 failed relu_values (3 of 10 points): the gradebook's final scores, exactly
    finals = {row.student_id: row.final_score for row in app.state.gradebook.latest("act")}
    assert sorted(sent(lms)) == [("lms-user-17", finals["s1"], 10.0),
                                 ("lms-user-18", finals["s2"], 10.0)]
    assert finals == {"s1": 7.0, "s2": 10.0}
    assert all(s["url"].endswith("/line_items/42/scores?type=x") for s in lms.scores)
    assert run_tick(app, lms) == (0, 0) and len(lms.scores) == 2  # once

    staff_tests.post(prof, "/staff/act/students/s1/override",
                     {"points": "9.5", "reason": "regraded by hand"},
                     page="/staff/act/students/s1")
    assert run_tick(app, lms) == (1, 0)
    assert sent(lms)[-1] == ("lms-user-17", 9.5, 10.0)  # the override, not the tests' 7
    assert outbox(app)["s1"].sent_score == 9.5
    assert run_tick(app, lms) == (0, 0)

    page = prof.get("/staff/act/lti")
    assert page.status_code == 200 and "9.5" in page.text
    s1 = TestClient(app)  # a student may not read it
    assert s1.get("/staff/act/lti", follow_redirects=False).status_code in (303, 401, 403)


def test_a_due_release_is_sent_once_the_due_date_passes(linked, lms):
    app, prof = linked
    staff_tests.post(prof, "/staff/act/release", {"action": "due"})
    due = staff_tests.CONFIG.due
    assert run_tick(app, lms, now=due - timedelta(minutes=1)) == (0, 0)
    assert lms.scores == [] and outbox(app) == {}
    assert run_tick(app, lms, now=due + timedelta(minutes=1)) == (2, 0)
    assert sorted(sent(lms)) == [("lms-user-17", 7.0, 10.0), ("lms-user-18", 10.0, 10.0)]


def test_a_failed_send_is_recorded_shown_and_retried(linked, lms):
    app, prof = linked
    lms.failures = 3  # s1 and s2 fail now, one of them again at the first retry
    staff_tests.post(prof, "/staff/act/release", {"action": "now"})
    start = datetime.now(timezone.utc)
    assert run_tick(app, lms, now=start) == (0, 2)
    rows = outbox(app)
    assert {row.state for row in rows.values()} == {"pending"}
    assert all(row.attempts == 1 and "HTTP 503" in row.error for row in rows.values())
    failures = staff_tests.audit_rows(app, passback_module.FAILED_ACTION)
    assert sorted(row.detail["student"] for row in failures) == ["s1", "s2"]
    assert all("HTTP 503" in row.detail["error"] for row in failures)
    page = prof.get("/staff/act/lti").text
    assert "HTTP 503" in page and "&lt;b&gt;maintenance" in page  # the LMS's text, escaped
    assert "<b>maintenance" not in page

    assert run_tick(app, lms, now=start) == (0, 0)  # not before its next try
    assert run_tick(app, lms, now=start + timedelta(seconds=61)) == (1, 1)
    assert run_tick(app, lms, now=start + timedelta(seconds=61 + 121)) == (1, 0)
    assert sorted(sent(lms)) == [("lms-user-17", 7.0, 10.0), ("lms-user-18", 10.0, 10.0)]
    assert {row.state for row in outbox(app).values()} == {"sent"}


def test_a_row_out_of_tries_stays_failed_until_the_instructor_resends(linked, lms):
    app, prof = linked
    lms.failures = 10 ** 6
    staff_tests.post(prof, "/staff/act/release", {"action": "now"})
    moment = datetime.now(timezone.utc)
    for _try in range(passback_module.MAX_TRIES):
        run_tick(app, lms, now=moment)
        moment += timedelta(seconds=passback_module.LAST_RETRY_S + 1)
    assert {row.state for row in outbox(app).values()} == {"failed"}
    assert run_tick(app, lms, now=moment + timedelta(days=1)) == (0, 0)  # no more tries
    assert "failed: send again" in prof.get("/staff/act/lti").text
    [final, *_] = [row for row in staff_tests.audit_rows(app, passback_module.FAILED_ACTION)
                   if row.detail["final"]]
    assert final.detail["attempt"] == passback_module.MAX_TRIES

    lms.failures = 0
    reply = staff_tests.post(prof, "/staff/act/lti-passback")
    assert reply.headers["location"] == "/staff/act/lti"
    assert "2 grade(s) of act queued for the LMS" in prof.get("/staff/act/lti").text
    assert run_tick(app, lms) == (2, 0)
    assert sorted(sent(lms)) == [("lms-user-17", 7.0, 10.0), ("lms-user-18", 10.0, 10.0)]
    [resend] = staff_tests.audit_rows(app, "lti-passback")
    assert resend.actor == "prof" and resend.detail == {"assignment": "act", "queued": 2}


def test_a_launch_naming_no_assignment_of_the_course_sends_nothing(tmp_path, lms):
    app = _service(staff_tests.seeded_app(tmp_path), lms)
    browser = TestClient(app)
    form = _launch_form(browser, **{CLAIM + "lis": {"person_sourcedid": "s1"},
                                    CLAIM + "custom": {"assignment": "../../act"}})
    assert browser.post("/lti/launch", data=form, follow_redirects=False).status_code == 303
    prof = staff_tests.signed_in(app, "prof")
    staff_tests.post(prof, "/staff/act/release", {"action": "now"})
    assert run_tick(app, lms) == (0, 0) and lms.scores == [] and outbox(app) == {}


def test_grader_worker_sends_released_grades_between_jobs(linked, lms, monkeypatch):
    """The real worker loop: idle, it runs the passback tick (the LMS set-up the course's
    lti.toml would give, bound to the emulator)."""
    from grader.service import worker

    app, prof = linked
    staff_tests.post(prof, "/staff/act/release", {"action": "now"})
    root = app.state.course.root
    monkeypatch.setitem(passback_module._LOADED, str(root),  # no lti.toml: its stamp is None
                        (None, Lms(PlatformRegistry([platform()], lms.client()), TOOL_KEY)))
    stop = threading.Event()
    original = passback_module.tick

    def tick_then_stop(*args, **kwargs):
        try:
            return original(*args, **kwargs)
        finally:
            stop.set()  # one idle round is enough

    monkeypatch.setattr(passback_module, "tick", tick_then_stop)
    worker.work(app.state.db_url, root, stop=stop)
    assert sorted(sent(lms)) == [("lms-user-17", 7.0, 10.0), ("lms-user-18", 10.0, 10.0)]


def test_a_worker_reads_lti_toml_again_when_it_is_added_broken_or_fixed(tmp_path, monkeypatch,
                                                                      capsys):
    """A worker runs for weeks: linking the LMS (or fixing its file) needs no restart."""
    from grader.course import Course

    course = Course(root=tmp_path, title="LTI")
    ticked: list[object] = []
    monkeypatch.setattr(passback_module, "tick", lambda _s, _c, lms, **_k: ticked.append(lms))
    monkeypatch.setattr(passback_module, "_LOADED", {})

    def tick_once() -> str:
        passback_module.worker_tick(None, course, "w1")
        return capsys.readouterr().err

    assert tick_once() == "" and ticked == []  # no lti.toml: no passback, nothing said
    toml = tmp_path / "lti.toml"
    toml.write_text("tool_key = \"key.pem\"\nunknown = 1\n", encoding="utf-8")
    said = tick_once()
    assert "grade passback is off until lti.toml is fixed" in said and "`unknown`" in said
    assert tick_once() == "" and ticked == []  # said once, not every 15 s
    (tmp_path / "key.pem").write_bytes(TOOL_KEY.key.as_pem(private=True))
    toml.write_text("tool_key = \"key.pem\"\n", encoding="utf-8")
    os.utime(toml, ns=(toml.stat().st_mtime_ns + 10**9,) * 2)  # a coarse clock sees it too
    assert tick_once() == "" and len(ticked) == 1 and isinstance(ticked[0], Lms)
    assert tick_once() == "" and len(ticked) == 2 and ticked[1] is ticked[0]  # read once
    toml.unlink()
    assert tick_once() == "" and len(ticked) == 2  # removed: passback stops


def test_the_launch_table_and_outbox_on_both_databases(tmp_path, db_url):
    lms = FlakyLms()
    app = _service(staff_tests.seeded_app(tmp_path, db_url), lms)
    for student in ("s1", "s2"):
        launched(app, student)
    replay = TestClient(app)
    form = _launch_form(replay, **{CLAIM + "lis": {"person_sourcedid": "s1"}})
    assert replay.post("/lti/launch", data=form, follow_redirects=False).status_code == 303
    replay.cookies.set(STATE_COOKIE + form["state"], "1", path="/lti/")
    assert replay.post("/lti/launch", data=form).status_code == 400
    prof = staff_tests.signed_in(app, "prof")
    staff_tests.post(prof, "/staff/act/release", {"action": "now"})
    assert run_tick(app, lms) == (2, 0)
    assert sorted(sent(lms)) == [("lms-user-17", 7.0, 10.0), ("lms-user-18", 10.0, 10.0)]
    assert run_tick(app, lms) == (0, 0)


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # SQLite has one writer
def test_a_worker_queuing_the_same_rows_during_a_release_does_not_fail_it(tmp_path, db_url,
                                                                           monkeypatch):
    lms = FlakyLms()
    app = _service(staff_tests.seeded_app(tmp_path, db_url), lms)
    for student in ("s1", "s2"):
        launched(app, student)
    prof = staff_tests.signed_in(app, "prof")
    staff_tests.post(prof, "/staff/act/release", {"action": "withhold"})
    gradebook, real_latest = app.state.gradebook, app.state.gradebook.latest

    def latest_while_a_worker_syncs(assignment_id):
        rows = real_latest(assignment_id)
        with app.state.sessions.begin() as worker:  # after the release read the outbox
            for row in rows:
                worker.add(LtiPassbackModel(
                    assignment_id="act", student_id=row.student_id, issuer=ISSUER,
                    client_id="tool-client-1", subject=SUBJECTS[row.student_id],
                    lineitem=LINEITEM, score=row.final_score, max_score=row.max_score,
                    state="pending", attempts=0, next_attempt_at=datetime.now(timezone.utc)))
        return rows

    monkeypatch.setattr(gradebook, "latest", latest_while_a_worker_syncs)
    reply = staff_tests.post(prof, "/staff/act/release", {"action": "now"})
    assert reply.status_code == 303  # released, not a 500
    monkeypatch.setattr(gradebook, "latest", real_latest)
    assert "Grades released on" in prof.get("/staff/act").text
    assert set(outbox(app)) == {"s1", "s2"}
    assert run_tick(app, lms) == (2, 0)


def test_a_0004_gradebook_gains_the_lti_tables_and_loses_them_on_downgrade(tmp_path):
    from alembic import command
    from sqlalchemy import create_engine, inspect

    from grader.gradebook import migrations, open_gradebook

    url = f"sqlite:///{tmp_path / 'g.db'}"
    open_gradebook(url).close()
    tables = {"lti_launches", "lti_states", "lti_nonces", "lti_passbacks"}
    engine = create_engine(url)
    with engine.begin() as connection:
        assert tables <= set(inspect(connection).get_table_names())
        command.downgrade(migrations.alembic_config(connection), "0004")
        assert not tables & set(inspect(connection).get_table_names())
        assert "audit_log" in inspect(connection).get_table_names()  # 0004's stay
        migrations.upgrade(connection)
        assert tables <= set(inspect(connection).get_table_names())
        assert migrations.current(connection) == migrations.head()
    engine.dispose()

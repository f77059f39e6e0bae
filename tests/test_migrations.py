"""The gradebook's Alembic migrations, on SQLite and on a real PostgreSQL server.

A gradebook of the previous release (the schema of commit 1a5e47c, built from a verbatim
copy of its models in tests/files/gradebook/) with grades, an override and a roster is
opened with today's code: every row must be intact and the new columns must exist. A new
gradebook and a migrated one must both equal today's models exactly (a column added to
the models without a migration fails here).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, insert, inspect, update

from grader.config import LatePolicy, load_assignment
from grader.gradebook import migrations, open_gradebook
from grader.gradebook.models import Base

OLD_MODELS = Path(__file__).parent / "files" / "gradebook" / "models_1a5e47c.py"
DUE = datetime(2026, 12, 24, tzinfo=timezone.utc)


@functools.cache
def _old_models():
    spec = importlib.util.spec_from_file_location("models_1a5e47c", OLD_MODELS)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # SQLAlchemy resolves the annotations through it
    spec.loader.exec_module(module)
    return module


def build_previous_release_gradebook(url: str) -> None:
    """A gradebook as release 1a5e47c left it: two graded students (one resubmitted, one
    late, one overridden) and a roster student who never submitted."""
    old = _old_models()
    engine = create_engine(url)
    old.Base.metadata.create_all(engine)
    t = old.Base.metadata.tables
    now = DUE + timedelta(days=3)
    with engine.begin() as db:
        db.execute(insert(t["students"]), [
            {"id": "2023001", "display_name": "张三"}, {"id": "2023002", "display_name": "Ada"},
            {"id": "2023003", "display_name": "李四 (roster only)"}])
        db.execute(insert(t["assignments"]), [
            {"id": "act", "title": "Two activations", "due": DUE, "max_points": 10.0}])
        common = {"assignment_id": "act", "graded_at": now, "source": "/class/x",
                  "layout": "plain", "problems": [], "notes": ["act.py was renamed"],
                  "skipped_statements": [], "execution_time_s": 1.5}
        db.execute(insert(t["submissions"]), [
            {**common, "student_id": "2023001", "files": {"act.py": "a" * 64},
             "content_hash": "1" * 64, "submitted_at": DUE - timedelta(hours=2),
             "late_days": 0, "superseded": True, "superseded_by": None},
            {**common, "student_id": "2023001", "files": {"act.py": "b" * 64},
             "content_hash": "2" * 64, "submitted_at": DUE + timedelta(hours=30),
             "late_days": 2, "superseded": False, "superseded_by": None},
            {**common, "student_id": "2023002", "files": {"act.py": "c" * 64},
             "content_hash": "3" * 64, "submitted_at": DUE - timedelta(days=1),
             "late_days": 0, "superseded": False, "superseded_by": None}])
        # ids 1, 2, 3 in order (no explicit ids: PostgreSQL's sequence must stay in step)
        db.execute(update(t["submissions"]).where(t["submissions"].c.id == 1)
                   .values(superseded_by=2))
        db.execute(insert(t["part_grades"]), [
            {"submission_id": s, "position": i, "name": name, "points": points,
             "max_points": top}
            for s, parts in ((1, ((3.0, 6.0), (4.0, 4.0))), (2, ((6.0, 6.0), (1.0, 4.0))),
                             (3, ((6.0, 6.0), (4.0, 4.0))))
            for i, (name, (points, top)) in enumerate(zip(("relu", "sigmoid"), parts,
                                                          strict=True))])
        db.execute(insert(t["test_results"]), [
            {"submission_id": 2, "position": 0, "part": "relu", "name": "test_relu",
             "case": "test_relu", "status": "passed", "fraction": 1.0, "points": 6.0,
             "max_points": 6.0, "message": "", "duration_s": 0.1, "figures": {},
             "kind": "passed", "diagnosis": None},
            {"submission_id": 2, "position": 1, "part": "sigmoid", "name": "test_sigmoid",
             "case": "test_sigmoid[0]", "status": "failed", "fraction": 0.25, "points": 1.0,
             "max_points": 4.0, "message": "`sigmoid` values differ", "duration_s": 0.2,
             "figures": {"curve": [1.0, 0.5]}, "kind": "wrong result",
             "diagnosis": "sigmoid_sign"}])
        db.execute(insert(t["grades"]), [
            {"submission_id": 1, "score": 7.0, "max_score": 10.0, "late_multiplier": 1.0,
             "final_score": 7.0},
            {"submission_id": 2, "score": 7.0, "max_score": 10.0, "late_multiplier": 0.8,
             "final_score": 5.6},
            {"submission_id": 3, "score": 10.0, "max_score": 10.0, "late_multiplier": 1.0,
             "final_score": 10.0}])
        db.execute(insert(t["overrides"]), [
            {"assignment_id": "act", "student_id": "2023002", "points": 9.0,
             "reason": "copied a line from the lecture", "created_at": now}])
    engine.dispose()


def _schema_differences(url: str) -> list:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return compare_metadata(MigrationContext.configure(connection), Base.metadata)
    finally:
        engine.dispose()


def test_a_previous_release_gradebook_is_upgraded_with_every_row_intact(db_url):
    build_previous_release_gradebook(db_url)
    with open_gradebook(db_url, create=False) as gradebook:
        assert not gradebook.created
        students = {s.id: s.display_name for s in gradebook.students()}
        assert students == {"2023001": "张三", "2023002": "Ada", "2023003": "李四 (roster only)"}
        rows = {row.student_id: row for row in gradebook.latest("act")}
        late, overridden = rows["2023001"], rows["2023002"]
        assert late.submission_id == 2 and late.score == 7.0
        assert (late.late_days, late.late_multiplier, late.final_score) == (2, 0.8, 5.6)
        assert late.submitted_at == DUE + timedelta(hours=30)
        assert late.extension_days == 0.0 and late.notes == ("act.py was renamed",)
        assert [(p.name, p.points, p.max_points) for p in late.grade.parts] == [
            ("relu", 6.0, 6.0), ("sigmoid", 1.0, 4.0)]
        [sigmoid] = late.grade.parts[1].tests
        assert (sigmoid.case, sigmoid.fraction, sigmoid.kind, sigmoid.diagnosis,
                sigmoid.figures) == ("test_sigmoid[0]", 0.25, "wrong result", "sigmoid_sign",
                                     {"curve": [1.0, 0.5]})
        assert overridden.override is not None and overridden.final_score == 9.0
        assert overridden.override.reason == "copied a line from the lecture"
        assert overridden.override.set_by == ""  # not recorded before migration 0002
        assert [s.id for s in gradebook.missing("act")] == ["2023003"]
        history = gradebook.history("act", "2023001")
        assert [(h.submission_id, h.superseded, h.superseded_by) for h in history] == [
            (1, True, 2), (2, False, None)]
    engine = create_engine(db_url)
    with engine.connect() as connection:
        inspector = inspect(connection)
        assert "extensions" in inspector.get_table_names()
        assert {"charged_at", "extension_days"} <= {
            c["name"] for c in inspector.get_columns("submissions")}
        assert "set_by" in {c["name"] for c in inspector.get_columns("overrides")}
        assert migrations.current(connection) == migrations.head()
    engine.dispose()
    assert _schema_differences(db_url) == []


def test_the_upgraded_gradebook_takes_new_grades_and_extensions(db_url):
    """After the upgrade the new features work on the old rows (lateness is recomputed from
    the stored submission time, the old late days are replaced)."""
    build_previous_release_gradebook(db_url)
    act = load_assignment(Path(__file__).parent / "files" / "grading" / "repo" / "assignments"
                          / "act" / "assignment.toml")
    config = dataclasses.replace(act, due=DUE, late=LatePolicy("percent_per_day", percent=10))
    with open_gradebook(db_url) as gradebook:
        gradebook.extend(config, "2023001", 2, "medical certificate", by="ta")
        row = {r.student_id: r for r in gradebook.latest("act")}["2023001"]
        assert (row.late_days, row.late_multiplier, row.final_score) == (0, 1.0, 7.0)
        assert row.extension_reason == "medical certificate"
        [grant] = gradebook.extensions("act", "2023001")
        assert (grant.days, grant.granted_by) == (2.0, "ta")


def test_a_new_gradebook_is_made_by_the_migrations_and_equals_the_models(db_url):
    with open_gradebook(db_url) as gradebook:
        assert gradebook.created
    assert _schema_differences(db_url) == []
    with open_gradebook(db_url) as gradebook:  # opening again changes nothing
        assert not gradebook.created


def test_an_old_release_gradebook_without_kinds_is_adopted(tmp_path):
    """Older still: a gradebook from before outcome kinds (no kind/diagnosis columns)."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    build_previous_release_gradebook(url)
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE test_results DROP COLUMN kind")
        connection.exec_driver_sql("ALTER TABLE test_results DROP COLUMN diagnosis")
    engine.dispose()
    with open_gradebook(url, create=False) as gradebook:
        row = {r.student_id: r for r in gradebook.latest("act")}["2023001"]
        assert row.grade.parts[1].tests[0].kind == ""  # unknown, not invented
    assert _schema_differences(url) == []


def test_migrations_ship_inside_the_package():
    folder = Path(migrations.__file__).parent
    assert (folder / "env.py").is_file()
    names = sorted(p.name for p in (folder / "versions").glob("0*.py"))
    assert names[:3] == ["0001_baseline.py", "0002_grade_record.py", "0003_jobs.py"]
    assert migrations.head() == names[-1][:4]  # the newest file is the head (0004: issue 13)


@pytest.mark.parametrize("revision", ["0001"])
def test_downgrade_to_the_baseline_and_up_again(tmp_path, revision):
    from alembic import command

    url = f"sqlite:///{tmp_path / 'g.db'}"
    open_gradebook(url).close()
    engine = create_engine(url)
    with engine.begin() as connection:
        command.downgrade(migrations.alembic_config(connection), revision)
        assert "extensions" not in inspect(connection).get_table_names()
        migrations.upgrade(connection)
        assert migrations.current(connection) == migrations.head()
    engine.dispose()

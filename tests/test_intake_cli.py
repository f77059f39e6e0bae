"""Through the real `grader autograde` CLI and sandbox: a class folder with hostile and
honest-but-unusual submissions (issue 9, items 4, 5 and 8).

One batch holds: a 200,000-term expression (the grader's parser overflows), the
reference right after it, the reference with a UTF-8 BOM and in GBK with a PEP 263
coding line, a zip whose manifest claims another student's id, a student with two
submissions, and a folder whose name carries terminal escapes.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import pytest

FILES = Path(__file__).parent / "files" / "grading"
REFERENCE = (FILES / "repo" / "solutions" / "act.py").read_text(encoding="utf-8")
WRONG = (FILES / "submissions" / "wrong_relu" / "act.py").read_bytes()
CHINESE = "# 激活函数: 修正线性单元与S型函数\n"
ANSI = "\x1b[31mevil\x1b[0m"


def _grader(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    return subprocess.run([sys.executable, "-m", "grader", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def _student(klass: Path, name: str, data: bytes) -> None:
    (klass / name).mkdir()
    (klass / name / "act.py").write_bytes(data)


@pytest.fixture(scope="module")
def batch(tmp_path_factory) -> dict:
    """One `grader autograde` run over the hostile class; its output, results and rows."""
    root = tmp_path_factory.mktemp("cli")
    repo = root / "course"
    shutil.copytree(FILES / "repo", repo)
    toml = repo / "assignments" / "act" / "assignment.toml"  # the call limit's one home
    toml.write_text(toml.read_text().replace("[budgets]\ncall_timeout_s", "[sandbox]\n"
                                             "call_timeout_s"))
    klass = root / "class"
    klass.mkdir()
    deep = REFERENCE + "\nTOTAL = " + " + ".join(["1"] * 200_000) + "\n"
    _student(klass, "a_deep", deep.encode("utf-8"))
    _student(klass, "b_good", REFERENCE.encode("utf-8"))
    _student(klass, "c_bom", b"\xef\xbb\xbf" + (CHINESE + REFERENCE).encode("utf-8"))
    _student(klass, "d_gbk", ("# -*- coding: gbk -*-\n" + CHINESE + REFERENCE).encode("gbk"))
    _student(klass, ANSI, REFERENCE.encode("utf-8"))
    with zipfile.ZipFile(klass / "e_mallory.zip", "w") as archive:
        archive.writestr("act.py", WRONG)
        archive.writestr("manifest.json", json.dumps({
            "student_id": "b_good", "assignment": "act", "created_at": "2020-01-01T00:00Z"}))
    with zipfile.ZipFile(klass / "c_bom.zip", "w") as archive:  # older: superseded
        archive.writestr("act.py", WRONG)
    os.utime(klass / "c_bom.zip", (1_600_000_000, 1_600_000_000))
    db = root / "gradebook.db"
    done = _grader("autograde", "act", str(klass), "--out", str(root / "graded"), "--db",
                   str(db), "--workers", "2", "--submitted-at", "2026-12-24T00:00+08:00",
                   cwd=repo)
    table = done.stdout.split("\n\n")[0].splitlines()[1:]
    with sqlite3.connect(db) as connection:
        rows = {student: (json.loads(problems), json.loads(notes), submitted_at, late_days)
                for student, problems, notes, submitted_at, late_days in connection.execute(
                    "select student_id, problems, notes, submitted_at, late_days "
                    "from submissions")}
    return {"run": done, "scores": {line.split()[0]: line.split()[-1] for line in table},
            "graded": root / "graded", "rows": rows}


def _results(batch: dict, student: str) -> dict:
    return json.loads((batch["graded"] / student / "results.json").read_text())


def test_the_200000_term_expression_is_a_problem_and_the_batch_goes_on(batch) -> None:
    # 3: some submissions had problems, listed
    assert batch["run"].returncode == 3, batch["run"].stderr
    assert "Traceback" not in batch["run"].stderr
    assert batch["scores"]["a_deep"] == "0/10"
    assert batch["scores"]["b_good"] == "10/10"  # the next submission grades normally
    messages = {t["output"] for t in _results(batch, "a_deep")["tests"]}
    line = REFERENCE.count("\n") + 2  # the expression's line
    assert any(f"the grader could not parse act.py: the statement on line {line} is too "
               "deeply nested for Python's parser" in m for m in messages), messages


def test_bom_and_gbk_sources_score_like_their_utf8_twin(batch) -> None:
    assert batch["scores"]["c_bom"] == batch["scores"]["d_gbk"] == "10/10"
    for student in ("c_bom", "d_gbk"):
        assert {t["status"] for t in _results(batch, student)["tests"]} == {"passed"}


def test_a_manifest_claiming_another_id_never_moves_the_grade(batch) -> None:
    assert batch["scores"]["e_mallory"] == "7/10" and batch["scores"]["b_good"] == "10/10"
    problems, notes, _, _ = batch["rows"]["e_mallory"]
    assert ("manifest.json claims student id 'b_good'; the submission is graded as "
            "'e_mallory', the id from the submission's file or folder name: the manifest is "
            "only a claim") in problems
    assert any("claims it was created at 2020-01-01T00:00:00+00:00" in n for n in notes)


def test_the_instructors_time_is_the_submission_time(batch) -> None:
    for _, _, submitted_at, late_days in batch["rows"].values():
        moment = datetime.fromisoformat(submitted_at)
        moment = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
        assert moment == datetime(2026, 12, 23, 16, tzinfo=timezone.utc)
        assert late_days == 1  # due 2026-12-23T00:00+08:00


def test_duplicates_are_reported_and_the_latest_counts(batch) -> None:
    assert ("duplicate: student c_bom handed in more than one submission: c_bom counts (the "
            "latest by receipt time") in batch["run"].stderr
    assert "superseded and not graded: c_bom.zip" in batch["run"].stderr
    _, notes, _, _ = batch["rows"]["c_bom"]
    assert any("superseded and not graded: c_bom.zip" in note for note in notes)
    assert batch["scores"]["c_bom"] == "10/10"  # the folder, not the older wrong zip


def test_a_name_with_terminal_escapes_is_recorded_under_a_placeholder(batch) -> None:
    [placeholder] = [s for s in batch["rows"] if s.startswith("invalid-")]
    problems, _, _, _ = batch["rows"][placeholder]
    assert any("gives no usable student id" in p and "\\x1b" in p for p in problems)
    assert "\x1b" not in batch["run"].stdout and "\x1b" not in batch["run"].stderr
    assert batch["scores"][placeholder] == "10/10"
    assert sorted(p.name for p in batch["graded"].iterdir()) == sorted(
        ["a_deep", "b_good", "c_bom", "d_gbk", "e_mallory", placeholder])

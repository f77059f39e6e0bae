"""Who and when come from the instructor's side: hostile ids, manifest claims, lateness,
duplicates (issue 9, "The manifest is a claim")."""

from __future__ import annotations

import dataclasses
import json
import os
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from grader.config import LatePolicy, load_assignment
from grader.gradebook import RosterError, open_gradebook, read_roster
from grader.ids import validate_id
from grader.intake import Submission, at_instructor_time, intake, lateness_time, survey
from grader.scoring import score

CODE = b"import numpy as np\n\n\ndef relu(x):\n    return np.maximum(x, 0)\n"
EXPECTED = ("mlp_numpy.py",)
CONFIG = load_assignment(Path(__file__).parent / "files" / "grading" / "repo" / "assignments"
                         / "act" / "assignment.toml")
DUE = CONFIG.due
HOSTILE_CLAIMS = {
    "nul": "2023001\0admin",
    "dotdot": "../../etc/cron.d/x",
    "absolute": "/root/.ssh/authorized_keys",
    "ansi": "\x1b[2J\x1b[31mOWNED\x1b[0m",
    "long": "7" * 10_000,
}


def run(source: Path, tmp_path: Path, **kwargs) -> Submission:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    kwargs.setdefault("expected_files", EXPECTED)
    return intake(source, work, **kwargs)


def packed(path: Path, student_id: object, created_at: str = "2026-12-20T10:00:00+08:00",
           code: bytes = CODE) -> Path:
    """A zip as `grader submit` writes it, with the given manifest claims."""
    import hashlib

    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("mlp_numpy.py", code)
        archive.writestr("manifest.json", json.dumps({
            "student_id": student_id, "assignment": "mlp_numpy", "created_at": created_at,
            "files": {"mlp_numpy.py": hashlib.sha256(code).hexdigest()}}))
    return path


def _safe(text: str) -> bool:
    return not any(ord(c) < 32 or 0x7f <= ord(c) < 0xa0 for c in text)


# --- ids --------------------------------------------------------------------------------


@pytest.mark.parametrize("claim", HOSTILE_CLAIMS.values(), ids=HOSTILE_CLAIMS.keys())
def test_a_hostile_manifest_id_is_a_problem_and_never_the_id(tmp_path, claim) -> None:
    sub = run(packed(tmp_path / "mlp_numpy-2023001.zip", claim), tmp_path,
              assignment="mlp_numpy")
    assert sub.student_id == "2023001" and sub.claimed_id is None
    assert sub.files == {"mlp_numpy.py": sub.files["mlp_numpy.py"]}  # still graded
    [problem] = sub.problems
    assert problem.startswith("manifest.json claims a student id that is not valid: ")
    assert problem.endswith("; the id comes from the download's name")
    assert _safe(problem) and len(problem) < 400
    assert sub.workspace.parent == tmp_path / "work"
    assert sub.workspace.name.startswith("2023001-")


def test_a_manifest_claiming_another_students_id_changes_nothing(tmp_path) -> None:
    """Bob's zip with Alice's id in its manifest stays Bob's, and the instructor is told."""
    sub = run(packed(tmp_path / "bob.zip", "alice"), tmp_path)
    assert (sub.student_id, sub.claimed_id, sub.layout) == ("bob", "alice", "plain")
    assert sub.problems == (
        "manifest.json claims student id 'alice'; the submission is graded as 'bob', the id "
        "from the submission's file or folder name: the manifest is only a claim",)


def test_in_an_lms_layout_the_claim_is_a_note(tmp_path) -> None:
    canvas = packed(tmp_path / "smithbob_340934_208490284_mlp_numpy-2023001.zip", "2023001")
    sub = run(canvas, tmp_path)
    assert (sub.student_id, sub.claimed_id, sub.layout) == ("340934", "2023001", "canvas")
    assert sub.problems == ()
    assert any("claims student id '2023001'; the submission is graded as '340934'" in note
               and "a Canvas user id" in note for note in sub.notes)


@pytest.mark.parametrize("name", [
    "\x1b[31malice\x1b[0m", "tab\there", "...", "a" * 200, "new\nline",
    "Ada Lovelace_" + "9" * 100 + "_assignsubmission_file_"])
def test_a_hostile_folder_name_is_recorded_under_a_placeholder(tmp_path, name) -> None:
    folder = tmp_path / "class" / name
    folder.mkdir(parents=True)
    (folder / "mlp_numpy.py").write_bytes(CODE)
    sub = run(folder, tmp_path)
    assert sub.student_id.startswith("invalid-") and validate_id(sub.student_id)
    assert sub.files  # the work is still graded
    [problem] = sub.problems
    assert "gives no usable student id" in problem and _safe(problem)
    assert f"recorded under {sub.student_id}: rename it" in problem
    assert _safe(sub.workspace.name) and sub.workspace.parent == tmp_path / "work"
    other = tmp_path / "class2" / (name.replace("9", "8") if "_assign" in name else name + "x")
    other.mkdir(parents=True)
    assert run(other, tmp_path).student_id != sub.student_id  # never merged with another


def test_grader_submit_names_the_zip_after_a_valid_id_only(tmp_path) -> None:
    from grader.kit.submit import SubmitRefused, pack

    folder = tmp_path / "act"
    folder.mkdir()
    toml = (CONFIG.root / "assignment.toml").read_text(encoding="utf-8")
    (folder / "assignment.toml").write_text(toml.replace('reference = "solutions/act.py"\n', ""))
    (folder / "act.py").write_bytes(CODE)
    for bad in ("../../x", "/etc/passwd", "a\0b", "\x1b[31m", "9" * 65, "  "):
        with pytest.raises(SubmitRefused, match=r"^--student-id: the student id"):
            pack(folder, student_id=bad)
    assert sorted(p.name for p in folder.iterdir()) == ["act.py", "assignment.toml"]
    assert pack(folder, student_id=" 2023001 ").name == "act-2023001.zip"


def test_the_roster_refuses_invalid_ids_with_the_line(tmp_path) -> None:
    path = tmp_path / "roster.csv"
    path.write_text("id,name\n2023001,Ada\n../../etc,Eve\n", encoding="utf-8")
    with pytest.raises(RosterError, match=r"roster.csv: line 3: the student id '\.\./\.\./etc' "
                                          "holds the character '/'"):
        read_roster(path)
    path.write_text("id,name\n" + "1" * 65 + ",Long\n", encoding="utf-8")
    with pytest.raises(RosterError, match="line 2: .* is 65 characters long; the limit is 64"):
        read_roster(path)


# --- time ---------------------------------------------------------------------------------


def test_a_backdated_manifest_time_is_shown_and_never_used(tmp_path) -> None:
    zipped = packed(tmp_path / "mlp_numpy-2023001.zip", "2023001",
                    created_at="2020-01-01T00:00:00Z")
    os.utime(zipped, (1_900_000_000, 1_900_000_000))
    sub = run(zipped, tmp_path, assignment="mlp_numpy")
    assert sub.claimed_at == datetime(2020, 1, 1, tzinfo=timezone.utc)
    assert sub.submitted_at == datetime.fromtimestamp(1_900_000_000, tz=timezone.utc)
    assert sub.time_source == "receipt" and sub.problems == ()
    assert ("manifest.json claims it was created at 2020-01-01T00:00:00+00:00; lateness uses "
            "the instructor's side (LMS, receipt time), never this claim") in sub.notes


def test_times_inside_a_zip_are_never_the_receipt_time(tmp_path) -> None:
    folder = tmp_path / "Ada Lovelace_123456_assignsubmission_file_"
    folder.mkdir()
    with zipfile.ZipFile(folder / "work.zip", "w") as archive:
        archive.writestr(zipfile.ZipInfo("mlp_numpy.py", (1985, 1, 1, 0, 0, 0)), CODE)
    os.utime(folder / "work.zip", (1_900_000_000, 1_900_000_000))
    sub = run(folder, tmp_path)
    assert sub.submitted_at == datetime.fromtimestamp(1_900_000_000, tz=timezone.utc)


def test_submitted_at_from_the_instructor_applies_to_all(tmp_path) -> None:
    moment = datetime.fromisoformat("2026-12-01T23:59+08:00")
    sub = run(packed(tmp_path / "bob.zip", "bob", created_at="2020-01-01T00:00Z"), tmp_path,
              submitted_at=moment)
    assert sub.submitted_at == moment and sub.time_source == "instructor"
    assert sub.submitted_at.tzinfo == timezone.utc
    with pytest.raises(ValueError, match="has no UTC offset"):
        at_instructor_time(sub, datetime(2026, 12, 1, 23, 59))


def _canvas(tmp_path: Path, name: str, mtime: float) -> Submission:
    path = tmp_path / name
    path.write_bytes(CODE)
    os.utime(path, (mtime, mtime))
    return run(path, tmp_path)


def _recorded(tmp_path: Path, submission: Submission, policy: LatePolicy) -> tuple[int, float]:
    config = dataclasses.replace(CONFIG, late=policy)
    grade = score(config.parts, [], student_id=submission.student_id, assignment="act",
                  execution_time_s=0.0)
    tmp_path.mkdir(exist_ok=True)
    with open_gradebook(tmp_path / "gb.db") as gradebook:
        gradebook.record(config, dataclasses.replace(submission, files={"act.py": "0" * 64}),
                         grade)
        [row] = gradebook.latest("act")
    return row.late_days, row.late_multiplier


def test_canvas_late_flag_makes_a_submission_late(tmp_path) -> None:
    """Canvas says LATE: at least one late day, even when the files' times say on time."""
    early = (DUE - timedelta(days=3)).timestamp()
    late = _canvas(tmp_path, "lovelaceada_LATE_12345_67890_mlp_numpy.py", early)
    assert late.late_flag and late.submitted_at < DUE
    assert lateness_time(late, DUE) == DUE + timedelta(seconds=1)
    assert lateness_time(late, DUE, 60) == DUE + timedelta(minutes=60, seconds=1)
    policy = LatePolicy("percent_per_day", percent=10)
    assert _recorded(tmp_path / "a", late, policy) == (1, 0.9)
    assert _recorded(tmp_path / "b", late, LatePolicy("zero_after")) == (1, 0.0)
    three_days = _canvas(tmp_path, "lovelaceada_LATE_12345_67891_mlp_numpy.py",
                         (DUE + timedelta(days=2, hours=1)).timestamp())
    assert _recorded(tmp_path / "c", three_days, policy) == (3, 0.7)


def test_canvas_without_late_flag_is_on_time_and_instructor_time_wins(tmp_path) -> None:
    unzipped_today = (DUE + timedelta(days=5)).timestamp()  # unzipping sets the times
    on_time = _canvas(tmp_path, "turingalan_222_333_mlp_numpy.py", unzipped_today)
    assert lateness_time(on_time, DUE) == DUE
    assert _recorded(tmp_path / "a", on_time, LatePolicy("zero_after")) == (0, 1.0)
    told = at_instructor_time(on_time, DUE + timedelta(days=2))
    assert _recorded(tmp_path / "b", told, LatePolicy("zero_after")) == (2, 0.0)
    plain = run(packed(tmp_path / "bob.zip", "bob"), tmp_path)
    assert lateness_time(plain, DUE) == plain.submitted_at  # the receipt time, as is


# --- duplicates ---------------------------------------------------------------------------


def test_a_zip_and_a_folder_of_one_student_latest_counts(tmp_path) -> None:
    klass = tmp_path / "class"
    (klass / "alice").mkdir(parents=True)
    (klass / "alice" / "mlp_numpy.py").write_bytes(CODE)
    os.utime(klass / "alice" / "mlp_numpy.py", (1_800_000_000, 1_800_000_000))
    packed(klass / "alice.zip", "alice")
    os.utime(klass / "alice.zip", (1_800_000_100, 1_800_000_100))
    (klass / "bob").mkdir()
    (klass / "bob" / "mlp_numpy.py").write_bytes(CODE)
    found = survey(klass)
    assert [p.name for p in found.submissions] == ["alice.zip", "bob"]
    [duplicate] = found.duplicates
    assert (duplicate.student_id, duplicate.counting.name,
            [p.name for p in duplicate.superseded]) == ("alice", "alice.zip", ["alice"])
    assert str(duplicate) == (
        "student alice handed in more than one submission: alice.zip counts (the latest by "
        "receipt time, the newest file modification time of the download; ties go to the "
        "last name in sorted order); superseded and not graded: alice")
    os.utime(klass / "alice.zip", (1_800_000_000, 1_800_000_000))  # a tie: by name
    assert [p.name for p in survey(klass).submissions] == ["alice.zip", "bob"]
    os.utime(klass / "alice.zip", (1_700_000_000, 1_700_000_000))
    assert [p.name for p in survey(klass).submissions] == ["alice", "bob"]


def test_a_canvas_resubmission_and_its_original(tmp_path) -> None:
    klass = tmp_path / "class"
    klass.mkdir()
    (klass / "lovelaceada_12345_500_mlp_numpy.py").write_bytes(b"x = 'first'\n")
    (klass / "lovelaceada_12345_900_mlp_numpy-1.py").write_bytes(CODE)
    found = survey(klass)
    assert len(found.submissions) == 1
    [duplicate] = found.duplicates
    assert duplicate.counting.name == "lovelaceada_12345_900_mlp_numpy-1.py"
    assert [p.name for p in duplicate.superseded] == ["lovelaceada_12345_500_mlp_numpy.py"]
    sub = run(found.submissions[0], tmp_path)
    assert (sub.workspace / "mlp_numpy.py").read_bytes() == CODE
    assert any("used mlp_numpy.py, the latest upload (Canvas numbers uploads in order)" in n
               for n in sub.notes)
    from grader import i18n

    with i18n.speaking("zh_CN"):  # the note is in the student's report: their language
        again = run(found.submissions[0], tmp_path)
    assert any("出现了不止一次" in n and "最新上传的那份" in n for n in again.notes), again.notes


def test_the_cli_refuses_a_hostile_student_id(tmp_path) -> None:
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1]),
           "GRADER_LANG": "en"}  # the lecture's course speaks zh_CN
    done = subprocess.run([sys.executable, "-m", "grader", "submit", "--student-id",
                           "../\x1b[2J" + "x" * 10_000, str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "argument --student-id: the student id" in done.stderr
    assert "\x1b" not in done.stderr and len(done.stderr) < 2000
    assert list(tmp_path.iterdir()) == []


def test_a_late_marker_on_any_file_of_a_canvas_user_marks_the_submission(tmp_path) -> None:
    klass = tmp_path / "class"
    klass.mkdir()
    (klass / "lovelaceada_12345_500_notes.txt").write_text("on time")
    (klass / "lovelaceada_LATE_12345_900_mlp_numpy.py").write_bytes(CODE)
    [first] = survey(klass).submissions
    assert first.name == "lovelaceada_12345_500_notes.txt"  # sorted first, not marked
    sub = run(first, tmp_path)
    assert sub.late_flag and sub.files and sub.student_id == "12345"

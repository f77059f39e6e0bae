"""Tests for grader.intake: submissions in every shape → private workspace copies."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import zipfile
from datetime import datetime, timezone
from pathlib import Path

from grader.intake import IntakeLimits, Submission, discover, intake
from grader.intake.files import ONLY_ASSIGNMENT

FILES = Path(__file__).resolve().parent / "files" / "intake"
EXPECTED = ("mlp_numpy.py",)
CODE = b"import numpy as np\n\n\ndef relu(x):\n    return np.maximum(x, 0)\n"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def run(source: Path, tmp_path: Path, **kwargs) -> Submission:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    kwargs.setdefault("expected_files", EXPECTED)
    return intake(source, work, **kwargs)


def make_zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


def test_folder_copies_only_the_expected_files(tmp_path: Path) -> None:
    folder = tmp_path / "alice"
    folder.mkdir()
    (folder / "mlp_numpy.py").write_bytes(CODE)
    (folder / "notes.txt").write_text("hi")
    (folder / "__pycache__").mkdir()
    sub = run(folder, tmp_path)
    assert sub.problems == () and sub.notes == () and sub.complete
    assert sub.student_id == "alice" and sub.layout == "plain"
    assert sorted(p.name for p in sub.workspace.iterdir()) == ["mlp_numpy.py"]
    assert (sub.workspace / "mlp_numpy.py").read_bytes() == CODE
    assert dict(sub.files) == {"mlp_numpy.py": sha(CODE)}
    assert stat.S_IMODE(sub.workspace.stat().st_mode) == 0o700
    assert sub.workspace.parent == tmp_path / "work"
    assert sub.submitted_at is not None and sub.submitted_at.tzinfo is not None


def test_each_intake_gets_a_fresh_workspace(tmp_path: Path) -> None:
    single = tmp_path / "mlp_numpy.py"
    single.write_bytes(CODE)
    assert run(single, tmp_path).workspace != run(single, tmp_path).workspace


def test_missing_file_lists_what_was_found(tmp_path: Path) -> None:
    folder = tmp_path / "bob"
    folder.mkdir()
    for name in ("a.py", "b.py", "notes.txt"):
        (folder / name).write_text("x = 1\n")
    sub = run(folder, tmp_path)
    assert sub.problems == ("mlp_numpy.py is missing; found: a.py, b.py, notes.txt; hand in "
                            "mlp_numpy.py, or give the file that holds the solution that name",)
    assert sub.files == {} and sub.missing == ("mlp_numpy.py",)
    assert list(sub.workspace.iterdir()) == []


def test_a_single_renamed_file_is_accepted_with_a_note(tmp_path: Path) -> None:
    folder = tmp_path / "carol"
    folder.mkdir()
    (folder / "mlp.py").write_bytes(CODE)
    (folder / "notes.txt").write_text("hi")
    sub = run(folder, tmp_path)
    assert sub.problems == ()
    assert sub.notes == ("mlp_numpy.py was not found; took mlp.py as mlp_numpy.py",)
    assert (sub.workspace / "mlp_numpy.py").read_bytes() == CODE


def test_single_py_file(tmp_path: Path) -> None:
    path = tmp_path / "mlp_numpy.py"
    path.write_bytes(CODE)
    os.utime(path, (1_700_000_000, 1_700_000_000))
    sub = run(path, tmp_path)
    assert sub.problems == () and sub.files["mlp_numpy.py"] == sha(CODE)
    assert sub.submitted_at == datetime.fromtimestamp(1_700_000_000, tz=timezone.utc)


def test_zip_with_a_single_top_folder(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "dave.zip", {
        "dave/mlp_numpy.py": CODE, "dave/README.md": b"hi", "__MACOSX/dave/._mlp_numpy.py": b"x"})
    sub = run(archive, tmp_path)
    assert sub.problems == () and sub.student_id == "dave"
    assert (sub.workspace / "mlp_numpy.py").read_bytes() == CODE


def test_zip_slip_entries_are_never_extracted(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "eve.zip", {
        "../evil.py": b"boom", "/etc/abs.py": b"boom", "mlp_numpy.py": CODE})
    sub = run(archive, tmp_path)
    assert (sub.workspace / "mlp_numpy.py").read_bytes() == CODE
    assert any("'../evil.py'" in p and "outside the submission" in p for p in sub.problems)
    assert any("'/etc/abs.py'" in p and "absolute path" in p for p in sub.problems)
    assert not (tmp_path / "evil.py").exists() and not (tmp_path / "work" / "evil.py").exists()
    assert sorted(p.name for p in sub.workspace.iterdir()) == ["mlp_numpy.py"]


def test_zip_symlink_entry_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "mallory.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        link = zipfile.ZipInfo("mlp_numpy.py")
        link.create_system = 3
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
    sub = run(archive, tmp_path)
    assert any("is a symbolic link" in p for p in sub.problems)
    assert sub.files == {} and list(sub.workspace.iterdir()) == []


def test_zip_too_large_or_too_many_files(tmp_path: Path) -> None:
    big = tmp_path / "big.zip"
    with zipfile.ZipFile(big, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("mlp_numpy.py", CODE)
        archive.writestr("data.bin", b"\0" * 200_000)
    sub = run(big, tmp_path, limits=IntakeLimits(max_total_mb=0.1))
    assert sub.problems == ("the zip file big.zip expands to 0.2 MB; the limit is 0.1 MB; "
                            f"{ONLY_ASSIGNMENT}",)
    assert sub.files == {}
    many = make_zip(tmp_path / "many.zip", {f"f{i}.txt": b"x" for i in range(6)})
    sub = run(many, tmp_path, limits=IntakeLimits(max_files=5))
    assert sub.problems == ("the zip file many.zip holds 6 entries; the limit is 5 (folders "
                            f"count too); {ONLY_ASSIGNMENT}",)


def test_damaged_zip(tmp_path: Path) -> None:
    bad = tmp_path / "frank.zip"
    bad.write_bytes(b"PK\x03\x04 this is not really a zip")
    sub = run(bad, tmp_path)
    assert len(sub.problems) == 1 and "the zip file frank.zip is damaged" in sub.problems[0]
    assert sub.student_id == "frank"


def test_corrupted_zip_member_fails_its_crc(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "gina.zip", {"mlp_numpy.py": CODE})
    data = bytearray(path.read_bytes())
    data[data.index(b"numpy as np")] ^= 0xFF  # stored, so the text is in the file
    path.write_bytes(bytes(data))
    sub = run(path, tmp_path)
    assert any("damaged" in p for p in sub.problems) and sub.files == {}


def test_notebook_becomes_a_module(tmp_path: Path) -> None:
    sub = run(FILES / "mlp_numpy.ipynb", tmp_path)
    assert sub.problems == ()
    assert sub.notes == ("mlp_numpy.ipynb was converted to mlp_numpy.py (code cells only)",)
    module = (sub.workspace / "mlp_numpy.py").read_text()
    assert "# %matplotlib inline" in module and "# !pip install tqdm" in module
    assert "# %%bash\n# echo hello\n# ls -l" in module
    assert "y = relu(np.arange(-3, 3))" in module and "# files = !ls" in module
    assert "# My MLP" not in module
    namespace: dict = {}
    exec(compile(module, "mlp_numpy.py", "exec"), namespace)
    assert namespace["relu"](-1) == 0
    assert sub.files["mlp_numpy.py"] == sha(module.encode())


def test_invalid_notebook_is_a_problem(tmp_path: Path) -> None:
    path = tmp_path / "mlp_numpy.ipynb"
    path.write_text('{"cells": [')
    sub = run(path, tmp_path)
    assert len(sub.problems) == 1
    assert sub.problems[0].startswith("mlp_numpy.ipynb: notebook is not valid JSON: ")
    assert sub.files == {}


def test_moodle_folder_layout(tmp_path: Path) -> None:
    folder = tmp_path / "Ada Lovelace_123456_assignsubmission_file_"
    folder.mkdir()
    (folder / "mlp_numpy.py").write_bytes(CODE)
    sub = run(folder, tmp_path)
    assert (sub.student_id, sub.display_name, sub.layout) == ("123456", "Ada Lovelace", "moodle")
    assert sub.problems == () and sub.workspace.name.startswith("123456-")


def test_moodle_flat_files_of_one_participant(tmp_path: Path) -> None:
    klass = tmp_path / "class"
    klass.mkdir()
    (klass / "Ada Lovelace_123456_assignsubmission_file_mlp_numpy.py").write_bytes(CODE)
    (klass / "Ada Lovelace_123456_assignsubmission_file_notes.txt").write_text("hi")
    (klass / "Alan Turing_654321_assignsubmission_file_mlp_numpy.py").write_bytes(b"x = 2\n")
    found = discover(klass)
    assert [p.name.split("_")[1] for p in found] == ["123456", "654321"]
    sub = run(found[0], tmp_path)
    assert sub.student_id == "123456" and sub.problems == ()
    assert (sub.workspace / "mlp_numpy.py").read_bytes() == CODE


def test_canvas_layout_groups_files_and_reads_late_flag(tmp_path: Path) -> None:
    klass = tmp_path / "class"
    klass.mkdir()
    (klass / "lovelaceada_LATE_12345_67890_mlp_numpy-1.py").write_bytes(CODE)
    (klass / "lovelaceada_LATE_12345_67891_notes.txt").write_text("hi")
    (klass / "turingalan_222_333_mlp_numpy.py").write_bytes(b"x = 2\n")
    (klass / "grades.csv").write_text("a,b\n")
    found = discover(klass)
    assert [p.name for p in found] == ["lovelaceada_LATE_12345_67890_mlp_numpy-1.py",
                                       "turingalan_222_333_mlp_numpy.py"]
    sub = run(found[0], tmp_path)
    assert (sub.student_id, sub.display_name, sub.late_flag, sub.layout) == (
        "12345", "lovelaceada", True, "canvas")
    assert sub.problems == () and (sub.workspace / "mlp_numpy.py").read_bytes() == CODE
    on_time = run(found[1], tmp_path)
    assert (on_time.student_id, on_time.late_flag) == ("222", False)


def test_canvas_zip_upload(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "smithbob_340934_208490284_work.zip",
                       {"work/mlp_numpy.py": CODE})
    sub = run(archive, tmp_path)
    assert sub.student_id == "340934" and sub.problems == ()


def _manifest_folder(tmp_path: Path, files: dict[str, str]) -> Path:
    folder = tmp_path / "packed"
    folder.mkdir()
    (folder / "mlp_numpy.py").write_bytes(CODE)
    (folder / "manifest.json").write_text(json.dumps({
        "student_id": "s2026001", "assignment": "mlp_numpy", "files": files,
        "created_at": "2026-12-20T10:00:00+08:00"}))
    return folder


def test_manifest_id_and_time_are_claims_only(tmp_path: Path) -> None:
    folder = _manifest_folder(tmp_path, {"mlp_numpy.py": sha(CODE)})
    os.utime(folder / "mlp_numpy.py", (1_800_000_000, 1_800_000_000))
    sub = run(folder, tmp_path, assignment="mlp_numpy")
    assert (sub.student_id, sub.layout) == ("packed", "plain")
    assert (sub.claimed_id, sub.claimed_at) == (
        "s2026001", datetime(2026, 12, 20, 2, tzinfo=timezone.utc))
    assert sub.submitted_at == datetime.fromtimestamp(1_800_000_000, tz=timezone.utc)
    assert sub.time_source == "receipt"
    assert sub.problems == (
        "manifest.json claims student id 's2026001'; the submission is graded as 'packed', "
        "the id from the submission's file or folder name: the manifest is only a claim",)
    assert sorted(p.name for p in sub.workspace.iterdir()) == ["mlp_numpy.py"]


def test_manifest_with_tampered_hash_or_other_assignment(tmp_path: Path) -> None:
    folder = _manifest_folder(tmp_path, {"mlp_numpy.py": "0" * 64, "extra.py": "1" * 64})
    sub = run(folder, tmp_path, assignment="tf_basics")
    text = "\n".join(sub.problems)
    assert "mlp_numpy.py changed after `grader submit` packed it" in text
    assert "manifest.json lists extra.py but the submission has no such file" in text
    assert "manifest.json is for assignment 'mlp_numpy'; expected 'tf_basics'" in text
    assert sub.files == {"mlp_numpy.py": sha(CODE)}  # still graded; the report says why


def test_broken_manifest_falls_back_to_the_name(tmp_path: Path) -> None:
    folder = tmp_path / "henry"
    folder.mkdir()
    (folder / "mlp_numpy.py").write_bytes(CODE)
    (folder / "manifest.json").write_text("{nope")
    sub = run(folder, tmp_path)
    assert sub.student_id == "henry"
    assert sub.problems[0].startswith("manifest.json is not valid JSON")


def test_missing_source_never_raises(tmp_path: Path) -> None:
    sub = run(tmp_path / "ghost.zip", tmp_path)
    assert sub.problems and "does not exist" in sub.problems[0]
    assert sub.workspace.is_dir()


def test_folder_with_symlink_ignores_it(tmp_path: Path) -> None:
    folder = tmp_path / "ivan"
    folder.mkdir()
    (folder / "mlp_numpy.py").symlink_to("/etc/passwd")
    sub = run(folder, tmp_path)
    assert sub.files == {} and "mlp_numpy.py is a symbolic link and was ignored" in sub.notes


def test_discover_lists_one_entry_per_submission(tmp_path: Path) -> None:
    klass = tmp_path / "class"
    klass.mkdir()
    (klass / "alice").mkdir()
    make_zip(klass / "bob.zip", {"mlp_numpy.py": CODE})
    (klass / "carol.py").write_bytes(CODE)
    shutil.copy(FILES / "mlp_numpy.ipynb", klass / "dave.ipynb")
    (klass / "readme.txt").write_text("not a submission")
    (klass / ".DS_Store").write_text("")
    (klass / "__MACOSX").mkdir()
    assert [p.name for p in discover(klass)] == ["alice", "bob.zip", "carol.py", "dave.ipynb"]


def test_moodle_folder_holding_one_zip(tmp_path: Path) -> None:
    folder = tmp_path / "Ada Lovelace_123456_assignsubmission_file_"
    folder.mkdir()
    make_zip(folder / "work.zip", {"work/mlp_numpy.py": CODE})
    sub = run(folder, tmp_path)
    assert sub.student_id == "123456" and sub.problems == ()
    assert (sub.workspace / "mlp_numpy.py").read_bytes() == CODE

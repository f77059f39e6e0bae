"""Zip bombs and lying headers: intake counts, bounds and decompresses once (issue 9, item 7)."""

from __future__ import annotations

import struct
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import pytest

from grader.intake import IntakeLimits, Submission, intake
from grader.intake.files import ONLY_ASSIGNMENT

CODE = b"import numpy as np\n\n\ndef relu(x):\n    return np.maximum(x, 0)\n"
EXPECTED = ("mlp_numpy.py",)


def run(source: Path, tmp_path: Path, **kwargs) -> Submission:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return intake(source, work, expected_files=EXPECTED, **kwargs)


def deflated(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


def set_declared_size(path: Path, entry: str, size: int) -> None:
    """Rewrite the uncompressed size an entry declares, in its local and central headers."""
    data = bytearray(path.read_bytes())
    name = entry.encode()
    for signature, size_at, name_at in ((b"PK\x03\x04", 22, 30), (b"PK\x01\x02", 24, 46)):
        start = 0
        while (start := data.find(signature, start)) >= 0:
            if data[start + name_at:start + name_at + len(name)] == name:
                struct.pack_into("<I", data, start + size_at, size)
            start += 4
    path.write_bytes(bytes(data))


def test_a_folder_entry_declaring_4_gib_is_refused_without_decompressing(tmp_path) -> None:
    """Today's attack: a directory entry "holding" 4 GiB passed the limit (dirs not summed)."""
    path = deflated(tmp_path / "bomb.zip", {"mlp_numpy.py": CODE, "d/": b""})
    set_declared_size(path, "d/", 0xF000_0000)
    sub = run(path, tmp_path)
    assert sub.problems == ("the zip file bomb.zip expands to 3840.0 MB; the limit is 50 MB; "
                            f"{ONLY_ASSIGNMENT}",)
    assert sub.files == {}


def test_a_folder_entry_that_claims_bytes_is_refused(tmp_path) -> None:
    path = deflated(tmp_path / "odd.zip", {"mlp_numpy.py": CODE, "d/": b""})
    set_declared_size(path, "d/", 1000)
    assert run(path, tmp_path).problems == (
        "zip entry 'd/' in odd.zip is a folder that claims to hold 1,000 bytes; the zip is "
        "damaged",)


def test_folder_entries_count_against_the_file_limit(tmp_path) -> None:
    entries = {f"d{i}/": b"" for i in range(5)} | {"mlp_numpy.py": CODE}
    sub = run(deflated(tmp_path / "dirs.zip", entries), tmp_path,
              limits=IntakeLimits(max_files=5))
    assert sub.problems == ("the zip file dirs.zip holds 6 entries; the limit is 5 (folders "
                            f"count too); {ONLY_ASSIGNMENT}",)


def test_extreme_compression_ratios_are_refused(tmp_path) -> None:
    one = deflated(tmp_path / "one.zip", {"mlp_numpy.py": CODE, "zeros.bin": b"\0" * (3 << 20)})
    [problem] = run(one, tmp_path).problems
    assert problem.startswith("zip entry 'zeros.bin' in one.zip is compressed ")
    assert problem.endswith(":1; the limit is 100:1 (a zip bomb?)")
    # Many entries each under the floor, together far over it: the whole zip's ratio.
    many = deflated(tmp_path / "many.zip", {"mlp_numpy.py": CODE} | {
        f"z{i}.bin": b"\0" * (600 << 10) for i in range(4)})
    [problem] = run(many, tmp_path).problems
    assert problem.startswith("the zip file many.zip is compressed ")
    assert problem.endswith(":1 overall; the limit is 100:1 (a zip bomb?)")


def test_honest_compression_passes(tmp_path) -> None:
    source = b"".join(b"def f%d(x):\n    return x * %d + 1\n\n" % (i, i) for i in range(60_000))
    path = deflated(tmp_path / "honest.zip", {"mlp_numpy.py": CODE, "big_module.py": source})
    sub = run(path, tmp_path)
    assert sub.problems == () and set(sub.files) == {"mlp_numpy.py"}


def test_a_size_header_that_lies_low_stops_at_the_header(tmp_path) -> None:
    """A deflate stream of 200 MB of zeros declared as 64 bytes: never inflated past 64."""
    stream = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = b"".join(stream.compress(b"\0" * (1 << 20)) for _ in range(200)) + stream.flush()
    path = tmp_path / "liar.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("mlp_numpy.py", CODE)
        archive.writestr("x.py", body)  # stored bytes, relabelled below as deflate
    data = bytearray(path.read_bytes())
    for signature, method_at, size_at in ((b"PK\x03\x04", 8, 22), (b"PK\x01\x02", 10, 24)):
        start = data.rfind(signature)
        struct.pack_into("<H", data, start + method_at, zipfile.ZIP_DEFLATED)
        struct.pack_into("<I", data, start + size_at, 64)
    path.write_bytes(bytes(data))
    tracemalloc.start()
    try:
        sub = run(path, tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    [problem] = sub.problems
    assert problem.startswith("the zip file liar.zip is damaged: entry 'x.py': ")
    assert peak < 8 << 20  # the 200 MB never existed in the grader


def test_a_size_header_that_lies_high_is_refused(tmp_path) -> None:
    path = deflated(tmp_path / "short.zip", {"mlp_numpy.py": CODE})
    set_declared_size(path, "mlp_numpy.py", len(CODE) + 10)
    [problem] = run(path, tmp_path).problems
    assert "short.zip" in problem and "mlp_numpy.py" in problem


def test_the_byte_budget_is_shared_by_every_zip_of_a_submission(tmp_path) -> None:
    """Two Canvas zips of one student, each under the limit, together over it."""
    for attachment in (1, 2):
        deflated(tmp_path / f"smithbob_340934_{attachment}_part{attachment}.zip",
                 {f"m{attachment}.py": b"x = 1\n" * 60_000, "mlp_numpy.py": CODE})
    sub = run(tmp_path / "smithbob_340934_1_part1.zip", tmp_path,
              limits=IntakeLimits(max_total_mb=0.6))
    assert sub.problems == ("zip entry 'm2.py' in part2.zip expands beyond the submission's "
                            "size limit of 0.6 MB",)
    assert sub.files == {}


def test_decompression_has_a_deadline(tmp_path) -> None:
    path = deflated(tmp_path / "slow.zip", {"mlp_numpy.py": CODE})
    sub = run(path, tmp_path, limits=IntakeLimits(max_seconds=0))
    assert sub.problems == ("decompressing slow.zip took longer than 0 s; the zip was refused",)


def test_only_stored_and_deflate_are_read(tmp_path) -> None:
    path = tmp_path / "bz.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_BZIP2) as archive:
        archive.writestr("mlp_numpy.py", CODE)
    assert run(path, tmp_path).problems == (
        "zip entry 'mlp_numpy.py' in bz.zip uses compression method 12; only stored and "
        "deflate are read (what every zip tool writes by default): zip the files again",)


def test_an_oversized_central_directory_is_refused_before_parsing(tmp_path) -> None:
    entries = {f"{i:04d}.txt": b"" for i in range(40)}
    sub = run(deflated(tmp_path / "cd.zip", entries), tmp_path,
              limits=IntakeLimits(max_files=30))
    assert sub.problems == ("the zip file cd.zip holds 40 entries; the limit is 30 (folders "
                            f"count too); {ONLY_ASSIGNMENT}",)


def test_each_member_is_decompressed_once_and_unused_ones_never(tmp_path, monkeypatch) -> None:
    import hashlib
    import json

    opened: list[str] = []
    original = zipfile.ZipFile.open

    def counting(self, name, *args, **kwargs):
        opened.append(name.filename if isinstance(name, zipfile.ZipInfo) else name)
        return original(self, name, *args, **kwargs)

    manifest = {"student_id": "s1", "files": {"mlp_numpy.py": hashlib.sha256(CODE).hexdigest()}}
    path = deflated(tmp_path / "s1.zip", {"mlp_numpy.py": CODE, "notes.txt": b"hi" * 1000,
                                          "manifest.json": json.dumps(manifest).encode()})
    monkeypatch.setattr(zipfile.ZipFile, "open", counting)
    monkeypatch.setattr(zipfile.ZipFile, "testzip", None)  # no second pass over the entries
    sub = run(path, tmp_path)
    assert sub.problems == () and set(sub.files) == {"mlp_numpy.py"}
    assert sorted(opened) == ["manifest.json", "mlp_numpy.py"]


@pytest.mark.parametrize("name", ["../evil.py", "/abs.py", "C:/win.py", "a/../../b.py"])
def test_unsafe_entries_are_problems_and_never_written(tmp_path, name) -> None:
    sub = run(deflated(tmp_path / "slip.zip", {name: b"boom", "mlp_numpy.py": CODE}), tmp_path)
    assert len(sub.problems) == 1 and "was not extracted" in sub.problems[0]
    assert sorted(p.name for p in sub.workspace.iterdir()) == ["mlp_numpy.py"]
    assert {p.name for p in (tmp_path / "work").iterdir()} == {sub.workspace.name}


@pytest.mark.parametrize("name", [
    "the grader could not grade it: boom.ipynb",  # a bad notebook's problem starts with it
    "the grader could not read the submission.ipynb",
])
def test_a_file_name_never_makes_a_problem_read_as_the_graders_failure(tmp_path, name) -> None:
    """A problem that begins with a name the student chose must not pass for the grader's
    own failure: the dashboard, the reports and autograde's to-do list treat those as the
    instructor's, and `already_graded` regrades them on every run."""
    from grader.results.records import is_grader_problem

    zipped = tmp_path / "s1.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr(name, b"{ not json")
    submission = run(zipped, tmp_path)
    assert submission.problems, "the broken notebook should be a problem"
    assert not any(is_grader_problem(p) for p in submission.problems), submission.problems
    assert any(name in p for p in submission.problems)  # still says which file


def test_the_intakes_own_failure_is_the_graders_problem(tmp_path, monkeypatch) -> None:
    from grader.intake import submission as submission_module
    from grader.results.records import is_grader_problem

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(submission_module, "_match", broken)
    (tmp_path / "s1").mkdir()
    (tmp_path / "s1" / "mlp_numpy.py").write_bytes(CODE)
    problems = run(tmp_path / "s1", tmp_path).problems
    assert problems == ("the grader could not read the submission: RuntimeError: boom",)
    assert is_grader_problem(problems[0])
